"""Fitting one clustering model and measuring it, all in Spark; choosing the winner.

Silhouette (squared Euclidean, Spark's ClusteringEvaluator) is computed on the features the
model saw, so it never leaves the cluster. Only aggregates come back to the driver: cluster
sizes, per-cluster means, and the contingency table against known profiles.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pyspark.ml import Estimator, PipelineModel
from pyspark.ml.clustering import GaussianMixture, KMeans
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from retail_segmentation.common.errors import ConfigError, RetailSegError
from retail_segmentation.ml.features import FEATURES_COL, FeatureSpec

KMEANS = "kmeans"
GMM = "gmm"
ALGORITHMS = (KMEANS, GMM)
PREDICTION_COL = "prediction"
PROBABILITY_COL = "probability"


@dataclass(frozen=True)
class SweepParams:
    """What the sweep tries: algorithms x k range on one feature spec, seeded."""

    algorithms: tuple[str, ...] = ALGORITHMS
    k_min: int = 2
    k_max: int = 8
    seed: int = 42
    max_iter: int = 50
    min_cluster_share: float = 0.02
    features: FeatureSpec = field(default_factory=FeatureSpec)

    def __post_init__(self) -> None:
        unknown = [a for a in self.algorithms if a not in ALGORITHMS]
        if unknown or not self.algorithms:
            raise ConfigError(
                f"parameter algorithms={','.join(self.algorithms)!r} is not valid: expected a "
                f"comma-separated subset of {', '.join(ALGORITHMS)}"
            )
        if not 2 <= self.k_min <= self.k_max <= 50:
            raise ConfigError(
                f"parameters k_min={self.k_min}, k_max={self.k_max} are not a valid range: "
                "expected 2 <= k_min <= k_max <= 50"
            )
        if self.max_iter < 1:
            raise ConfigError(f"parameter max_iter={self.max_iter} must be at least 1")
        if not 0.0 <= self.min_cluster_share < 0.5:
            raise ConfigError(
                f"parameter min_cluster_share={self.min_cluster_share} is out of range: "
                "expected a share of customers in [0, 0.5)"
            )

    @property
    def ks(self) -> range:
        """Every k the sweep fits."""
        return range(self.k_min, self.k_max + 1)


@dataclass(frozen=True)
class FitResult:
    """One fitted candidate and its measures."""

    algorithm: str
    k: int
    silhouette: float
    cluster_sizes: tuple[int, ...]
    wcss: float | None = None  # KMeans: within-cluster sum of squared distances
    log_likelihood: float | None = None  # GaussianMixture
    adjusted_rand_index: float | None = None
    run_id: str | None = None

    @property
    def smallest_cluster_share(self) -> float:
        """Share of customers in the smallest cluster (0 when a cluster came out empty)."""
        total = sum(self.cluster_sizes)
        return min(self.cluster_sizes) / total if total else 0.0

    @property
    def name(self) -> str:
        """Short label, e.g. kmeans-k4 (the child run's name)."""
        return f"{self.algorithm}-k{self.k}"


def clusterer(algorithm: str, k: int, seed: int, max_iter: int) -> Estimator:
    """An unfitted KMeans or GaussianMixture reading the `features` column."""
    if algorithm == KMEANS:
        return KMeans(
            k=k, seed=seed, maxIter=max_iter, featuresCol=FEATURES_COL, predictionCol=PREDICTION_COL
        )
    if algorithm == GMM:
        return GaussianMixture(
            k=k,
            seed=seed,
            maxIter=max_iter,
            featuresCol=FEATURES_COL,
            predictionCol=PREDICTION_COL,
            probabilityCol=PROBABILITY_COL,
        )
    raise ConfigError(f"parameter algorithm={algorithm!r} is unknown: expected one of {ALGORITHMS}")


def silhouette(clustered_df: DataFrame) -> float:
    """Mean silhouette (squared Euclidean) of the predictions over the `features` column."""
    evaluator = ClusteringEvaluator(
        featuresCol=FEATURES_COL,
        predictionCol=PREDICTION_COL,
        metricName="silhouette",
        distanceMeasure="squaredEuclidean",
    )
    return float(evaluator.evaluate(clustered_df))


def fit_candidate(
    features_df: DataFrame, algorithm: str, k: int, params: SweepParams
) -> tuple[object, DataFrame, FitResult]:
    """Fit one clusterer on prepared features; returns (model, predictions, measures)."""
    model = clusterer(algorithm, k, params.seed, params.max_iter).fit(features_df)
    summary = model.summary
    sizes = tuple(int(n) for n in summary.clusterSizes) + (0,) * (k - len(summary.clusterSizes))
    clustered_df = model.transform(features_df)
    # Silhouette is undefined with a single non-empty cluster; such a fit is degenerate anyway.
    score = silhouette(clustered_df) if sum(1 for n in sizes if n) > 1 else -1.0
    result = FitResult(
        algorithm=algorithm,
        k=k,
        silhouette=score,
        cluster_sizes=sizes,
        wcss=float(summary.trainingCost) if algorithm == KMEANS else None,
        log_likelihood=float(summary.logLikelihood) if algorithm == GMM else None,
    )
    return model, clustered_df, result


def membership_probability(clustered_df: DataFrame) -> DataFrame:
    """Add `membership_probability`: the GMM probability of the assigned segment (null for
    models without probabilities, such as KMeans)."""
    if PROBABILITY_COL in clustered_df.columns:
        value = F.round(F.array_max(vector_to_array(F.col(PROBABILITY_COL))), 4)
    else:
        value = F.lit(None).cast("double")
    return clustered_df.withColumn("membership_probability", value)


def cluster_profile(clustered_df: DataFrame, columns: Sequence[str]) -> DataFrame:
    """Per cluster: customers and the mean of each input column (a small table)."""
    return (
        clustered_df.groupBy(F.col(PREDICTION_COL).alias("segment_id"))
        .agg(
            F.count(F.lit(1)).alias("customers"),
            *[F.round(F.avg(c), 2).alias(f"mean_{c}") for c in columns],
        )
        .orderBy("segment_id")
    )


def contingency(clustered_df: DataFrame, truth_df: DataFrame) -> list[tuple[int, str, int]]:
    """(segment, true profile, customers) for customers present in both frames."""
    rows = (
        clustered_df.select("customer_id", PREDICTION_COL)
        .join(truth_df.select("customer_id", "profile"), "customer_id")
        .groupBy(PREDICTION_COL, "profile")
        .count()
        .collect()
    )
    return [(int(r[PREDICTION_COL]), str(r["profile"]), int(r["count"])) for r in rows]


def adjusted_rand_index(table: Iterable[tuple[object, object, int]]) -> float:
    """Hubert-Arabie adjusted Rand index from a contingency table of (a, b, count)."""
    cells: dict[tuple[object, object], int] = {}
    rows: dict[object, int] = {}
    cols: dict[object, int] = {}
    for a, b, n in table:
        cells[(a, b)] = cells.get((a, b), 0) + n
        rows[a] = rows.get(a, 0) + n
        cols[b] = cols.get(b, 0) + n
    total = sum(rows.values())
    if total < 2:
        return 0.0
    pairs = sum(math.comb(n, 2) for n in cells.values())
    row_pairs = sum(math.comb(n, 2) for n in rows.values())
    col_pairs = sum(math.comb(n, 2) for n in cols.values())
    expected = row_pairs * col_pairs / math.comb(total, 2)
    maximum = (row_pairs + col_pairs) / 2
    if maximum == expected:  # both partitions trivial: identical by convention
        return 1.0
    return (pairs - expected) / (maximum - expected)


def select_winner(results: Sequence[FitResult], min_cluster_share: float) -> FitResult:
    """Best silhouette among fits whose smallest cluster holds at least `min_cluster_share`
    of customers; ties go to the smaller k, then the algorithm name, so the choice is stable."""
    eligible = [r for r in results if r.smallest_cluster_share >= min_cluster_share]
    if not eligible:
        shares = ", ".join(f"{r.name} {r.smallest_cluster_share:.3f}" for r in results)
        raise RetailSegError(
            f"no candidate has a smallest cluster of at least min_cluster_share="
            f"{min_cluster_share} (smallest shares: {shares}); lower min_cluster_share or the "
            "k range"
        )
    return min(eligible, key=lambda r: (-round(r.silhouette, 9), r.k, r.algorithm))


def full_model(feature_model: PipelineModel, cluster_model: object) -> PipelineModel:
    """One model from gold columns to `prediction`: the fitted feature stages + the clusterer."""
    return PipelineModel(stages=[*feature_model.stages, cluster_model])
