"""Scoring run names, segment assignment and the stamped output tables on literal rows."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.sql import types as T

from retail_segmentation.ml import scoring
from retail_segmentation.ml.scoring import ScoringRun

RFM_DDL = (
    "customer_id string, recency_days int, frequency long, monetary double, tenure_days int, "
    "r_score int, f_score int, m_score int, rfm_segment string"
)
BEHAVIOR_DDL = (
    "customer_id string, avg_basket_value double, avg_items_per_invoice double, "
    "distinct_products long, cancellation_rate double, weekend_share double, country string"
)
ASSIGNED_DDL = (
    "customer_id string, segment_id int, membership_probability double, recency_days int, "
    "frequency long, monetary double, tenure_days int, r_score int, f_score int, m_score int, "
    "avg_basket_value double, avg_items_per_invoice double, distinct_products long, "
    "cancellation_rate double, weekend_share double"
)
RUN = ScoringRun(
    model_name="main.retail.customer_segmentation",
    model_version="3",
    as_of_date=dt.date(2011, 12, 10),
    scored_at=dt.datetime(2011, 12, 11, 6, 30, 0),
    run_id="score:main.retail.customer_segmentation@v3/1a2b3c4d:gold_customer_rfm@v2",
)


@pytest.fixture
def rfm_df(spark):
    return spark.createDataFrame(
        [
            ("a", 3, 12, 2400.5, 300, 5, 5, 5, "Champions"),
            ("b", 200, 1, -15.0, 200, 1, 1, 1, "Lost"),  # net returns: negative monetary
            ("c", 40, 2, 80.0, 41, 3, 2, 2, "Need Attention"),
        ],
        RFM_DDL,
    )


@pytest.fixture
def behavior_df(spark):
    return spark.createDataFrame(
        [
            ("a", 200.04, 30.5, 57, 0.0769, 0.25, "United Kingdom"),
            ("b", 12.0, 4.0, 3, 0.5, None, "France"),  # no weekend share known
            # c has no behaviour row; z has no RFM row (not a gold customer)
            ("z", 1.0, 1.0, 1, 0.0, 0.0, "Spain"),
        ],
        BEHAVIOR_DDL,
    )


def test_scoring_run_id_names_model_version_run_and_data():
    assert (
        scoring.scoring_run_id(
            "customer_segmentation",
            "3",
            "1a2b3c4d5e6f7a8b",
            "gold_customer_rfm@v2,gold_customer_behavior@v5",
        )
        == "score:customer_segmentation@v3/1a2b3c4d:gold_customer_rfm@v2,gold_customer_behavior@v5"
    )
    # A run id shorter than 8 characters (or none) is kept as it is.
    assert scoring.scoring_run_id("m", "1", "", "t@v0") == "score:m@v1/:t@v0"


def test_assign_segments_without_probabilities(spark, rfm_df, behavior_df):
    # What a KMeans pipeline's transform gives: its inputs and the prediction.
    clustered_df = spark.createDataFrame(
        [("a", 12, 0), ("b", 1, 1), ("c", 2, 1), ("y", 5, 0)],  # y: no RFM row, dropped
        "customer_id string, frequency long, prediction int",
    )
    expected_df = spark.createDataFrame(
        [
            ("a", 0, None, 3, 12, 2400.5, 300, 5, 5, 5, 200.04, 30.5, 57, 0.0769, 0.25),
            ("b", 1, None, 200, 1, -15.0, 200, 1, 1, 1, 12.0, 4.0, 3, 0.5, None),
            ("c", 1, None, 40, 2, 80.0, 41, 3, 2, 2, None, None, None, None, None),
        ],
        ASSIGNED_DDL,
    )
    actual_df = scoring.assign_segments(clustered_df, rfm_df, behavior_df)
    assert_df_equality(actual_df, expected_df, ignore_row_order=True, ignore_nullable=True)


def test_assign_segments_keeps_the_gmm_membership_probability(spark, rfm_df, behavior_df):
    clustered_df = spark.createDataFrame(
        [
            ("a", Vectors.dense(0.9, 0.1), 0),
            ("b", Vectors.dense(0.000012, 0.999988), 1),  # rounded to 4 decimals
            ("c", Vectors.dense(0.5, 0.5), 1),  # a tie: the probability is still 0.5
        ],
        T.StructType(
            [
                T.StructField("customer_id", T.StringType()),
                T.StructField("probability", VectorUDT()),
                T.StructField("prediction", T.IntegerType()),
            ]
        ),
    )
    expected_df = spark.createDataFrame(
        [
            ("a", 0, 0.9, 3, 12, 2400.5, 300, 5, 5, 5, 200.04, 30.5, 57, 0.0769, 0.25),
            ("b", 1, 1.0, 200, 1, -15.0, 200, 1, 1, 1, 12.0, 4.0, 3, 0.5, None),
            ("c", 1, 0.5, 40, 2, 80.0, 41, 3, 2, 2, None, None, None, None, None),
        ],
        ASSIGNED_DDL,
    )
    actual_df = scoring.assign_segments(clustered_df, rfm_df, behavior_df)
    assert_df_equality(actual_df, expected_df, ignore_row_order=True, ignore_nullable=True)


def test_customer_segments_add_persona_model_and_run(spark):
    assigned_df = spark.createDataFrame(
        [("a", 0, 0.9, 3), ("b", 1, None, 200), ("c", 1, 0.5, 40)],  # b: a KMeans-style null
        "customer_id string, segment_id int, membership_probability double, recency_days int",
    )
    profiles_df = spark.createDataFrame(
        [(0, 1, "VIP"), (1, 2, "Churned")], "segment_id int, customers long, persona string"
    )
    model, version, as_of, at, run_id = (
        RUN.model_name,
        "3",
        dt.date(2011, 12, 10),
        dt.datetime(2011, 12, 11, 6, 30),
        RUN.run_id,
    )
    expected_df = spark.createDataFrame(
        [
            ("a", 0, "VIP", 0.9, model, version, as_of, at, run_id),
            ("b", 1, "Churned", None, model, version, as_of, at, run_id),
            ("c", 1, "Churned", 0.5, model, version, as_of, at, run_id),
        ],
        "customer_id string, segment_id int, persona string, membership_probability double, "
        "model_name string, model_version string, as_of_date date, scored_at timestamp, "
        "scoring_run_id string",
    )
    actual_df = scoring.customer_segments(assigned_df, profiles_df, RUN)
    assert_df_equality(actual_df, expected_df, ignore_row_order=True, ignore_nullable=True)


def test_stamped_profiles_keep_every_column_and_add_the_model(spark):
    profiles_df = spark.createDataFrame(
        [(0, 1, 0.3333, 200.04, "VIP"), (1, 2, 0.6667, None, "Churned")],  # no behaviour means
        "segment_id int, customers long, share double, mean_basket_value double, persona string",
    )
    expected_df = spark.createDataFrame(
        [
            (0, 1, 0.3333, 200.04, "VIP", RUN.model_name, "3", RUN.as_of_date, RUN.scored_at),
            (1, 2, 0.6667, None, "Churned", RUN.model_name, "3", RUN.as_of_date, RUN.scored_at),
        ],
        "segment_id int, customers long, share double, mean_basket_value double, persona string, "
        "model_name string, model_version string, as_of_date date, scored_at timestamp",
    )
    actual_df = scoring.stamped_profiles(profiles_df, RUN)
    assert_df_equality(actual_df, expected_df, ignore_row_order=True, ignore_nullable=True)
