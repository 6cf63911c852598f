"""RFM measures, quintile scores and named segments on literal rows."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from retail_segmentation.gold import rfm

TS = dt.datetime
AS_OF = dt.date(2011, 12, 10)
SILVER_DDL = (
    "customer_id string, invoice string, invoice_date timestamp, line_type string, "
    "line_amount double"
)


def test_customer_measures_net_of_returns_and_before_as_of(spark):
    source_df = spark.createDataFrame(
        [
            ("A", "1", TS(2011, 12, 1, 10), "sale", 10.0),
            ("A", "1", TS(2011, 12, 1, 10), "sale", 5.0),  # same invoice: frequency 1
            ("A", "2", TS(2011, 12, 8, 9), "sale", 20.0),
            ("A", "C3", TS(2011, 12, 9, 9), "return", -5.0),  # a return is not a purchase
            ("A", "4", TS(2011, 12, 10, 9), "sale", 99.0),  # on the as-of day: excluded
            ("A", "5", TS(2011, 12, 8, 9), "non_product", 7.0),  # postage: excluded
            ("B", "6", TS(2010, 12, 10, 0), "sale", 1.5),
            ("C", "C7", TS(2011, 1, 1), "return", -3.0),  # only a return: not a customer
        ],
        SILVER_DDL,
    )
    expected = spark.createDataFrame(
        [
            ("A", 2, 2, 30.0, TS(2011, 12, 1, 10), TS(2011, 12, 8, 9), 9),
            ("B", 365, 1, 1.5, TS(2010, 12, 10, 0), TS(2010, 12, 10, 0), 365),
        ],
        "customer_id string, recency_days int, frequency long, monetary double, "
        "first_purchase timestamp, last_purchase timestamp, tenure_days int",
    )
    actual = rfm.customer_measures(source_df, AS_OF)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_quintile_scores_reward_recent_frequent_high_spend(spark):
    measures_df = spark.createDataFrame(
        [
            (str(i), r, f, m)
            for i, (r, f, m) in enumerate(
                [(1, 10, 500.0), (10, 5, 300.0), (50, 3, 200.0), (100, 2, 100.0), (400, 1, 10.0)]
            )
        ],
        "customer_id string, recency_days int, frequency long, monetary double",
    )
    cuts = rfm.quintile_cuts(measures_df)
    assert cuts[0].cuts == (1.0, 10.0, 50.0, 100.0)
    actual = rfm.with_rfm_scores(measures_df, cuts).select(
        "customer_id", "r_score", "f_score", "m_score", "rfm_score", "rfm_segment"
    )
    expected = spark.createDataFrame(
        [
            ("0", 5, 5, 5, "555", "Champions"),
            ("1", 4, 4, 4, "444", "Loyal Customers"),
            ("2", 3, 3, 3, "333", "Need Attention"),
            ("3", 2, 2, 2, "222", "Hibernating"),
            ("4", 1, 1, 1, "111", "Lost"),
        ],
        "customer_id string, r_score int, f_score int, m_score int, rfm_score string, "
        "rfm_segment string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_ties_share_a_score(spark):
    measures_df = spark.createDataFrame(
        [("a", 5, 1, 1.0), ("b", 5, 1, 1.0), ("c", 5, 1, 1.0), ("d", 5, 1, 1.0), ("e", 5, 9, 2.0)],
        "customer_id string, recency_days int, frequency long, monetary double",
    )
    scored = rfm.with_rfm_scores(measures_df, rfm.quintile_cuts(measures_df))
    f_scores = {r.customer_id: r.f_score for r in scored.select("customer_id", "f_score").collect()}
    assert f_scores == {"a": 1, "b": 1, "c": 1, "d": 1, "e": 5}


def test_every_score_pair_has_one_named_segment(spark):
    pairs_df = (
        spark.range(1, 6)
        .select(F.col("id").cast("int").alias("r"))
        .crossJoin(spark.range(1, 6).select(F.col("id").cast("int").alias("f")))
    )
    named = pairs_df.select("r", "f", rfm.rfm_segment(F.col("r"), F.col("f")).alias("segment"))
    segments = {(row.r, row.f): row.segment for row in named.collect()}
    assert len(segments) == 25
    assert "Other" not in segments.values()
    assert {s for s, *_ in rfm.RFM_SEGMENTS} == set(segments.values())
    assert segments[(5, 5)] == "Champions" and segments[(1, 5)] == "Can't Lose Them"


@pytest.mark.parametrize(
    ("value", "score"), [(0.5, 1), (1.0, 1), (1.5, 2), (4.0, 4), (4.5, 5), (None, 1)]
)
def test_quintile_score_boundaries(spark, value, score):
    cuts = rfm.QuintileCuts("v", (1.0, 2.0, 3.0, 4.0))
    df = spark.createDataFrame([(value,)], "v double")
    assert df.select(cuts.score()).first()[0] == score


def test_recency_scores_reverse_and_null_is_worst(spark):
    cuts = rfm.QuintileCuts("v", (1.0, 2.0, 3.0, 4.0), higher_is_better=False)
    df = spark.createDataFrame([(0.5,), (4.5,), (None,)], "v double")
    assert [r[0] for r in df.select(cuts.score()).collect()] == [5, 1, 1]
