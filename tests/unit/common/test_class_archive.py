"""The JVM class archive: named after what it was built from, mapped only when built and on,
and a local Spark JVM started with it loads Spark's and Delta's classes from it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from retail_segmentation import cli
from retail_segmentation.common import class_archive

RUNTIME = '/usr/lib/jvm/java-17/bin/java\nopenjdk version "17.0.15" 2025-04-15'


def _jars(folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    jars = [folder / "delta-spark.jar", folder / "delta-storage.jar"]
    for jar in jars:
        jar.write_bytes(b"PK")
    return [str(jar) for jar in jars]


def test_the_archive_is_mapped_only_once_built_and_not_when_turned_off(tmp_path):
    jars = _jars(tmp_path / "jars")
    archive = class_archive.archive_path(tmp_path, jars, RUNTIME)
    assert class_archive.java_options(tmp_path, jars, RUNTIME, {}) == []

    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"archive")
    assert class_archive.java_options(tmp_path, jars, RUNTIME, {}) == [
        f"-XX:SharedArchiveFile={archive}",
        "-Xlog:cds=off",
        "-Xlog:cds+dynamic=off",
    ]
    off = {class_archive.ENV: "OFF"}
    assert class_archive.java_options(tmp_path, jars, RUNTIME, off) == []


def test_another_runtime_or_a_rewritten_jar_gets_an_archive_of_its_own(tmp_path):
    jars = _jars(tmp_path / "jars")
    first = class_archive.archive_path(tmp_path, jars, RUNTIME)
    assert class_archive.archive_path(tmp_path, list(reversed(jars)), RUNTIME) == first
    assert class_archive.archive_path(tmp_path, jars, RUNTIME + " (21)") != first

    stat = os.stat(jars[0])
    os.utime(jars[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert class_archive.archive_path(tmp_path, jars, RUNTIME) != first


def test_building_keeps_the_most_recently_used_archives(tmp_path):
    names = [f"spark-classes-{i:016x}.jsa" for i in range(6)]
    for age, name in enumerate(names):
        (tmp_path / name).write_bytes(b"a")
        os.utime(tmp_path / name, (1_000_000 - age, 1_000_000 - age))  # names[0] newest
    keep = tmp_path / names[5]  # the one just built

    class_archive._prune(tmp_path, keep=keep)

    assert sorted(p.name for p in tmp_path.glob("*.jsa")) == sorted([*names[:3], names[5]])


# A local Spark session started by a process of its own, with the JVM's class loading logged
# to a file; it waits for the JVM to exit, which completes the log.
_LOGGED_SESSION = """
import sys
from retail_segmentation.common.spark import local_spark, stop_local_spark_and_jvm

log = f"-Xlog:class+load=info:file={sys.argv[1]}"
spark = local_spark(warehouse_dir=sys.argv[2], java_options=[log])
spark.range(5).write.format("delta").save(sys.argv[2] + "/t")
assert spark.read.format("delta").load(sys.argv[2] + "/t").count() == 5
stop_local_spark_and_jvm(spark, timeout=120)
"""


def _sources(log: Path, classes: list[str]) -> dict[str, str]:
    """class -> where the JVM loaded it from."""
    found = {}
    for line in log.read_text(errors="replace").splitlines():
        parts = line.split("] ", 1)[-1].split(" source: ", 1)
        if len(parts) == 2 and parts[0] in classes:
            found[parts[0]] = parts[1]
    return found


def test_a_local_spark_jvm_loads_spark_and_delta_classes_from_the_archive(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv(class_archive.ENV, raising=False)  # on, whatever the suite runs with
    # what `make install` does; builds the archive here when it was not built yet
    assert cli.main(["setup"]) == 0
    out = capsys.readouterr().out
    assert "JVM class archive: " in out and ".jsa" in out

    log = tmp_path / "classes.log"
    env = {k: v for k, v in os.environ.items() if k != "SPARK_REMOTE"}
    subprocess.run(
        [sys.executable, "-c", _LOGGED_SESSION, str(log), str(tmp_path / "warehouse")],
        env=env,
        check=True,
        timeout=300,
    )

    classes = [
        "org.apache.spark.SparkContext",
        "org.apache.spark.sql.catalyst.analysis.Analyzer",
        "org.apache.spark.sql.delta.DeltaLog",
        "org.apache.spark.sql.delta.OptimisticTransaction",
    ]
    sources = _sources(log, classes)
    # "(top)": the dynamic archive on top of the JDK's own
    assert sources == {name: "shared objects file (top)" for name in classes}
