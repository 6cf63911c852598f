"""Score every customer with the champion model: segments, segment profiles with personas,
and the segment history.

The champion is the registered pyfunc (`SegmentModel`), whichever engine fitted it. Up to
`DRIVER_SCORING_MAX_CUSTOMERS` it scores the gold table on the driver, in one pandas frame of
a few megabytes; beyond, in Spark, batch by batch (`mapInPandas`), so a table of any size is
scored in bounded memory. The model scores each row on its own: the same rows give the same
segments on the driver and in Spark, however they are partitioned.

`gold_segment_history` keeps one row per customer per scoring run; a scoring run is named by
the model version and the gold versions it read, and rewriting a run replaces only that run's
rows (Delta replaceWhere), so a rerun never duplicates history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from retail_segmentation.gold.profiles import segment_profiles, with_persona
from retail_segmentation.ml.segment_model import PROBABILITY_COLUMN, SEGMENT_COLUMN

RFM_COLUMNS = (
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "r_score",
    "f_score",
    "m_score",
)
BEHAVIOR_COLUMNS = (
    "avg_basket_value",
    "avg_items_per_invoice",
    "distinct_products",
    "cancellation_rate",
    "weekend_share",
)


@dataclass(frozen=True)
class ScoringRun:
    """What names one scoring run: the model version and the data it scored."""

    model_name: str
    model_version: str
    as_of_date: dt.date
    scored_at: dt.datetime
    run_id: str


def scoring_run_id(
    model_name: str, model_version: str, model_run_id: str, versions_tag: str
) -> str:
    """e.g. score:customer_segmentation@v3/1a2b3c4d:gold_customer_rfm@v2,...: the model's
    training run is part of the name, so a rebuilt registry's "v1" is not taken for the old."""
    return f"score:{model_name}@v{model_version}/{model_run_id[:8]}:{versions_tag}"


PREDICTIONS_DDL = "customer_id string, segment_id int, membership_probability double"
# Up to this many customers the champion scores on the driver: their model input is a few
# megabytes (the scikit-learn sweep already holds it there up to 500,000), and no Python
# worker has to start and load the model. On the 240 customers of the default run, a score
# task in a new process took 12.7-13.0 s against 14.5-15.0 s in Spark (BENCHMARKS.md).
DRIVER_SCORING_MAX_CUSTOMERS = 10_000


def _predicted(model, columns: list[str], batch: pd.DataFrame) -> pd.DataFrame:
    """customer_id, segment_id, membership_probability of the rows of one pandas batch."""
    predicted = model.predict(batch[columns])
    return pd.DataFrame(
        {
            "customer_id": batch["customer_id"].to_numpy(),
            "segment_id": predicted[SEGMENT_COLUMN].astype("int32").to_numpy(),
            "membership_probability": predicted[PROBABILITY_COLUMN].astype("float64").to_numpy(),
        }
    )


def predict_segments(model, input_df: DataFrame, on_driver: bool = False) -> DataFrame:
    """customer_id, segment_id, membership_probability of every row of `input_df`, predicted
    by `model` (an MLflow pyfunc taking the gold columns of its signature): on the driver in
    one pandas frame when `on_driver` (for at most `DRIVER_SCORING_MAX_CUSTOMERS` rows),
    otherwise batch by batch in the Python workers. A KMeans model's null probability stays
    null."""
    columns = list(model.metadata.get_input_schema().input_names())
    selected_df = input_df.select(
        F.col("customer_id").cast("string"), *[F.col(c).cast("double") for c in columns]
    )
    if on_driver:
        batch = selected_df.toPandas()
        rows = [] if batch.empty else _predicted(model, columns, batch)
        predicted_df = input_df.sparkSession.createDataFrame(rows, PREDICTIONS_DDL)
    else:

        def predict(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                yield _predicted(model, columns, batch)

        predicted_df = selected_df.mapInPandas(predict, PREDICTIONS_DDL)
    probability = F.col("membership_probability")
    return predicted_df.withColumn(
        "membership_probability", F.when(~F.isnan(probability), probability)
    )


def assign_segments(
    predicted_df: DataFrame, rfm_df: DataFrame, behavior_df: DataFrame
) -> DataFrame:
    """Customers with their segment id, membership probability and the gold measures the
    profiles summarise (customers without an RFM row are left out)."""
    return (
        predicted_df.select(
            "customer_id",
            F.col("segment_id").cast("int"),
            F.col("membership_probability").cast("double"),
        )
        .join(rfm_df.select("customer_id", *RFM_COLUMNS), "customer_id")
        .join(behavior_df.select("customer_id", *BEHAVIOR_COLUMNS), "customer_id", "left")
    )


def profiles_with_personas(assigned_df: DataFrame) -> DataFrame:
    """One row per segment: size, share, mean measures and persona."""
    return with_persona(segment_profiles(assigned_df))


def customer_segments(assigned_df: DataFrame, profiles_df: DataFrame, run: ScoringRun) -> DataFrame:
    """`gold_customer_segments`: one row per customer with segment, persona and the model."""
    return assigned_df.join(
        F.broadcast(profiles_df.select("segment_id", "persona")), "segment_id"
    ).select(
        "customer_id",
        "segment_id",
        "persona",
        "membership_probability",
        F.lit(run.model_name).alias("model_name"),
        F.lit(run.model_version).alias("model_version"),
        F.lit(run.as_of_date).cast("date").alias("as_of_date"),
        F.lit(run.scored_at).cast("timestamp").alias("scored_at"),
        F.lit(run.run_id).alias("scoring_run_id"),
    )


def stamped_profiles(profiles_df: DataFrame, run: ScoringRun) -> DataFrame:
    """`gold_segment_profiles`: the profiles with the model and run that produced them."""
    return profiles_df.select(
        "*",
        F.lit(run.model_name).alias("model_name"),
        F.lit(run.model_version).alias("model_version"),
        F.lit(run.as_of_date).cast("date").alias("as_of_date"),
        F.lit(run.scored_at).cast("timestamp").alias("scored_at"),
    )
