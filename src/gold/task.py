"""Gold task: rebuild the customer and business tables from silver for one as-of date.

The as-of date (the day recency is counted back from) is a parameter; left empty it is the
day after the last silver invoice, so the same silver always gives the same gold tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable, Mapping
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
from retail_segmentation.common.ledger import LedgerEntry, record_ledger
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
from retail_segmentation.gold import aggregates, increment
from retail_segmentation.gold.behavior import customer_behavior
from retail_segmentation.gold.rfm import (
    customer_measures,
    measures_as_of,
    quintile_cuts,
    with_rfm_scores,
)
from retail_segmentation.silver.options import parse_flag

BUSINESS_TABLES: dict[str, tuple[str, Callable[[DataFrame, dt.date], DataFrame]]] = {
    GOLD_PRODUCT_PERFORMANCE: ("product", aggregates.product_performance),
    GOLD_SALES_BY_COUNTRY: ("country", aggregates.sales_by_country),
    GOLD_SALES_BY_DAY: ("day", aggregates.sales_by_day),
    GOLD_SALES_BY_WEEKDAY_HOUR: ("weekday_hour", aggregates.sales_by_weekday_hour),
}


GOLD_TABLES = (GOLD_CUSTOMER_RFM, GOLD_CUSTOMER_BEHAVIOR, *BUSINESS_TABLES)


@dataclass(frozen=True)
class GoldConfig:
    """Parameters of the gold task; `as_of_date` None means the day after the last invoice;
    `full_refresh` rebuilds every table from all of silver."""

    tables: TableConfig
    as_of_date: dt.date | None = None
    full_refresh: bool = False


@dataclass(frozen=True)
class GoldResult:
    """What one gold run wrote, and how (increment.FULL or INCREMENTAL, and why)."""

    run_id: str
    as_of_date: dt.date
    rows: dict[str, int]
    mode: str = increment.FULL
    reason: str = ""


def last_line_date(silver_df: DataFrame) -> dt.date:
    """The day of the last invoice in silver."""
    last = silver_df.agg(F.max("invoice_date")).first()[0]
    if last is None:
        raise ConfigError("silver_transactions is empty: nothing to build gold tables from")
    return last.date()


def default_as_of_date(silver_df: DataFrame) -> dt.date:
    """The day after the last invoice in silver."""
    return last_line_date(silver_df) + dt.timedelta(days=1)


def gold_run_id(silver_version: int, as_of: dt.date) -> str:
    """Names the input of a gold run: the silver data version (maintenance commits do not
    count) and the as-of date."""
    return f"gold:silver_v{silver_version}:as_of_{as_of.isoformat()}"


def build_gold(spark: SparkSession, lakehouse: Lakehouse, config: GoldConfig) -> GoldResult:
    """Bring every gold table to one silver version and as-of date, each in one Delta commit:
    from the groups silver's change feed names when the tables' recorded state allows it
    (`increment.plan_gold`), from all of silver otherwise."""
    if not lakehouse.exists(SILVER_TRANSACTIONS):
        raise ConfigError(
            f"table {lakehouse.name(SILVER_TRANSACTIONS)} does not exist: run the silver task first"
        )
    silver = lakehouse.data_commit(SILVER_TRANSACTIONS)
    silver_df = lakehouse.read(SILVER_TRANSACTIONS, version=silver.latest_version)
    last_line = last_line_date(silver_df)
    as_of = config.as_of_date or last_line + dt.timedelta(days=1)
    run_id = gold_run_id(silver.version, as_of)
    stamp = F.lit(as_of).cast("date").alias("as_of_date")
    state = None
    if all(lakehouse.exists(t) for t in GOLD_TABLES):
        state = increment.previous_state(lakehouse, lakehouse.data_version(GOLD_CUSTOMER_RFM))
    plan = increment.plan_gold(
        lakehouse, state, silver.version, as_of, last_line, config.full_refresh
    )

    with Intermediates(lakehouse, "gold") as intermediates:
        if plan.mode == increment.INCREMENTAL:
            assert plan.since is not None
            changed_df = increment.changed_silver_rows(lakehouse, plan.since, silver.latest_version)
            assert state is not None
            measures_df, behavior_df, business, ways = _incremental_frames(
                lakehouse, silver_df, intermediates.keep(changed_df, "changes"), as_of,
                intermediates.keep, state.rows,
            )  # fmt: skip
        else:
            measures_df = customer_measures(silver_df, as_of)
            behavior_df = customer_behavior(silver_df, as_of)
            business = {table: f(silver_df, as_of) for table, (_, f) in BUSINESS_TABLES.items()}
            ways = {}
        # Each table is replaced whole (customer- or group-sized); an incremental run reads
        # the table's own rows back in the same query.
        # read twice: for the quintile cuts, then scored against them
        measures_df = intermediates.keep(measures_df, "measures")
        rfm_df = with_rfm_scores(measures_df, quintile_cuts(measures_df))
        frames = {GOLD_CUSTOMER_RFM: rfm_df, GOLD_CUSTOMER_BEHAVIOR: behavior_df, **business}
        # independent tables, written two at a time; the ledger entry below, written last,
        # records the run (a run killed before it leaves versions nobody recorded: rebuilt)
        lakehouse.overwrite_all({t: df.select("*", stamp) for t, df in frames.items()})

    commits = {t: lakehouse.data_commit(t) for t in GOLD_TABLES}
    detail = {
        "silver_version": silver.version,
        "as_of_date": as_of,
        "last_line_date": last_line,
        "rfm_version": commits[GOLD_CUSTOMER_RFM].version,
        "mode": plan.mode,
        "reason": plan.reason,
        "recomputed": ways,
    }
    record_ledger(
        lakehouse,
        [
            LedgerEntry(
                run_id,
                "gold",
                step,
                table,
                rows_in=silver.rows,
                rows_out=commit.rows,
                detail=detail,
            )
            for step, (table, commit) in enumerate(commits.items(), start=1)
        ],
    )
    rows = {t: c.rows for t, c in commits.items()}
    return GoldResult(run_id, as_of, rows, plan.mode, plan.reason)


# A business table whose touched groups are at least this share of its groups is recomputed
# from all of silver: reading the untouched rows back and filtering silver to the touched
# groups costs more than it saves (on 1M lines, a week's file touches every country and 90%
# of the products).
WHOLE_TABLE_SHARE = 0.5


def _incremental_frames(
    lakehouse: Lakehouse,
    silver_df: DataFrame,
    changed_df: DataFrame,
    as_of: dt.date,
    keep: Callable[[DataFrame, str], DataFrame],
    rows: Mapping[str, int],
) -> tuple[DataFrame, DataFrame, dict[str, DataFrame], dict[str, str]]:
    """The gold tables' new content from the changed silver rows: customer measures and
    behaviour from the touched customers' lines (read from silver once), each business
    table by its touched groups or whole (WHOLE_TABLE_SHARE), sales by day from the silver
    files of the touched days only (Delta skips the others by their date statistics).
    `rows`: each table's rows as the ledger recorded them (counted where it has none).
    Returns the frames and, per business table, "groups" or "whole"."""
    customer = increment.group_keys(increment.CUSTOMER)
    customer_lines = keep(increment.lines_of_groups(silver_df, changed_df, customer), "lines")
    measures_df = increment.refresh_groups(
        measures_as_of(lakehouse.read(GOLD_CUSTOMER_RFM), as_of),
        customer_lines,
        changed_df,
        customer,
        lambda lines: customer_measures(lines, as_of),
    )
    behavior_df = increment.refresh_groups(
        lakehouse.read(GOLD_CUSTOMER_BEHAVIOR),
        customer_lines,
        changed_df,
        customer,
        lambda lines: customer_behavior(lines, as_of),
    )
    # one Spark action: the changed lines' date range, and the groups they touch per table
    whole_candidates = [group for group, _ in BUSINESS_TABLES.values() if group != "day"]
    touched = changed_df.agg(
        F.min("invoice_date").alias("first"),
        F.max("invoice_date").alias("last"),
        *[
            F.count_distinct(
                F.struct(*[c.alias(n) for n, c in increment.group_keys(g).items()])
            ).alias(g)
            for g in whole_candidates
        ],
    ).first()
    first, last = touched["first"], touched["last"]
    business, ways = {}, {}
    for table, (group, build) in BUSINESS_TABLES.items():
        keys = increment.group_keys(group)
        old_df = lakehouse.read(table)
        source_df = silver_df
        if group == "day" and first is not None:
            # a day wider on each side than the changed lines (time zones); the semi-join
            # below keeps exactly the touched days
            source_df = silver_df.where(
                (F.col("invoice_date") >= F.lit(first.date() - dt.timedelta(days=1)))
                & (F.col("invoice_date") < F.lit(last.date() + dt.timedelta(days=2)))
            )
        if group != "day" and touched[group] >= WHOLE_TABLE_SHARE * (
            rows[table] if table in rows else old_df.count()
        ):
            business[table], ways[table] = build(silver_df, as_of), "whole"
            continue
        business[table] = increment.refresh_groups(
            old_df, source_df, changed_df, keys, lambda lines, f=build: f(lines, as_of)
        )
        ways[table] = "groups"
    return measures_df, behavior_df, business, ways


def parse_args(argv: list[str] | None = None) -> tuple[bool, GoldConfig]:
    """Job parameters -> (force, GoldConfig)."""
    parser = argparse.ArgumentParser(prog="retail-seg-gold", description=__doc__)
    parser.add_argument("--force", action="store_true", help="rebuild even when gold is up to date")
    parser.add_argument(
        "--as-of-date",
        default="",
        help="YYYY-MM-DD recency is counted back from (default: day after the last invoice)",
    )
    parser.add_argument(
        "--full-refresh",
        nargs="?",
        const="true",
        default="false",
        help="rebuild every table from all of silver instead of the customers and groups "
        "silver's changes touch; true/false, alone: true",
    )
    add_table_arguments(parser)
    args = parser.parse_args(argv)
    as_of = parse_date(args.as_of_date, "as_of_date") if args.as_of_date else None
    return args.force, GoldConfig(
        tables=table_config_from_args(args),
        as_of_date=as_of,
        full_refresh=parse_flag(args.full_refresh, "full_refresh"),
    )


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
        # up to date when the tables hold what this run would write: the recorded state of
        # their current version, not just any finished run with this input (a later run with
        # another as-of date may have replaced it)
        state = None
        if all(lakehouse.exists(t) for t in GOLD_TABLES):
            state = increment.previous_state(lakehouse, lakehouse.data_version(GOLD_CUSTOMER_RFM))
        current = state is not None and (state.silver_version, state.as_of_date) == (
            silver.version,
            config.as_of_date,
        )
        if current and not (force or config.full_refresh):
            print(f"gold: up to date ({run_id}), nothing to do; --force rebuilds")
            return
    result = build_gold(spark, lakehouse, config)
    summary = ", ".join(f"{t} {n}" for t, n in result.rows.items())
    print(f"gold ({result.mode}, as of {result.as_of_date}: {result.reason}): {summary}")
