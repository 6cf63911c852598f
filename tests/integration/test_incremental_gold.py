"""Gold from silver's change feed: a day's file rebuilds only the customers and groups it
touches, and every gold table equals a rebuild from all of silver."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from daily_lines import copy_lakehouse
from pyspark.sql import functions as F

from retail_segmentation.common.tables import GOLD_CUSTOMER_RFM, SILVER_TRANSACTIONS
from retail_segmentation.gold.increment import FULL, INCREMENTAL, changed_silver_rows
from retail_segmentation.gold.task import GOLD_TABLES, GoldConfig, build_gold
from retail_segmentation.silver.task import SilverConfig, build_silver

pytestmark = pytest.mark.integration


def _snapshot(lakehouse):
    return {t: lakehouse.read(t).localCheckpoint() for t in GOLD_TABLES}


def _assert_same(lakehouse, snapshot):
    for table, before in snapshot.items():
        assert_df_equality(
            lakehouse.read(table), before, ignore_row_order=True, ignore_nullable=True
        )


def test_a_day_rebuilds_only_what_it_touches_and_equals_a_full_rebuild(
    spark, lakehouse, day_one_gold, day_two
):
    gold = GoldConfig(tables=lakehouse.config)
    first = day_one_gold.gold  # day 1 in silver and gold
    assert (first.mode, first.reason) == (FULL, "no gold tables recorded by a finished run")
    assert first.as_of_date == dt.date(2010, 12, 11)

    # day 2 landed and cleaned, then gold built from silver's change feed (day_two)
    lakehouse = copy_lakehouse(spark, day_two.built, lakehouse.config)
    assert day_two.silver.earlier_lines_changed == 4
    # the change feed names the customers of the new lines and of the earlier lines that
    # changed: 16000 lost a line to the ambiguous invoice 536460, 14000 gained 536400
    changed = {
        r.customer_id
        for r in changed_silver_rows(
            lakehouse, day_two.silver_before, lakehouse.version(SILVER_TRANSACTIONS)
        ).collect()
    }
    assert changed == {"12583", "13047", "14000", "15000", "16000", "16001", "17850"}

    second = day_two.gold
    assert second.mode == INCREMENTAL
    assert second.as_of_date == dt.date(2010, 12, 13)
    incremental = _snapshot(lakehouse)
    rebuilt = build_gold(spark, lakehouse, GoldConfig(tables=lakehouse.config, full_refresh=True))
    assert (rebuilt.mode, rebuilt.reason) == (FULL, "full refresh requested")
    _assert_same(lakehouse, incremental)

    # the as-of date alone moves: recency and tenure move for everyone, from the tables
    version = lakehouse.data_version(SILVER_TRANSACTIONS)
    later = build_gold(
        spark, lakehouse, GoldConfig(tables=lakehouse.config, as_of_date=dt.date(2010, 12, 20))
    )
    assert (later.mode, later.reason) == (INCREMENTAL, f"silver v{version} -> v{version}")
    shifted = lakehouse.read(GOLD_CUSTOMER_RFM).select(
        "customer_id",
        (F.col("recency_days") - 7).alias("recency_days"),
        (F.col("tenure_days") - 7).alias("tenure_days"),
    )
    assert_df_equality(
        shifted,
        incremental[GOLD_CUSTOMER_RFM].select("customer_id", "recency_days", "tenure_days"),
        ignore_row_order=True,
    )

    # an as-of date before the tables' cannot be carried back: a full rebuild
    earlier = build_gold(
        spark, lakehouse, GoldConfig(tables=lakehouse.config, as_of_date=dt.date(2010, 12, 13))
    )
    assert earlier.mode == FULL
    assert earlier.reason == "as-of date 2010-12-13 is before the tables' (2010-12-20)"
    _assert_same(lakehouse, incremental)

    # silver cleaned whole again: gold rebuilds whole
    build_silver(spark, lakehouse, SilverConfig(tables=lakehouse.config, full_refresh=True))
    again = build_gold(spark, lakehouse, gold)
    assert again.mode == FULL and again.reason.startswith("silver was rewritten whole since")
    _assert_same(lakehouse, incremental)


def test_an_as_of_date_inside_the_data_always_rebuilds(spark, lakehouse, day_one_gold):
    lakehouse = day_one_gold.copy(spark, lakehouse.config)  # day 1 in silver and gold
    inside = GoldConfig(tables=lakehouse.config, as_of_date=dt.date(2010, 12, 5))
    assert build_gold(spark, lakehouse, inside).mode == FULL
    after = build_gold(spark, lakehouse, GoldConfig(tables=lakehouse.config))
    assert after.mode == FULL
    assert after.reason == "the gold tables left out lines dated on or after their as-of date"
