"""Rows written per table, read from the Delta logs of real tables written by delta-spark."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from chispa import assert_df_equality

from retail_segmentation.common.delta_log import live_rows, rows_written_since, table_versions
from retail_segmentation.common.ledger import (
    LedgerEntry,
    record_ledger,
    recorded_detail,
    recorded_run,
)
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
    # one file per upsert: the first one's, rewritten without the replaced entry, and the second's
    assert lakehouse.file_count(PIPELINE_LEDGER) == 2
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


def test_live_rows_from_the_checksum_equal_spark_counts(spark, lakehouse):
    """After appends, an overwrite, a MERGE, a DELETE through deletion vectors and a
    checkpoint, the rows the checksum file lists equal what Spark counts."""
    numbers = lakehouse.local_root / "numbers"
    assert live_rows(numbers) is None  # no table yet

    def counted() -> int:
        return lakehouse.read("numbers").count()

    lakehouse.overwrite(spark.range(10).selectExpr("int(id) AS id"), "numbers")
    assert live_rows(numbers) == counted() == 10
    lakehouse.append(spark.range(10, 15).selectExpr("int(id) AS id"), "numbers")
    assert live_rows(numbers) == counted() == 15
    name = lakehouse.name("numbers")
    spark.sql(
        f"ALTER TABLE {name} SET TBLPROPERTIES "
        "('delta.enableDeletionVectors' = 'true', 'delta.checkpointInterval' = '2')"
    )
    spark.sql(f"DELETE FROM {name} WHERE id % 3 = 0")  # 0, 3, ..., 12: 5 rows as vectors
    assert live_rows(numbers) == counted() == 10
    spark.createDataFrame([(1,), (99,)], "id int").createOrReplaceTempView("incoming")
    spark.sql(f"MERGE INTO {name} t USING incoming s ON t.id = s.id WHEN NOT MATCHED THEN INSERT *")
    assert live_rows(numbers) == counted() == 11
    lakehouse.append(spark.createDataFrame([(100,), (101,)], "id int"), "numbers")
    assert (numbers / "_delta_log" / "_last_checkpoint").exists()  # every 2 commits now
    assert live_rows(numbers) == counted() == 13
    lakehouse.overwrite(spark.createDataFrame([(7,)], "id int"), "numbers")
    assert live_rows(numbers) == counted() == 1

    # a checksum that does not list the files (as for large tables): Spark has to count
    latest = numbers / "_delta_log" / f"{table_versions(lakehouse.local_root)['numbers']:020d}.crc"
    checksum = json.loads(latest.read_text())
    del checksum["allFiles"]
    latest.write_text(json.dumps(checksum))
    assert live_rows(numbers) is None


def test_the_run_that_wrote_a_version_is_read_back_whole(spark, lakehouse):
    """What an incremental gold run needs of the run that wrote the tables it carries on: the
    rfm entry naming the table's version, and the rows of every table that run wrote."""
    record_ledger(
        lakehouse,
        [
            LedgerEntry("gold:a", "gold", 1, "gold_customer_rfm", 10, 4, detail={"rfm_version": 3}),
            LedgerEntry("gold:a", "gold", 2, "gold_sales_by_country", 10, 2),
            LedgerEntry("gold:b", "gold", 1, "gold_customer_rfm", 12, 5, detail={"rfm_version": 4}),
            LedgerEntry("gold:b", "gold", 2, "gold_sales_by_country", 12, 3),
            LedgerEntry(
                "silver:b", "silver", 1, "gold_customer_rfm", 1, 1, detail={"rfm_version": 4}
            ),
        ],
    )
    run = recorded_run(lakehouse, "gold", "gold_customer_rfm", "rfm_version", 4)
    assert run is not None
    assert {rule: (e.run_id, e.rows_out) for rule, e in run.items()} == {
        "gold_customer_rfm": ("gold:b", 5),
        "gold_sales_by_country": ("gold:b", 3),
    }
    assert recorded_detail(lakehouse, "gold", "gold_customer_rfm", "rfm_version", 3) == {
        "rfm_version": 3
    }
    # a version no run recorded (one killed before its ledger entry)
    assert recorded_run(lakehouse, "gold", "gold_customer_rfm", "rfm_version", 5) is None
