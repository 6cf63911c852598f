"""Bronze ingest on real files: variants, mapping, encoding, malformed lines, idempotence."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
from chispa import assert_df_equality

from retail_segmentation.bronze.columns import SourceFormat
from retail_segmentation.bronze.task import BronzeConfig, ingest_bronze
from retail_segmentation.common.errors import IngestError
from retail_segmentation.common.tables import BRONZE_TRANSACTIONS

NOW = dt.datetime(2026, 1, 2, 3, 4, 5)
II_CSV = (
    "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
    '489434,85048,"LIGHT, WHITE",12,2009-12-01 07:45:00,6.95,13085.0,United Kingdom\n'
    "489435,22423,SHORT LINE,12\n"
    "489436,22423,REGENCY CAKESTAND,1,2009-12-01 08:00:00,12.75,,France\n"
)
CLASSIC_LATIN1 = (
    "InvoiceNo;StockCode;Description;Quantity;InvoiceDate;UnitPrice;CustomerID;Country\n"
    "536365;85123A;CAFÉ NOËL;6;12/1/2010 8:26;2.55;17850;United Kingdom\n"
).encode("latin-1")

COLUMNS = [
    "invoice",
    "stock_code",
    "description",
    "quantity",
    "invoice_date",
    "price",
    "customer_id",
    "country",
    "amount",
    "_raw_record",
    "_defaulted_columns",
]
DDL = (
    "invoice string, stock_code string, description string, quantity string, "
    "invoice_date string, price string, customer_id string, country string, amount string, "
    "_raw_record string, _defaulted_columns array<string>"
)


def _config(lakehouse, landing, **source) -> BronzeConfig:
    return BronzeConfig(str(landing), SourceFormat(**source), lakehouse.config)


def test_ii_variant_keeps_malformed_lines_as_raw_text(spark, lakehouse, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "2009-12.csv").write_text(II_CSV, encoding="utf-8")

    result = ingest_bronze(spark, lakehouse, _config(lakehouse, landing), now=NOW)

    assert result.rows_ingested == 3
    expected = spark.createDataFrame(
        [
            (
                "489434",
                "85048",
                "LIGHT, WHITE",
                "12",
                "2009-12-01 07:45:00",
                "6.95",
                "13085.0",
                "United Kingdom",
                None,
                None,
                [],
            ),
            (
                "489435",
                "22423",
                "SHORT LINE",
                "12",
                None,
                None,
                None,
                None,
                None,
                "489435,22423,SHORT LINE,12",
                [],
            ),
            (
                "489436",
                "22423",
                "REGENCY CAKESTAND",
                "1",
                "2009-12-01 08:00:00",
                "12.75",
                None,
                "France",
                None,
                None,
                [],
            ),
        ],
        DDL,
    )
    actual = lakehouse.read(BRONZE_TRANSACTIONS).select(COLUMNS)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    batch = lakehouse.read(BRONZE_TRANSACTIONS).select("_batch_id", "_ingested_at").distinct()
    assert batch.collect()[0]["_ingested_at"] == NOW
    assert batch.count() == 1


def test_classic_variant_latin1_semicolon(spark, lakehouse, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "classic.csv").write_bytes(CLASSIC_LATIN1)

    result = ingest_bronze(
        spark, lakehouse, _config(lakehouse, landing, encoding="ISO-8859-1"), now=NOW
    )

    row = lakehouse.read(BRONZE_TRANSACTIONS).select(COLUMNS).first()
    assert row["description"] == "CAFÉ NOËL"
    assert result.undecodable_rows == 0
    assert (row["invoice"], row["price"], row["customer_id"]) == ("536365", "2.55", "17850")


def test_wrong_encoding_is_counted_and_kept(spark, lakehouse, tmp_path, caplog):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "classic.csv").write_bytes(CLASSIC_LATIN1)

    result = ingest_bronze(spark, lakehouse, _config(lakehouse, landing), now=NOW)

    assert (result.rows_ingested, result.undecodable_rows) == (1, 1)
    assert "declare the files' encoding with --encoding" in caplog.text
    assert lakehouse.read(BRONZE_TRANSACTIONS).first()["description"] == "CAF\ufffd NO\ufffdL"


def test_minimal_file_through_declared_mapping_gets_documented_defaults(spark, lakehouse, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "orders.csv").write_text(
        "cust,order_ts,total,channel\n"
        "A1,2011-05-01 10:00:00,30.00,web\n"
        "A2,2011-05-02 11:00:00,,shop\n"
    )
    mapping = {"customer_id": "cust", "invoice_date": "order_ts", "amount": "total"}
    ingest_bronze(spark, lakehouse, _config(lakehouse, landing, column_mapping=mapping), now=NOW)

    actual = lakehouse.read(BRONZE_TRANSACTIONS).orderBy("customer_id")
    rows = actual.select(*COLUMNS[1:], "_extra_columns").collect()
    defaulted = ["invoice", "stock_code", "description", "quantity", "price", "country"]
    assert [r.asDict() for r in rows] == [
        {
            "stock_code": "UNSPECIFIED",
            "description": None,
            "quantity": "1",
            "invoice_date": "2011-05-01 10:00:00",
            "price": None,
            "customer_id": "A1",
            "country": "Unspecified",
            "amount": "30.00",
            "_raw_record": None,
            "_defaulted_columns": defaulted,
            "_extra_columns": '{"channel":"web"}',
        },
        {
            "stock_code": "UNSPECIFIED",
            "description": None,
            "quantity": "1",
            "invoice_date": "2011-05-02 11:00:00",
            "price": None,
            "customer_id": "A2",
            "country": "Unspecified",
            "amount": None,
            "_raw_record": None,
            "_defaulted_columns": defaulted,
            "_extra_columns": '{"channel":"shop"}',
        },
    ]
    invoices = [r.invoice for r in actual.select("invoice").collect()]
    assert all(i.startswith("AUTO-") and len(i) == 17 for i in invoices)
    assert len(set(invoices)) == 2


def test_relanded_and_renamed_files_add_nothing_new_files_are_picked_up(spark, lakehouse, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.csv").write_text(II_CSV)
    first = ingest_bronze(spark, lakehouse, _config(lakehouse, landing), now=NOW)

    shutil.copy(landing / "a.csv", landing / "a_copy.csv")  # same bytes, other name
    (landing / "a.csv").touch()  # landed again: newer modification time
    second = ingest_bronze(spark, lakehouse, _config(lakehouse, landing), now=NOW)

    (landing / "b.csv").write_text(II_CSV.replace("489436", "489437"))
    third = ingest_bronze(spark, lakehouse, _config(lakehouse, landing), now=NOW)

    assert (first.rows_ingested, second.rows_ingested, third.rows_ingested) == (3, 0, 3)
    assert (second.files_skipped, third.files_skipped) == (2, 2)
    assert [f.rsplit("/", 1)[1] for f in third.files_ingested] == ["b.csv"]
    assert lakehouse.read(BRONZE_TRANSACTIONS).count() == 6


def test_missing_required_column_fails_naming_the_file(spark, lakehouse, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "good.csv").write_text(II_CSV)
    (landing / "bad.csv").write_text("Invoice,StockCode,Quantity,InvoiceDate,Price\n1,2,3,4,5\n")

    with pytest.raises(IngestError, match=r"bad\.csv: missing required column.*customer_id"):
        ingest_bronze(spark, lakehouse, _config(lakehouse, landing), now=NOW)
    assert not lakehouse.exists(BRONZE_TRANSACTIONS)  # nothing half-ingested
