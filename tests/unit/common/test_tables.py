"""Logical table names resolve per environment; local tables are found again by name."""

from __future__ import annotations

import dataclasses

import pytest
from chispa import assert_df_equality

from retail_segmentation.common.config import TableConfig
from retail_segmentation.common.delta_log import operation_rows
from retail_segmentation.common.errors import ConfigError
from retail_segmentation.common.tables import Lakehouse, is_data_change, recording_commits


def test_names_per_environment(spark):
    config = TableConfig(catalog="prod", schema="retail")
    assert Lakehouse(spark, config, databricks=True).name("silver_x") == "prod.retail.silver_x"
    assert Lakehouse(spark, config, databricks=False).name("silver_x") == "retail.silver_x"
    with pytest.raises(ConfigError, match="parameter table="):
        Lakehouse(spark, config).name("x; DROP TABLE y")


def test_overwrite_append_version_and_reattach(spark, lakehouse):
    lakehouse.overwrite(spark.createDataFrame([(1,), (2,)], "id int"), "numbers")
    lakehouse.append(spark.createDataFrame([(3,)], "id int"), "numbers")
    assert lakehouse.version("numbers") == 1
    assert lakehouse.last_commit_rows("numbers") == 1
    first_version = spark.createDataFrame([(1,), (2,)], "id int")
    assert_df_equality(lakehouse.read("numbers", version=0), first_version, ignore_row_order=True)

    spark.sql(f"DROP TABLE {lakehouse.name('numbers')}")  # as in a new process
    again = Lakehouse.attach(spark, lakehouse.config)
    expected = spark.createDataFrame([(1,), (2,), (3,)], "id int")
    assert_df_equality(spark.table(again.name("numbers")), expected, ignore_row_order=True)


@pytest.mark.parametrize("at_once", [1, 2])
def test_overwrite_all_replaces_each_table_and_raises_after_the_others_are_written(
    spark, lakehouse, at_once
):
    for table in ("left_t", "middle_t", "right_t"):
        lakehouse.overwrite(spark.createDataFrame([(0,)], "id int"), table)
    new = {"left_t": [(1,), (2,)], "right_t": [(3,)]}
    bad = spark.createDataFrame([("x",)], "id string").selectExpr(
        "CAST(IF(id = 'x', raise_error('no such id'), id) AS int) AS id"
    )
    frames = {
        "left_t": spark.createDataFrame(new["left_t"], "id int"),
        "middle_t": bad,  # fails when Spark computes it
        "right_t": spark.createDataFrame(new["right_t"], "id int"),
    }
    with recording_commits() as committed, pytest.raises(Exception, match="no such id"):
        lakehouse.overwrite_all(frames, at_once=at_once)
    # the writes ran in other threads: the runner's record of this thread's commits has them
    assert committed == {"left_t", "middle_t", "right_t"}
    for table, rows in new.items():
        expected = spark.createDataFrame(rows, "id int")
        assert_df_equality(lakehouse.read(table), expected, ignore_row_order=True)
    assert_df_equality(lakehouse.read("middle_t"), spark.createDataFrame([(0,)], "id int"))
    assert lakehouse.version("middle_t") == 0


@pytest.mark.parametrize("at_once", [1, 2])
def test_replace_where_all_replaces_the_matching_rows_of_each_table_and_raises_at_the_end(
    spark, lakehouse, at_once
):
    schema = "batch string, id int"
    for table in ("kept_t", "rejected_t"):
        lakehouse.overwrite(spark.createDataFrame([("a", 1), ("b", 2)], schema), table)
    bad = spark.createDataFrame([("b", 0)], schema).selectExpr(
        "batch", "CAST(IF(id = 0, raise_error('no such id'), id) AS int) AS id"
    )
    frames = {"kept_t": spark.createDataFrame([("b", 20), ("b", 21)], schema), "rejected_t": bad}
    with recording_commits() as committed, pytest.raises(Exception, match="no such id"):
        lakehouse.replace_where_all(frames, "batch = 'b'", at_once=at_once)
    assert committed == {"kept_t", "rejected_t"}
    # batch b replaced in the first table, the other batch kept; the failed table as it was
    assert_df_equality(
        lakehouse.read("kept_t"),
        spark.createDataFrame([("a", 1), ("b", 20), ("b", 21)], schema),
        ignore_row_order=True,
    )
    assert_df_equality(
        lakehouse.read("rejected_t"),
        spark.createDataFrame([("a", 1), ("b", 2)], schema),
        ignore_row_order=True,
    )
    assert lakehouse.version("rejected_t") == 0


