"""When the segmentation model is fitted again: the retraining policy and its drift measure.

A daily run scores every customer with the `champion`; the sweep runs again only when one of
these holds, each decision logged with its reasons:

- there is no champion yet, or retraining is forced;
- the champion is `max_age_days` or more older than the as-of date;
- customers the champion never saw make up more than `max_new_customer_share` of today's;
- a feature's distribution moved: its population stability index (PSI) between the
  champion's training customers and today's exceeds `max_psi`.

PSI = sum over bins of (a - e) * ln(a / e), with e and a the shares of the training and of
today's customers in each bin; the bins are the training data's deciles. The usual reading:
below 0.1 stable, 0.1 to 0.25 a moderate shift, above 0.25 a significant one.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from retail_segmentation.common.errors import ConfigError

# A bin's share is never taken below this, so an empty bin costs a large, finite PSI.
MIN_SHARE = 1e-4
DECILES = tuple(i / 10 for i in range(1, 10))


@dataclass(frozen=True)
class RetrainPolicy:
    """The thresholds; see the module's docstring."""

    max_age_days: int = 30
    max_new_customer_share: float = 0.10
    max_psi: float = 0.25

    def __post_init__(self) -> None:
        if not 0 <= self.max_age_days <= 3650:
            raise ConfigError(
                f"parameter max_age_days={self.max_age_days}: expected whole days in [0, 3650], "
                "0 for never on age"
            )
        if not 0 < self.max_new_customer_share <= 1:
            raise ConfigError(
                f"parameter max_new_customer_share={self.max_new_customer_share}: expected a "
                "share in (0, 1], e.g. 0.1"
            )
        if not self.max_psi > 0:
            raise ConfigError(
                f"parameter max_psi={self.max_psi}: expected a positive index, e.g. 0.25"
            )


@dataclass(frozen=True)
class Decision:
    """Whether to fit the sweep again, and why (every reason that holds, or why not)."""

    retrain: bool
    reasons: tuple[str, ...]


def population_stability_index(expected: Sequence[float], actual: Sequence[float]) -> float:
    """PSI between two distributions over the same bins, given as shares (or counts)."""
    if len(expected) != len(actual) or not expected:
        raise ValueError(f"expected shares over the same bins, got {expected} and {actual}")

    def shares(values: Sequence[float]) -> list[float]:
        total = float(sum(values))
        return [max(v / total if total else 0.0, MIN_SHARE) for v in values]

    pairs = zip(shares(expected), shares(actual), strict=True)
    return sum((a - e) * math.log(a / e) for e, a in pairs)


def decile_edges(df: DataFrame, columns: Sequence[str], accuracy: int = 10_000) -> dict:
    """column -> its nine decile cut points in `df` (one Spark action; duplicates removed)."""
    row = df.agg(
        *[F.percentile_approx(c, list(DECILES), accuracy).alias(c) for c in columns]
    ).first()
    return {c: sorted({float(v) for v in (row[c] or [])}) for c in columns}


def _bin(column: str, edges: Sequence[float]) -> Column:
    """0..len(edges): how many edges the value is above (null: its own bin, -1)."""
    value = F.col(column)
    above = sum((F.when(value > edge, 1).otherwise(0) for edge in edges), F.lit(0))
    return F.when(value.isNull(), -1).otherwise(above)


def bin_counts(df: DataFrame, edges: Mapping[str, Sequence[float]]) -> dict[str, list[int]]:
    """column -> customers per bin of its edges (bins 0..len(edges), then nulls), one Spark
    action for every column."""
    aggregations = []
    for column, cuts in edges.items():
        binned = _bin(column, cuts)
        aggregations += [
            F.count_if(binned == b).alias(f"{column}__{b}") for b in range(-1, len(cuts) + 1)
        ]
    row = df.agg(*aggregations).first()
    return {
        column: [int(row[f"{column}__{b}"]) for b in (*range(len(cuts) + 1), -1)]
        for column, cuts in edges.items()
    }


def decide(
    policy: RetrainPolicy,
    as_of: dt.date,
    champion_as_of: dt.date | None,
    new_customer_share: float | None = None,
    psi: Mapping[str, float] | None = None,
    forced: bool = False,
) -> Decision:
    """The policy applied: `champion_as_of` is the as-of date of the data the champion was
    fitted on (None: no champion)."""
    if champion_as_of is None:
        return Decision(True, ("no champion yet",))
    reasons = []
    if forced:
        reasons.append("forced")
    age = (as_of - champion_as_of).days
    if policy.max_age_days and age >= policy.max_age_days:
        reasons.append(f"the champion is {age} days old (max_age_days={policy.max_age_days})")
    if new_customer_share is not None and new_customer_share > policy.max_new_customer_share:
        reasons.append(
            f"{new_customer_share:.1%} of the customers are new to the champion "
            f"(max_new_customer_share={policy.max_new_customer_share:.0%})"
        )
    drifted = {f: v for f, v in (psi or {}).items() if v > policy.max_psi}
    if drifted:
        shown = ", ".join(f"{f} {v:.3f}" for f, v in sorted(drifted.items()))
        reasons.append(f"feature drift: PSI {shown} (max_psi={policy.max_psi})")
    if reasons:
        return Decision(True, tuple(reasons))
    worst = max((psi or {}).items(), key=lambda item: item[1], default=None)
    return Decision(
        False,
        (
            f"the champion is {age} days old, "
            + (
                f"{new_customer_share:.1%} of the customers are new"
                if new_customer_share is not None
                else "no customer count"
            )
            + (f", largest PSI {worst[0]} {worst[1]:.3f}" if worst else ""),
        ),
    )


