"""Exports no one here wrote: R and pandas missing-value tokens, dates in ISO, yyyyMMdd,
month-first and day-first form, whitespace-aligned text, gzip, Excel and Parquet files, files
of other kinds, a batch silver cannot use, and the generator's own output folder. Each file is
made here, small; each case ends in silver rows, quarantine rows with their rule, or one clear
error naming the file and the fix, and the ledger balances.

The exports that clean without an error land side by side in one lakehouse, one folder and
bronze batch each, and one silver run cleans them all (tests/faults/landing_files.Landed);
each test reads its own batch."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import openpyxl
import pandas as pd
import pytest
from chispa import assert_df_equality
from daily_lines import copy_lakehouse
from landing_files import (
    GOOD_LINES,
    HEADER,
    Landed,
    assert_balanced,
    ingest,
    silver,
    write_landed,
)
from pyspark.sql import functions as F

from retail_segmentation.bronze.columns import SourceFormat
from retail_segmentation.bronze.task import BronzeResult
from retail_segmentation.common.config import TableConfig
from retail_segmentation.common.errors import (
    AmbiguousDateError,
    IngestError,
    QuarantinedBatchError,
)
from retail_segmentation.common.tables import (
    BRONZE_TRANSACTIONS,
    PIPELINE_LEDGER,
    SILVER_QUARANTINE,
    SILVER_TRANSACTIONS,
    Lakehouse,
)
from retail_segmentation.data.generator import TRUTH_FILE, GeneratorConfig, write_dataset
from retail_segmentation.silver.task import batch_run_id

pytestmark = pytest.mark.faults

TS = dt.datetime
LINE_DDL = "invoice string, customer_id string, invoice_date timestamp, quantity int, price double"


DATE_LINE = "{inv},85123A,HEART,6,{date},2.55,17850,United Kingdom"
DATE_FILES = {
    "iso_seconds.csv": ["2010-12-13 08:26:00", "2010-12-14 09:00:00"],
    "iso_t.csv": ["2010-12-13T08:26", "2010-12-14T09:00"],
    "ymd.csv": ["20101213", "20101214"],
    "ymd_slash.csv": ["2010/12/13", "2010/12/14"],
    "us.csv": ["12/13/2010 8:26", "12/14/2010 9:00"],
    "uk.csv": ["13/12/2010 08:26", "1/12/2010 09:00"],  # 13 decides: day-first
    "uk_date_only.csv": ["13/12/2010", "14/12/2010"],
}
CDNOW_MAPPING = {"customer_id": "_c0", "invoice_date": "_c1", "quantity": "_c2", "amount": "_c3"}


def _land_cases(spark, lakehouse, root) -> dict[str, BronzeResult]:
    """The exports that clean without an error, one folder and bronze batch each (their
    invoice numbers differ from case to case, so no case completes or repeats another's)."""
    ingested = {}
    tokens = root / "tokens"
    # R's write.csv: quoted text, NA unquoted; pandas' to_csv: NaN, blank and 13085.0 ids
    write_landed(
        tokens,
        "from_r.csv",
        [
            '"536370","22728","ALARM CLOCK",24,"2010-12-01 08:45:00",3.75,NA,"France"',
            '"536371","22727","ALARM CLOCK RED",24,"2010-12-01 08:46:00",3.75,NA,"France"',
            '"536372","22726","ALARM CLOCK GREEN",4,"2010-12-01 08:47:00",3.75,"12583","France"',
            '"536372","22725","ALARM CLOCK PINK",4,"2010-12-01 08:47:00",3.75,NA,"France"',
        ],
    )
    write_landed(
        tokens,
        "from_pandas.csv",
        [
            "536373,21730,GLASS STAR,6,2010-12-01 09:00:00,4.25,NaN,United Kingdom",
            "536374,21731,RED TOADSTOOL,6,2010-12-01 09:01:00,1.65,,United Kingdom",
            "536375,21732,GLASS LANTERN,6,2010-12-01 09:02:00,4.25, null ,United Kingdom",
            "536376,21733,TEA LIGHT,6,2010-12-01 09:03:00,1.25,13085.0,United Kingdom",
        ],
    )
    ingested["tokens"] = ingest(spark, lakehouse, tokens)

    dates = root / "dates"
    for number, (name, values) in enumerate(DATE_FILES.items()):
        lines = [DATE_LINE.format(inv=f"5{number}{i}", date=d) for i, d in enumerate(values)]
        write_landed(dates, name, lines)
    ingested["dates"] = ingest(spark, lakehouse, dates)

    cdnow = root / "cdnow"  # the CDNOW shape: customer, yyyyMMdd, items, amount; no header
    cdnow.mkdir(parents=True)
    (cdnow / "CDNOW_master.txt").write_text(
        "\n".join(
            [
                "00001 19970101  1  11.77",
                "00002 19970112  1  12.00",
                "00002 19970112  1  12.00",  # the same line again: a second purchase
                "00003 19970102  2  20.76",
                "00003 19970330  NA  NA",
                "00004 1997 01 01  1  29.33",  # a line that does not fit: kept as raw text
            ]
        )
        + "\n"
    )
    ingested["cdnow"] = ingest(spark, lakehouse, cdnow, SourceFormat(column_mapping=CDNOW_MAPPING))

    aligned = root / "aligned"
    aligned.mkdir()
    (aligned / "log.txt").write_text(
        "Invoice  StockCode  Quantity  InvoiceDate  Price  CustomerID\n"
        "537365   85123A     6         20101201     2.55   17850\n"
        "537366   71053      6         20101202     3.39   17850\n"
    )
    ingested["aligned"] = ingest(spark, lakehouse, aligned)

    kinds = root / "kinds"
    kinds.mkdir()
    with gzip.open(kinds / "day1.csv.gz", "wt", encoding="utf-8") as out:
        out.write("\n".join([HEADER, *GOOD_LINES[:2]]) + "\n")
    # the UCI workbook's shape: one sheet per year, dates as Excel dates, ids as numbers
    workbook = openpyxl.Workbook()
    first = workbook.active
    first.title = "Year 2009-2010"
    xl_header = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price"]
    xl_header += ["Customer ID", "Country"]
    first.append(xl_header)
    first.append([489434, "85048", "ROSE LIGHTS", 12, TS(2009, 12, 1, 7, 45), 6.95, 13085.0, "UK"])
    first.append([489435, "22350", "CAT BOWL", 12, TS(2009, 12, 1, 7, 46), 2.1, None, "UK"])
    second = workbook.create_sheet("Year 2010-2011")
    second.append(xl_header)
    second.append([536365, "85123A", "HEART", 6, TS(2010, 12, 1, 8, 26), 2.55, 17850, "UK"])
    workbook.save(kinds / "online_retail_II.xlsx")
    pd.DataFrame(
        {
            "InvoiceNo": ["536400", "536401"],
            "StockCode": ["21730", "21731"],
            "Quantity": pd.array([6, 3], dtype="int64"),
            "InvoiceDate": pd.to_datetime(["2010-12-05 10:00", "2010-12-05 11:30"]),
            "UnitPrice": [4.25, 1.65],
            "CustomerID": [12583.0, float("nan")],
            "Country": ["France", "France"],
        }
    ).to_parquet(kinds / "shop.parquet", index=False)
    ingested["kinds"] = ingest(spark, lakehouse, kinds)
    # landed again under the same names: nothing new, whatever the kind
    ingested["kinds_again"] = ingest(spark, lakehouse, kinds)
    return ingested


@pytest.fixture(scope="module")
def landed(spark, tmp_path_factory) -> Landed:
    return Landed.build(spark, tmp_path_factory.mktemp("exports"), "exports", _land_cases)


def _silver_lines_of(landed, case):
    """The case's typed lines as read (before IQR clipping, which moves values of tiny
    samples)."""
    return landed.read(SILVER_TRANSACTIONS, case).select(
        "invoice",
        "customer_id",
        "invoice_date",
        F.col("quantity_original").alias("quantity"),
        F.col("price_original").alias("price"),
    )


def _rules_of(landed, case) -> dict[str, int]:
    rows = landed.read(SILVER_QUARANTINE, case).groupBy("_quarantine_rule").count().collect()
    return {r["_quarantine_rule"]: r["count"] for r in rows}


def test_every_export_balances_in_its_batch_and_in_total(landed):
    landed.assert_balanced()
    assert landed.ingested["kinds_again"].batch_id is None
    assert landed.silver.mode == "refit"


def test_r_and_pandas_missing_value_tokens_never_become_a_customer(spark, landed):
    expected = spark.createDataFrame(
        [
            ("536372", "12583", TS(2010, 12, 1, 8, 47), 4, 3.75),
            ("536372", "12583", TS(2010, 12, 1, 8, 47), 4, 3.75),  # filled from its invoice
            ("536376", "13085", TS(2010, 12, 1, 9, 3), 6, 1.25),
        ],
        LINE_DDL,
    )
    assert_df_equality(
        _silver_lines_of(landed, "tokens"), expected, ignore_row_order=True, ignore_nullable=True
    )
    assert _rules_of(landed, "tokens") == {"missing_customer_id": 5}
    no_customer = F.col("customer_id").isin("NA", "NaN", "null", "")
    assert landed.lakehouse.read(SILVER_TRANSACTIONS).where(no_customer).isEmpty()


def test_dates_are_parsed_with_each_files_own_format(landed):
    parsed = {
        (r["_source_file"].rsplit("/", 1)[1], r["invoice_date"])
        for r in landed.read(SILVER_TRANSACTIONS, "dates")
        .select("_source_file", "invoice_date")
        .collect()
    }
    first, second = TS(2010, 12, 13), TS(2010, 12, 14)
    assert parsed == {
        ("iso_seconds.csv", first.replace(hour=8, minute=26)),
        ("iso_seconds.csv", second.replace(hour=9)),
        ("iso_t.csv", first.replace(hour=8, minute=26)),
        ("iso_t.csv", second.replace(hour=9)),
        ("ymd.csv", first),
        ("ymd.csv", second),
        ("ymd_slash.csv", first),
        ("ymd_slash.csv", second),
        ("us.csv", first.replace(hour=8, minute=26)),
        ("us.csv", second.replace(hour=9)),
        ("uk.csv", first.replace(hour=8, minute=26)),
        ("uk.csv", TS(2010, 12, 1, 9)),
        ("uk_date_only.csv", first),
        ("uk_date_only.csv", second),
    }
    formats = {
        f.file.rsplit("/", 1)[1]: f.pattern
        for f in landed.silver.date_formats
        if "/dates/" in f.file
    }
    assert formats == {
        "iso_seconds.csv": "yyyy-MM-dd HH:mm:ss",
        "iso_t.csv": "yyyy-MM-dd'T'HH:mm",
        "ymd.csv": "yyyyMMdd",
        "ymd_slash.csv": "yyyy/MM/dd",
        "us.csv": "M/d/yyyy H:mm",
        "uk.csv": "d/M/yyyy H:mm",
        "uk_date_only.csv": "d/M/yyyy",
    }
    # the ledger records every file's format, as the run found them
    ledger = (
        landed.lakehouse.read(PIPELINE_LEDGER)
        .where((F.col("run_id") == landed.silver.run_id) & (F.col("rule") == "parse_types"))
        .first()
    )
    assert json.loads(ledger.detail)["date_formats"] == {
        f.file: f.pattern for f in landed.silver.date_formats
    }


def test_a_whitespace_aligned_log_without_header_or_invoice_numbers(spark, landed):
    """The CDNOW shape: customer id, yyyyMMdd date, items, amount, aligned with spaces."""
    actual = _silver_lines_of(landed, "cdnow").drop("invoice")
    expected = spark.createDataFrame(
        [
            ("00001", TS(1997, 1, 1), 1, 11.77),
            ("00002", TS(1997, 1, 12), 1, 12.0),
            ("00002", TS(1997, 1, 12), 1, 12.0),
            ("00003", TS(1997, 1, 2), 2, 10.38),
        ],
        "customer_id string, invoice_date timestamp, quantity int, price double",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    assert _rules_of(landed, "cdnow") == {"malformed_record": 1, "invalid_quantity": 1}
    entries = {
        r.rule: r
        for r in landed.lakehouse.read(PIPELINE_LEDGER)
        .where(F.col("run_id") == batch_run_id(landed.batch("cdnow")))
        .collect()
    }
    assert entries["balance"].rows_removed == 0  # no line removed as a duplicate
    duplicates = json.loads(entries["remove_exact_duplicates"].detail)
    assert duplicates == {"identical_lines_kept_as_purchases": 1}


def test_a_whitespace_aligned_file_with_a_header_is_detected(spark, landed):
    expected = spark.createDataFrame(
        [
            ("537365", "17850", TS(2010, 12, 1), 6, 2.55),
            ("537366", "17850", TS(2010, 12, 2), 6, 3.39),
        ],
        LINE_DDL,
    )
    assert_df_equality(
        _silver_lines_of(landed, "aligned"), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_gzip_excel_and_parquet_land_through_the_same_path(spark, landed):
    assert landed.ingested["kinds"].rows_ingested == 2 + 3 + 2
    expected = spark.createDataFrame(
        [
            ("536365", "17850", TS(2010, 12, 1, 8, 26), 6, 2.55),
            ("536365", "17850", TS(2010, 12, 1, 8, 26), 6, 3.39),
            ("489434", "13085", TS(2009, 12, 1, 7, 45), 12, 6.95),
            ("536365", "17850", TS(2010, 12, 1, 8, 26), 6, 2.55),
            ("536400", "12583", TS(2010, 12, 5, 10), 6, 4.25),
        ],
        LINE_DDL,
    )
    assert_df_equality(
        _silver_lines_of(landed, "kinds"), expected, ignore_row_order=True, ignore_nullable=True
    )
    assert _rules_of(landed, "kinds") == {"missing_customer_id": 2}
    provenance = {
        (r["_source_file"].rsplit("/", 1)[1], r["_extra_columns"])
        for r in landed.read(BRONZE_TRANSACTIONS, "kinds")
        .select("_source_file", "_extra_columns")
        .collect()
    }
    assert provenance == {
        ("day1.csv.gz", None),
        ("online_retail_II.xlsx", '{"_sheet":"Year 2009-2010"}'),
        ("online_retail_II.xlsx", '{"_sheet":"Year 2010-2011"}'),
        ("shop.parquet", None),
    }
    # landed again under the same names: nothing new, whatever the kind
    assert landed.ingested["kinds_again"].rows_ingested == 0


def test_a_file_that_fits_day_first_and_month_first_is_refused_until_declared(
    spark, lakehouse, tmp_path
):
    landing = tmp_path / "landing"
    write_landed(
        landing,
        "shop_export.csv",
        [
            "536365,85123A,HEART,6,1/12/2010 08:26,2.55,17850,United Kingdom",
            "536366,71053,LANTERN,6,2/12/2010 09:00,3.39,17850,United Kingdom",
            "536367,22633,WARMER,6,3/11/2010 10:00,1.85,13047,United Kingdom",
        ],
    )
    ingest(spark, lakehouse, landing)

    with pytest.raises(AmbiguousDateError) as error:
        silver(spark, lakehouse)
    message = str(error.value)
    assert "shop_export.csv" in message and "--date-format" in message
    assert "'1/12/2010 08:26'" in message and "'3/11/2010 10:00'" in message
    assert not lakehouse.exists(SILVER_TRANSACTIONS)

    result = silver(spark, lakehouse, date_format="d/M/yyyy H:mm")

    dates = sorted(
        r[0] for r in lakehouse.read(SILVER_TRANSACTIONS).select("invoice_date").collect()
    )
    assert dates == [TS(2010, 11, 3, 10), TS(2010, 12, 1, 8, 26), TS(2010, 12, 2, 9)]
    assert_balanced(lakehouse, result)


@pytest.fixture(scope="module")
def good_day(spark, tmp_path_factory) -> Lakehouse:
    """good.csv landed and cleaned: the first day of the tests below, which copy it."""
    root = tmp_path_factory.mktemp("good-day")
    lakehouse = Lakehouse.attach(
        spark, TableConfig(schema="good_day", lakehouse_dir=str(root / "lakehouse"))
    )
    write_landed(root / "landing", "good.csv", GOOD_LINES)
    ingest(spark, lakehouse, root / "landing")
    silver(spark, lakehouse)
    return lakehouse


def test_a_batch_that_is_all_quarantine_fails_silver_in_one_sentence(
    spark, lakehouse, tmp_path, good_day
):
    lakehouse = copy_lakehouse(spark, good_day, lakehouse.config)
    landing = tmp_path / "landing"  # the second day's folder
    # a second day's file whose dates no known format fits
    write_landed(
        landing,
        "day_two.csv",
        [
            "536400,85123A,HEART,6,11-03-2010,2.55,17850,United Kingdom",
            "536401,71053,LANTERN,6,12-03-2010,3.39,17850,United Kingdom",
            "536402,22633,WARMER,6,13-03-2010,1.85,13047,United Kingdom",
        ],
    )
    ingest(spark, lakehouse, landing)
    silver_before = lakehouse.version(SILVER_TRANSACTIONS)

    with pytest.raises(QuarantinedBatchError) as error:
        silver(spark, lakehouse)

    message = str(error.value)
    assert "all 3 lines" in message and "day_two.csv" in message
    assert "unparseable_invoice_date" in message and "'11-03-2010', '12-03-2010'" in message
    assert "--date-format" in message
    assert lakehouse.version(SILVER_TRANSACTIONS) == silver_before  # nothing written

    result = silver(spark, lakehouse, date_format="dd-MM-yyyy")  # what the message says to do

    # the declared format reads the new file; the first keeps its ISO dates
    assert (result.silver_rows, result.quarantined_rows) == (len(GOOD_LINES) + 3, 0)
    formats = {f.file.rsplit("/", 1)[1]: f.pattern for f in result.date_formats}
    assert formats == {"good.csv": "yyyy-MM-dd HH:mm:ss", "day_two.csv": "dd-MM-yyyy"}
    assert_balanced(lakehouse, result)


def test_a_batch_of_only_unmatched_cancellations_fails_silver_after_its_writes(
    spark, lakehouse, tmp_path, good_day
):
    lakehouse = copy_lakehouse(spark, good_day, lakehouse.config)
    landing = tmp_path / "landing"  # the second day's folder
    write_landed(
        landing,
        "returns.csv",
        [
            "C536500,22960,JAM MAKING SET,-3,2010-12-04 10:00:00,4.25,17850,United Kingdom",
            "C536501,22961,JAM JAR,-2,2010-12-04 10:05:00,1.25,13047,United Kingdom",
        ],
    )
    ingest(spark, lakehouse, landing)

    with pytest.raises(QuarantinedBatchError) as error:
        silver(spark, lakehouse)

    message = str(error.value)
    assert "all 2 lines" in message and "returns.csv" in message
    assert "unmatched_cancellation" in message and "land the orders" in message
    balances = lakehouse.read(PIPELINE_LEDGER).where(F.col("rule") == "balance").collect()
    # only the first run's (its batch's and its totals): the next run cleans the batch again
    assert sorted(b.rows_in for b in balances) == [len(GOOD_LINES)] * 2


def test_one_excel_sheet_by_name_and_an_unknown_sheet_named_in_the_error(
    spark, lakehouse, tmp_path
):
    landing = tmp_path / "landing"
    landing.mkdir()
    workbook = openpyxl.Workbook()
    workbook.active.title = "Notes"
    workbook.active.append(["read me first"])
    sales = workbook.create_sheet("Sales")
    sales.append(["Invoice", "StockCode", "Quantity", "InvoiceDate", "Price", "Customer ID"])
    sales.append(["536365", "85123A", 6, TS(2010, 12, 1, 8, 26), 2.55, 17850])
    workbook.save(landing / "book.xlsx")

    with pytest.raises(IngestError, match=r"book\.xlsx.*no sheet named 'sales'.*--sheet"):
        ingest(spark, lakehouse, landing, SourceFormat(sheet="sales"))

    result = ingest(spark, lakehouse, landing, SourceFormat(sheet="Sales"))
    assert result.rows_ingested == 1


def test_files_of_other_kinds_are_skipped_by_name_and_a_folder_of_none_is_an_error(
    spark, lakehouse, tmp_path
):
    landing = tmp_path / "landing"
    write_landed(landing, "good.csv", GOOD_LINES[:2])
    (landing / "online_retail.xls").write_bytes(b"\xd0\xcf\x11\xe0 old excel")
    (landing / "README.pdf").write_bytes(b"%PDF-1.4")

    result = ingest(spark, lakehouse, landing)

    assert result.rows_ingested == 2
    assert [p.rsplit("/", 1)[1] for p in result.files_unreadable] == [
        "README.pdf",
        "online_retail.xls",
    ]
    skipped = (
        lakehouse.read(PIPELINE_LEDGER).where(F.col("rule") == "skip_unreadable_files").collect()
    )
    assert len(skipped) == 1
    assert [p.rsplit("/", 1)[1] for p in json.loads(skipped[0].detail)["files"]] == [
        "README.pdf",
        "online_retail.xls",
    ]
    ingest(spark, lakehouse, landing)  # the same files again: the same one entry
    assert (
        lakehouse.read(PIPELINE_LEDGER).where(F.col("rule") == "skip_unreadable_files").count() == 1
    )

    only_unreadable = tmp_path / "other"
    only_unreadable.mkdir()
    (only_unreadable / "online_retail.xls").write_bytes(b"\xd0\xcf\x11\xe0 old excel")
    with pytest.raises(
        IngestError, match=r"holds no file bronze can read \(found online_retail\.xls\)"
    ):
        ingest(spark, lakehouse, only_unreadable)


def test_generate_then_ingest_the_same_folder_reads_only_the_transactions(
    spark, lakehouse, tmp_path
):
    out = tmp_path / "generated"
    summary = write_dataset(spark, GeneratorConfig(rows=2_000, seed=7, files=2), str(out))
    assert (out / TRUTH_FILE).exists()

    result = ingest(spark, lakehouse, out)

    assert result.rows_ingested == summary["rows"] == 2_000
    assert all("/transactions/" in p for p in result.files_ingested)
    assert result.files_unreadable == ()
