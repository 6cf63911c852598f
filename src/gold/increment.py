"""Incremental gold: recompute only the customers and groups that silver's new rows touch.

A gold table is a set of groups (a customer, a stock code, a country, a day, a weekday and
hour), each a function of its own silver lines. So when silver changed between the version
the gold tables were built from and now, the rows of silver's change data feed (inserts,
deletes, both images of updates) name every group that can differ; the others are read back
from the gold table as they are. What moves with the as-of date for everyone is derived from
what the tables keep: recency from `last_purchase`, tenure from `first_purchase`, and the
RFM quintiles, recomputed over all customers (a customer-sized table).

That holds while every gold table covers every silver line, that is while the as-of date is
later than the newest line, both for the tables being updated and for the run updating them;
otherwise, or when silver was rebuilt whole, the gold task rebuilds everything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from retail_segmentation.common.ledger import recorded_run
from retail_segmentation.common.tables import (
    CHANGE_FEED_PROPERTY,
    GOLD_CUSTOMER_RFM,
    SILVER_TRANSACTIONS,
    Lakehouse,
    is_data_change,
)

FULL = "full"
INCREMENTAL = "incremental"
# Silver commits an incremental gold run can follow through the change feed: appends and
# replaceWhere writes of batches, MERGEs and deletes of rows. Anything else (an overwrite of
# the whole table by a refit or a full refresh, a RESTORE, the commit that turned the change
# feed on in a table made before it) rebuilds gold.
_ROW_LEVEL_OPERATIONS = frozenset({"WRITE", "MERGE", "DELETE", "UPDATE"})

CUSTOMER = "customer"
GROUPS = (CUSTOMER, "product", "country", "day", "weekday_hour")


def group_keys(group: str) -> dict[str, Column]:
    """What names a group of a gold table (one of GROUPS), derived from a silver line."""
    keys = {
        CUSTOMER: lambda: {"customer_id": F.col("customer_id")},
        "product": lambda: {"stock_code": F.col("stock_code")},
        "country": lambda: {"country": F.col("country")},
        "day": lambda: {"sales_date": F.to_date("invoice_date")},
        "weekday_hour": lambda: {
            "weekday_number": F.dayofweek("invoice_date"),
            "hour": F.hour("invoice_date"),
        },
    }
    return keys[group]()


@dataclass(frozen=True)
class GoldState:
    """What the gold tables were last built from, as their run recorded it in the ledger."""

    silver_version: int
    as_of_date: dt.date
    last_line_date: dt.date | None
    rows: Mapping[str, int] = field(default_factory=dict)  # table -> rows it was written with


@dataclass(frozen=True)
class GoldPlan:
    """How this run builds gold: FULL or INCREMENTAL from `since` (the silver version the
    tables hold), and why."""

    mode: str
    reason: str
    since: int | None = None


def previous_state(lakehouse: Lakehouse, rfm_version: int) -> GoldState | None:
    """The ledger's record of the gold run that wrote `gold_customer_rfm` at `rfm_version`
    (written first, so a run killed before its ledger leaves a version nobody recorded),
    with the rows that run wrote to each table."""
    run = recorded_run(lakehouse, "gold", GOLD_CUSTOMER_RFM, "rfm_version", rfm_version)
    if run is None:
        return None
    detail = run[GOLD_CUSTOMER_RFM].detail
    last = detail.get("last_line_date")
    return GoldState(
        int(detail["silver_version"]),
        dt.date.fromisoformat(detail["as_of_date"]),
        dt.date.fromisoformat(last) if last else None,
        {table: entry.rows_out for table, entry in run.items()},
    )


def plan_gold(
    lakehouse: Lakehouse,
    state: GoldState | None,
    silver_version: int,
    as_of: dt.date,
    last_line: dt.date,
    full_refresh: bool = False,
) -> GoldPlan:
    """FULL unless the tables' state can be carried to this silver version and as-of date."""
    if full_refresh:
        return GoldPlan(FULL, "full refresh requested")
    if state is None:
        return GoldPlan(FULL, "no gold tables recorded by a finished run")
    if state.last_line_date is None or state.last_line_date >= state.as_of_date:
        return GoldPlan(FULL, "the gold tables left out lines dated on or after their as-of date")
    if as_of <= last_line:
        return GoldPlan(FULL, f"as-of date {as_of} is not after the newest line ({last_line})")
    if as_of < state.as_of_date:
        return GoldPlan(FULL, f"as-of date {as_of} is before the tables' ({state.as_of_date})")
    rebuilt = silver_rewrites(lakehouse, state.silver_version)
    since = state.silver_version
    if rebuilt:
        return GoldPlan(FULL, f"silver was rewritten whole since v{since}: {', '.join(rebuilt)}")
    return GoldPlan(INCREMENTAL, f"silver v{since} -> v{silver_version}", since)


