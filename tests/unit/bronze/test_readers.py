"""How each kind of landed file is recognised and read into text columns."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality

from retail_segmentation.bronze import readers
from retail_segmentation.bronze.columns import SourceFormat
from retail_segmentation.bronze.readers import FileKind
from retail_segmentation.common.errors import ConfigError


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("s3://bucket/landing/Online Retail.CSV", FileKind.DELIMITED),
        ("file:/landing/day1.csv.gz", FileKind.DELIMITED),
        ("/Volumes/main/retail/landing/CDNOW_master.txt", FileKind.DELIMITED),
        ("/landing/log.tsv.gz", FileKind.DELIMITED),
        ("/landing/online_retail_II.xlsx", FileKind.EXCEL),
        ("/landing/part-0000.snappy.parquet", FileKind.PARQUET),
        ("/landing/online_retail.xls", None),  # the old binary format: saved as .xlsx, it reads
        ("/landing/README.pdf", None),
        ("/landing/data.parquet.crc", None),
    ],
)
def test_file_kind_from_the_name(path, kind):
    assert readers.file_kind(path) == kind


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("a,b,c", ","),
        ("a;b;c", ";"),
        ("a\tb\tc", "\t"),
        ("a|b", "|"),
        ("single", ","),
        ("   00001 19970101  1  11.77", readers.WHITESPACE),
        ("Invoice  StockCode  Quantity", readers.WHITESPACE),
    ],
)
def test_detect_delimiter(line, expected):
    assert readers.detect_delimiter(line) == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        ("  ", None),
        (13085.0, "13085"),
        (2.55, "2.55"),
        (12, "12"),
        (True, "true"),
        (dt.datetime(2010, 12, 1, 8, 26, 0, 500), "2010-12-01 08:26:00"),
        (dt.date(2010, 12, 1), "2010-12-01"),
        ("013085", "013085"),
    ],
)
def test_excel_cells_become_the_text_a_csv_export_would_hold(value, text):
    assert readers.cell_text(value) == text


def test_a_whitespace_aligned_file_splits_on_runs_of_blanks(spark, tmp_path):
    path = tmp_path / "log.txt"
    path.write_text("  00001 19970101  1  11.77\n\n00002\t19970112 2 12.00\n00003 1997 01 01 1 9\n")
    header = ["_c0", "_c1", "_c2", "_c3"]
    actual = readers.read_whitespace(spark, str(path), header, "UTF-8", has_header=False)
    expected = spark.createDataFrame(
        [
            ("00001", "19970101", "1", "11.77", None),
            ("00002", "19970112", "2", "12.00", None),
            (None, None, None, None, "00003 1997 01 01 1 9"),
        ],
        "_c0 string, _c1 string, _c2 string, _c3 string, _raw_record string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_parquet_columns_become_text_without_scientific_notation(spark, tmp_path):
    path = str(tmp_path / "typed.parquet")
    spark.createDataFrame(
        [(12345678.0, 2.55, dt.datetime(2010, 12, 1, 8, 26), 6), (None, 0.1, None, None)],
        "customer double, price double, ts timestamp, qty long",
    ).coalesce(1).write.parquet(path)
    raw_df, header = readers.read_parquet(spark, path)
    expected = spark.createDataFrame(
        [("12345678", "2.55", "2010-12-01 08:26:00", "6", None), (None, "0.1", None, None, None)],
        "customer string, price string, ts string, qty string, _raw_record string",
    )
    assert header == ["customer", "price", "ts", "qty"]
    assert_df_equality(raw_df, expected, ignore_row_order=True, ignore_nullable=True)


def test_source_format_accepts_whitespace_and_positional_mappings():
    assert SourceFormat(delimiter="whitespace").delimiter == "whitespace"
    assert SourceFormat(column_mapping={"customer_id": "_c0"}).is_positional
    assert not SourceFormat(column_mapping={"customer_id": "Cust No"}).is_positional
    with pytest.raises(ConfigError, match=r"delimiter='ws'.*'whitespace'"):
        SourceFormat(delimiter="ws")
