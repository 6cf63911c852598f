"""Segment profiles (one row per segment: size and mean RFM and behaviour measures) and the
marketing persona each segment is given.

Persona rules live in PERSONA_RULES, in one place: the first row whose conditions all hold
names the segment. Scores are 1-5 quintile means, so they mean the same whatever the data;
the two `_index` measures are the segment's value divided by the population's (the
customer-weighted mean over all segments of the same profiles frame), so the rules keep their
meaning when the number of segments or the data change. The thresholds are the fields of
PersonaThresholds (defaults shown).

| order | persona        | rule (all must hold)                                              |
|-------|----------------|-------------------------------------------------------------------|
| 1     | VIP            | mean_r_score >= 3.5, mean_f_score >= 4.75, mean_m_score >= 4.75   |
| 2     | Churned        | mean_r_score < 1.75                                               |
| 3     | Slipping Away  | mean_r_score < 2.75                                               |
| 4     | New            | mean_r_score >= 3.5, mean_tenure_days <= 90                       |
| 5     | Bargain Hunter | unit_value_index <= 0.6, items_per_invoice_index >= 1.5           |
| 6     | Loyal          | mean_f_score >= 3                                                 |
| 7     | Occasional     | (otherwise)                                                       |

unit_value_index = mean_unit_value / population mean_unit_value and items_per_invoice_index =
mean_items_per_invoice / population mean_items_per_invoice. A null measure (a segment without
behaviour rows) never satisfies a condition, so such a segment falls through to a later rule.
Several segments may share one persona (two k-means clusters can both be "Loyal"), and a
persona may be given to no segment at all.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, fields

from pyspark.sql import Column, DataFrame, Window, WindowSpec
from pyspark.sql import functions as F

from retail_segmentation.common.errors import ConfigError

# (persona, ((measure column, comparison, PersonaThresholds field), ...)); no condition = otherwise.
PERSONA_RULES: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "VIP",
        (
            ("mean_r_score", ">=", "vip_min_r_score"),
            ("mean_f_score", ">=", "vip_min_f_score"),
            ("mean_m_score", ">=", "vip_min_m_score"),
        ),
    ),
    ("Churned", (("mean_r_score", "<", "churned_max_r_score"),)),
    ("Slipping Away", (("mean_r_score", "<", "slipping_max_r_score"),)),
    (
        "New",
        (
            ("mean_r_score", ">=", "new_min_r_score"),
            ("mean_tenure_days", "<=", "new_max_tenure_days"),
        ),
    ),
    (
        "Bargain Hunter",
        (
            ("unit_value_index", "<=", "bargain_max_unit_value_index"),
            ("items_per_invoice_index", ">=", "bargain_min_items_per_invoice_index"),
        ),
    ),
    ("Loyal", (("mean_f_score", ">=", "loyal_min_f_score"),)),
    ("Occasional", ()),
)

PERSONAS: tuple[str, ...] = tuple(persona for persona, _ in PERSONA_RULES)

_COMPARISONS: dict[str, Callable[[Column, float], Column]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "<": operator.lt,
}

_SCORE_FIELDS = (
    "vip_min_r_score",
    "vip_min_f_score",
    "vip_min_m_score",
    "churned_max_r_score",
    "slipping_max_r_score",
    "new_min_r_score",
    "loyal_min_f_score",
)


def _all_segments() -> WindowSpec:
    """A window over every row: the profiles frame has one row per segment, so this is a
    handful of rows on one partition, simpler than a self-join for population totals."""
    return Window.partitionBy()


@dataclass(frozen=True)
class PersonaThresholds:
    """Thresholds of PERSONA_RULES: scores on the 1-5 scale, tenure in days, indexes as
    ratios to the population value (1.0 = the population's)."""

    vip_min_r_score: float = 3.5
    vip_min_f_score: float = 4.75
    vip_min_m_score: float = 4.75
    churned_max_r_score: float = 1.75
    slipping_max_r_score: float = 2.75
    new_min_r_score: float = 3.5
    new_max_tenure_days: float = 90.0
    bargain_max_unit_value_index: float = 0.6
    bargain_min_items_per_invoice_index: float = 1.5
    loyal_min_f_score: float = 3.0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(
                    f"parameter PersonaThresholds.{field.name}={value!r} is invalid: "
                    "expected a number"
                )
        for name in _SCORE_FIELDS:
            value = getattr(self, name)
            if not 1 <= value <= 5:
                raise ConfigError(
                    f"parameter PersonaThresholds.{name}={value!r} is invalid: expected a "
                    "score between 1 and 5"
                )
        if self.churned_max_r_score > self.slipping_max_r_score:
            # Churned is tested first, so a higher bound would leave Slipping Away unreachable.
            raise ConfigError(
                f"parameter PersonaThresholds.churned_max_r_score={self.churned_max_r_score!r} "
                f"is invalid: expected <= slipping_max_r_score={self.slipping_max_r_score!r}"
            )
        if self.new_max_tenure_days < 0:
            raise ConfigError(
                f"parameter PersonaThresholds.new_max_tenure_days={self.new_max_tenure_days!r} "
                "is invalid: expected a number of days >= 0"
            )
        for name in ("bargain_max_unit_value_index", "bargain_min_items_per_invoice_index"):
            value = getattr(self, name)
            if value <= 0:
                raise ConfigError(
                    f"parameter PersonaThresholds.{name}={value!r} is invalid: expected a "
                    "ratio to the population value > 0"
                )


DEFAULT_PERSONA_THRESHOLDS = PersonaThresholds()


def segment_profiles(customers_df: DataFrame) -> DataFrame:
    """One row per segment_id: customers, share of all customers and mean RFM and behaviour
    measures of its customers.

    Args:
        customers_df: one row per scored customer with segment_id, the gold_customer_rfm
            columns (recency_days, frequency, monetary, tenure_days, r_score, f_score, m_score)
            and the gold_customer_behavior columns (avg_basket_value, avg_items_per_invoice,
            cancellation_rate, weekend_share), which are null for a customer without behaviour.

    Returns:
        segment_id, customers (long), share and the mean_* columns (doubles). Behaviour means
        are over the customers that have behaviour, and null when none has. mean_unit_value is
        the average price paid per item: the segment's sales value over its items bought, both
        rebuilt from the per-customer averages (avg_basket_value x frequency and
        avg_items_per_invoice x frequency), so big buyers weigh by what they bought. Shares and
        rates are rounded to 4 decimals, every other mean to 2.
    """
    basket, items, invoices = (
        F.col("avg_basket_value"),
        F.col("avg_items_per_invoice"),
        F.col("frequency"),
    )
    # Both sums over the same customers, so a missing measure cannot skew the ratio.
    has_both = basket.isNotNull() & items.isNotNull()
    sales_value = F.sum(F.when(has_both, basket * invoices))
    items_bought = F.sum(F.when(has_both, items * invoices))

    def mean(column: str, digits: int = 2) -> Column:
        return F.round(F.avg(column), digits)

    profiles = customers_df.groupBy("segment_id").agg(
        F.count(F.lit(1)).alias("customers"),
        mean("recency_days").alias("mean_recency_days"),
        mean("frequency").alias("mean_frequency"),
        mean("monetary").alias("mean_monetary"),
        mean("tenure_days").alias("mean_tenure_days"),
        mean("r_score").alias("mean_r_score"),
        mean("f_score").alias("mean_f_score"),
        mean("m_score").alias("mean_m_score"),
        mean("avg_basket_value").alias("mean_basket_value"),
        mean("avg_items_per_invoice").alias("mean_items_per_invoice"),
        # Null when there is no item to price: ANSI mode would raise on the zero divisor.
        F.round(F.when(items_bought > 0, sales_value / items_bought), 2).alias("mean_unit_value"),
        mean("cancellation_rate", 4).alias("mean_cancellation_rate"),
        mean("weekend_share", 4).alias("mean_weekend_share"),
    )
    share = F.round(F.col("customers") / F.sum("customers").over(_all_segments()), 4)
    return profiles.select(
        "segment_id",
        "customers",
        share.alias("share"),
        *[c for c in profiles.columns if c.startswith("mean_")],
    )


def _population_index(column: str) -> Column:
    """The segment's value over the customer-weighted mean of all segments with a value."""
    value, customers = F.col(column), F.col("customers")
    weighted_sum = F.sum(value * customers).over(_all_segments())
    weight = F.sum(F.when(value.isNotNull(), customers)).over(_all_segments())
    population = F.when(weight > 0, weighted_sum / weight)
    return F.when(population > 0, value / population)


def _persona(thresholds: PersonaThresholds) -> Column:
    """The persona of PERSONA_RULES for a profile row that has the two `_index` columns."""
    chain: Column | None = None
    for name, conditions in PERSONA_RULES:
        if not conditions:
            return chain.otherwise(name)  # type: ignore[union-attr]
        condition = None
        for column, comparison, threshold in conditions:
            test = _COMPARISONS[comparison](F.col(column), getattr(thresholds, threshold))
            condition = test if condition is None else condition & test
        chain = F.when(condition, name) if chain is None else chain.when(condition, name)
    raise AssertionError("PERSONA_RULES must end with an unconditional persona")


def with_persona(
    profiles_df: DataFrame,
    thresholds: PersonaThresholds = DEFAULT_PERSONA_THRESHOLDS,
) -> DataFrame:
    """Add `persona` to segment_profiles' output by the first matching rule of PERSONA_RULES."""
    indexed = profiles_df.withColumns(
        {
            "unit_value_index": _population_index("mean_unit_value"),
            "items_per_invoice_index": _population_index("mean_items_per_invoice"),
        }
    )
    return indexed.withColumn("persona", _persona(thresholds)).drop(
        "unit_value_index", "items_per_invoice_index"
    )
