"""A local Spark Connect session refuses what serverless refuses, and what the tasks rely on
(Delta through SQL, kept intermediates, Python batches) works under that guard."""

from __future__ import annotations

import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.errors import PySparkAttributeError, PySparkNotImplementedError

from retail_segmentation.common import spark as spark_module
from retail_segmentation.common.errors import SparkSetupError
from retail_segmentation.common.ledger import LedgerEntry, has_finished, record_ledger
from retail_segmentation.common.materialize import Intermediates, Strategy
from retail_segmentation.common.spark import (
    ComputeKind,
    ServerlessRuleError,
    compute_kind,
    get_spark,
    is_connect_session,
    serverless_guard_installed,
)
from retail_segmentation.common.tables import PIPELINE_LEDGER


def test_the_session_is_spark_connect_with_the_guard(spark):
    assert is_connect_session(spark)
    assert compute_kind(spark) is ComputeKind.LOCAL_CONNECT
    assert serverless_guard_installed()


@pytest.mark.parametrize("method", ["persist", "cache", "checkpoint", "localCheckpoint"])
def test_keeping_a_frame_the_classic_way_is_refused(spark, method):
    df = spark.range(3)
    with pytest.raises(
        ServerlessRuleError, match=rf"\[NOT_SUPPORTED_WITH_SERVERLESS\] DataFrame\.{method} "
    ):
        getattr(df, method)()


def test_cache_table_is_refused(spark):
    spark.range(3).createOrReplaceTempView("three")
    with pytest.raises(ServerlessRuleError, match=r"Catalog\.cacheTable"):
        spark.catalog.cacheTable("three")


def test_the_jvm_and_rdds_are_out_of_reach(spark):
    with pytest.raises(PySparkAttributeError, match="JVM_ATTRIBUTE_NOT_SUPPORTED"):
        _ = spark.sparkContext
    with pytest.raises(PySparkAttributeError, match="JVM_ATTRIBUTE_NOT_SUPPORTED"):
        _ = spark._jvm
    with pytest.raises(PySparkNotImplementedError, match="rdd"):
        _ = spark.range(3).rdd


def test_only_serverless_conf_keys_may_be_set(spark):
    with pytest.raises(
        ServerlessRuleError, match=r"spark\.conf\.set\('spark\.sql\.adaptive\.enabled'\)"
    ):
        spark.conf.set("spark.sql.adaptive.enabled", "false")
    spark.conf.set("spark.sql.shuffle.partitions", "2")  # one serverless allows
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"


def test_intermediates_go_to_scratch_delta_tables(spark, lakehouse):
    rows_df = spark.createDataFrame([(1, "a"), (2, None)], "id int, label string")
    with Intermediates(lakehouse, "t") as intermediates:
        assert intermediates.strategy is Strategy.DELTA
        kept = intermediates.keep(rows_df, "rows")
        assert_df_equality(kept, rows_df, ignore_row_order=True)
    assert list(lakehouse.scratch_root.iterdir()) == []


def test_delta_history_and_the_ledger_upsert_work_through_sql(spark, lakehouse):
    lakehouse.overwrite(spark.createDataFrame([(1,), (2,)], "id int"), "numbers")
    lakehouse.append(spark.createDataFrame([(3,)], "id int"), "numbers")
    # the compaction daily runs make: DESCRIBE DETAIL's file count, then OPTIMIZE
    assert lakehouse.file_count("numbers") >= 2
    assert lakehouse.compact_if_fragmented("numbers", at_files=2) is True
    assert lakehouse.file_count("numbers") == 1
    commit = lakehouse.data_commit("numbers")
    assert (commit.version, commit.rows, commit.latest_version) == (1, 1, 2)

    record_ledger(lakehouse, [LedgerEntry("run-1", "test", 1, "load", 3, 3)])
    record_ledger(
        lakehouse,
        [
            LedgerEntry("run-1", "test", 1, "load", 3, 2),
            LedgerEntry("run-2", "test", 1, "load", 1, 1),
        ],
    )
    ledger = lakehouse.read(PIPELINE_LEDGER).select("run_id", "rows_out")
    expected = spark.createDataFrame([("run-1", 2), ("run-2", 1)], "run_id string, rows_out long")
    assert_df_equality(ledger, expected, ignore_row_order=True, ignore_nullable=True)
    assert has_finished(lakehouse, "run-2") and not has_finished(lakehouse, "run-3")


def test_python_batches_run_in_the_venv_workers(spark):
    def doubled(batches):
        for batch in batches:
            yield pd.DataFrame({"id": batch["id"], "twice": batch["id"] * 2})

    actual = spark.range(4).mapInPandas(doubled, "id long, twice long")
    expected = spark.createDataFrame([(i, 2 * i) for i in range(4)], "id long, twice long")
    assert_df_equality(actual, expected, ignore_row_order=True)


def test_a_classic_session_asked_for_in_a_connect_process_is_one_sentence(spark, monkeypatch):
    monkeypatch.delenv("SPARK_REMOTE")
    with pytest.raises(SparkSetupError) as failure:
        get_spark()
    assert str(failure.value) == (
        "SPARK_REMOTE is not set, so a classic session was asked for, but this process "
        "already speaks Spark Connect: start a new process, or set SPARK_REMOTE again."
    )


def test_joining_a_server_checks_that_it_has_delta(spark, monkeypatch):
    url = f"sc://localhost:{spark_module._LOCAL_CONNECT_SERVER['port']}"
    joined = spark_module.remote_connect_spark(url)  # a second client of the local server
    assert joined is not spark and joined.range(2).count() == 2
    assert spark_module.remote_connect_spark(url) is joined  # one per address
    monkeypatch.setattr(spark_module, "DELTA_CATALOG", "org.example.NoSuchCatalog")
    expected = (
        rf"the Spark Connect server at SPARK_REMOTE={url} has no Delta Lake catalog: start it "
        r"with --packages io\.delta:delta-spark_2\.13:4\.0\.0"
    )
    with pytest.raises(SparkSetupError, match=expected):
        spark_module.require_delta(joined, f"the Spark Connect server at SPARK_REMOTE={url}")