def test_maintenance_commits_leave_the_data_version_where_it_was(spark, lakehouse):
    """OPTIMIZE, ZORDER and VACUUM (what predictive optimization runs on Unity Catalog) add
    commits without changing data: the data version and its rows stay those of the write."""
    numbers = lakehouse.name("numbers")
    for part in range(3):  # three small files for OPTIMIZE to compact
        lakehouse.append(
            spark.createDataFrame([(part * 10 + i,) for i in range(4)], "id int"), "numbers"
        )
    written = lakehouse.data_commit("numbers")
    assert (written.version, written.operation, written.rows, written.latest_version) == (
        2,
        "WRITE",
        4,
        2,
    )

    spark.sql(f"OPTIMIZE {numbers}")
    spark.sql(f"OPTIMIZE {numbers} ZORDER BY (id)")
    spark.sql(f"ALTER TABLE {numbers} SET TBLPROPERTIES ('delta.logRetentionDuration' = '30 days')")
    spark.sql(f"VACUUM {numbers}")
    operations = [
        r.operation for r in spark.sql(f"DESCRIBE HISTORY {numbers}").orderBy("version").collect()
    ]
    assert operations[3:] == [
        "OPTIMIZE",
        "OPTIMIZE",
        "SET TBLPROPERTIES",
        "VACUUM START",
        "VACUUM END",
    ]
    after = lakehouse.data_commit("numbers")
    assert (after.version, after.rows, after.latest_version) == (2, 4, 7)
    assert lakehouse.last_commit_rows("numbers") == 4
    assert lakehouse.version("numbers") == 7
    # the latest version reads the same rows as the data version
    assert_df_equality(
        lakehouse.read("numbers", version=after.latest_version),
        lakehouse.read("numbers", version=after.version),
        ignore_row_order=True,
    )

    lakehouse.overwrite(spark.createDataFrame([(1,)], "id int"), "numbers")  # data again
    assert lakehouse.data_commit("numbers").version == 8


