"""The sweep benchmark's inputs: scaled customer tables and the plain scikit-learn loop."""

from __future__ import annotations

import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from retail_segmentation.common.errors import ConfigError
from retail_segmentation.ml.clustering import SweepParams
from retail_segmentation.ml.sweep_cost import (
    JITTER,
    SweepCost,
    parse_customers,
    parse_engines,
    plain_sklearn_seconds,
    row,
    scaled_customers,
)

SCHEMA = "customer_id string, frequency int, monetary double, country string"
ROWS = [("c1", 2, 10.0, "UK"), ("c2", 5, 250.5, "FR"), ("c3", 1, 3.25, "UK")]


def test_scaling_up_keeps_every_customer_and_jitters_only_the_copies(spark):
    source = spark.createDataFrame(ROWS, SCHEMA)
    scaled = scaled_customers(source, 8)

    assert scaled.schema == source.schema
    assert scaled.count() == 8 and scaled.select("customer_id").distinct().count() == 8
    # copy 0 is the source itself, unchanged
    assert_df_equality(
        scaled.where(~F.col("customer_id").contains("~")), source, ignore_row_order=True
    )
    copies = scaled.where(F.col("customer_id").contains("~")).withColumn(
        "source_id", F.split("customer_id", "~")[0]
    )
    joined = copies.join(
        source.select(
            F.col("customer_id").alias("source_id"),
            F.col("monetary").alias("m0"),
            F.col("frequency").alias("f0"),
            F.col("country").alias("country0"),
        ),
        "source_id",
    ).collect()
    assert len(joined) == 5
    for r in joined:
        assert r["country"] == r["country0"]  # text is copied as it is
        assert abs(r["monetary"] / r["m0"] - 1) <= JITTER + 1e-9
        assert abs(r["frequency"] - r["f0"]) <= max(1, r["f0"] * JITTER)


def test_scaling_down_samples_the_source_and_is_repeatable(spark):
    source = spark.createDataFrame(ROWS, SCHEMA)
    first = scaled_customers(source, 2)
    assert_df_equality(first, scaled_customers(source, 2), ignore_row_order=True)
    assert first.join(source, list(source.columns), "left_anti").count() == 0
    assert first.count() == 2


def test_the_plain_loop_fits_every_candidate_and_names_the_best():
    params = SweepParams(k_min=2, k_max=3)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(60)],
            **{
                c: [float((i % 3) * 100 + i % 7) for i in range(60)]
                for c in params.features.input_columns
            },
        }
    )
    seconds, best = plain_sklearn_seconds(frame, params)
    assert seconds > 0
    assert best.split(" ")[0] in {"kmeans-k2", "kmeans-k3", "gmm-k2", "gmm-k3"}


def test_parameters_are_checked_and_a_row_shows_ratios():
    assert parse_customers("5000, 240") == [240, 5000]
    assert parse_engines("sklearn") == ["sklearn"]
    with pytest.raises(ConfigError, match="parameter customers='10'"):
        parse_customers("10")
    with pytest.raises(ConfigError, match="parameter engines='torch'"):
        parse_engines("torch")
    cost = SweepCost(5000, {"sklearn": 3.0, "spark": None}, 1.5, {"sklearn": "kmeans-k4"})
    assert cost.ratio("sklearn") == 2.0 and cost.ratio("spark") is None
    assert "2.0x" in row(cost) and " - " in row(cost)
