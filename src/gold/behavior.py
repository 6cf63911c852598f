"""`gold_customer_behavior`: how each customer buys, from their invoices before the as-of date."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from retail_segmentation.gold.lines import filter_product_lines_before
from retail_segmentation.silver.rules import LINE_SALE

# Spark's dayofweek: 1 = Sunday ... 7 = Saturday.
WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def customer_behavior(silver_df: DataFrame, as_of_date: dt.date) -> DataFrame:
    """Per customer: basket value, items per invoice, distinct products, cancellation rate,
    returned value share, mean days between purchases, weekend share, favourite weekday and
    hour, country. Only customers with at least one sale before the as-of date appear."""
    lines = filter_product_lines_before(silver_df, as_of_date)
    is_sale = F.col("line_type") == LINE_SALE
    invoices = lines.groupBy("customer_id", "invoice").agg(
        F.min("invoice_date").alias("invoice_date"),
        F.bool_and(is_sale).alias("is_sale"),
        F.sum("line_amount").alias("amount"),
        F.sum("quantity").alias("items"),
    )
    sale = F.col("is_sale")
    by_invoice = invoices.groupBy("customer_id").agg(
        F.count_if(sale).alias("invoices"),
        F.count_if(~sale).alias("cancellations"),
        F.sum(F.when(sale, F.col("amount"))).alias("sales_value"),
        F.sum(F.when(~sale, -F.col("amount"))).alias("returned_value"),
        F.sum(F.when(sale, F.col("items"))).alias("items_bought"),
        F.min(F.when(sale, F.col("invoice_date"))).alias("first_purchase"),
        F.max(F.when(sale, F.col("invoice_date"))).alias("last_purchase"),
        F.count_if(sale & F.dayofweek("invoice_date").isin(1, 7)).alias("weekend_invoices"),
        F.mode(F.when(sale, F.dayofweek("invoice_date")), True).alias("weekday_number"),
        F.mode(F.when(sale, F.hour("invoice_date")), True).alias("favourite_hour"),
    )
    # two aggregations joined: mode() next to a distinct count in one is planned as one
    # slow aggregation (see aggregates.product_performance)
    by_line = (
        lines.groupBy("customer_id")
        .agg(F.count_distinct(F.when(is_sale, F.col("stock_code"))).alias("distinct_products"))
        .join(
            lines.groupBy("customer_id").agg(F.mode("country", True).alias("country")),
            "customer_id",
        )
    )
    invoices_n = F.col("invoices")
    span_days = F.datediff(F.to_date("last_purchase"), F.to_date("first_purchase"))
    return (
        by_invoice.where(invoices_n > 0)
        .join(by_line, "customer_id")
        .select(
            "customer_id",
            invoices_n.alias("invoices"),
            F.round(F.col("sales_value") / invoices_n, 2).alias("avg_basket_value"),
            F.round(F.col("items_bought") / invoices_n, 2).alias("avg_items_per_invoice"),
            "distinct_products",
            F.round(F.col("cancellations") / (invoices_n + F.col("cancellations")), 4).alias(
                "cancellation_rate"
            ),
            F.round(
                F.coalesce(F.col("returned_value"), F.lit(0.0)) / F.col("sales_value"), 4
            ).alias("returned_value_share"),
            F.when(invoices_n > 1, F.round(span_days / (invoices_n - 1), 2)).alias(
                "mean_days_between_purchases"
            ),
            F.round(F.col("weekend_invoices") / invoices_n, 4).alias("weekend_share"),
            F.element_at(F.array(*[F.lit(d) for d in WEEKDAYS]), F.col("weekday_number")).alias(
                "favourite_weekday"
            ),
            F.col("favourite_hour"),
            "country",
        )
    )
