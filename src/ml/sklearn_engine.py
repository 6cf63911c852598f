"""The scikit-learn sweep engine: every candidate fitted on the driver, on one pandas frame.

The customer table has one row per customer (a million customers with six features is about
50 MB), so it fits the driver of any cluster and of serverless compute, where Spark MLlib is
limited; fitting there avoids a Spark job per iteration. The measures are those of the Spark
engine (see `measures`), and the result is the same `SegmentModel`, so runs of both engines
compare side by side in MLflow and either can become the champion.

| Spark engine | here |
|---|---|
| StandardScaler (sample deviation) | `FeatureTransform.fit` (sample deviation) |
| PCA | sklearn.decomposition.PCA |
| KMeans (k-means\\|\\|) | sklearn.cluster.KMeans (k-means++, seeded) |
| GaussianMixture (full covariance) | sklearn.mixture.GaussianMixture (full covariance, seeded) |
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from retail_segmentation.ml import measures
from retail_segmentation.ml.clustering import (
    GMM,
    KMEANS,
    SKLEARN,
    FitResult,
    SweepParams,
    adjusted_rand_index,
)
from retail_segmentation.ml.features import FEATURE_SETS
from retail_segmentation.ml.segment_model import FeatureTransform, SegmentModel


def fit_features(input_pdf: pd.DataFrame, params: SweepParams) -> FeatureTransform:
    """The feature transform of `params.features`, fitted on the customers of `input_pdf`."""
    from sklearn.decomposition import PCA

    columns = FEATURE_SETS[params.features.feature_set]
    transform = FeatureTransform.fit(
        input_pdf, [c for c, _ in columns], [is_log for _, is_log in columns]
    )
    if not params.features.pca_components:
        return transform
    pca = PCA(n_components=params.features.pca_components, random_state=params.seed)
    pca.fit(transform.transform(input_pdf))
    return FeatureTransform(
        transform.columns,
        transform.is_log,
        transform.mean,
        transform.std,
        components=pca.components_,
        pca_mean=pca.mean_,
    )


def estimator(algorithm: str, k: int, params: SweepParams):
    """The unfitted scikit-learn clusterer of one candidate (seeded)."""
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    if algorithm == KMEANS:
        return KMeans(n_clusters=k, random_state=params.seed, max_iter=params.max_iter)
    if algorithm == GMM:
        return GaussianMixture(
            n_components=k,
            covariance_type="full",
            random_state=params.seed,
            max_iter=params.max_iter,
        )
    raise ValueError(f"unknown algorithm {algorithm!r}")


def fit_candidate(
    features: np.ndarray, algorithm: str, k: int, params: SweepParams
) -> tuple[np.ndarray, dict]:
    """Fit one clusterer on the features; returns (scikit-learn's labels, the model's
    parameters for SegmentModel and its wcss or log-likelihood)."""
    model = estimator(algorithm, k, params)
    labels = model.fit(features).predict(features)
    if algorithm == KMEANS:
        return labels, {"centers": model.cluster_centers_, "wcss": float(model.inertia_)}
    return labels, {
        "weights": model.weights_,
        "means": model.means_,
        "covariances": model.covariances_,
        # total, as Spark's summary.logLikelihood (score is the mean per customer)
        "log_likelihood": float(model.score(features) * len(features)),
    }


def profile(input_pdf: pd.DataFrame, labels: np.ndarray, columns, k: int) -> pd.DataFrame:
    """Per segment: customers and the mean of each input column, rounded to 2 decimals (the
    Spark engine's `cluster_profile`); segments without customers are left out."""
    frame = input_pdf[list(columns)].apply(pd.to_numeric, errors="coerce").astype("float64")
    frame = frame.assign(segment_id=np.asarray(labels, dtype="int32"))
    grouped = frame.groupby("segment_id")
    out = grouped.size().rename("customers").to_frame()
    for column in columns:
        out[f"mean_{column}"] = grouped[column].mean().round(2)
    return out.reset_index().sort_values("segment_id", ignore_index=True)


def contingency(
    customer_ids: pd.Series, labels: np.ndarray, truth_pdf: pd.DataFrame
) -> list[tuple[int, str, int]]:
    """(segment, true profile, customers) for customers present in both."""
    joined = pd.DataFrame({"customer_id": customer_ids.astype(str), "segment": labels}).merge(
        truth_pdf.astype({"customer_id": str}), on="customer_id"
    )
    counts = joined.groupby(["segment", "profile"]).size()
    return [(int(s), str(p), int(n)) for (s, p), n in counts.items()]


def sweep(
    input_pdf: pd.DataFrame, params: SweepParams, truth_pdf: pd.DataFrame | None = None
) -> list[tuple[SegmentModel, FitResult, pd.DataFrame, float]]:
    """Every candidate of `params` on the customers of `input_pdf` (customer_id and the gold
    input columns): (model, measures, cluster profile, seconds), in algorithm x k order."""
    transform = fit_features(input_pdf, params)
    features = transform.transform(input_pdf)
    sample = measures.sample_positions(input_pdf["customer_id"].tolist())
    columns = list(params.features.input_columns)
    out = []
    for algorithm in params.algorithms:
        for k in params.ks:
            start = time.perf_counter()
            _, fitted = fit_candidate(features, algorithm, k, params)
            model = SegmentModel(
                transform,
                algorithm,
                SKLEARN,
                centers=fitted.get("centers"),
                weights=fitted.get("weights"),
                means=fitted.get("means"),
                covariances=fitted.get("covariances"),
            )
            # the labels of the model that is logged, so its measures are the ones registered
            labels = model.labels_of(features)
            sizes = measures.cluster_sizes(labels, k)
            used = sum(1 for n in sizes if n) > 1
            result = FitResult(
                algorithm=algorithm,
                k=k,
                silhouette=(
                    measures.euclidean_silhouette(features[sample], labels[sample])
                    if used
                    else -1.0
                ),
                cluster_sizes=sizes,
                wcss=fitted.get("wcss"),
                log_likelihood=fitted.get("log_likelihood"),
                adjusted_rand_index=(
                    None
                    if truth_pdf is None
                    else adjusted_rand_index(
                        contingency(input_pdf["customer_id"], labels, truth_pdf)
                    )
                ),
                engine=SKLEARN,
                silhouette_sq_euclidean=(
                    measures.squared_euclidean_silhouette(features, labels) if used else -1.0
                ),
            )
            out.append(
                (model, result, profile(input_pdf, labels, columns, k), time.perf_counter() - start)
            )
    return out
