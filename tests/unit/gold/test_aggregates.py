"""Business aggregates on literal rows."""

from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality

from retail_segmentation.gold import aggregates

TS = dt.datetime
AS_OF = dt.date(2011, 12, 10)
DDL = (
    "customer_id string, invoice string, invoice_date timestamp, stock_code string, "
    "description string, quantity int, line_amount double, line_type string, country string"
)


def _silver(spark):
    return spark.createDataFrame(
        [
            ("A", "1", TS(2011, 12, 5, 10), "X", "MUG", 4, 8.0, "sale", "France"),
            ("A", "1", TS(2011, 12, 5, 10), "Y", None, 1, 3.0, "sale", "France"),
            ("B", "2", TS(2011, 12, 5, 11), "X", "MUG", 6, 12.0, "sale", "EIRE"),
            ("A", "C3", TS(2011, 12, 6, 9), "X", "MUG", -2, -4.0, "return", "France"),
            ("A", "4", TS(2011, 12, 6, 9), "POST", "POSTAGE", 1, 18.0, "non_product", "France"),
            ("B", "5", TS(2011, 12, 10, 9), "X", "MUG", 1, 2.0, "sale", "EIRE"),  # as-of day
        ],
        DDL,
    )


def test_product_performance(spark):
    expected = spark.createDataFrame(
        [("X", "MUG", 16.0, 2, 2, 10, 2, 0.2), ("Y", None, 3.0, 1, 1, 1, 0, 0.0)],
        "stock_code string, description string, net_sales double, invoices long, "
        "customers long, units_sold long, units_returned long, return_rate double",
    )
    actual = aggregates.product_performance(_silver(spark), AS_OF)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_sales_by_country_and_weekday_hour(spark):
    by_country = aggregates.sales_by_country(_silver(spark), AS_OF).select(
        "country", "net_sales", "invoices", "units_returned"
    )
    expected = spark.createDataFrame(
        [("France", 7.0, 1, 2), ("EIRE", 12.0, 1, 0)],
        "country string, net_sales double, invoices long, units_returned long",
    )
    assert_df_equality(by_country, expected, ignore_row_order=True, ignore_nullable=True)

    by_hour = aggregates.sales_by_weekday_hour(_silver(spark), AS_OF).select(
        "weekday_number", "weekday", "hour", "net_sales"
    )
    expected = spark.createDataFrame(
        [(2, "Monday", 10, 11.0), (2, "Monday", 11, 12.0), (3, "Tuesday", 9, -4.0)],
        "weekday_number int, weekday string, hour int, net_sales double",
    )
    assert_df_equality(by_hour, expected, ignore_row_order=True, ignore_nullable=True)


def test_sales_by_day(spark):
    actual = aggregates.sales_by_day(_silver(spark), AS_OF).select("sales_date", "net_sales")
    expected = spark.createDataFrame(
        [(dt.date(2011, 12, 5), 23.0), (dt.date(2011, 12, 6), -4.0)],
        "sales_date date, net_sales double",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
