"""`retail-seg benchmark-silhouette`: what the exact silhouette costs, and what the sweep's
sample saves.

For each customer count the command generates seeded RFM-like feature vectors (standardised
columns in blobs of unequal size), labels them as the sweep would (scikit-learn KMeans, k=5,
seeded), and times the three figures `measures` defines: the exact Euclidean silhouette of
every customer (scikit-learn's `silhouette_score`, quadratic in the customers), the sampled
one the sweep logs (`sample_positions` + `euclidean_silhouette` on at most
SILHOUETTE_SAMPLE_SIZE customers) and Spark's squared-Euclidean one (linear). Peak memory is
the process's high-water mark (`ru_maxrss`); counts run in ascending order, so each figure is
the peak up to and including that count. Figures come from this command, never from timed
tests.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from retail_segmentation.common.errors import ConfigError
from retail_segmentation.ml import measures

DEFAULT_CUSTOMERS = (5_000, 50_000, 200_000)
DEFAULT_SEED = 42
FEATURES = 6  # as many as the widest feature set, rfm_behavior
BLOBS = 5
# unequal segments, as customer bases have: most customers occasional, few VIPs
BLOB_SHARES = (0.35, 0.25, 0.2, 0.12, 0.08)


@dataclass(frozen=True)
class SilhouetteCost:
    """The three silhouettes of one labelled customer set, and what each cost."""

    customers: int
    sample_size: int
    exact: float
    sampled: float
    sq_euclidean: float
    exact_seconds: float
    sampled_seconds: float
    sq_euclidean_seconds: float
    peak_rss_mib: float

    @property
    def difference(self) -> float:
        """|sampled - exact|: what the sample costs in accuracy (0 up to the sample size)."""
        return abs(self.sampled - self.exact)


def blob_features(
    customers: int,
    seed: int,
    features: int = FEATURES,
    shares: Sequence[float] = BLOB_SHARES,
    spread: float = 3.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded feature vectors (float64, each column standardised) in blobs of the given shares
    of customers; `spread` is the deviation of the blob centres in units of the blobs' own
    deviation (lower overlaps more). Returns (features, blob of each customer)."""
    if customers < len(shares):
        raise ConfigError(
            f"parameter customers={customers} is too small: expected at least {len(shares)}, one "
            "customer per blob"
        )
    rng = np.random.default_rng(seed)
    # the blobs first, so one seed gives the same shape at every count
    centres = rng.normal(0.0, spread, size=(len(shares), features))
    scales = rng.uniform(0.6, 1.4, size=len(shares))  # blobs of different widths
    blobs = rng.choice(len(shares), size=customers, p=np.asarray(shares) / sum(shares))
    points = centres[blobs] + rng.normal(size=(customers, features)) * scales[blobs, None]
    points = (points - points.mean(axis=0)) / points.std(axis=0, ddof=1)
    return points, blobs


def customer_ids(customers: int) -> list[str]:
    """Ids shaped like the Online Retail ones (numeric strings), which the sample is keyed on."""
    return [str(10_000 + i) for i in range(customers)]


def kmeans_labels(features: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The segments of a seeded KMeans, as the scikit-learn sweep engine fits them."""
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=1, random_state=seed).fit_predict(features)


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024  # bytes vs KiB


def measure(customers: int, seed: int = DEFAULT_SEED) -> SilhouetteCost:
    """The three silhouettes of `customers` generated customers in KMeans segments (k=5)."""
    features, _ = blob_features(customers, seed)
    labels = kmeans_labels(features, BLOBS, seed)
    ids = customer_ids(customers)

    start = time.perf_counter()
    exact = measures.euclidean_silhouette(features, labels)
    exact_seconds = time.perf_counter() - start

    start = time.perf_counter()  # the sample's selection is part of what the sweep pays
    sample = measures.sample_positions(ids, measures.SILHOUETTE_SAMPLE_SIZE)
    sampled = measures.euclidean_silhouette(features[sample], labels[sample])
    sampled_seconds = time.perf_counter() - start

    start = time.perf_counter()
    sq_euclidean = measures.squared_euclidean_silhouette(features, labels)
    sq_euclidean_seconds = time.perf_counter() - start

    return SilhouetteCost(
        customers=customers,
        sample_size=len(sample),
        exact=exact,
        sampled=sampled,
        sq_euclidean=sq_euclidean,
        exact_seconds=exact_seconds,
        sampled_seconds=sampled_seconds,
        sq_euclidean_seconds=sq_euclidean_seconds,
        peak_rss_mib=_peak_rss_mib(),
    )


def run_benchmark(
    customers: Sequence[int] = DEFAULT_CUSTOMERS, seed: int = DEFAULT_SEED, echo: bool = False
) -> list[SilhouetteCost]:
    """`measure` for each count, smallest first; with `echo`, each row is printed when done."""
    figures = []
    for n in sorted(customers):
        figures.append(measure(n, seed))
        if echo:
            print(row(figures[-1]), flush=True)
    return figures


def parse_counts(text: str, minimum: int, example: str, parameter: str = "customers") -> list[int]:
    """`5000,50000` -> [5000, 50000]; raises ConfigError naming `parameter` unless every part
    is an integer of at least `minimum`."""
    try:
        counts = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < minimum:
        raise ConfigError(
            f"parameter {parameter}={text!r} is not valid: expected comma-separated counts of "
            f"at least {minimum}, e.g. {example}"
        )
    return counts


def parse_customers(text: str) -> list[int]:
    """The --customers of this benchmark (see `parse_counts`)."""
    return parse_counts(text, len(BLOB_SHARES), "5000,50000,200000")


HEADER = (
    f"{'customers':>10} {'sample':>7} {'exact s':>9} {'sampled s':>10} {'sq-eucl s':>10} "
    f"{'exact':>8} {'sampled':>8} {'|diff|':>8} {'sq-eucl':>8} {'peak RSS MiB':>13}"
)


def row(f: SilhouetteCost) -> str:
    """One line of the printed table (see HEADER)."""
    return (
        f"{f.customers:>10,} {f.sample_size:>7,} {f.exact_seconds:>9.2f} "
        f"{f.sampled_seconds:>10.2f} {f.sq_euclidean_seconds:>10.3f} {f.exact:>8.4f} "
        f"{f.sampled:>8.4f} {f.difference:>8.4f} {f.sq_euclidean:>8.4f} {f.peak_rss_mib:>13,.0f}"
    )


def write_json(figures: Sequence[SilhouetteCost], json_path: str, seed: int = DEFAULT_SEED) -> None:
    """The figures and how they were made, as JSON (docs/benchmarks/silhouette-cost.json)."""
    import sklearn

    payload = {
        "seed": seed,
        "features": FEATURES,
        "blob_shares": list(BLOB_SHARES),
        "labels": f"sklearn KMeans k={BLOBS}, n_init=1, seeded",
        "sample_size": measures.SILHOUETTE_SAMPLE_SIZE,
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
        },
        "figures": [{**asdict(f), "difference": f.difference} for f in figures],
    }
    Path(json_path).parent.mkdir(parents=True, exist_ok=True)
    Path(json_path).write_text(json.dumps(payload, indent=2) + "\n")
