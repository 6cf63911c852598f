"""Silver batch by batch over Spark Connect, under the serverless guard: the new batch's rows
by replaceWhere, the earlier rows it changes by SQL MERGE through a temporary view, and a full
refresh that gives the same tables; gold from silver's change data feed, equal to a rebuild."""

from __future__ import annotations

from chispa import assert_df_equality
from daily_lines import DAILY_POLICY, DAY_1, DAY_2, land, silver_state

from retail_segmentation.common.config import TableConfig
from retail_segmentation.common.tables import (
    SILVER_PRODUCTS,
    SILVER_QUARANTINE,
    SILVER_TRANSACTIONS,
    Lakehouse,
)
from retail_segmentation.gold.task import GOLD_TABLES, GoldConfig, build_gold
from retail_segmentation.silver.task import SilverConfig, build_silver


def test_an_increment_over_spark_connect_equals_a_full_refresh(spark, tmp_path):
    lakehouse = Lakehouse.attach(
        spark, TableConfig(schema="connect_daily", lakehouse_dir=str(tmp_path / "lakehouse"))
    )
    day_1 = land(spark, lakehouse, tmp_path / "landing", "day1.csv", DAY_1)
    first = build_silver(spark, lakehouse, SilverConfig(lakehouse.config, **DAILY_POLICY))
    assert first.mode == "refit"
    assert build_gold(spark, lakehouse, GoldConfig(lakehouse.config)).mode == "full"
    land(spark, lakehouse, tmp_path / "landing", "day2.csv", DAY_2)
    second = build_silver(spark, lakehouse, SilverConfig(lakehouse.config, **DAILY_POLICY))
    assert (second.mode, second.earlier_lines_changed) == ("incremental", 4)
    assert silver_state(lakehouse)[("C536380", "22960", day_1)] == ("silver", "13047", "536368")

    assert build_gold(spark, lakehouse, GoldConfig(lakehouse.config)).mode == "incremental"
    gold = {t: lakehouse.version(t) for t in GOLD_TABLES}
    build_gold(spark, lakehouse, GoldConfig(lakehouse.config, full_refresh=True))
    for table in GOLD_TABLES:
        assert_df_equality(
            lakehouse.read(table),
            lakehouse.read(table, version=gold[table]),
            ignore_row_order=True,
        )

    tables = (SILVER_TRANSACTIONS, SILVER_QUARANTINE, SILVER_PRODUCTS)
    versions = {t: lakehouse.version(t) for t in tables}
    build_silver(spark, lakehouse, SilverConfig(lakehouse.config, full_refresh=True))
    for table in tables:  # the tables now, and as they were before the refresh
        assert lakehouse.version(table) > versions[table]
        assert_df_equality(
            lakehouse.read(table),
            lakehouse.read(table, version=versions[table]),
            ignore_row_order=True,
        )
