"""A class-data-sharing archive for the local Spark JVM.

Every local Spark start (each task process of `retail-seg run`, the Spark Connect server,
each process a test starts) loads, parses and verifies tens of thousands of classes of
Spark, Delta and their dependencies from jars before it does any work. The JDK's dynamic
class-data sharing (JDK 13+) writes the classes one JVM loaded into an archive at its exit
(`-XX:ArchiveClassesAtExit`); later JVMs map the archive (`-XX:SharedArchiveFile`) instead
of loading those classes again. On the 2-core development machine a session start went from
8.1 to 4.6 s and the default run from 60-62 to 55-57 s (BENCHMARKS.md).

`retail-seg setup` (which `make install` runs) builds the archive once per machine: a small
Spark + Delta + Spark ML workload in a process of its own. It lives in the jar cache, named
after what it was built from (the Java runtime, pyspark and the Delta jars), so another JDK or
pyspark builds its own and never maps a foreign one; the JVM itself also refuses an archive
that does not match, and then starts without it. `RETAIL_SEG_CLASS_ARCHIVE=off` turns it off.
Local only: a Databricks cluster starts its own JVM.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

ENV = "RETAIL_SEG_CLASS_ARCHIVE"
# archives of other runtimes or pyspark installs (other checkouts) kept besides the newest
KEEP = 3

# Run by `build` in a process of its own (the JVM writes the archive as it exits).
_BUILD = """
import sys
from retail_segmentation.common.class_archive import train
train(sys.argv[1], sys.argv[2])
"""


def archive_path(cache: Path, jars: Sequence[str], java_runtime: str) -> Path:
    """Where the archive for this Java runtime, pyspark install and set of jars lives. The JVM
    maps an archive only if every jar on its class path has the size and modification time it
    had when the archive was written, so those are part of the name: a reinstalled pyspark
    gets an archive of its own."""
    import pyspark

    spark_jars = Path(pyspark.__file__).resolve().parent / "jars"
    identity = [
        java_runtime,
        pyspark.__version__,
        *(_stamp(jar) for jar in sorted(spark_jars.glob("*.jar"))),
        *(_stamp(Path(jar)) for jar in sorted(jars)),
    ]
    digest = hashlib.sha256("\n".join(identity).encode()).hexdigest()[:16]
    return cache / "jvm" / f"spark-classes-{digest}.jsa"


def _stamp(path: Path) -> str:
    try:
        stat = path.stat()
    except OSError:
        return f"{path} missing"
    return f"{path} {stat.st_size} {stat.st_mtime_ns}"


def turned_off(environ: Mapping[str, str]) -> bool:
    """True when RETAIL_SEG_CLASS_ARCHIVE=off."""
    return environ.get(ENV, "on").strip().lower() == "off"


def java_options(
    cache: Path, jars: Sequence[str], java_runtime: str, environ: Mapping[str, str]
) -> list[str]:
    """The JVM options that map the archive, when it was built and is not turned off."""
    if turned_off(environ):
        return []
    archive = archive_path(cache, jars, java_runtime)
    if not archive.is_file():
        return []
    with contextlib.suppress(OSError):
        os.utime(archive)  # last used: what `build` keeps when it prunes
    # the JVM says nothing about the archive unless it cannot map it, then starts without it
    return [f"-XX:SharedArchiveFile={archive}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"]


def build(cache: Path, jars: Sequence[str], java_runtime: str, timeout: float = 900) -> Path:
    """Build the archive once (a no-op when it exists); the path. Processes that build at the
    same time wait for the first. Raises `SparkSetupError` naming the log when it fails."""
    import fcntl

    from retail_segmentation.common.errors import SparkSetupError
    from retail_segmentation.common.spark import run_python

    target = archive_path(cache, jars, java_runtime)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file():
            return target
        partial = target.with_name(f"{target.stem}.{os.getpid()}.partial")
        workdir = target.parent / f"build-{os.getpid()}"
        log = target.parent / "build.log"
        env = {
            ENV: "off",  # the building JVM maps no archive of its own
            # a few rows: as `retail-seg run` runs small inputs
            "RETAIL_SEG_CODEGEN": os.environ.get("RETAIL_SEG_CODEGEN", "off"),
            "RETAIL_SEG_ADAPTIVE": os.environ.get("RETAIL_SEG_ADAPTIVE", "off"),
        }
        try:
            try:
                result = run_python(_BUILD, str(partial), str(workdir), env=env, timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                raise SparkSetupError(
                    f"could not build the JVM class archive {target} in {timeout:.0f}s; Spark "
                    "starts without it, only slower."
                ) from exc
            log.write_text(result.stdout + result.stderr, encoding="utf-8")
            if result.returncode != 0 or not partial.is_file():
                raise SparkSetupError(
                    f"could not build the JVM class archive {target} (exit code "
                    f"{result.returncode}; output in {log}); Spark starts without it, only "
                    f"slower. {ENV}=off stops using it."
                )
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
            _remove_tree(workdir)
        _prune(target.parent, keep=target)
    return target


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _prune(folder: Path, keep: Path) -> None:
    """Remove all but the `KEEP` most recently used archives besides `keep`."""
    used = {}
    for archive in folder.glob("spark-classes-*.jsa"):
        with contextlib.suppress(OSError):  # another build may prune at the same time
            used[archive] = archive.stat().st_mtime
    others = sorted((p for p in used if p != keep), key=used.__getitem__, reverse=True)
    for old in others[KEEP:]:
        old.unlink(missing_ok=True)


def train(archive: str, workdir: str) -> None:
    """Start local Spark with `-XX:ArchiveClassesAtExit`, run what the tasks run on a few
    rows (CSV, Delta writes, MERGE, time travel, joins, windows, an ALS fit), stop, and wait
    for the JVM to exit: it writes the archive then. (More would cost the build more than it
    saves: an archive of a whole default run started tasks no faster.)"""
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from retail_segmentation.common.spark import local_spark, stop_local_spark_and_jvm

    spark = local_spark(
        app_name="retail-seg-class-archive",
        warehouse_dir=f"{workdir}/warehouse",
        shuffle_partitions=2,
        java_options=[f"-XX:ArchiveClassesAtExit={archive}"],
    )
    lines = spark.range(400).selectExpr(
        "id",
        "CAST(id % 40 AS INT) AS customer",
        "CAST(id % 25 AS INT) AS product",
        "CAST(id % 9 + 1 AS DOUBLE) AS quantity",
        "TIMESTAMP'2011-01-01 00:00:00' + make_interval(0, 0, 0, CAST(id % 300 AS INT)) AS at",
    )
    csv = f"{workdir}/csv"
    lines.write.mode("overwrite").option("header", True).csv(csv)
    lines = spark.read.option("header", True).option("inferSchema", True).csv(csv)
    table = f"{workdir}/delta"
    lines.write.format("delta").mode("overwrite").save(table)
    lines.where("id < 100").write.format("delta").mode("append").save(table)
    lines.where("id < 50").write.format("delta").mode("overwrite").option(
        "replaceWhere", "id < 50"
    ).save(table)
    lines.where("id >= 300").createOrReplaceTempView("changes")
    spark.sql(
        f"MERGE INTO delta.`{table}` AS t USING changes AS s ON t.id = s.id "
        "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    )
    spark.read.format("delta").option("versionAsOf", 1).load(table).count()
    spark.sql(f"DESCRIBE HISTORY delta.`{table}`").collect()
    delta = spark.read.format("delta").load(table)
    ranked = delta.withColumn(
        "rank", F.row_number().over(Window.partitionBy("customer").orderBy(F.desc("at")))
    )
    features = (
        ranked.groupBy("customer")
        .agg(
            F.count("*").alias("lines"),
            F.sum("quantity").alias("quantity"),
            F.max("at").alias("last"),
            F.percentile_approx("quantity", 0.5).alias("median"),
        )
        .join(
            delta.groupBy("customer").agg(F.countDistinct("product").alias("products")), "customer"
        )
        .withColumn("days", F.datediff(F.lit("2012-01-01"), F.col("last")).cast("double"))
    )
    features.toPandas()
    ratings = delta.groupBy("customer", "product").agg(F.sum("quantity").alias("rating"))
    ALS(
        userCol="customer", itemCol="product", ratingCol="rating", implicitPrefs=True, maxIter=2
    ).fit(ratings).recommendForAllUsers(3).count()
    stop_local_spark_and_jvm(spark)  # the JVM writes the archive as it exits
