"""Feature spec validation, the log/standardise/PCA stages and the model input on literal rows."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality
from pyspark.ml.functions import vector_to_array
from pyspark.sql import functions as F

from retail_segmentation.common.errors import ConfigError
from retail_segmentation.ml import features
from retail_segmentation.ml.features import FeatureSpec

INPUT_DDL = (
    "customer_id string, recency_days int, frequency long, monetary double, "
    "avg_basket_value double, cancellation_rate double, distinct_products long"
)
# ln(1 + x) to 6 decimals: ln 2, ln 1.5, ln 3, ln 10, ln 101.
LN_2, LN_1_5, LN_3, LN_10, LN_101 = 0.693147, 0.405465, 1.098612, 2.302585, 4.615121


@pytest.fixture
def input_df(spark):
    return spark.createDataFrame(
        [
            ("a", 10, 9, 100.0, 1.0, 0.25, 2),
            # Returned more than bought: net monetary below zero enters as ln(1 + 0) = 0.
            ("b", 0, 1, -50.0, 0.5, 0.0, 0),
            # No behaviour row (the left join's nulls) and an unknown recency: every one is 0.
            ("c", None, None, None, None, None, None),
            ("d", 365, 2, 0.0, 2.0, 1.0, 1),
        ],
        INPUT_DDL,
    )


def test_feature_spec_defaults_and_columns():
    spec = FeatureSpec()
    assert (spec.feature_set, spec.pca_components) == ("rfm", 0)
    assert spec.input_columns == ("recency_days", "frequency", "monetary")
    assert features.feature_names(spec) == ["recency_days_value", "frequency_log", "monetary_log"]
    assert features.model_input_columns(FeatureSpec("rfm_behavior")) == [
        "customer_id",
        "recency_days",
        "frequency",
        "monetary",
        "avg_basket_value",
        "distinct_products",
        "cancellation_rate",
    ]


@pytest.mark.parametrize(
    ("feature_set", "pca_components", "parameter"),
    [
        ("rfm_plus", 0, "feature_set='rfm_plus'"),
        ("", 0, "feature_set=''"),
        ("rfm", -1, "pca_components=-1"),
        ("rfm", 4, "pca_components=4"),  # rfm has 3 features
        ("rfm_behavior", 7, "pca_components=7"),  # rfm_behavior has 6
    ],
)
def test_feature_spec_rejects_bad_parameters(feature_set, pca_components, parameter):
    with pytest.raises(ConfigError, match=f"parameter {parameter}"):
        FeatureSpec(feature_set, pca_components)


@pytest.mark.parametrize(("feature_set", "pca_components"), [("rfm", 3), ("rfm_behavior", 6)])
def test_feature_spec_accepts_as_many_components_as_features(feature_set, pca_components):
    assert FeatureSpec(feature_set, pca_components).pca_components == pca_components


def test_sql_stage_logs_counts_and_amounts_and_zeroes_nulls(spark, input_df):
    spec = FeatureSpec("rfm_behavior")
    sql_stage = features.feature_stages(spec)[0]
    names = features.feature_names(spec)
    actual_df = sql_stage.transform(input_df).select(
        "customer_id", *[F.round(c, 6).alias(c) for c in names]
    )
    expected_df = spark.createDataFrame(
        [
            ("a", 10.0, LN_10, LN_101, LN_2, LN_3, 0.25),
            ("b", 0.0, LN_2, 0.0, LN_1_5, 0.0, 0.0),
            ("c", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
            ("d", 365.0, LN_3, 0.0, LN_3, LN_2, 1.0),
        ],
        "customer_id string, recency_days_value double, frequency_log double, "
        "monetary_log double, avg_basket_value_log double, distinct_products_log double, "
        "cancellation_rate_value double",
    )
    assert_df_equality(actual_df, expected_df, ignore_row_order=True, ignore_nullable=True)


def _feature_moments(features_df):
    """Per vector position: mean and sample standard deviation, to 6 decimals."""
    return (
        features_df.select(F.posexplode(vector_to_array(features.FEATURES_COL)))
        .groupBy(F.col("pos").alias("position"))
        .agg(
            F.round(F.avg("col"), 6).alias("mean"),
            F.round(F.stddev_samp("col"), 6).alias("stddev"),
        )
    )


def test_fit_features_standardises_every_feature(spark, input_df):
    spec = FeatureSpec("rfm_behavior")
    features_df = features.fit_features(input_df, spec).transform(input_df)
    expected_df = spark.createDataFrame(
        [(i, 0.0, 1.0) for i in range(6)], "position int, mean double, stddev double"
    )
    assert_df_equality(
        _feature_moments(features_df), expected_df, ignore_row_order=True, ignore_nullable=True
    )


def test_a_constant_feature_is_standardised_to_zero(spark, input_df):
    # Every customer bought once: zero deviation must not divide by zero.
    constant_df = input_df.withColumn("frequency", F.lit(1).cast("long"))
    features_df = features.fit_features(constant_df, FeatureSpec()).transform(constant_df)
    expected_df = spark.createDataFrame(
        [(0, 0.0, 1.0), (1, 0.0, 0.0), (2, 0.0, 1.0)], "position int, mean double, stddev double"
    )
    assert_df_equality(
        _feature_moments(features_df), expected_df, ignore_row_order=True, ignore_nullable=True
    )


def test_pca_variant_yields_pca_components_features(spark, input_df):
    spec = FeatureSpec("rfm_behavior", pca_components=2)
    model = features.fit_features(input_df, spec)
    actual_df = model.transform(input_df).select(
        "customer_id",
        F.size(vector_to_array("scaled_features")).alias("scaled_size"),
        F.size(vector_to_array(features.FEATURES_COL)).alias("features_size"),
    )
    expected_df = spark.createDataFrame(
        [("a", 6, 2), ("b", 6, 2), ("c", 6, 2), ("d", 6, 2)],
        "customer_id string, scaled_size int, features_size int",
    )
    assert_df_equality(actual_df, expected_df, ignore_row_order=True, ignore_nullable=True)
    assert [type(s).__name__ for s in model.stages] == [
        "SQLTransformer",
        "VectorAssembler",
        "StandardScalerModel",
        "PCAModel",
    ]


def test_customer_features_input_left_joins_behaviour(spark):
    rfm_df = spark.createDataFrame(
        [("a", 10, 3, 120.5, 5), ("b", 200, 1, -4.0, 1), ("c", 30, 2, 60.0, 3)],
        "customer_id string, recency_days int, frequency long, monetary double, r_score int",
    )
    behavior_df = spark.createDataFrame(
        [
            ("a", 40.17, 12, 0.25, "France"),
            ("b", 8.0, 1, None, "Spain"),  # null rate stays null here; the SQL stage zeroes it
            ("z", 99.0, 9, 0.5, "Italy"),  # no RFM row: not a customer to model
        ],
        "customer_id string, avg_basket_value double, distinct_products long, "
        "cancellation_rate double, country string",
    )
    expected_df = spark.createDataFrame(
        [
            ("a", 10, 3, 120.5, 40.17, 0.25, 12),
            ("b", 200, 1, -4.0, 8.0, None, 1),
            ("c", 30, 2, 60.0, None, None, None),  # no behaviour row: nulls
        ],
        "customer_id string, recency_days int, frequency long, monetary double, "
        "avg_basket_value double, cancellation_rate double, distinct_products long",
    )
    actual_df = features.customer_features_input(rfm_df, behavior_df)
    assert_df_equality(actual_df, expected_df, ignore_row_order=True, ignore_nullable=True)
