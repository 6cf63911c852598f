"""The registered segmentation model: plain gold columns in, segment out, whichever engine
fitted it.

Both sweep engines (scikit-learn on the driver, Spark MLlib on the cluster) end in the same
few arrays: the feature transform (log scaling, standardisation, optional PCA) and either
KMeans centres or a Gaussian mixture. `SegmentModel` holds them as numpy arrays and is logged
as an MLflow pyfunc, so loading it needs numpy, pandas and MLflow only: no Spark, no Spark ML
model files (and so no DBFS or volume for temporary files), no scikit-learn. This module
imports nothing else from the package, so the sweep can pickle it by value into the model.

| algorithm | predicts | membership_probability |
|---|---|---|
| KMeans | nearest centre (Euclidean; ties to the lower id) | null |
| GaussianMixture | most probable component | that component's posterior probability |
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow.pyfunc
import numpy as np
import pandas as pd

SEGMENT_COLUMN = "segment_id"
PROBABILITY_COLUMN = "membership_probability"
PROBABILITY_DECIMALS = 4


@dataclass(frozen=True)
class FeatureTransform:
    """Gold columns -> model features: ln(1 + max(x, 0)) for the log columns, x for the others
    (null as 0), standardised with the training mean and sample standard deviation (a constant
    feature becomes 0), then projected on principal components when there are any."""

    columns: tuple[str, ...]
    is_log: tuple[bool, ...]
    mean: np.ndarray
    std: np.ndarray
    components: np.ndarray | None = None  # (n_components, n_features), rows are components
    pca_mean: np.ndarray | None = None  # subtracted before projecting (zeros for Spark's PCA)

    def raw(self, frame: pd.DataFrame) -> np.ndarray:
        """The assembled, log-scaled features before standardising (rows x columns)."""
        values = frame[list(self.columns)].apply(pd.to_numeric, errors="coerce").astype("float64")
        matrix = np.nan_to_num(values.to_numpy(), nan=0.0)
        logged = np.log1p(np.maximum(matrix, 0.0))
        return np.where(np.asarray(self.is_log)[np.newaxis, :], logged, matrix)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The features the clusters live in (rows x features)."""
        raw = self.raw(frame)
        safe_std = np.where(self.std > 0, self.std, 1.0)
        scaled = np.where(self.std > 0, (raw - self.mean) / safe_std, 0.0)
        if self.components is None:
            return scaled
        centred = scaled - (self.pca_mean if self.pca_mean is not None else 0.0)
        return centred @ self.components.T

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns, is_log) -> FeatureTransform:
        """Mean and sample standard deviation of the log-scaled columns of `frame`."""
        unfitted = cls(tuple(columns), tuple(is_log), np.zeros(len(columns)), np.ones(len(columns)))
        raw = unfitted.raw(frame)
        std = raw.std(axis=0, ddof=1) if len(raw) > 1 else np.zeros(len(columns))
        return cls(tuple(columns), tuple(is_log), raw.mean(axis=0), std)


class SegmentModel(mlflow.pyfunc.PythonModel):
    """KMeans centres or a Gaussian mixture over a `FeatureTransform`, as an MLflow pyfunc.

    predict(frame of gold columns) -> frame of `segment_id` (int) and `membership_probability`
    (float; NaN for KMeans), one row per input row, in order.
    """

    def __init__(
        self,
        features: FeatureTransform,
        algorithm: str,
        engine: str,
        centers: np.ndarray | None = None,
        weights: np.ndarray | None = None,
        means: np.ndarray | None = None,
        covariances: np.ndarray | None = None,
    ) -> None:
        if algorithm == "kmeans" and centers is None:
            raise ValueError("a KMeans SegmentModel needs its centers")
        if algorithm == "gmm" and (weights is None or means is None or covariances is None):
            raise ValueError("a GaussianMixture SegmentModel needs weights, means, covariances")
        self.features = features
        self.algorithm = algorithm
        self.engine = engine
        self.centers = centers
        self.weights = weights
        self.means = means
        self.covariances = covariances
        self._precisions = None

    @property
    def k(self) -> int:
        """Number of segments."""
        return len(self.centers) if self.algorithm == "kmeans" else len(self.weights)

    @property
    def input_columns(self) -> tuple[str, ...]:
        """The gold columns the model reads."""
        return self.features.columns

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """Segment id and membership probability of every row of `model_input`."""
        features = self.features.transform(pd.DataFrame(model_input))
        if self.algorithm == "kmeans":
            labels = self.labels_of(features)
            probability = np.full(len(features), np.nan)
        else:
            posterior = self.posterior(features)
            labels = posterior.argmax(axis=1) if len(features) else np.zeros(0, dtype=int)
            probability = (
                np.round(posterior.max(axis=1), PROBABILITY_DECIMALS)
                if len(features)
                else np.zeros(0)
            )
        return pd.DataFrame(
            {SEGMENT_COLUMN: labels.astype("int32"), PROBABILITY_COLUMN: probability}
        )

    def labels_of(self, features: np.ndarray) -> np.ndarray:
        """Segment ids of rows already in feature space."""
        if self.algorithm == "kmeans":
            distances = ((features[:, np.newaxis, :] - self.centers[np.newaxis, :, :]) ** 2).sum(
                axis=2
            )
            return distances.argmin(axis=1)
        return self.posterior(features).argmax(axis=1)

    def posterior(self, features: np.ndarray) -> np.ndarray:
        """GaussianMixture: each row's probability of each component (rows sum to 1)."""
        if self._precisions is None:
            self._precisions = [_pseudo_inverse(c) for c in self.covariances]
        log_density = np.column_stack(
            [
                np.log(w) + _log_gaussian(features, mean, *inverse)
                if w > 0
                else np.full(len(features), -np.inf)
                for w, mean, inverse in zip(self.weights, self.means, self._precisions, strict=True)
            ]
        )
        top = log_density.max(axis=1, keepdims=True)
        top = np.where(np.isfinite(top), top, 0.0)
        density = np.exp(log_density - top)
        return density / density.sum(axis=1, keepdims=True)


def _pseudo_inverse(covariance: np.ndarray) -> tuple[np.ndarray, float]:
    """Pseudo-inverse and log pseudo-determinant of a covariance over its eigenvalues above
    Spark's tolerance (machine epsilon x largest eigenvalue x dimension), as Spark's
    MultivariateGaussian computes them: a degenerate direction is dropped, not inverted."""
    values, vectors = np.linalg.eigh(np.asarray(covariance, dtype="float64"))
    keep = values > np.finfo("float64").eps * max(float(values.max()), 0.0) * len(values)
    inverse = (vectors[:, keep] / values[keep]) @ vectors[:, keep].T
    return inverse, float(np.log(values[keep]).sum())


def _log_gaussian(features, mean, precision, log_pdet: float) -> np.ndarray:
    centred = features - mean
    mahalanobis = np.einsum("ij,jk,ik->i", centred, precision, centred)
    return -0.5 * (len(mean) * np.log(2 * np.pi) + log_pdet + mahalanobis)
