"""The segmentation's measures: the standard silhouette, exact up to the sample size and on the
fixed sample above it, and Spark's squared-Euclidean silhouette."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import silhouette_score

from retail_segmentation.ml import measures
from retail_segmentation.ml.silhouette_cost import blob_features, customer_ids, kmeans_labels

# The sampled test scores SMALL_SAMPLE customers out of four times as many, so that the exact
# silhouette of all of them stays quick; the sampling error's deviation grows as
# 1/sqrt(sample), so the tolerance measured at SILHOUETTE_SAMPLE_SIZE grows by the same factor.
SMALL_SAMPLE = 1_000
SMALL_SAMPLE_TOLERANCE = measures.SILHOUETTE_SAMPLE_TOLERANCE * math.sqrt(
    measures.SILHOUETTE_SAMPLE_SIZE / SMALL_SAMPLE
)


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """2,000 points in 5 overlapping Gaussian blobs of 5 features, and their blob."""
    return make_blobs(n_samples=2_000, n_features=5, centers=5, cluster_std=2.0, random_state=7)


@pytest.mark.parametrize(
    "relabel",
    [lambda b: b, lambda b: 10 * b + 3, lambda b: np.where(b == 4, 0, b)],
    ids=["blobs", "labels-not-0-to-k", "two-blobs-merged"],
)
def test_exact_silhouette_is_sklearns_over_every_customer(blobs, relabel):
    features, blob = blobs
    labels = relabel(blob)
    # the sweep's path: every position is in the sample when there are at most its size
    positions = measures.sample_positions(customer_ids(len(labels)))
    assert positions.tolist() == list(range(len(labels)))
    assert measures.euclidean_silhouette(features[positions], labels[positions]) == pytest.approx(
        silhouette_score(features, labels, metric="euclidean"), abs=1e-6
    )


def test_sample_positions_take_everyone_up_to_the_size_and_exactly_size_above():
    ids = customer_ids(1_001)
    assert measures.sample_positions(ids[:1_000], 1_000).tolist() == list(range(1_000))
    positions = measures.sample_positions(ids, 1_000)
    assert len(positions) == 1_000
    assert len(set(positions.tolist())) == 1_000
    assert measures.sample_positions([], 1_000).tolist() == []


def test_sample_positions_are_the_smallest_keys_whatever_the_order_of_the_ids():
    ids = customer_ids(5_000)
    positions = measures.sample_positions(ids, SMALL_SAMPLE)
    assert len(positions) == SMALL_SAMPLE
    assert positions.tolist() == sorted(positions.tolist())
    chosen = {ids[p] for p in positions}
    left_out = set(ids) - chosen
    assert max(map(measures.sample_key, chosen)) < min(map(measures.sample_key, left_out))

    shuffled = [ids[i] for i in np.random.default_rng(3).permutation(len(ids))]
    assert {shuffled[p] for p in measures.sample_positions(shuffled, SMALL_SAMPLE)} == chosen
    reversed_ids = ids[::-1]
    assert {reversed_ids[p] for p in measures.sample_positions(reversed_ids, SMALL_SAMPLE)} == (
        chosen
    )
    # integer ids are keyed on their text, as Spark's crc32 of the string column
    as_int = [int(c) for c in ids]
    assert measures.sample_positions(as_int, SMALL_SAMPLE).tolist() == positions.tolist()


def test_sample_key_is_the_crc32_of_the_salted_id():
    # CRC-32 of b"retail-seg-silhouette:12345"; Spark's crc32 is the same checksum
    # (java.util.zip.CRC32), so a changed salt or encoding shows here first
    assert measures.sample_key("12345") == 3_719_056_050
    assert measures.sample_key(12345) == measures.sample_key("12345")


@pytest.mark.parametrize(
    ("seed", "spread", "k"),
    [(1, 3.0, 5), (2, 2.0, 5), (3, 2.0, 3), (4, 3.0, 8)],
)
def test_sampled_silhouette_is_within_the_tolerance_of_the_exact_one(seed, spread, k):
    features, _ = blob_features(4 * SMALL_SAMPLE, seed, spread=spread)
    labels = kmeans_labels(features, k, seed)
    positions = measures.sample_positions(customer_ids(len(labels)), SMALL_SAMPLE)
    exact = measures.euclidean_silhouette(features, labels)
    sampled = measures.euclidean_silhouette(features[positions], labels[positions])
    assert abs(sampled - exact) <= SMALL_SAMPLE_TOLERANCE


def _spark_silhouette(features: np.ndarray, labels: np.ndarray) -> float:
    """Spark ClusteringEvaluator's silhouette, point by point over every pair: squared
    Euclidean distances, a = mean over the rest of the point's own cluster, b = smallest mean
    over another cluster; a point alone in its cluster scores 0."""
    distances = ((features[:, None, :] - features[None, :, :]) ** 2).sum(axis=2)
    clusters = sorted(set(labels.tolist()))
    scores = []
    for i, own in enumerate(labels):
        members = labels == own
        if members.sum() == 1:
            scores.append(0.0)
            continue
        a = distances[i, members].sum() / (members.sum() - 1)
        b = min(distances[i, labels == c].mean() for c in clusters if c != own)
        scores.append(1 - a / b if a < b else b / a - 1 if a > b else 0.0)
    return float(np.mean(scores))


@pytest.mark.parametrize("with_a_lone_point", [False, True], ids=["clusters", "a-lone-point"])
def test_squared_euclidean_silhouette_is_sparks_definition(with_a_lone_point):
    features, labels = make_blobs(
        n_samples=60, n_features=4, centers=3, cluster_std=1.5, random_state=11
    )
    if with_a_lone_point:
        labels = labels.copy()
        labels[0] = 7
    assert measures.squared_euclidean_silhouette(features, labels) == pytest.approx(
        _spark_silhouette(features, labels), abs=1e-9
    )


def test_squared_euclidean_silhouette_of_two_lone_points_is_zero():
    features = np.array([[0.0, 0.0], [1.0, 1.0]])
    assert measures.squared_euclidean_silhouette(features, np.array([0, 1])) == 0.0


def test_one_cluster_scores_minus_one():
    features = np.arange(12, dtype="float64").reshape(6, 2)
    labels = np.zeros(6, dtype="int64")
    assert measures.euclidean_silhouette(features, labels) == -1.0
    assert measures.squared_euclidean_silhouette(features, labels) == -1.0


def test_every_point_its_own_cluster_scores_minus_one():
    features = np.arange(8, dtype="float64").reshape(4, 2)
    assert measures.euclidean_silhouette(features, np.arange(4)) == -1.0


def test_cluster_sizes_count_an_empty_cluster_as_zero():
    assert measures.cluster_sizes([0, 0, 2, 2, 2], 4) == (2, 0, 3, 0)
    assert measures.cluster_sizes(np.array([1, 1]), 2) == (0, 2)
    assert measures.cluster_sizes([], 3) == (0, 0, 0)
