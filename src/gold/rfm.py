"""`gold_customer_rfm`: recency, frequency, monetary per customer, quintile scores and a
named RFM segment.

Segment rules live in RFM_SEGMENTS, in one place: the first row whose recency and
frequency score ranges hold names the customer (the widely used R x F grid).

| segment             | R score | F score |
|---------------------|---------|---------|
| Champions           | 5       | 4-5     |
| Loyal Customers     | 3-4     | 4-5     |
| Potential Loyalist  | 4-5     | 2-3     |
| New Customers       | 5       | 1       |
| Promising           | 4       | 1       |
| Need Attention      | 3       | 3       |
| About To Sleep      | 3       | 1-2     |
| Can't Lose Them     | 1-2     | 5       |
| At Risk             | 1-2     | 3-4     |
| Lost                | 1       | 1       |
| Hibernating         | 1-2     | 1-2     |
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from retail_segmentation.gold.lines import filter_product_lines_before
from retail_segmentation.silver.rules import LINE_SALE

RFM_SEGMENTS: tuple[tuple[str, tuple[int, int], tuple[int, int]], ...] = (
    ("Champions", (5, 5), (4, 5)),
    ("Loyal Customers", (3, 4), (4, 5)),
    ("Potential Loyalist", (4, 5), (2, 3)),
    ("New Customers", (5, 5), (1, 1)),
    ("Promising", (4, 4), (1, 1)),
    ("Need Attention", (3, 3), (3, 3)),
    ("About To Sleep", (3, 3), (1, 2)),
    ("Can't Lose Them", (1, 2), (5, 5)),
    ("At Risk", (1, 2), (3, 4)),
    ("Lost", (1, 1), (1, 1)),
    ("Hibernating", (1, 2), (1, 2)),
)


@dataclass(frozen=True)
class QuintileCuts:
    """The 20/40/60/80th percentiles of one measure, from which scores 1-5 follow."""

    column: str
    cuts: tuple[float, float, float, float]
    higher_is_better: bool = True

    def score(self) -> Column:
        """1-5; ties share a score (all one-time buyers get the same F score); null scores
        as the worst value."""
        value = F.col(self.column)
        below = sum(F.when(value > cut, 1).otherwise(0) for cut in self.cuts)  # 0..4
        score = below + 1 if self.higher_is_better else 5 - below
        return F.when(value.isNull(), 1).otherwise(score).cast("int")


def customer_measures(silver_df: DataFrame, as_of_date: dt.date) -> DataFrame:
    """Per customer: recency_days, frequency, monetary (net of returns), first/last purchase,
    tenure_days; from sale and return lines dated before the as-of date."""
    lines = filter_product_lines_before(silver_df, as_of_date)
    is_sale = F.col("line_type") == LINE_SALE
    per_customer = (
        lines.groupBy("customer_id")
        .agg(
            F.min(F.when(is_sale, F.col("invoice_date"))).alias("first_purchase"),
            F.max(F.when(is_sale, F.col("invoice_date"))).alias("last_purchase"),
            F.count_distinct(F.when(is_sale, F.col("invoice"))).alias("frequency"),
            F.round(F.sum("line_amount"), 2).alias("monetary"),
        )
        .where(F.col("frequency") > 0)
    )
    return measures_as_of(per_customer, as_of_date)


def measures_as_of(measures_df: DataFrame, as_of_date: dt.date) -> DataFrame:
    """The columns of `customer_measures` from a frame with customer_id, frequency, monetary
    and first/last purchase: recency and tenure counted back from the as-of date (so the
    measures of a customer with no new line move to a new date without their lines)."""
    as_of = F.lit(as_of_date).cast("date")
    return measures_df.select(
        "customer_id",
        F.datediff(as_of, F.to_date("last_purchase")).alias("recency_days"),
        "frequency",
        "monetary",
        "first_purchase",
        "last_purchase",
        F.datediff(as_of, F.to_date("first_purchase")).alias("tenure_days"),
    )


def quintile_cuts(measures_df: DataFrame, accuracy: int = 10_000) -> tuple[QuintileCuts, ...]:
    """Recency, frequency and monetary quintile cut points (one Spark action)."""
    probabilities = [0.2, 0.4, 0.6, 0.8]
    row = measures_df.agg(
        *[
            F.percentile_approx(c, probabilities, accuracy).alias(c)
            for c in ("recency_days", "frequency", "monetary")
        ]
    ).first()

    def cuts(column: str) -> tuple[float, float, float, float]:
        values = row[column] or [0, 0, 0, 0]
        return tuple(float(v) for v in values)  # type: ignore[return-value]

    return (
        QuintileCuts("recency_days", cuts("recency_days"), higher_is_better=False),
        QuintileCuts("frequency", cuts("frequency")),
        QuintileCuts("monetary", cuts("monetary")),
    )


def rfm_segment(r_score: Column, f_score: Column) -> Column:
    """The named segment of RFM_SEGMENTS for a recency and frequency score."""
    segment: Column | None = None
    for name, (r_low, r_high), (f_low, f_high) in RFM_SEGMENTS:
        condition = r_score.between(r_low, r_high) & f_score.between(f_low, f_high)
        segment = F.when(condition, name) if segment is None else segment.when(condition, name)
    return segment.otherwise("Other")  # type: ignore[union-attr]


def with_rfm_scores(measures_df: DataFrame, cuts: tuple[QuintileCuts, ...]) -> DataFrame:
    """Add r_score, f_score, m_score (1-5), rfm_score ("545") and rfm_segment."""
    recency, frequency, monetary = cuts
    scored = measures_df.withColumns(
        {"r_score": recency.score(), "f_score": frequency.score(), "m_score": monetary.score()}
    )
    return scored.withColumns(
        {
            "rfm_score": F.concat(
                F.col("r_score").cast("string"),
                F.col("f_score").cast("string"),
                F.col("m_score").cast("string"),
            ),
            "rfm_segment": rfm_segment(F.col("r_score"), F.col("f_score")),
        }
    )
