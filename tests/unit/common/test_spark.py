"""Local Spark set-up fails with one clear sentence when Java is missing or too old."""

from __future__ import annotations

import os
import stat

import pytest

from retail_segmentation.common import spark as spark_module
from retail_segmentation.common.errors import SparkSetupError


def _fake_java(tmp_path, version_line: str):
    java_home = tmp_path / "jdk"
    (java_home / "bin").mkdir(parents=True)
    java = java_home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    return java_home


def test_missing_java_names_what_to_install(monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SparkSetupError, match=r"Java 17 or newer is needed .* set JAVA_HOME"):
        spark_module.local_spark()


def test_old_java_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("JAVA_HOME", str(_fake_java(tmp_path, 'openjdk version "11.0.2" 2019')))
    with pytest.raises(SparkSetupError, match="Spark 4 needs Java 17 or newer, found Java 11"):
        spark_module.local_spark()


@pytest.mark.parametrize(
    ("line", "major"),
    [('openjdk version "17.0.15" 2025-04-15', 17), ('java version "1.8.0_292"', 8),
     ('openjdk version "21" 2023-09-19', 21)],
)  # fmt: skip
def test_java_version_parsing(monkeypatch, tmp_path, line, major):
    monkeypatch.setenv("JAVA_HOME", str(_fake_java(tmp_path, line)))
    assert spark_module._java_major_version() == major


def test_cached_jars_are_used_only_when_delta_is_there(tmp_path):
    assert spark_module._cached_jars(tmp_path) == []
    (tmp_path / "jars").mkdir()
    for name in (spark_module.DELTA_JAR, "io.delta_delta-storage-4.0.0.jar"):
        (tmp_path / "jars" / name).write_text("")
    assert [os.path.basename(j) for j in spark_module._cached_jars(tmp_path)] == sorted(
        [spark_module.DELTA_JAR, "io.delta_delta-storage-4.0.0.jar"]
    )


def test_on_databricks_the_runtime_session_is_used(monkeypatch, spark):
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "17.3")
    assert spark_module.is_databricks()
    assert spark_module.get_spark() is spark  # the active session, no new builder


def test_the_first_fetch_of_the_delta_jars_keeps_ivy_quiet(tmp_path, capfd):
    jars = spark_module._fetch_delta_jars(tmp_path)  # Spark's own resolver, in a child process

    names = sorted(os.path.basename(j) for j in jars)
    assert names == [spark_module.DELTA_JAR, "io.delta_delta-storage-4.0.0.jar",
                     "org.antlr_antlr4-runtime-4.13.1.jar"]  # fmt: skip
    err = capfd.readouterr().err
    assert err.strip() == (
        f"fetching the Delta Lake jars (io.delta:delta-spark_2.13:4.0.0) into {tmp_path}, once ..."
    )
    assert "resolving dependencies" in (tmp_path / "fetch-delta-jars.log").read_text()


def test_a_failed_fetch_of_the_delta_jars_is_one_sentence(monkeypatch, tmp_path):
    script = "import sys; print('::: UNRESOLVED DEPENDENCIES', file=sys.stderr); sys.exit(1)"
    monkeypatch.setattr(spark_module, "_FETCH_DELTA_JARS", script)
    with pytest.raises(SparkSetupError) as failure:
        spark_module._fetch_delta_jars(tmp_path)
    assert str(failure.value) == (
        "could not fetch the Delta Lake jars (io.delta:delta-spark_2.13:4.0.0) into "
        f"{tmp_path}: Spark resolves them from Maven Central on first use, so run once with "
        f"network access, or place the jars in {tmp_path / 'jars'} (e.g. with `mvn "
        "dependency:copy`). Cause: ::: UNRESOLVED DEPENDENCIES (full output in "
        f"{tmp_path / 'fetch-delta-jars.log'})"
    )


@pytest.mark.parametrize(
    ("runtime", "kind"),
    [
        (None, spark_module.ComputeKind.LOCAL),
        ("17.3", spark_module.ComputeKind.DATABRICKS_CLASSIC),
        ("client.4.9", spark_module.ComputeKind.DATABRICKS_SERVERLESS),
    ],
)
def test_the_compute_kind_of_a_classic_session(monkeypatch, spark, runtime, kind):
    if runtime is None:
        monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    else:
        monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", runtime)
    assert spark_module.compute_kind(spark) is kind
    assert kind.has_serverless_rules is (kind is spark_module.ComputeKind.DATABRICKS_SERVERLESS)
    assert not spark_module.is_connect_session(spark)
    assert spark_module.default_parallelism(spark) == 2  # the test session's