# Tags of a sweep's parent run: what its customers looked like, compared with later ones.
AS_OF_TAG = "retail_seg.as_of_date"
PROFILE_TAG = "retail_seg.feature_bins"
DECISION_ROLE = "retrain_decision"
DECISION_TAG = "retail_seg.decision"


@dataclass(frozen=True)
class TrainingProfile:
    """The data a model was fitted on: its as-of date, and per feature the training deciles
    (bin edges) and the customers in each bin (nulls last)."""

    as_of: dt.date
    edges: dict[str, list[float]]
    counts: dict[str, list[int]]

    def tags(self) -> dict[str, str]:
        """The profile as run tags (a few hundred characters of JSON)."""
        bins = {c: {"edges": self.edges[c], "counts": self.counts[c]} for c in self.edges}
        return {AS_OF_TAG: self.as_of.isoformat(), PROFILE_TAG: json.dumps(bins, sort_keys=True)}

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> TrainingProfile | None:
        """The profile a sweep run recorded; None for runs from before profiles existed."""
        if AS_OF_TAG not in tags or PROFILE_TAG not in tags:
            return None
        bins = json.loads(tags[PROFILE_TAG])
        return cls(
            dt.date.fromisoformat(tags[AS_OF_TAG]),
            {c: [float(v) for v in b["edges"]] for c, b in bins.items()},
            {c: [int(v) for v in b["counts"]] for c, b in bins.items()},
        )


def training_profile(
    input_df: DataFrame, columns: Sequence[str], as_of: dt.date
) -> TrainingProfile:
    """Deciles and bin counts of the model input's `columns` (two Spark actions)."""
    edges = decile_edges(input_df, columns)
    return TrainingProfile(as_of, edges, bin_counts(input_df, edges))


def training_profile_on_driver(
    input_pdf: pd.DataFrame, columns: Sequence[str], as_of: dt.date
) -> TrainingProfile:
    """`training_profile` of customers already on the driver (the scikit-learn sweep's), with
    numpy instead of two Spark actions (1.4-1.7 s warm on 240 customers).

    A decile is the smallest value whose share of values at or below it reaches the decile
    (numpy's `inverted_cdf`): what `percentile_approx` returns while its summary is exact
    (measured equal up to 5,706 values, the 1M benchmark's customers); on more, Spark's
    summary merges neighbours and its deciles may be the next value instead (20,000 values:
    21.46 against the exact 21.47). Nulls (NaN here) are left out of the deciles and counted
    in their own bin, as in Spark."""
    edges, counts = {}, {}
    for column in columns:
        values = input_pdf[column].to_numpy(dtype=float)
        known = values[~np.isnan(values)]
        cuts = (
            sorted({float(v) for v in np.quantile(known, DECILES, method="inverted_cdf")})
            if known.size
            else []
        )
        # a value's bin is how many edges it is above, as `_bin` says
        bins = np.bincount(np.searchsorted(cuts, known, side="left"), minlength=len(cuts) + 1)
        edges[column] = cuts
        counts[column] = [*(int(n) for n in bins), int(values.size - known.size)]
    return TrainingProfile(as_of, edges, counts)


@dataclass(frozen=True)
class Measures:
    """Today's customers against the champion's training profile."""

    customers: int
    new_customer_share: float
    psi: dict[str, float]
    age_days: int


def measure(
    profile: TrainingProfile, rfm_df: DataFrame, input_df: DataFrame, as_of: dt.date
) -> Measures:
    """New customers (first purchase on or after the training as-of date: the champion never
    saw them) and each feature's PSI against the training bins (two Spark actions)."""
    row = rfm_df.agg(
        F.count("*").alias("customers"),
        F.count_if(F.to_date("first_purchase") >= F.lit(profile.as_of)).alias("new"),
    ).first()
    customers = int(row["customers"])
    today = bin_counts(input_df, profile.edges)
    psi = {c: population_stability_index(profile.counts[c], today[c]) for c in profile.edges}
    return Measures(
        customers,
        int(row["new"]) / customers if customers else 0.0,
        psi,
        (as_of - profile.as_of).days,
    )
