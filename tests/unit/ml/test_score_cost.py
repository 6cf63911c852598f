"""The scoring benchmark's comparison of two segments tables, and its printed line."""

from __future__ import annotations

from retail_segmentation.ml.score_cost import ScoreCost, differing_customers, row

SCHEMA = (
    "customer_id string, segment_id int, persona string, membership_probability double, "
    "scored_at string"
)


def test_customers_scored_differently_or_missing_are_counted_once(spark):
    left = spark.createDataFrame(
        [
            ("c1", 0, "VIP", 1.0, "10:00"),
            ("c2", 1, "Churned", 0.9, "10:00"),
            ("c3", 1, "Churned", 0.8, "10:00"),
            ("c4", 2, "Loyal", 1.0, "10:00"),
        ],
        SCHEMA,
    )
    right = spark.createDataFrame(
        [
            ("c1", 0, "VIP", 1.0, "11:00"),  # same score, another run: not a difference
            ("c2", 0, "VIP", 0.9, "11:00"),  # another segment
            ("c3", 1, "Churned", 0.7, "11:00"),  # another probability
            ("c5", 2, "Loyal", 1.0, "11:00"),  # c4 missing, c5 new
        ],
        SCHEMA,
    )

    assert differing_customers(left, right) == 4
    assert differing_customers(left, left) == 0


def test_a_line_shows_the_layout_peaks_and_differences():
    first = ScoreCost(500_000, 1, 41.26, 151.4, 3_900.2, 500_000, None)
    second = ScoreCost(500_000, 8, 38.0, None, None, 500_000, 0)

    assert row(first).split() == ["500,000", "1", "41.3", "151", "3,900", "500,000", "-"]
    assert row(second).split() == ["500,000", "8", "38.0", "-", "-", "500,000", "0"]
