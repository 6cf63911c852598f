"""Silver batch by batch: a new file changes only the earlier lines it completes, and the
tables equal a full refresh with the same rule version; refits by request, age and drift."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from chispa import assert_df_equality
from daily_lines import DAILY_POLICY, DAY_1, DAY_2, UK, copy_lakehouse, land, silver_state
from pyspark.sql import functions as F

from retail_segmentation.common import tables
from retail_segmentation.common.tables import (
    PIPELINE_LEDGER,
    SILVER_PRODUCTS,
    SILVER_QUARANTINE,
    SILVER_RULE_PARAMETERS,
    SILVER_TRANSACTIONS,
)
from retail_segmentation.silver.task import SilverConfig, batch_run_id, build_silver

pytestmark = pytest.mark.integration

TABLES = (SILVER_TRANSACTIONS, SILVER_QUARANTINE, SILVER_PRODUCTS)


def _snapshot(lakehouse):
    return {t: lakehouse.read(t).localCheckpoint() for t in TABLES}


def _assert_same(lakehouse, snapshot):
    for table, before in snapshot.items():
        assert_df_equality(lakehouse.read(table), before, ignore_row_order=True)


def test_a_new_file_changes_only_the_earlier_lines_it_completes(
    spark, lakehouse, day_one_gold, day_two
):
    config = SilverConfig(tables=lakehouse.config, **DAILY_POLICY)
    day_1, first = day_one_gold.batch_id, day_one_gold.silver  # day 1 landed and cleaned
    assert (first.mode, first.rule_version, first.refit_reason) == (
        "refit",
        1,
        "no parameters yet",
    )
    before = silver_state(day_one_gold.source)
    assert before[("C536380", "22960", day_1)] == ("unmatched_cancellation", "13047", None)
    assert before[("536400", "84879", day_1)][0] == "missing_customer_id"
    assert before[("C536450", "22633", day_1)] == ("silver", "15000", "536430")
    assert before[("536460", "85123A", day_1)] == ("silver", "16000", None)

    # day 2 landed and cleaned by an incremental run with the same policy (day_two)
    lakehouse = copy_lakehouse(spark, day_two.cleaned, lakehouse.config)
    day_2, second = day_two.batch_id, day_two.silver
    assert (second.mode, second.new_batches, second.rule_version) == ("incremental", (day_2,), 1)
    after = silver_state(lakehouse)
    changed = {k: (before[k], v) for k, v in after.items() if k[2] == day_1 and before[k] != v}
    assert changed == {
        ("C536380", "22960", day_1): (
            ("unmatched_cancellation", "13047", None),
            ("silver", "13047", "536368"),
        ),
        ("536400", "84879", day_1): (
            ("missing_customer_id", None, None),
            ("silver", "14000", None),
        ),
        ("C536450", "22633", day_1): (
            ("silver", "15000", "536430"),
            ("silver", "15000", "536440"),
        ),
        ("536460", "85123A", day_1): (
            ("silver", "16000", None),
            ("missing_customer_id", None, None),
        ),
    }
    assert second.earlier_lines_changed == 4
    # the repeated line is a duplicate of day 2, the new cancellation matched against day 1
    assert ("536365", "85123A", day_2) not in after
    assert after[("C536410", "85123A", day_2)] == ("silver", "17850", "536365")
    assert (second.bronze_rows, second.duplicates_removed) == (len(DAY_1) + len(DAY_2), 1)
    assert second.silver_rows + second.quarantined_rows == len(DAY_1) + len(DAY_2) - 1

    # the ledger balances per batch and in total
    ledger = lakehouse.read(PIPELINE_LEDGER).where("rule = 'balance'")
    balances = {r.run_id: r for r in ledger.collect()}
    per_batch = [balances[batch_run_id(b)] for b in (day_1, day_2)]
    for entry in per_batch:
        assert entry.rows_in == entry.rows_out + entry.rows_quarantined + entry.rows_removed
    assert [e.rows_in for e in per_batch] == [len(DAY_1), len(DAY_2)]
    assert sum(e.rows_out for e in per_batch) == second.silver_rows
    assert balances[second.run_id].rows_out == second.silver_rows

    # cleaning everything again with rule version 1 gives the same tables
    snapshot = _snapshot(lakehouse)
    full_refresh = SilverConfig(tables=lakehouse.config, full_refresh=True)
    refresh = build_silver(spark, lakehouse, full_refresh)
    assert (refresh.mode, refresh.rule_version) == ("full_refresh", 1)
    _assert_same(lakehouse, snapshot)
    # and a run with nothing new changes nothing
    assert build_silver(spark, lakehouse, config).mode == "up_to_date"
    _assert_same(lakehouse, snapshot)


def test_refits_by_request_by_age_and_by_drift(spark, lakehouse, tmp_path, day_one_gold):
    landing = tmp_path / "landing"
    lakehouse = day_one_gold.copy(spark, lakehouse.config)  # day 1 in silver and gold
    fitted_1 = _parameters(lakehouse, 1)
    assert fitted_1["fitted_through"] == "2010-12-10"

    # a file dated 40 days after the fitted data: refit on age (the default is 30 days)
    late = [
        f"536500,22960,JAM MAKING SET,6,2011-01-20 08:34:00,4.25,13047,{UK}",
        f"536501,22633,HAND WARMER,4,2011-01-20 12:00:00,1.85,14000,{UK}",
    ]
    land(spark, lakehouse, landing, "day2.csv", late)
    aged = build_silver(spark, lakehouse, SilverConfig(tables=lakehouse.config))
    assert aged.mode == "refit" and aged.rule_version == 2
    assert aged.refit_reason.startswith("new lines reach 2011-01-20, 41 days after")
    versions = lakehouse.read(SILVER_TRANSACTIONS).select("_rule_version").distinct().collect()
    assert [r[0] for r in versions] == [2]

    # 600 new sale lines, every one clipped: refit on drift
    outliers = [
        f"5{i:05d},85123A,WHITE HANGING HEART,900,2011-01-25 08:00:00,2.55,17850,{UK}"
        for i in range(600)
    ]
    land(spark, lakehouse, landing, "day3.csv", outliers)
    drifted = build_silver(spark, lakehouse, SilverConfig(tables=lakehouse.config))
    assert drifted.mode == "refit" and drifted.rule_version == 3
    assert "600 new product lines lie outside the IQR bounds" in drifted.refit_reason
    assert drifted.drift > 0.05

    # requested on the bronze version 3 was fitted on: nothing to fit, nothing written
    requested = build_silver(spark, lakehouse, SilverConfig(tables=lakehouse.config, refit=True))
    assert requested.mode == "up_to_date" and requested.rule_version == 3
    ledger = lakehouse.read(PIPELINE_LEDGER).where(F.col("run_id") == drifted.run_id)
    detail = json.loads(ledger.where("rule = 'balance'").first()["detail"])
    assert (detail["mode"], detail["rule_version"]) == ("refit", 3)
    assert sorted(
        r[0] for r in lakehouse.read(SILVER_RULE_PARAMETERS).select("version").distinct().collect()
    ) == [1, 2, 3]


def _parameters(lakehouse, version: int) -> dict[str, object]:
    rows = (
        lakehouse.read(SILVER_RULE_PARAMETERS)
        .where((F.col("version") == version) & (F.col("name") != "modal_price"))
        .collect()
    )
    return {r["name"]: r["text"] if r["text"] is not None else r["value"] for r in rows}


def test_the_rule_parameters_are_one_table_of_versions(spark, lakehouse, day_one_gold):
    lakehouse = day_one_gold.copy(spark, lakehouse.config)  # day 1 in silver and gold
    result = day_one_gold.silver
    fitted = _parameters(lakehouse, 1)
    assert fitted["quantity_q1"] == result.quantity_bounds.q1
    assert fitted["price_q3"] == result.price_bounds.q3
    assert fitted["reason"] == "no parameters yet"
    assert fitted["fitted_through"] == dt.date(2010, 12, 10).isoformat()
    modal = {
        r.key: r.value
        for r in lakehouse.read(SILVER_RULE_PARAMETERS).where("name = 'modal_price'").collect()
    }
    assert modal["22960"] == 4.25
    imputed = lakehouse.read(SILVER_TRANSACTIONS).where("invoice = '536470'").first()
    assert (imputed.price, imputed.is_price_imputed, imputed._rule_version) == (4.25, True, 1)


def test_a_day_adds_one_file_and_a_fragmented_table_is_compacted(
    spark, lakehouse, tmp_path, monkeypatch, day_one_gold
):
    """A day's lines go to silver as one file, not one per shuffle partition; once the files
    reach the threshold the run compacts the table: the same rows, and the data version (what
    gold and the up-to-date checks compare) stays the day's write."""
    landing = tmp_path / "landing"
    lakehouse = day_one_gold.copy(spark, lakehouse.config)  # day 1 in silver and gold
    files = lakehouse.file_count(SILVER_TRANSACTIONS)

    day2 = [
        f"536500,22960,JAM MAKING SET,6,2010-12-11 08:34:00,4.25,13047,{UK}",
        f"536501,22633,HAND WARMER,4,2010-12-11 12:00:00,1.85,14000,{UK}",
    ]
    land(spark, lakehouse, landing, "day2.csv", day2)
    second = build_silver(spark, lakehouse, SilverConfig(tables=lakehouse.config))
    assert (second.mode, second.earlier_lines_changed) == ("incremental", 0)
    assert lakehouse.file_count(SILVER_TRANSACTIONS) == files + 1

    monkeypatch.setattr(tables, "COMPACT_AT_FILES", files + 2)
    day3 = [f"536502,22960,JAM MAKING SET,3,2010-12-12 09:00:00,4.25,13047,{UK}"]
    land(spark, lakehouse, landing, "day3.csv", day3)
    third = build_silver(spark, lakehouse, SilverConfig(tables=lakehouse.config))
    assert third.mode == "incremental"
    assert lakehouse.file_count(SILVER_TRANSACTIONS) == 1
    written = lakehouse.data_commit(SILVER_TRANSACTIONS)
    assert (written.operation, written.latest_version) == ("WRITE", written.version + 1)
    assert_df_equality(
        lakehouse.read(SILVER_TRANSACTIONS),
        lakehouse.read(SILVER_TRANSACTIONS, version=written.version),
        ignore_row_order=True,
    )
    assert lakehouse.read(SILVER_TRANSACTIONS).where(F.col("invoice") == "536502").count() == 1
