"""Segment profiles and persona rules on literal rows."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality

from retail_segmentation.common.errors import ConfigError
from retail_segmentation.gold import profiles

CUSTOMERS_DDL = (
    "customer_id string, segment_id int, recency_days int, frequency long, monetary double, "
    "tenure_days int, r_score int, f_score int, m_score int, avg_basket_value double, "
    "avg_items_per_invoice double, cancellation_rate double, weekend_share double, "
    "distinct_products long"
)
PROFILE_DDL = (
    "segment_id int, customers long, share double, mean_recency_days double, "
    "mean_frequency double, mean_monetary double, mean_tenure_days double, "
    "mean_r_score double, mean_f_score double, mean_m_score double, mean_basket_value double, "
    "mean_items_per_invoice double, mean_unit_value double, mean_cancellation_rate double, "
    "mean_weekend_share double"
)
# The columns the persona rules read, plus the expected persona.
PERSONA_DDL = (
    "segment_id int, customers long, mean_r_score double, mean_f_score double, "
    "mean_m_score double, mean_tenure_days double, mean_items_per_invoice double, "
    "mean_unit_value double"
)


def test_segment_profiles_means_share_and_unit_value(spark):
    customers_df = spark.createDataFrame(
        [
            ("a", 1, 10, 4, 400.0, 300, 5, 4, 5, 100.0, 20.0, 0.2, 0.5, 30),
            ("b", 1, 30, 2, 100.0, 100, 4, 3, 3, 50.0, 10.0, 0.0, 0.0, 8),
            # No behaviour row: counts in the RFM means, not in the behaviour means.
            ("c", 1, 20, 1, 40.0, 20, 4, 1, 2, None, None, None, None, None),
            # A segment without any behaviour: null behaviour means, no division by zero.
            ("d", 2, 300, 1, 12.5, 300, 1, 1, 1, None, None, None, None, None),
        ],
        CUSTOMERS_DDL,
    )
    # Unit value of segment 1: (100 x 4 + 50 x 2) sales / (20 x 4 + 10 x 2) items = 5.0.
    expected_df = spark.createDataFrame(
        [
            (1, 3, 0.75, 20.0, 2.33, 180.0, 140.0, 4.33, 2.67, 3.33, 75.0, 15.0, 5.0, 0.1, 0.25),
            (2, 1, 0.25, 300.0, 1.0, 12.5, 300.0, 1.0, 1.0, 1.0, None, None, None, None, None),
        ],
        PROFILE_DDL,
    )
    actual_df = profiles.segment_profiles(customers_df)
    assert_df_equality(actual_df, expected_df, ignore_row_order=True, ignore_nullable=True)


def test_personas_are_the_marketing_names_in_rule_order():
    assert profiles.PERSONAS == (
        "VIP",
        "Churned",
        "Slipping Away",
        "New",
        "Bargain Hunter",
        "Loyal",
        "Occasional",
    )


def _persona_rows() -> list[tuple]:
    # Population (customer-weighted, segments with a value only): items per invoice
    # (6 x 10 + 20) / 7 = 11.43, unit value (6 x 2 + 1) / 7 = 1.86; so segment 4 has indexes
    # 1.75 and 0.54. Counting segment 7's null in the weights would give 0.62: no bargain.
    return [
        (0, 10, 4.5, 4.8, 4.9, 300.0, 10.0, 2.0, "VIP"),
        (1, 10, 1.2, 3.5, 3.0, 400.0, 10.0, 2.0, "Churned"),  # also frequent: order wins
        (2, 10, 1.75, 2.0, 2.0, 200.0, 10.0, 2.0, "Slipping Away"),  # boundary: not Churned
        (3, 10, 4.8, 1.0, 1.5, 90.0, 10.0, 2.0, "New"),  # boundary: tenure exactly 90
        (4, 10, 3.0, 2.0, 3.0, 200.0, 20.0, 1.0, "Bargain Hunter"),
        (5, 10, 3.2, 3.4, 3.5, 250.0, 10.0, 2.0, "Loyal"),
        (6, 10, 3.0, 2.0, 2.0, 100.0, 10.0, 2.0, "Occasional"),
        (7, 10, 3.0, 2.0, 2.0, 100.0, None, None, "Occasional"),  # no behaviour
    ]


def test_with_persona_first_matching_rule_names_each_segment(spark):
    rows = _persona_rows()
    profiles_df = spark.createDataFrame([row[:-1] for row in rows], PERSONA_DDL)
    expected_df = spark.createDataFrame(rows, PERSONA_DDL + ", persona string")
    actual_df = profiles.with_persona(profiles_df)
    assert_df_equality(actual_df, expected_df, ignore_row_order=True, ignore_nullable=True)
    assert {row[-1] for row in rows} == set(profiles.PERSONAS)


def test_with_persona_takes_thresholds_and_segments_may_share_a_persona(spark):
    rows = _persona_rows()
    profiles_df = spark.createDataFrame([row[:-1] for row in rows], PERSONA_DDL)
    strict = profiles.PersonaThresholds(loyal_min_f_score=3.5, vip_min_r_score=5.0)
    actual = {
        row.segment_id: row.persona
        for row in profiles.with_persona(profiles_df, strict)
        .select("segment_id", "persona")
        .collect()
    }
    assert actual[0] == "Loyal"  # VIP needs R >= 5 now, but F 4.8 is still loyal
    assert actual[5] == "Occasional"  # F 3.4 < 3.5
    assert actual[3] == "New"


def test_profiles_feed_with_persona_end_to_end(spark):
    customers_df = spark.createDataFrame(
        [
            ("a", 1, 5, 9, 900.0, 400, 5, 5, 5, 100.0, 10.0, 0.0, 0.5, 40),
            ("b", 1, 8, 8, 800.0, 380, 5, 5, 5, 100.0, 10.0, 0.1, 0.5, 35),
            ("c", 2, 400, 1, 10.0, 500, 1, 1, 1, 10.0, 5.0, 0.0, None, 3),
        ],
        CUSTOMERS_DDL,
    )
    personas = profiles.with_persona(profiles.segment_profiles(customers_df))
    assert dict(personas.select("segment_id", "persona").collect()) == {1: "VIP", 2: "Churned"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"vip_min_f_score": "4"}, r"vip_min_f_score='4' is invalid: expected a number"),
        ({"loyal_min_f_score": True}, r"loyal_min_f_score=True is invalid: expected a number"),
        ({"new_min_r_score": 6.0}, r"new_min_r_score=6.0 .* score between 1 and 5"),
        ({"churned_max_r_score": 3.0}, r"churned_max_r_score=3.0 .* <= slipping_max_r_score"),
        ({"new_max_tenure_days": -1}, r"new_max_tenure_days=-1 .* days >= 0"),
        ({"bargain_max_unit_value_index": 0}, r"bargain_max_unit_value_index=0 .* > 0"),
    ],
)
def test_persona_thresholds_reject_bad_values(changes, message):
    with pytest.raises(ConfigError, match=message):
        profiles.PersonaThresholds(**changes)
