"""Two days of crafted lines for the daily (incremental) silver tests: day 2 completes, rematches
and contradicts lines of day 1 in every way a new file can change an earlier line."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import functions as F

from retail_segmentation.bronze.columns import SourceFormat
from retail_segmentation.bronze.task import BronzeConfig, ingest_bronze
from retail_segmentation.common.config import TableConfig
from retail_segmentation.common.tables import SILVER_QUARANTINE, SILVER_TRANSACTIONS, Lakehouse
from retail_segmentation.gold.task import GoldConfig, GoldResult, build_gold
from retail_segmentation.silver.task import SilverConfig, SilverResult, build_silver

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


# when day 1 is ingested in the lakehouse the daily tests start from: the day after its lines
DAY_1_INGESTED = dt.datetime(2010, 12, 10, 6)
# and day 2, in DayTwo
DAY_2_INGESTED = dt.datetime(2010, 12, 13, 6)
# the daily runs' retraining policy for the rules: no refit by age, none by drift
DAILY_POLICY = {"refit_after_days": 0, "refit_drift": 1.0}


@dataclass(frozen=True)
class DayOne:
    """A lakehouse with day 1 landed (ingested at DAY_1_INGESTED), cleaned (rule version 1,
    fitted on it) and built into gold: where the daily tests start. Built once per session
    (tests/conftest.py) and copied into each test's own folder (a Delta table is its folder;
    the copy's tables, versions and ledger are the same)."""

    source: Lakehouse
    batch_id: str  # day 1's bronze batch
    silver: SilverResult  # the run that cleaned it
    gold: GoldResult  # the run that built gold on it

    @classmethod
    def build(cls, spark, folder: Path) -> DayOne:
        config = TableConfig(schema="day_one", lakehouse_dir=str(folder / "lakehouse"))
        lakehouse = Lakehouse.attach(spark, config)
        batch_id = land(spark, lakehouse, folder / "landing", "day1.csv", DAY_1, DAY_1_INGESTED)
        silver = build_silver(spark, lakehouse, SilverConfig(config))
        gold = build_gold(spark, lakehouse, GoldConfig(config))
        return cls(lakehouse, batch_id, silver, gold)

    def copy(self, spark, config: TableConfig) -> Lakehouse:
        """These tables under `config`'s folder and schema."""
        return copy_lakehouse(spark, self.source, config)


@dataclass(frozen=True)
class DayTwo:
    """Day 2 after `DayOne`, at each step of a daily run, each step's tables a
    lakehouse of their own: `landed` (day 2 in bronze, ingested at DAY_2_INGESTED), `cleaned`
    (+ silver's increment, DAILY_POLICY) and `built` (+ gold's increment). Built once per
    session (tests/conftest.py); tests read a step's tables, or copy them to write."""

    landed: Lakehouse
    cleaned: Lakehouse
    built: Lakehouse
    batch_id: str  # day 2's bronze batch
    silver_before: int  # silver_transactions' data version before day 2 was cleaned
    silver: SilverResult  # the incremental run that cleaned day 2
    gold: GoldResult  # the incremental run that built gold on it

    @classmethod
    def build(cls, spark, folder: Path, day_one: DayOne) -> DayTwo:
        def step(name: str) -> TableConfig:
            return TableConfig(schema=f"day_two_{name}", lakehouse_dir=str(folder / name))

        landed = day_one.copy(spark, step("landed"))
        batch_id = land(spark, landed, folder / "landing", "day2.csv", DAY_2, DAY_2_INGESTED)
        cleaned = copy_lakehouse(spark, landed, step("cleaned"))
        silver_before = cleaned.data_version(SILVER_TRANSACTIONS)
        silver = build_silver(spark, cleaned, SilverConfig(cleaned.config, **DAILY_POLICY))
        built = copy_lakehouse(spark, cleaned, step("built"))
        gold = build_gold(spark, built, GoldConfig(built.config))
        return cls(landed, cleaned, built, batch_id, silver_before, silver, gold)


def copy_lakehouse(spark, source: Lakehouse, config: TableConfig) -> Lakehouse:
    """Another lakehouse, under `config`'s folder and schema (one Spark session names both),
    holding the same Delta tables: a Delta table is its folder."""
    target = Path(config.lakehouse_dir).absolute() / "tables" / config.schema
    shutil.copytree(source.local_root, target, dirs_exist_ok=True)
    return Lakehouse.attach(spark, config)
