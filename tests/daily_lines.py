"""Two days of crafted lines for the daily (incremental) silver tests: day 2 completes, rematches
and contradicts lines of day 1 in every way a new file can change an earlier line."""

from __future__ import annotations

from pyspark.sql import functions as F

from retail_segmentation.bronze.columns import SourceFormat
from retail_segmentation.bronze.task import BronzeConfig, ingest_bronze
from retail_segmentation.common.tables import SILVER_QUARANTINE, SILVER_TRANSACTIONS

HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
UK = "United Kingdom"
DAY_1 = (
    f"536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850,{UK}",
    f"536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,,{UK}",  # filled: 17850
    f"536370,22633,HAND WARMER,6,2010-12-05 10:00:00,1.85,13047,{UK}",
    f"C536380,22960,JAM MAKING SET,-6,2010-12-06 09:00:00,4.25,13047,{UK}",  # no sale yet
    f"536390,84879,BIRD ORNAMENT,32,2010-12-02 11:00:00,1.69,12583,{UK}",
    f"536400,84879,BIRD ORNAMENT,8,2010-12-03 12:00:00,1.69,,{UK}",  # customer comes later
    f"536430,22633,HAND WARMER,2,2010-12-01 13:00:00,1.85,15000,{UK}",
    f"C536450,22633,HAND WARMER,-2,2010-12-10 14:00:00,1.85,15000,{UK}",  # matches 536430
    f"536460,22960,JAM MAKING SET,3,2010-12-04 15:00:00,4.25,16000,{UK}",
    f"536460,85123A,WHITE HANGING HEART,3,2010-12-04 15:00:00,2.55,,{UK}",  # filled: 16000
    f"536470,22960,JAM MAKING SET,2,2010-12-08 16:00:00,0,12583,{UK}",  # modal price 4.25
    f"536480,21212,CAKE CASES,400,2010-12-09 08:00:00,0.55,12583,{UK}",  # clipped
)
DAY_2 = (
    f"536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850,{UK}",  # duplicate
    f"536368,22960,JAM MAKING SET,6,2010-12-02 08:34:00,4.25,13047,{UK}",  # C536380 matched
    f"536400,22633,HAND WARMER,4,2010-12-03 12:00:00,1.85,14000,{UK}",  # fills 536400
    f"C536410,85123A,WHITE HANGING HEART,-6,2010-12-11 09:00:00,2.55,17850,{UK}",
    f"536440,22633,HAND WARMER,2,2010-12-05 10:00:00,1.85,15000,{UK}",  # C536450 rematched
    f"536460,22633,HAND WARMER,1,2010-12-04 15:00:00,1.85,16001,{UK}",  # 536460 now ambiguous
    f"536490,84879,BIRD ORNAMENT,12,2010-12-12 10:00:00,1.69,12583,{UK}",
)


def land(spark, lakehouse, landing, name, lines, now=None):
    """Write one CSV file into the landing folder and ingest it: its bronze batch id."""
    landing.mkdir(parents=True, exist_ok=True)
    (landing / name).write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    config = BronzeConfig(str(landing), SourceFormat(), lakehouse.config)
    return ingest_bronze(spark, lakehouse, config, now=now).batch_id


def silver_state(lakehouse):
    """(invoice, stock code, batch) -> (quarantine rule or 'silver', customer, matched invoice)."""
    silver = lakehouse.read(SILVER_TRANSACTIONS).select(
        "invoice",
        "stock_code",
        F.lit("silver").alias("where"),
        "customer_id",
        "matched_invoice",
        "_batch_id",
    )
    quarantine = lakehouse.read(SILVER_QUARANTINE).select(
        "invoice",
        F.col("stock_code"),
        F.col("_quarantine_rule").alias("where"),
        F.col("_typed.customer_id").alias("customer_id"),
        F.col("_typed.matched_invoice").alias("matched_invoice"),
        "_batch_id",
    )
    return {
        (r.invoice, r.stock_code, r._batch_id): (r["where"], r.customer_id, r.matched_invoice)
        for r in silver.unionByName(quarantine).collect()
    }
