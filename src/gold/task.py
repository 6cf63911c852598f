"""Gold task: rebuild the customer and business tables from silver for one as-of date.

The as-of date (the day recency is counted back from) is a parameter; left empty it is the
day after the last silver invoice, so the same silver always gives the same gold tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from retail_segmentation.common.config import (
    TableConfig,
    add_table_arguments,
    parse_date,
    table_config_from_args,
)
from retail_segmentation.common.errors import ConfigError
from retail_segmentation.common.ledger import LedgerEntry, has_finished, record_ledger
from retail_segmentation.common.materialize import Intermediates
from retail_segmentation.common.spark import get_spark
from retail_segmentation.common.tables import (
    GOLD_CUSTOMER_BEHAVIOR,
    GOLD_CUSTOMER_RFM,
    GOLD_PRODUCT_PERFORMANCE,
    GOLD_SALES_BY_COUNTRY,
    GOLD_SALES_BY_DAY,
    GOLD_SALES_BY_WEEKDAY_HOUR,
    SILVER_TRANSACTIONS,
    Lakehouse,
)
from retail_segmentation.gold import aggregates
from retail_segmentation.gold.behavior import customer_behavior
from retail_segmentation.gold.rfm import customer_measures, quintile_cuts, with_rfm_scores

BUSINESS_TABLES: dict[str, Callable[[DataFrame, dt.date], DataFrame]] = {
    GOLD_PRODUCT_PERFORMANCE: aggregates.product_performance,
    GOLD_SALES_BY_COUNTRY: aggregates.sales_by_country,
    GOLD_SALES_BY_DAY: aggregates.sales_by_day,
    GOLD_SALES_BY_WEEKDAY_HOUR: aggregates.sales_by_weekday_hour,
}


GOLD_TABLES = (GOLD_CUSTOMER_RFM, GOLD_CUSTOMER_BEHAVIOR, *BUSINESS_TABLES)


@dataclass(frozen=True)
class GoldConfig:
    """Parameters of the gold task; `as_of_date` None means the day after the last invoice."""

    tables: TableConfig
    as_of_date: dt.date | None = None


@dataclass(frozen=True)
class GoldResult:
    """What one gold run wrote."""

    run_id: str
    as_of_date: dt.date
    rows: dict[str, int]


def default_as_of_date(silver_df: DataFrame) -> dt.date:
    """The day after the last invoice in silver."""
    last = silver_df.agg(F.max("invoice_date")).first()[0]
    if last is None:
        raise ConfigError("silver_transactions is empty: nothing to build gold tables from")
    return last.date() + dt.timedelta(days=1)


def gold_run_id(silver_version: int, as_of: dt.date) -> str:
    """Names the input of a gold run: the silver data version (maintenance commits do not
    count) and the as-of date."""
    return f"gold:silver_v{silver_version}:as_of_{as_of.isoformat()}"


def build_gold(spark: SparkSession, lakehouse: Lakehouse, config: GoldConfig) -> GoldResult:
    """Rebuild every gold table from one silver version, each in one Delta commit."""
    if not lakehouse.exists(SILVER_TRANSACTIONS):
        raise ConfigError(
            f"table {lakehouse.name(SILVER_TRANSACTIONS)} does not exist: run the silver task first"
        )
    silver = lakehouse.data_commit(SILVER_TRANSACTIONS)
    silver_version = silver.version
    silver_df = lakehouse.read(SILVER_TRANSACTIONS, version=silver.latest_version)
    as_of = config.as_of_date or default_as_of_date(silver_df)
    run_id = gold_run_id(silver_version, as_of)
    stamp = F.lit(as_of).cast("date").alias("as_of_date")

    with Intermediates(lakehouse, "gold") as intermediates:
        # read twice: for the quintile cuts, then scored against them
        measures_df = intermediates.keep(customer_measures(silver_df, as_of), "measures")
        rfm_df = with_rfm_scores(measures_df, quintile_cuts(measures_df))
        lakehouse.overwrite(rfm_df.select("*", stamp), GOLD_CUSTOMER_RFM)
    lakehouse.overwrite(
        customer_behavior(silver_df, as_of).select("*", stamp), GOLD_CUSTOMER_BEHAVIOR
    )
    for table, build in BUSINESS_TABLES.items():
        lakehouse.overwrite(build(silver_df, as_of).select("*", stamp), table)

    rows = {t: lakehouse.last_commit_rows(t) for t in GOLD_TABLES}
    silver_rows = silver.rows
    record_ledger(
        lakehouse,
        [
            LedgerEntry(
                run_id,
                "gold",
                step,
                table,
                rows_in=silver_rows,
                rows_out=count,
                detail={"silver_version": silver_version, "as_of_date": as_of},
            )
            for step, (table, count) in enumerate(rows.items(), start=1)
        ],
    )
    return GoldResult(run_id, as_of, rows)


def parse_args(argv: list[str] | None = None) -> tuple[bool, GoldConfig]:
    """Job parameters -> (force, GoldConfig)."""
    parser = argparse.ArgumentParser(prog="retail-seg-gold", description=__doc__)
    parser.add_argument("--force", action="store_true", help="rebuild even when gold is up to date")
    parser.add_argument(
        "--as-of-date",
        default="",
        help="YYYY-MM-DD recency is counted back from (default: day after the last invoice)",
    )
    add_table_arguments(parser)
    args = parser.parse_args(argv)
    as_of = parse_date(args.as_of_date, "as_of_date") if args.as_of_date else None
    return args.force, GoldConfig(tables=table_config_from_args(args), as_of_date=as_of)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the gold task (python_wheel_task / console script)."""
    force, config = parse_args(argv)
    spark = get_spark(warehouse_dir=f"{config.tables.lakehouse_dir}/spark-warehouse")
    lakehouse = Lakehouse.attach(spark, config.tables)
    if lakehouse.exists(SILVER_TRANSACTIONS):
        silver = lakehouse.data_commit(SILVER_TRANSACTIONS)
        silver_df = lakehouse.read(SILVER_TRANSACTIONS, version=silver.latest_version)
        config = replace(config, as_of_date=config.as_of_date or default_as_of_date(silver_df))
        run_id = gold_run_id(silver.version, config.as_of_date)
        tables_exist = all(lakehouse.exists(t) for t in GOLD_TABLES)
        if not force and tables_exist and has_finished(lakehouse, run_id):
            print(f"gold: up to date ({run_id}), nothing to do; --force rebuilds")
            return
    result = build_gold(spark, lakehouse, config)
    summary = ", ".join(f"{t} {n}" for t, n in result.rows.items())
    print(f"gold (as of {result.as_of_date}): {summary}")
