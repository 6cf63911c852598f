"""The sweep's contract (parameters, one fit's measures, the winner's choice, agreement with
known profiles) and the Spark MLlib engine: fitting one clusterer and measuring it in Spark.

Both silhouettes are defined in `measures`: the standard (Euclidean) one on the silhouette
sample, which is the only row-level data that reaches the driver (at most
SILHOUETTE_SAMPLE_SIZE feature vectors), and Spark's squared-Euclidean one over every
customer. Otherwise only aggregates come back: cluster sizes, per-cluster means, and the
contingency table against known profiles.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from pyspark.ml import Estimator, PipelineModel
from pyspark.ml.clustering import GaussianMixture, KMeans
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from retail_segmentation.common.errors import ConfigError, RetailSegError
from retail_segmentation.ml import measures
from retail_segmentation.ml.features import FEATURE_SETS, FEATURES_COL, FeatureSpec
from retail_segmentation.ml.segment_model import FeatureTransform, SegmentModel

KMEANS = "kmeans"
GMM = "gmm"
ALGORITHMS = (KMEANS, GMM)
SKLEARN = "sklearn"
SPARK = "spark"
ENGINES = (SKLEARN, SPARK)
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
    silhouette: float  # Euclidean, on the silhouette sample (see measures)
    cluster_sizes: tuple[int, ...]
    wcss: float | None = None  # KMeans: within-cluster sum of squared distances
    log_likelihood: float | None = None  # GaussianMixture
    adjusted_rand_index: float | None = None
    run_id: str | None = None
    engine: str = SPARK
    silhouette_sq_euclidean: float | None = None  # Spark's figure, every customer

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


def squared_euclidean_silhouette(clustered_df: DataFrame) -> float:
    """Spark's mean silhouette (squared Euclidean) of the predictions over `features`."""
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
    used = sum(1 for n in sizes if n) > 1
    result = FitResult(
        algorithm=algorithm,
        k=k,
        silhouette=sample_silhouette(clustered_df) if used else -1.0,
        cluster_sizes=sizes,
        wcss=float(summary.trainingCost) if algorithm == KMEANS else None,
        log_likelihood=float(summary.logLikelihood) if algorithm == GMM else None,
        engine=SPARK,
        silhouette_sq_euclidean=squared_euclidean_silhouette(clustered_df) if used else -1.0,
    )
    return model, clustered_df, result


def sample_silhouette(clustered_df: DataFrame) -> float:
    """The Euclidean silhouette (scikit-learn's) of the silhouette sample's predictions: at
    most SILHOUETTE_SAMPLE_SIZE feature vectors come to the driver."""
    sample = (
        clustered_df.select(
            "customer_id",
            vector_to_array(FEATURES_COL).alias("x"),
            F.col(PREDICTION_COL).alias("label"),
        )
        .orderBy(measures.sample_key_column(), "customer_id")
        .limit(measures.SILHOUETTE_SAMPLE_SIZE)
        .toPandas()
    )
    if sample.empty:
        return -1.0
    return measures.euclidean_silhouette(np.vstack(sample["x"].to_numpy()), sample["label"])


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


def segment_model(feature_model: PipelineModel, cluster_model, spec: FeatureSpec) -> SegmentModel:
    """The Spark fit as the engine-independent pyfunc: the scaler's mean and deviation, the
    PCA projection, and the centres or the mixture, copied out of the fitted Spark models."""
    from pyspark.ml.clustering import GaussianMixtureModel
    from pyspark.ml.feature import PCAModel, StandardScalerModel

    scaler = next(s for s in feature_model.stages if isinstance(s, StandardScalerModel))
    pca = next((s for s in feature_model.stages if isinstance(s, PCAModel)), None)
    columns = FEATURE_SETS[spec.feature_set]
    features = FeatureTransform(
        columns=tuple(c for c, _ in columns),
        is_log=tuple(is_log for _, is_log in columns),
        mean=np.asarray(scaler.mean.toArray()),
        std=np.asarray(scaler.std.toArray()),
        components=None if pca is None else np.asarray(pca.pc.toArray()).T,
        pca_mean=None if pca is None else np.zeros(pca.pc.numRows),
    )
    if isinstance(cluster_model, GaussianMixtureModel):
        gaussians = cluster_model.gaussiansDF.collect()  # k rows
        return SegmentModel(
            features,
            GMM,
            SPARK,
            weights=np.asarray(cluster_model.weights),
            means=np.stack([np.asarray(g["mean"].toArray()) for g in gaussians]),
            covariances=np.stack([np.asarray(g["cov"].toArray()) for g in gaussians]),
        )
    centers = np.stack([np.asarray(c) for c in cluster_model.clusterCenters()])
    return SegmentModel(features, KMEANS, SPARK, centers=centers)
