"""The retraining policy on literal figures, and its drift measure on a few literal rows."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from retail_segmentation.common.errors import ConfigError
from retail_segmentation.ml.retrain_policy import (
    RetrainPolicy,
    bin_counts,
    decide,
    decile_edges,
    population_stability_index,
    training_profile,
    training_profile_on_driver,
)

TODAY = dt.date(2011, 12, 10)


def test_psi_is_zero_for_the_same_shares_and_grows_with_the_shift():
    assert population_stability_index([10, 20, 70], [1, 2, 7]) == pytest.approx(0.0)
    shifted = population_stability_index([0.5, 0.5], [0.25, 0.75])
    assert shifted == pytest.approx(0.25 * math.log(0.5) * -1 + 0.25 * math.log(1.5))
    assert population_stability_index([0.5, 0.5], [0.1, 0.9]) > shifted
    # an empty bin counts as a share of 1e-4: large, finite
    assert population_stability_index([0.5, 0.5], [0.0, 1.0]) == pytest.approx(
        (1e-4 - 0.5) * math.log(1e-4 / 0.5) + 0.5 * math.log(2)
    )
    with pytest.raises(ValueError, match="same bins"):
        population_stability_index([1, 2], [1, 2, 3])


def test_decide_names_every_reason_that_holds():
    policy = RetrainPolicy(max_age_days=30, max_new_customer_share=0.1, max_psi=0.25)
    assert decide(policy, TODAY, None).reasons == ("no champion yet",)
    calm = decide(policy, TODAY, TODAY - dt.timedelta(days=3), 0.02, {"recency": 0.04})
    assert not calm.retrain
    assert calm.reasons == (
        "the champion is 3 days old, 2.0% of the customers are new, largest PSI recency 0.040",
    )
    everything = decide(
        policy,
        TODAY,
        TODAY - dt.timedelta(days=30),
        0.15,
        {"recency": 0.31, "monetary": 0.1, "frequency": 0.26},
        forced=True,
    )
    assert everything.retrain
    assert everything.reasons == (
        "forced",
        "the champion is 30 days old (max_age_days=30)",
        "15.0% of the customers are new to the champion (max_new_customer_share=10%)",
        "feature drift: PSI frequency 0.260, recency 0.310 (max_psi=0.25)",
    )
    never_on_age = RetrainPolicy(max_age_days=0)
    assert not decide(never_on_age, TODAY, TODAY - dt.timedelta(days=400), 0.0, {}).retrain


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_age_days", -1), ("max_new_customer_share", 0), ("max_psi", 0)],
)
def test_policy_thresholds_are_checked(field, value):
    with pytest.raises(ConfigError, match=f"parameter {field}="):
        RetrainPolicy(**{field: value})


def test_deciles_and_bins_on_literal_rows(spark):
    training = spark.createDataFrame([(float(v),) for v in range(1, 101)], "recency double")
    edges = decile_edges(training, ["recency"])
    assert edges == {"recency": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]}
    assert bin_counts(training, edges) == {"recency": [10] * 10 + [0]}
    today = spark.createDataFrame([(5.0,), (15.0,), (95.0,), (95.5,), (None,)], "recency double")
    # bins 0..9, then the nulls
    assert bin_counts(today, edges) == {"recency": [1, 1, 0, 0, 0, 0, 0, 0, 0, 2, 1]}


@pytest.mark.parametrize("customers", [7, 240, 4_999])
def test_the_profile_on_the_driver_equals_spark_s(spark, customers):
    """The scikit-learn sweep profiles its customers with numpy: the same edges and counts as
    the two Spark actions, with ties (a few distinct integers), nulls and skewed doubles, and
    a column with no value at all."""
    rng = np.random.default_rng(customers)
    rows = [
        (
            None if i % 13 == 0 else int(rng.integers(0, 6)),
            None if i % 17 == 0 else float(round(rng.lognormal(5, 1.5), 2)),
            None,
        )
        for i in range(customers)
    ]
    schema = "frequency long, monetary double, empty double"
    columns = ["frequency", "monetary", "empty"]
    input_df = spark.createDataFrame(rows, schema)
    on_spark = training_profile(input_df, columns, TODAY)
    on_driver = training_profile_on_driver(input_df.toPandas(), columns, TODAY)
    assert on_driver == on_spark
    assert on_driver.edges["empty"] == [] and on_driver.counts["empty"] == [0, customers]
    assert sum(on_driver.counts["monetary"]) == customers
