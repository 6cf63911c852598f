"""Every kind of landed file through bronze and silver over Spark Connect, under the
serverless guard: Excel workbooks are parsed by Python workers (mapInPandas over binaryFile),
whitespace text and Parquet by Spark's readers, with no classic-only API on the way."""

from __future__ import annotations

import datetime as dt
import gzip

import openpyxl
import pandas as pd

from retail_segmentation.bronze.columns import SourceFormat
from retail_segmentation.bronze.task import BronzeConfig, ingest_bronze
from retail_segmentation.common.config import TableConfig
from retail_segmentation.common.tables import BRONZE_TRANSACTIONS, SILVER_TRANSACTIONS, Lakehouse
from retail_segmentation.silver.task import SilverConfig, build_silver

HEADER = ["Invoice", "StockCode", "Quantity", "InvoiceDate", "Price", "Customer ID"]


def test_excel_parquet_whitespace_and_gzip_over_spark_connect(spark, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    workbook = openpyxl.Workbook()
    workbook.active.append(HEADER)
    workbook.active.append(["536365", "85123A", 6, dt.datetime(2010, 12, 1, 8, 26), 2.55, 17850.0])
    workbook.active.append(["536366", "71053", 6, dt.datetime(2010, 12, 2, 9, 0), 3.39, None])
    workbook.save(landing / "book.xlsx")
    pd.DataFrame(
        {
            "Invoice": ["536367"],
            "StockCode": ["22633"],
            "Quantity": [4],
            "InvoiceDate": pd.to_datetime(["2010-12-03 10:00"]),
            "Price": [1.85],
            "Customer ID": [13047.0],
        }
    ).to_parquet(landing / "shop.parquet", index=False)
    (landing / "log.txt").write_text(
        "Invoice StockCode Quantity InvoiceDate Price CustomerID\n"
        "536368  22960     3        20101204    4.25  NA\n"
    )
    with gzip.open(landing / "day.csv.gz", "wt") as out:
        out.write(",".join(HEADER) + "\n536369,85123A,2,13/12/2010 08:00,2.55,17850\n")
    lakehouse = Lakehouse.attach(
        spark, TableConfig(schema="connect_readers", lakehouse_dir=str(tmp_path / "lakehouse"))
    )

    bronze = ingest_bronze(
        spark, lakehouse, BronzeConfig(str(landing), SourceFormat(), lakehouse.config)
    )
    silver = build_silver(spark, lakehouse, SilverConfig(tables=lakehouse.config))

    assert bronze.rows_ingested == lakehouse.read(BRONZE_TRANSACTIONS).count() == 5
    rows = sorted(
        (r.invoice, r.customer_id, r.invoice_date)
        for r in lakehouse.read(SILVER_TRANSACTIONS).collect()
    )
    assert rows == [
        ("536365", "17850", dt.datetime(2010, 12, 1, 8, 26)),
        ("536367", "13047", dt.datetime(2010, 12, 3, 10, 0)),
        ("536369", "17850", dt.datetime(2010, 12, 13, 8, 0)),
    ]
    assert silver.quarantine_by_rule == {"missing_customer_id": 2}
