"""How a segmentation is measured, the same way whichever engine fitted it.

- `silhouette`: the standard silhouette (Euclidean distance; scikit-learn's
  `silhouette_score`, the figure papers and tutorials quote), over every customer when there
  are at most SILHOUETTE_SAMPLE_SIZE of them, else over a fixed sample of that many: the
  customers with the smallest CRC-32 of SILHOUETTE_SALT + customer_id. The sample depends on
  the customer ids only, so every candidate, both engines and the champion's re-measurement
  on today's data are scored on the same customers. Exact silhouette is quadratic in the
  customers; the sample bounds it (10,000 points: about 2 s per candidate on 2 cores, where
  every customer would take 24 s at 50,000 and 7 minutes at 200,000; BENCHMARKS.md).
  The sampled figure is within SILHOUETTE_SAMPLE_TOLERANCE = 0.01 of the exact one: on
  seeded blobs of 20,000 and 40,000 customers the two differed by at most 0.0043, and the
  sampling error's deviation (of the customers' silhouettes, over sqrt(10,000)) was at most
  0.003 (see the constant). `retail-seg benchmark-silhouette` measures both, and their cost.
- `silhouette_sq_euclidean`: Spark's ClusteringEvaluator figure (squared Euclidean distance,
  every customer), logged under its own name for comparison with earlier runs.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence

import numpy as np

SILHOUETTE_SAMPLE_SIZE = 10_000
SILHOUETTE_SALT = "retail-seg-silhouette:"
# How far the sampled silhouette may be from the exact one above SILHOUETTE_SAMPLE_SIZE.
# Measured on 36 seeded data sets (src/ml/silhouette_cost.blob_features: 20,000 and 40,000
# customers, 6 standardised features in 5 blobs, seeds 1-3, centre spreads 2 and 3, KMeans
# k = 3, 5, 8; exact silhouettes 0.15-0.55): |sampled - exact| at most 0.0043 (mean 0.0017),
# at most 3.0 times the sampling error's deviation, itself at most 0.003. 0.01 leaves more
# than three deviations. The deviation grows as 1/sqrt(sample size): at a 1,000-customer
# sample the same sets differed by at most 0.012.
SILHOUETTE_SAMPLE_TOLERANCE = 0.01


def sample_key(customer_id: object) -> int:
    """CRC-32 of the salted customer id (UTF-8): Spark's `crc32(concat(salt, id))`."""
    return zlib.crc32((SILHOUETTE_SALT + str(customer_id)).encode("utf-8"))


def sample_key_column(customer_id: str = "customer_id"):
    """The same key as a Spark column."""
    from pyspark.sql import functions as F

    return F.crc32(F.concat(F.lit(SILHOUETTE_SALT), F.col(customer_id).cast("string")))


def sample_positions(customer_ids: Sequence[object], size: int = SILHOUETTE_SAMPLE_SIZE):
    """Positions of the customers in the silhouette sample: all of them when there are at
    most `size`, else the `size` with the smallest keys (ties by customer id)."""
    ids = [str(c) for c in customer_ids]
    if len(ids) <= size:
        return np.arange(len(ids))
    order = sorted(range(len(ids)), key=lambda i: (sample_key(ids[i]), ids[i]))
    return np.array(sorted(order[:size]))


def cluster_sizes(labels: Iterable[int], k: int) -> tuple[int, ...]:
    """Customers per segment 0..k-1 (0 for an empty one)."""
    counts = np.bincount(np.asarray(list(labels), dtype="int64"), minlength=k)
    return tuple(int(n) for n in counts[:k])


def euclidean_silhouette(features: np.ndarray, labels: np.ndarray) -> float:
    """scikit-learn's silhouette_score (Euclidean); -1 when fewer than two segments are used
    (undefined, and such a fit is degenerate anyway)."""
    from sklearn.metrics import silhouette_score

    labels = np.asarray(labels)
    distinct = len(np.unique(labels))
    if distinct < 2 or distinct >= len(labels):
        return -1.0
    return float(silhouette_score(features, labels, metric="euclidean"))


def squared_euclidean_silhouette(features: np.ndarray, labels: np.ndarray) -> float:
    """Spark ClusteringEvaluator's silhouette (squared Euclidean), computed the way Spark does
    from per-cluster sums in O(rows x clusters): a point alone in its cluster scores 0."""
    features = np.asarray(features, dtype="float64")
    labels = np.asarray(labels)
    clusters = np.unique(labels)
    if len(clusters) < 2:
        return -1.0
    norms = (features**2).sum(axis=1)
    counts = np.array([(labels == c).sum() for c in clusters], dtype="float64")
    sums = np.stack([features[labels == c].sum(axis=0) for c in clusters])
    norm_sums = np.array([norms[labels == c].sum() for c in clusters])
    # mean squared distance of every point to every cluster (the point itself included)
    mean_distance = norms[:, None] + norm_sums[None, :] / counts - 2 * features @ sums.T / counts
    own = np.searchsorted(clusters, labels)
    rows = np.arange(len(labels))
    own_count = counts[own]
    alone = own_count == 1
    a = mean_distance[rows, own] * own_count / np.where(alone, 2, own_count - 1)
    others = mean_distance.copy()
    others[rows, own] = np.inf
    b = others.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(a < b, 1 - a / b, np.where(a > b, b / a - 1, 0.0))
    return float(np.where(alone, 0.0, score).mean())


def silhouette_sample(df, columns: Sequence[str]):
    """The silhouette sample of a Spark frame with a customer_id column, as pandas: the same
    customers `sample_positions` picks (at most SILHOUETTE_SAMPLE_SIZE rows reach the driver)."""
    return (
        df.select(*columns)
        .orderBy(sample_key_column(), "customer_id")
        .limit(SILHOUETTE_SAMPLE_SIZE)
        .toPandas()
    )
