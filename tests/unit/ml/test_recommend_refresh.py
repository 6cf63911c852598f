"""Between ALS fits: the refit policy's decisions, and the last lists refreshed on literal rows."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality

from retail_segmentation.common.errors import ConfigError
from retail_segmentation.ml.recommend import (
    FIT,
    REFRESH,
    FitState,
    RefitPolicy,
    plan_recommendations,
    refresh_recommendations,
)

OLD_DDL = (
    "customer_id string, rank int, stock_code string, description string, score double, "
    "source string, as_of_date date"
)
NEW_DDL = (
    "customer_id string, rank int, stock_code string, description string, score double, "
    "source string"
)
FITTED = dt.date(2011, 12, 1)
STATE = FitState(
    silver_version=4,
    as_of_date=dt.date(2011, 12, 3),
    fitted_as_of=FITTED,
    fitted_customers=95,
    als_digest="abc",
)


def _plan(as_of=dt.date(2011, 12, 4), customers=100, state=STATE, digest="abc", **kwargs):
    rewrites = kwargs.pop("rewrites", [])
    return plan_recommendations(
        state, digest, as_of, customers, RefitPolicy(), lambda since: rewrites, **kwargs
    )


def test_between_fits_the_lists_are_refreshed_from_the_silver_version_they_hold():
    plan = _plan()
    assert (plan.mode, plan.since) == (REFRESH, 4)
    assert plan.reason == "the fit is 3 days old and 5.0% of the customers are new since it"


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"refit": True}, "requested (--refit)"),
        ({"state": None}, "no recommendations recorded by a finished run"),
        ({"digest": "xyz"}, "the ALS parameters changed"),
        (
            {"as_of": dt.date(2011, 12, 2)},
            "as-of date 2011-12-02 is before the recommendations' (2011-12-03)",
        ),
        (
            {"as_of": dt.date(2011, 12, 8)},
            "the fit is 7 days old (fitted for 2011-12-01; refit_after_days=7)",
        ),
        (
            {"customers": 110},
            "13.6% of the customers are new since the fit (max_new_customer_share=0.1)",
        ),
        (
            {"rewrites": ["v6 WRITE"]},
            "silver was rewritten whole since v4: v6 WRITE",
        ),
    ],
)
def test_the_policy_fits_again(kwargs, reason):
    plan = _plan(**kwargs)
    assert (plan.mode, plan.reason, plan.since) == (FIT, reason, None)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("refit_after_days", -1, r"refit_after_days=-1: expected whole days in \[0, 3650\]"),
        ("refit_after_days", 1.5, r"refit_after_days=1.5: expected whole days"),
        ("max_new_customer_share", 0, r"max_new_customer_share=0: expected a share in \(0, 1\]"),
        ("max_new_customer_share", 1.5, r"max_new_customer_share=1.5: expected a share"),
    ],
)
def test_the_policy_rejects_bad_thresholds(field, value, message):
    with pytest.raises(ConfigError, match=message):
        RefitPolicy(**{field: value})


def test_a_refresh_keeps_untouched_lists_and_ranks_touched_ones_again(spark):
    old_df = spark.createDataFrame(
        [
            # A: untouched, kept as it is
            ("A", 1, "P3", "tin", 0.9, "als", FITTED),
            ("A", 2, "P4", "bowl", 0.5, "als", FITTED),
            # B: bought P3 since: P4 moves up, a popular product fills the list
            ("B", 1, "P3", "tin", 0.8, "als", FITTED),
            ("B", 2, "P4", "bowl", 0.4, "als", FITTED),
            # gone from the customers: dropped
            ("Z", 1, "P1", "mug", 0.7, "als", FITTED),
        ],
        OLD_DDL,
    )
    purchases_df = spark.createDataFrame(
        [
            ("A", "P1", 2.0),
            ("B", "P1", 1.0),
            ("B", "P3", 4.0),
            ("C", "P2", 1.0),
            ("D", "P2", 3.0),
        ],
        "customer_id string, stock_code string, quantity double",
    )
    customers_df = spark.createDataFrame([(c,) for c in "ABCD"], "customer_id string")
    # B's new line; C has no list yet (new); D is named by a changed row too (new)
    changed_df = spark.createDataFrame(
        [("B", "P3"), ("D", "P2"), (None, "P2")], "customer_id string, stock_code string"
    )
    products_df = spark.createDataFrame(
        [("P1", "mug"), ("P2", "jar"), ("P3", "tin"), ("P4", "bowl")],
        "stock_code string, description string",
    )
    expected = spark.createDataFrame(
        [
            ("A", 1, "P3", "tin", 0.9, "als"),
            ("A", 2, "P4", "bowl", 0.5, "als"),
            ("B", 1, "P4", "bowl", 0.4, "als"),
            ("B", 2, "P2", "jar", None, "popular"),  # 2 buyers
            ("C", 1, "P1", "mug", None, "popular"),  # 2 buyers, then P3 and P4 (1 each)
            ("C", 2, "P3", "tin", None, "popular"),
            ("D", 1, "P1", "mug", None, "popular"),
            ("D", 2, "P3", "tin", None, "popular"),
        ],
        NEW_DDL,
    )
    actual = refresh_recommendations(
        old_df, purchases_df, customers_df, changed_df, products_df, top_n=2
    )
    assert_df_equality(
        actual, expected, ignore_row_order=True, ignore_nullable=True, ignore_column_order=True
    )
