"""Recommendations run daily: ALS is fitted when the refit policy says so; between fits a day's
lines refresh only the lists of the customers they touch."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from chispa import assert_df_equality
from daily_lines import DAILY_POLICY, UK, land
from pyspark.sql import functions as F

from retail_segmentation.common.tables import (
    GOLD_PRODUCT_RECOMMENDATIONS,
    PIPELINE_LEDGER,
    SILVER_TRANSACTIONS,
)
from retail_segmentation.gold.task import GoldConfig, build_gold
from retail_segmentation.ml.recommend import FIT, REFRESH, AlsParams, RefitPolicy, purchase_matrix
from retail_segmentation.ml.tasks import build_recommendations
from retail_segmentation.silver.task import SilverConfig, build_silver

pytestmark = pytest.mark.integration

PARAMS = AlsParams(rank=3, max_iter=5, alpha=10.0, top_n=3, seed=7, num_blocks=1)
# 13047 buys the jam making set (day 1 proposed it); 14500 is a new customer
DAY_2 = (
    f"536500,22960,JAM MAKING SET,2,2010-12-11 09:00:00,4.25,13047,{UK}",
    f"536510,84879,BIRD ORNAMENT,4,2010-12-11 10:00:00,1.69,14500,{UK}",
)
UNTOUCHED = ["12583", "15000", "16000", "17850"]
# one new customer in six: more than the default share of 10%
LENIENT = RefitPolicy(max_new_customer_share=0.5)


def _day(spark, lakehouse, landing, name, lines):
    land(spark, lakehouse, landing, name, lines)
    build_silver(spark, lakehouse, SilverConfig(tables=lakehouse.config, **DAILY_POLICY))
    build_gold(spark, lakehouse, GoldConfig(tables=lakehouse.config))


def _lists(lakehouse, customers):
    return (
        lakehouse.read(GOLD_PRODUCT_RECOMMENDATIONS)
        .where(F.col("customer_id").isin(customers))
        .drop("as_of_date")
        .localCheckpoint()
    )


def test_a_day_refreshes_the_lists_it_touches_until_the_policy_fits_again(
    spark, lakehouse, tmp_path, day_one_gold
):
    lakehouse = day_one_gold.copy(spark, lakehouse.config)  # day 1 in silver and gold
    first = build_recommendations(lakehouse, PARAMS)
    assert (first.mode, first.reason) == (FIT, "no recommendations recorded by a finished run")
    day_1 = _lists(lakehouse, UNTOUCHED)
    assert "22960" in {r.stock_code for r in _lists(lakehouse, ["13047"]).collect()}

    _day(spark, lakehouse, tmp_path / "landing", "day2.csv", DAY_2)
    second = build_recommendations(lakehouse, PARAMS, policy=LENIENT)
    assert (second.mode, second.reason) == (
        REFRESH,
        "the fit is 1 day old and 16.7% of the customers are new since it",
    )
    # untouched customers keep their lists; every row carries the new as-of date
    assert_df_equality(_lists(lakehouse, UNTOUCHED), day_1, ignore_row_order=True)
    table = lakehouse.read(GOLD_PRODUCT_RECOMMENDATIONS)
    assert {r.as_of_date for r in table.select("as_of_date").distinct().collect()} == {
        dt.date(2010, 12, 12)
    }
    # nobody is offered what they bought; the new customer gets the popular products
    bought = purchase_matrix(lakehouse.read(SILVER_TRANSACTIONS), dt.date(2010, 12, 12)).select(
        "customer_id", "stock_code"
    )
    assert table.join(bought, ["customer_id", "stock_code"]).count() == 0
    new = _lists(lakehouse, ["14500"]).collect()
    assert len(new) == PARAMS.top_n and {r.source for r in new} == {"popular"}
    assert len(_lists(lakehouse, ["13047"]).collect()) == PARAMS.top_n

    # the run is recorded with its decision; the same inputs again: nothing to do
    entry = (
        lakehouse.read(PIPELINE_LEDGER)
        .where(F.col("rule") == GOLD_PRODUCT_RECOMMENDATIONS)
        .orderBy(F.get_json_object("detail", "$.recommendations_version").cast("int").desc())
        .first()
    )
    detail = json.loads(entry.detail)
    assert (detail["mode"], detail["fitted_as_of"]) == (REFRESH, "2010-12-11")
    assert build_recommendations(lakehouse, PARAMS, policy=LENIENT) is None

    # a day old is enough for this policy: ALS is fitted again, as a fit from scratch would
    refit = build_recommendations(lakehouse, PARAMS, force=True, policy=RefitPolicy(1))
    assert (refit.mode, refit.reason) == (
        FIT,
        "the fit is 1 day old (fitted for 2010-12-11; refit_after_days=1)",
    )
    fitted = lakehouse.read(GOLD_PRODUCT_RECOMMENDATIONS).localCheckpoint()
    again = build_recommendations(lakehouse, PARAMS, refit=True)
    assert (again.mode, again.reason) == (FIT, "requested (--refit)")
    assert_df_equality(lakehouse.read(GOLD_PRODUCT_RECOMMENDATIONS), fitted, ignore_row_order=True)
