"""Daily files landing in awkward ways: two days at once, a late file dated before the batches
already cleaned, a file landed again. Each ends with the silver and gold tables a day-at-a-time
run (or a full refresh) leaves, and the ledger balancing per batch and in total."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
from chispa import assert_df_equality
from daily_lines import (
    DAILY_POLICY,
    DAY_1,
    DAY_1_INGESTED,
    DAY_2,
    DAY_2_INGESTED,
    UK,
    copy_lakehouse,
    land,
)
from landing_files import assert_ledger_balances
from pyspark.sql import functions as F

from retail_segmentation.common.config import TableConfig
from retail_segmentation.common.tables import (
    BRONZE_TRANSACTIONS,
    PIPELINE_LEDGER,
    SILVER_PRODUCTS,
    SILVER_QUARANTINE,
    SILVER_TRANSACTIONS,
)
from retail_segmentation.gold.task import GOLD_TABLES, GoldConfig, build_gold
from retail_segmentation.silver.task import BATCH_RUN_PREFIX, SilverConfig, build_silver

pytestmark = pytest.mark.faults

TABLES = (SILVER_TRANSACTIONS, SILVER_QUARANTINE, SILVER_PRODUCTS)
# Dated before day 1: an older sale (the later one stays C536380's match), a return matched
# inside the file, a line filled from day 1's line of its invoice, and a line that gives day 1's
# invoice 536365 a second customer (its line without one is quarantined now).
LATE = (
    f"536300,22960,JAM MAKING SET,6,2010-11-28 10:00:00,4.25,13047,{UK}",
    f"536301,71053,WHITE METAL LANTERN,6,2010-11-29 10:00:00,3.39,17850,{UK}",
    f"C536302,71053,WHITE METAL LANTERN,-6,2010-11-30 10:00:00,3.39,17850,{UK}",
    f"536390,22633,HAND WARMER,2,2010-12-02 11:00:00,1.85,,{UK}",  # filled from day 1: 12583
    f"536365,22633,HAND WARMER,2,2010-12-01 08:26:00,1.85,17851,{UK}",
)
# the day after each file: day 1 (in day_one_gold), day 2 (in day_two), the late file
INGESTED = [DAY_1_INGESTED, DAY_2_INGESTED, dt.datetime(2010, 12, 14, 6)]


def _by_file_name(df):
    """`df` with the landing folders' paths left out of file names and ledger details (the
    files of each compared lakehouse landed in folders of their own; their names differ), and
    without the files' modification times."""
    text = [c for c in ("_source_file", "detail") if c in df.columns]
    return df.withColumns({c: F.regexp_replace(c, r"file:[^\s,]*/", "") for c in text}).drop(
        "_file_modified_at"
    )


def _batch_entries(lakehouse):
    return lakehouse.read(PIPELINE_LEDGER).where(F.col("run_id").startswith(BATCH_RUN_PREFIX))


def test_two_days_at_once_and_a_late_file_equal_a_day_at_a_time_and_a_full_refresh(
    spark, tmp_path, day_one_gold, day_two
):
    # both start from day 1 in silver and gold, ingested on INGESTED[0]; day at a time: day 2
    # landed on INGESTED[1] and run (day_two), then the late file
    one_by_one = copy_lakehouse(
        spark,
        day_two.built,
        TableConfig(schema="daily_one_by_one", lakehouse_dir=str(tmp_path / "a")),
    )
    assert (day_two.silver.mode, day_two.gold.mode) == ("incremental", "incremental")
    land(spark, one_by_one, tmp_path / "a_landing", "late.csv", LATE, now=INGESTED[2])
    last = build_silver(spark, one_by_one, SilverConfig(one_by_one.config, **DAILY_POLICY))
    gold = build_gold(spark, one_by_one, GoldConfig(one_by_one.config))
    assert (last.mode, last.rule_version) == ("incremental", 1)
    # the late file's lines are older than the tables' as-of date: still an increment
    assert (gold.mode, gold.as_of_date) == ("incremental", dt.date(2010, 12, 13))
    assert last.earlier_lines_changed == 1  # day 1's 536365 line without a customer

    at_once = day_one_gold.copy(
        spark, TableConfig(schema="daily_at_once", lakehouse_dir=str(tmp_path / "b"))
    )
    days = (("day2.csv", DAY_2), ("late.csv", LATE))
    for (name, lines), now in zip(days, INGESTED[1:], strict=True):
        land(spark, at_once, tmp_path / "b_landing", name, lines, now=now)
    both = build_silver(spark, at_once, SilverConfig(at_once.config, **DAILY_POLICY))
    assert (both.mode, len(both.new_batches)) == ("incremental", 2)
    assert build_gold(spark, at_once, GoldConfig(at_once.config)).mode == "incremental"
    for table in GOLD_TABLES:
        assert_df_equality(at_once.read(table), one_by_one.read(table), ignore_row_order=True)

    # the same files, landed in other folders: compared by file name
    for table in (*TABLES, BRONZE_TRANSACTIONS):
        assert_df_equality(
            _by_file_name(at_once.read(table)),
            _by_file_name(one_by_one.read(table)),
            ignore_row_order=True,
        )
    assert_df_equality(
        _by_file_name(_batch_entries(at_once)),
        _by_file_name(_batch_entries(one_by_one)),
        ignore_row_order=True,
    )
    assert_ledger_balances(one_by_one, last.run_id)
    assert_ledger_balances(at_once, both.run_id)

    snapshot = {t: one_by_one.read(t).localCheckpoint() for t in (*TABLES, *GOLD_TABLES)}
    refresh = build_silver(spark, one_by_one, SilverConfig(one_by_one.config, full_refresh=True))
    assert refresh.mode == "full_refresh"
    assert build_gold(spark, one_by_one, GoldConfig(one_by_one.config)).mode == "full"
    for table, before in snapshot.items():
        assert_df_equality(one_by_one.read(table), before, ignore_row_order=True)
    assert_ledger_balances(one_by_one, refresh.run_id)


def test_a_file_landed_again_adds_nothing(spark, lakehouse, tmp_path, day_one_gold):
    lakehouse = day_one_gold.copy(spark, lakehouse.config)  # day 1 landed and cleaned
    first = day_one_gold.silver
    snapshot = {t: lakehouse.read(t).localCheckpoint() for t in (*TABLES, PIPELINE_LEDGER)}
    landing = tmp_path / "landing"
    # day 1's bytes again: in another folder, under another name, and at the same path again
    assert land(spark, lakehouse, landing, "day1.csv", DAY_1) is None
    shutil.copy(landing / "day1.csv", landing / "day1 (copy).csv")
    assert land(spark, lakehouse, landing, "day1.csv", DAY_1) is None
    again = build_silver(spark, lakehouse, SilverConfig(lakehouse.config))
    assert again.mode == "up_to_date"
    assert again.silver_rows == first.silver_rows
    assert again.quarantined_rows == first.quarantined_rows
    for table, before in snapshot.items():
        assert_df_equality(lakehouse.read(table), before, ignore_row_order=True)
