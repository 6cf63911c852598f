"""Clustering features from the gold customer tables, as Spark ML stages.

The stages (log scaling, assembling, standardising, optional PCA) become the first stages of
every logged model, so a registered model takes plain gold columns and can score new gold
tables, or be compared with a newer model on the same data, without this module.

| feature set    | columns                                                              |
|----------------|----------------------------------------------------------------------|
| `rfm`          | recency_days, log frequency, log monetary                            |
| `rfm_behavior` | the above + log basket value, log distinct products, cancellation rate |

Amounts and counts are heavy-tailed, so they enter as ln(1 + x) (net monetary below zero, a
customer who returned more than they bought, enters as 0); then every feature is standardised.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.ml import Pipeline, PipelineModel, Transformer
from pyspark.ml.feature import PCA, SQLTransformer, StandardScaler, VectorAssembler
from pyspark.sql import DataFrame

from retail_segmentation.common.errors import ConfigError

FEATURES_COL = "features"

# feature set -> (input column, log-scaled?)
FEATURE_SETS: dict[str, tuple[tuple[str, bool], ...]] = {
    "rfm": (("recency_days", False), ("frequency", True), ("monetary", True)),
    "rfm_behavior": (
        ("recency_days", False),
        ("frequency", True),
        ("monetary", True),
        ("avg_basket_value", True),
        ("distinct_products", True),
        ("cancellation_rate", False),
    ),
}


@dataclass(frozen=True)
class FeatureSpec:
    """Which features the models see: a named feature set and optional PCA components."""

    feature_set: str = "rfm"
    pca_components: int = 0  # 0 = no PCA

    def __post_init__(self) -> None:
        if self.feature_set not in FEATURE_SETS:
            raise ConfigError(
                f"parameter feature_set={self.feature_set!r} is unknown: expected one of "
                f"{', '.join(sorted(FEATURE_SETS))}"
            )
        n = len(FEATURE_SETS[self.feature_set])
        if not 0 <= self.pca_components <= n:
            raise ConfigError(
                f"parameter pca_components={self.pca_components} is out of range: expected 0 "
                f"(no PCA) to {n}, the number of features in {self.feature_set!r}"
            )

    @property
    def input_columns(self) -> tuple[str, ...]:
        """The gold columns a model built from this spec reads."""
        return tuple(column for column, _ in FEATURE_SETS[self.feature_set])


def _feature_name(column: str, is_log: bool) -> str:
    return f"{column}_log" if is_log else f"{column}_value"


def feature_stages(spec: FeatureSpec) -> list[Transformer]:
    """Unfitted stages: log scaling (SQL), assembling, standardising, optional PCA, ending in
    the `features` vector column."""
    # Column names come from FEATURE_SETS, never from parameters, so this SQL is fixed text.
    expressions = ", ".join(
        (
            f"ln(1 + greatest(coalesce(CAST({c} AS DOUBLE), 0D), 0D))"
            if is_log
            else f"coalesce(CAST({c} AS DOUBLE), 0D)"
        )
        + f" AS {_feature_name(c, is_log)}"
        for c, is_log in FEATURE_SETS[spec.feature_set]
    )
    names = feature_names(spec)
    scaled_col = FEATURES_COL if spec.pca_components == 0 else "scaled_features"
    stages: list = [
        SQLTransformer(statement=f"SELECT *, {expressions} FROM __THIS__"),
        VectorAssembler(inputCols=names, outputCol="raw_features"),
        StandardScaler(inputCol="raw_features", outputCol=scaled_col, withMean=True, withStd=True),
    ]
    if spec.pca_components:
        stages.append(PCA(k=spec.pca_components, inputCol=scaled_col, outputCol=FEATURES_COL))
    return stages


def customer_features_input(rfm_df: DataFrame, behavior_df: DataFrame) -> DataFrame:
    """One row per customer with every column any feature set reads (the model input)."""
    behavior_columns = sorted(
        {c for cols in FEATURE_SETS.values() for c, _ in cols} - set(rfm_df.columns)
    )
    return rfm_df.select("customer_id", "recency_days", "frequency", "monetary").join(
        behavior_df.select("customer_id", *behavior_columns), "customer_id", "left"
    )


def fit_features(input_df: DataFrame, spec: FeatureSpec) -> PipelineModel:
    """Fit the feature stages (scaler means/deviations, PCA) on the model input."""
    return Pipeline(stages=feature_stages(spec)).fit(input_df)


def model_input_columns(spec: FeatureSpec) -> list[str]:
    """customer_id plus the columns the spec reads, in a fixed order."""
    return ["customer_id", *spec.input_columns]


def feature_names(spec: FeatureSpec) -> list[str]:
    """Names of the assembled features before scaling (for profiles and logs)."""
    return [_feature_name(c, is_log) for c, is_log in FEATURE_SETS[spec.feature_set]]