def test_serverless_with_a_classic_session_is_one_sentence(monkeypatch, spark):
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "client.4.9")
    with pytest.raises(SparkSetupError) as failure:
        spark_module.get_spark()
    assert str(failure.value) == (
        "DATABRICKS_RUNTIME_VERSION=client.4.9 says serverless, but the session is a classic "
        "one: run the task in a serverless environment or on a *_classic target"
    )


@pytest.mark.parametrize(
    ("remote", "message"),
    [
        ("localhost:15002", r"SPARK_REMOTE=localhost:15002 is not a Spark Connect address"),
        # this process runs the tests' classic session: Connect cannot start beside it
        ("local[2]", r"SPARK_REMOTE=local\[2\] asks for a Spark Connect session, but this process"),
    ],
)
def test_a_connect_request_that_cannot_be_met_is_one_sentence(monkeypatch, spark, remote, message):
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    monkeypatch.setenv("SPARK_REMOTE", remote)
    with pytest.raises(SparkSetupError, match=message):
        spark_module.get_spark()


def test_the_jvm_keeps_the_sessions_time_zone_and_the_suite_runs_without_codegen(spark):
    # any other JVM time zone makes Delta rebuild a table's state on every commit
    assert spark.sparkContext._jvm.java.util.TimeZone.getDefault().getID() == "UTC"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    # tests/conftest.py sets RETAIL_SEG_CODEGEN=off for the suite's small frames
    assert spark.conf.get("spark.sql.codegen.wholeStage") == "false"
    assert spark.conf.get("spark.sql.codegen.factoryMode") == "NO_CODEGEN"
    assert spark.conf.get("spark.databricks.delta.snapshotPartitions") == "1"


@pytest.mark.parametrize(
    ("environ", "conf"),
    [
        ({}, {}),
        ({"RETAIL_SEG_CODEGEN": "on", "RETAIL_SEG_ADAPTIVE": "on"}, {}),
        (
            {"RETAIL_SEG_CODEGEN": "off"},
            {
                "spark.sql.codegen.wholeStage": "false",
                "spark.sql.codegen.factoryMode": "NO_CODEGEN",
            },
        ),
        (
            {"RETAIL_SEG_ADAPTIVE": " OFF "},
            {"spark.sql.adaptive.enabled": "false", "spark.sql.shuffle.partitions": "2"},
        ),
        (
            {"RETAIL_SEG_CODEGEN": "off", "RETAIL_SEG_ADAPTIVE": "off"},
            {
                "spark.sql.codegen.wholeStage": "false",
                "spark.sql.codegen.factoryMode": "NO_CODEGEN",
                "spark.sql.adaptive.enabled": "false",
                "spark.sql.shuffle.partitions": "2",
            },
        ),
    ],
)
def test_small_inputs_turn_off_code_generation_and_adaptive_execution_on_request(environ, conf):
    assert spark_module.small_input_conf(environ, shuffle_partitions=8) == conf


def test_fewer_shuffle_partitions_asked_for_stay_fewer_without_adaptive_execution():
    conf = spark_module.small_input_conf({"RETAIL_SEG_ADAPTIVE": "off"}, shuffle_partitions=1)
    assert conf["spark.sql.shuffle.partitions"] == "1"


def test_the_jvm_runs_the_parallel_collector(spark):
    management = spark.sparkContext._jvm.java.lang.management.ManagementFactory
    collectors = {bean.getName() for bean in management.getGarbageCollectorMXBeans()}
    assert collectors == {"PS Scavenge", "PS MarkSweep"}


@pytest.mark.parametrize(
    ("environ", "options"),
    [
        ({}, ["-XX:+UseParallelGC"]),
        ({"JDK_JAVA_OPTIONS": "-Xss8m"}, ["-XX:+UseParallelGC"]),
        # the JVM refuses to start with two collectors: the user's choice wins
        ({"JDK_JAVA_OPTIONS": "-Xss8m -XX:+UseG1GC"}, []),
        ({"JAVA_TOOL_OPTIONS": "-XX:+UseZGC -XX:+ZGenerational"}, []),
        # turning a collector off is not a choice of one
        ({"JAVA_TOOL_OPTIONS": "-XX:-UseG1GC"}, ["-XX:+UseParallelGC"]),
    ],
)
def test_a_collector_chosen_in_the_environment_is_kept(environ, options):
    assert spark_module._gc_options(environ) == options
