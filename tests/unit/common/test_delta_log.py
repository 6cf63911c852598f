"""Rows written per table, read from the Delta logs of real tables written by delta-spark."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from chispa import assert_df_equality

from retail_segmentation.common.delta_log import rows_written_since, table_versions
from retail_segmentation.common.ledger import LedgerEntry, record_ledger
from retail_segmentation.common.tables import PIPELINE_LEDGER


def test_versions_and_rows_of_overwrite_append_and_merge(spark, lakehouse):
    root = lakehouse.local_root
    assert table_versions(root) == {}

    lakehouse.overwrite(spark.createDataFrame([(1,), (2,), (3,)], "id int"), "numbers")
    record_ledger(lakehouse, [LedgerEntry("run-1", "test", 1, "load", 3, 3)])
    assert table_versions(root) == {"numbers": 0, PIPELINE_LEDGER: 0}
    assert rows_written_since(root, {}) == {"numbers": 3, PIPELINE_LEDGER: 1}

    before = table_versions(root)
    lakehouse.append(spark.createDataFrame([(4,), (5,)], "id int"), "numbers")
    lakehouse.append(spark.createDataFrame([(6,)], "id int"), "numbers")
    lakehouse.overwrite(spark.createDataFrame([("a",)], "name string"), "names")
    # an upsert that replaces one entry and adds one: two rows written
    record_ledger(
        lakehouse,
        [
            LedgerEntry("run-1", "test", 1, "load", 3, 2),
            LedgerEntry("run-2", "test", 1, "load", 6, 6),
        ],
    )
    assert table_versions(root) == {"names": 0, "numbers": 2, PIPELINE_LEDGER: 1}
    # only the commits after `before`, summed per table; a new table counts from version 0
    assert rows_written_since(root, before) == {"names": 1, "numbers": 3, PIPELINE_LEDGER: 2}
    assert rows_written_since(root, table_versions(root)) == {}


def test_an_upsert_replaces_only_the_pairs_it_names_and_quotes_them(spark, lakehouse):
    odd = "run'\\x"  # a quote and a backslash reach SQL as literal characters
    record_ledger(
        lakehouse,
        [LedgerEntry(odd, "silver", 1, "load", 5, 5), LedgerEntry(odd, "silver", 2, "dedup", 5, 4)],
    )
    record_ledger(lakehouse, [LedgerEntry(odd, "silver", 2, "dedup", 5, 3)])
    record_ledger(lakehouse, [])  # nothing to record: no commit
    ledger = lakehouse.read(PIPELINE_LEDGER).select("run_id", "rule", "rows_out")
    expected = spark.createDataFrame(
        [(odd, "load", 5), (odd, "dedup", 3)], "run_id string, rule string, rows_out long"
    )
    assert_df_equality(ledger, expected, ignore_row_order=True, ignore_nullable=True)
    assert table_versions(lakehouse.local_root) == {PIPELINE_LEDGER: 1}


def test_tasks_recording_at_once_both_land(spark, lakehouse):
    """Parallel tasks of one job (recommend beside score) commit to the ledger at the same
    time: whichever loses Delta's conflict check is retried on the new version."""
    record_ledger(lakehouse, [LedgerEntry("first", "test", 1, "load", 1, 1)])
    runs = [f"parallel-{i}" for i in range(3)]
    with ThreadPoolExecutor(len(runs)) as pool:
        list(
            pool.map(lambda r: record_ledger(lakehouse, [LedgerEntry(r, "ml", 1, "t", 2, 2)]), runs)
        )
    recorded = lakehouse.read(PIPELINE_LEDGER).select("run_id")
    expected = spark.createDataFrame([("first",), *[(r,) for r in runs]], "run_id string")
    assert_df_equality(recorded, expected, ignore_row_order=True, ignore_nullable=True)
