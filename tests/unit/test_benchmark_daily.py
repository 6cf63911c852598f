"""The daily benchmark's split: the last days' lines, at least a given share of all lines, are
held back; undated lines stay in the history. Its report, as text and JSON."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from chispa import assert_df_equality

from retail_segmentation.benchmark import DailyFigures, daily_report, split_last_days
from retail_segmentation.common.errors import ConfigError, IngestError
from retail_segmentation.runner import TaskRun

SCHEMA = "invoice STRING, InvoiceDate STRING"
LINES = [
    ("1", "2011-12-01 08:00:00"),
    ("2", "2011-12-01 17:30:00"),
    ("3", "2011-12-02 00:00:00"),  # midnight belongs to its own day
    ("4", "2011-12-02 23:59:59"),
    ("5", "2011-12-03 09:15:00"),
    ("6", "2011-12-03 16:45:00"),
    ("7", "31/02/2011 25:61"),  # the generator's malformed date
    ("8", None),
]


@pytest.fixture
def source_df(spark):
    return spark.createDataFrame(LINES, SCHEMA)


def _lines(spark, invoices):
    return spark.createDataFrame([line for line in LINES if line[0] in invoices], SCHEMA)


def test_a_share_met_exactly_by_the_last_day_cuts_there(spark, source_df):
    split = split_last_days(source_df, share=0.25)  # 2 of 8 lines

    assert (split.cut_day, split.history_lines, split.day_lines) == (dt.date(2011, 12, 3), 6, 2)
    assert_df_equality(split.day_df, _lines(spark, {"5", "6"}), ignore_row_order=True)
    assert_df_equality(
        split.history_df, _lines(spark, {"1", "2", "3", "4", "7", "8"}), ignore_row_order=True
    )


def test_a_share_the_last_day_misses_takes_whole_earlier_days(spark, source_df):
    split = split_last_days(source_df, share=0.3)  # 2.4 of 8 lines: 2011-12-03 holds only 2

    assert (split.cut_day, split.history_lines, split.day_lines) == (dt.date(2011, 12, 2), 4, 4)
    assert_df_equality(split.day_df, _lines(spark, {"3", "4", "5", "6"}), ignore_row_order=True)
    assert_df_equality(split.history_df, _lines(spark, {"1", "2", "7", "8"}), ignore_row_order=True)


def test_no_parsable_date_names_the_column(spark):
    undated_df = spark.createDataFrame([("1", "not a date"), ("2", None)], SCHEMA)

    with pytest.raises(IngestError, match="column 'InvoiceDate'"):
        split_last_days(undated_df)


def test_a_share_outside_zero_to_one_names_the_parameter(source_df):
    with pytest.raises(ConfigError, match="share=0"):
        split_last_days(source_df, share=0)


def test_the_report_names_each_tables_version_before_the_second_run(tmp_path):
    def runs(bronze_seconds, rows):
        return {"bronze": TaskRun("bronze", bronze_seconds, {"bronze_transactions": rows})}

    figures = DailyFigures(
        setup={"compute": "local"},
        cut_day=dt.date(2011, 12, 9),
        history_lines=100,
        day_lines=3,
        first=runs(10.0, 100),
        second=runs(2.0, 3),
        first_seconds=10.0,
        second_seconds=2.0,
        versions_before_second={"bronze_transactions": 0, "pipeline_ledger": 1},
    )
    out = tmp_path / "daily.json"
    text = daily_report(figures, str(out), rows=103)
    assert text.splitlines()[3].split() == ["bronze", "10.0", "2.0", "0.20", "100", "3"]
    written = json.loads(out.read_text())
    # docs/commit_floor.py takes the second run's commits from these versions on
    assert written["versions_before_second_run"] == {"bronze_transactions": 0, "pipeline_ledger": 1}
    assert written["totals"] == {"first_seconds": 10.0, "second_seconds": 2.0, "ratio": 0.2}
    assert written["second"] == [
        {"task": "bronze", "seconds": 2.0, "rows_written": {"bronze_transactions": 3}}
    ]