def silver_rewrites(lakehouse: Lakehouse, since: int) -> list[str]:
    """ "v<version> <operation>" of each silver commit after `since` that was not row level
    (an overwrite, or the change feed turned on): what silver's change feed cannot name."""
    return [
        f"v{version} {operation}"
        for version, operation, parameters in lakehouse.history(SILVER_TRANSACTIONS, since)
        if not _row_level(operation, parameters)
    ]


def _row_level(operation: str, parameters: Mapping[str, str]) -> bool:
    if CHANGE_FEED_PROPERTY in str(parameters.get("properties", "")):
        return False  # the change feed starts here: earlier changes were not recorded
    if not is_data_change(operation):
        return True
    if operation != "WRITE":
        return operation in _ROW_LEVEL_OPERATIONS
    # an overwrite is row level only with a replaceWhere predicate
    return parameters.get("mode") != "Overwrite" or bool(parameters.get("predicate"))


def changed_silver_rows(lakehouse: Lakehouse, since: int, latest_version: int) -> DataFrame:
    """Silver rows inserted, deleted or updated (both images) after version `since`."""
    columns = ("customer_id", "stock_code", "country", "invoice_date")
    if latest_version <= since:
        return lakehouse.read(SILVER_TRANSACTIONS).select(*columns).limit(0)
    return lakehouse.changes(SILVER_TRANSACTIONS, since + 1, latest_version).select(*columns)


def _matches(left: DataFrame, right: DataFrame, names: list[str]) -> Column:
    return reduce(lambda a, b: a & b, [left[name].eqNullSafe(right[name]) for name in names])


def _touched(changed_df: DataFrame, keys: Mapping[str, Column]) -> DataFrame:
    return F.broadcast(changed_df.select(*[c.alias(n) for n, c in keys.items()]).distinct())


def lines_of_groups(
    silver_df: DataFrame, changed_df: DataFrame, keys: Mapping[str, Column]
) -> DataFrame:
    """The silver lines of the groups (named by `keys`) the changed rows touch."""
    names = list(keys)
    touched = _touched(changed_df, keys)
    added = [n for n in names if n not in silver_df.columns]
    keyed = silver_df.withColumns({n: keys[n] for n in added}) if added else silver_df
    lines = keyed.join(touched, _matches(keyed, touched, names), "left_semi")
    return lines.drop(*added) if added else lines


def refresh_groups(
    old_df: DataFrame,
    silver_df: DataFrame,
    changed_df: DataFrame,
    keys: Mapping[str, Column],
    build: Callable[[DataFrame], DataFrame],
) -> DataFrame:
    """A gold table whose groups the changed rows touch are built again from their silver
    lines (`build`), every other group read back from `old_df` as it is (without
    `as_of_date`, which the caller stamps again)."""
    names = list(keys)
    touched = _touched(changed_df, keys)
    lines = lines_of_groups(silver_df, changed_df, keys)
    kept = old_df.drop("as_of_date")
    kept = kept.join(touched, _matches(kept, touched, names), "left_anti")
    rebuilt = build(lines)
    return kept.select(*rebuilt.columns).unionByName(rebuilt)