def test_the_local_log_answers_as_describe_history_does(spark, lakehouse):
    """Locally the versions and the history come from the log files; on Databricks from
    DESCRIBE HISTORY. Both, on the same table after writes, a MERGE and maintenance."""
    # the same table by its three-level name, through DESCRIBE HISTORY as on Databricks
    config = dataclasses.replace(lakehouse.config, catalog="spark_catalog")
    by_sql = Lakehouse(spark, config, databricks=True)
    numbers = lakehouse.name("numbers")
    with pytest.raises(ConfigError, match=r"table \S*numbers has no Delta log in "):
        lakehouse.version("numbers")
    with pytest.raises(ConfigError, match=r"table \S*numbers has no Delta log in "):
        lakehouse.history("numbers", -1)

    lakehouse.overwrite(spark.createDataFrame([(1, "a"), (2, "b")], "id int, v string"), "numbers")
    lakehouse.append(spark.createDataFrame([(3, "c")], "id int, v string"), "numbers")
    spark.sql(
        f"MERGE INTO {numbers} t USING (SELECT 2 id, 'B' v UNION ALL SELECT 4, 'd') s "
        "ON t.id = s.id WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    )
    assert lakehouse.data_commit("numbers") == by_sql.data_commit("numbers")
    assert lakehouse.data_commit("numbers").rows == 2  # one updated, one inserted
    spark.sql(f"OPTIMIZE {numbers}")
    spark.sql(f"ALTER TABLE {numbers} SET TBLPROPERTIES ('delta.logRetentionDuration' = '30 days')")

    assert lakehouse.version("numbers") == by_sql.version("numbers") == 4
    assert lakehouse.data_commit("numbers") == by_sql.data_commit("numbers")
    assert lakehouse.data_commit("numbers").version == 2
    for after in (-1, 0, 2, 4):
        assert lakehouse.history("numbers", after) == by_sql.history("numbers", after)
    assert [(v, op) for v, op, _ in lakehouse.history("numbers", 1)] == [
        (2, "MERGE"),
        (3, "OPTIMIZE"),
        (4, "SET TBLPROPERTIES"),
    ]
    assert lakehouse.history("numbers", 0)[0][2]["mode"] == "Append"


@pytest.mark.parametrize(
    ("operation", "metrics", "rows", "is_data"),
    [
        ("WRITE", {"numOutputRows": "5"}, 5, True),
        ("CREATE OR REPLACE TABLE AS SELECT", {"numOutputRows": "7"}, 7, True),
        ("MERGE", {"numTargetRowsInserted": "2", "numTargetRowsUpdated": "3"}, 5, True),
        ("DELETE", None, 0, True),
        ("RESTORE", {}, 0, True),
        ("OPTIMIZE", {"numAddedFiles": "1", "numRemovedFiles": "3"}, 0, False),
        ("VACUUM END", {"numDeletedFiles": "3"}, 0, False),
        ("ANALYZE STATS", None, 0, False),
    ],
)
def test_commit_rows_and_what_counts_as_a_data_change(operation, metrics, rows, is_data):
    assert operation_rows(operation, metrics) == rows
    assert is_data_change(operation) is is_data


def test_a_scratch_table_is_written_read_back_and_dropped(spark, lakehouse):
    kept = lakehouse.write_scratch(
        spark.createDataFrame([(1, "a"), (2, "b")], "id int, v string"), "t1_x"
    )
    assert (lakehouse.scratch_root / "t1_x" / "_delta_log").is_dir()
    assert not (lakehouse.local_root / "t1_x").exists()  # never among the pipeline's tables
    assert_df_equality(
        kept, spark.createDataFrame([(1, "a"), (2, "b")], "id int, v string"), ignore_row_order=True
    )
    lakehouse.drop_scratch("t1_x")
    assert not (lakehouse.scratch_root / "t1_x").exists()
    lakehouse.drop_scratch("t1_x")  # gone already: no error
    with pytest.raises(ConfigError, match="parameter scratch table="):
        lakehouse.write_scratch(kept, "../escape")


def test_a_fragmented_table_is_compacted_without_a_new_data_version(spark, lakehouse):
    """Small writes pile up files; at the threshold one OPTIMIZE puts the same rows in one
    file, a maintenance commit that leaves the data version (what tasks compare) as it was."""
    for part in range(4):
        lakehouse.append(spark.createDataFrame([(part,)], "id int").coalesce(1), "numbers")
    assert lakehouse.file_count("numbers") == 4
    written = lakehouse.data_commit("numbers")

    assert lakehouse.compact_if_fragmented("numbers", at_files=5) is False
    assert lakehouse.version("numbers") == written.version  # nothing committed

    assert lakehouse.compact_if_fragmented("numbers", at_files=4) is True
    assert lakehouse.file_count("numbers") == 1
    assert lakehouse.version("numbers") == written.version + 1
    assert lakehouse.data_commit("numbers") == dataclasses.replace(
        written, latest_version=written.version + 1
    )
    assert_df_equality(
        lakehouse.read("numbers"),
        spark.createDataFrame([(i,) for i in range(4)], "id int"),
        ignore_row_order=True,
    )
    # DESCRIBE DETAIL (Databricks, Spark Connect) counts the same files as the local log
    detail = spark.sql(f"DESCRIBE DETAIL {lakehouse.name('numbers')}").first()
    assert detail["numFiles"] == 1
