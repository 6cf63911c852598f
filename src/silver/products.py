"""`silver_products`: one row per StockCode, from the silver sale lines."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from retail_segmentation.silver.rules import LINE_NON_PRODUCT, LINE_SALE


def _mode(df: DataFrame, key: str, value: str, alias: str) -> DataFrame:
    counts = df.where(F.col(value).isNotNull()).groupBy(key, value).count()
    rank = Window.partitionBy(key).orderBy(F.desc("count"), F.asc(value))
    return (
        counts.withColumn("_rank", F.row_number().over(rank))
        .where(F.col("_rank") == 1)
        .select(key, F.col(value).alias(alias))
    )


def build_products(silver_df: DataFrame) -> DataFrame:
    """stock_code, description (most common), modal_price, first/last seen, lines, units."""
    sales = silver_df.where(F.col("line_type") == LINE_SALE)
    stats = silver_df.groupBy("stock_code").agg(
        F.min("invoice_date").alias("first_seen"),
        F.max("invoice_date").alias("last_seen"),
        F.count(F.lit(1)).alias("lines"),
        F.sum(F.when(F.col("line_type") == LINE_SALE, F.col("quantity")).otherwise(0))
        .cast("long")
        .alias("units_sold"),
        F.max(F.col("line_type") != LINE_NON_PRODUCT).alias("is_product"),
    )
    return (
        stats.join(
            _mode(silver_df, "stock_code", "description", "description"), "stock_code", "left"
        )
        .join(_mode(sales, "stock_code", "price", "modal_price"), "stock_code", "left")
        .select(
            "stock_code",
            "description",
            "modal_price",
            "first_seen",
            "last_seen",
            "lines",
            "units_sold",
            "is_product",
        )
    )
