"""Customer behaviour measures on literal rows."""

from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality

from retail_segmentation.gold.behavior import customer_behavior

TS = dt.datetime
AS_OF = dt.date(2011, 12, 10)
DDL = (
    "customer_id string, invoice string, invoice_date timestamp, stock_code string, "
    "quantity int, line_amount double, line_type string, country string"
)


def test_customer_behavior(spark):
    source_df = spark.createDataFrame(
        [
            # A: Saturday 10:00 and Monday 10:00 and Monday 15:00 orders, one return
            ("A", "1", TS(2011, 12, 3, 10), "X", 2, 10.0, "sale", "France"),
            ("A", "1", TS(2011, 12, 3, 10), "Y", 1, 5.0, "sale", "France"),
            ("A", "2", TS(2011, 12, 5, 10), "X", 4, 20.0, "sale", "France"),
            ("A", "3", TS(2011, 12, 5, 15), "X", 3, 15.0, "sale", "EIRE"),
            ("A", "C4", TS(2011, 12, 6, 9), "X", -2, -10.0, "return", "France"),
            ("A", "5", TS(2011, 12, 6, 9), "POST", 1, 18.0, "non_product", "France"),
            ("A", "6", TS(2011, 12, 11, 9), "X", 1, 99.0, "sale", "France"),  # after as-of
            # B: one Sunday order, no country tie-break issue
            ("B", "7", TS(2011, 12, 4, 12), "Z", 6, 12.0, "sale", "United Kingdom"),
            ("C", "C8", TS(2011, 12, 4, 12), "Z", -1, -2.0, "return", None),  # no sale
        ],
        DDL,
    )
    expected = spark.createDataFrame(
        [
            ("A", 3, 16.67, 3.33, 2, 0.25, 0.2, 1.0, 0.3333, "Monday", 10, "France"),
            ("B", 1, 12.0, 6.0, 1, 0.0, 0.0, None, 1.0, "Sunday", 12, "United Kingdom"),
        ],
        "customer_id string, invoices long, avg_basket_value double, "
        "avg_items_per_invoice double, distinct_products long, cancellation_rate double, "
        "returned_value_share double, mean_days_between_purchases double, "
        "weekend_share double, favourite_weekday string, favourite_hour int, country string",
    )
    actual = customer_behavior(source_df, AS_OF)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
