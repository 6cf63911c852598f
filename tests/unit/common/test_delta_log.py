"""Rows written per table, read from the Delta logs of real tables written by delta-spark."""

from __future__ import annotations

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
    # a MERGE that updates one entry and inserts one: two rows written
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
