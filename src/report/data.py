"""What the insights report shows: small summaries computed in Spark from the silver and gold
tables and read from MLflow. Each function takes DataFrames and returns a DataFrame of at most
a few hundred rows (per segment, rule, product rank, weekday x hour, country); customer rows
never reach the driver.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from retail_segmentation.gold.lines import filter_product_lines_before

# Box plots of R, F and M per segment: 5th, 25th, 50th, 75th and 95th percentiles.
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
RFM_MEASURES = ("recency_days", "frequency", "monetary")
# percentile_approx's accuracy: 1/accuracy is the relative rank error, exact on small segments.
_PERCENTILE_ACCURACY = 10_000


def segment_label(segment_id: int, persona: str) -> str:
    """How a segment is named on every chart: its persona and id (two segments may share a
    persona)."""
    return f"{persona} #{segment_id}"


def rfm_quantiles(segments_df: DataFrame, rfm_df: DataFrame) -> DataFrame:
    """Per segment and R/F/M measure: the QUANTILES and the mean, for box plots.

    Args:
        segments_df: gold_customer_segments (customer_id, segment_id, persona).
        rfm_df: gold_customer_rfm (customer_id and RFM_MEASURES).

    Returns:
        segment_id, persona, measure, p05, q1, median, q3, p95, mean (doubles), customers.
    """
    values = segments_df.select("customer_id", "segment_id", "persona").join(
        rfm_df.select("customer_id", *RFM_MEASURES), "customer_id"
    )
    long_df = values.unpivot(
        ["segment_id", "persona"],
        [F.col(m).cast("double").alias(m) for m in RFM_MEASURES],
        "measure",
        "value",
    )
    quantiles = F.percentile_approx(
        "value", F.array(*[F.lit(q) for q in QUANTILES]), _PERCENTILE_ACCURACY
    )
    names = ("p05", "q1", "median", "q3", "p95")
    return (
        long_df.groupBy("segment_id", "persona", "measure")
        .agg(
            quantiles.alias("quantiles"),
            F.avg("value").alias("mean"),
            F.count("value").alias("customers"),
        )
        .select(
            "segment_id",
            "persona",
            "measure",
            *[F.col("quantiles")[i].alias(name) for i, name in enumerate(names)],
            "mean",
            "customers",
        )
    )


def top_products_per_segment(
    silver_df: DataFrame,
    segments_df: DataFrame,
    products_df: DataFrame,
    as_of_date: dt.date,
    top_n: int = 5,
) -> DataFrame:
    """The `top_n` products of each segment by net sales (sales less returns, before the as-of
    date), with the number of the segment's customers who bought them.

    Returns:
        segment_id, persona, rank (1 = best), stock_code, description, net_sales, customers.
    """
    lines_df = filter_product_lines_before(silver_df, as_of_date).join(
        segments_df.select("customer_id", "segment_id", "persona"), "customer_id"
    )
    per_product = lines_df.groupBy("segment_id", "persona", "stock_code").agg(
        F.round(F.sum("line_amount"), 2).alias("net_sales"),
        F.count_distinct("customer_id").alias("customers"),
    )
    best_first = Window.partitionBy("segment_id").orderBy(
        F.col("net_sales").desc(), F.col("stock_code")
    )
    return (
        per_product.withColumn("rank", F.row_number().over(best_first))
        .where(F.col("rank") <= top_n)
        .join(products_df.select("stock_code", "description"), "stock_code", "left")
        .select(
            "segment_id",
            "persona",
            "rank",
            "stock_code",
            "description",
            "net_sales",
            "customers",
        )
    )


def offers_per_persona(offers_df: DataFrame) -> DataFrame:
    """Customers per persona and offer in gold_segmented_offers.

    Returns:
        persona, offer_code, offer_title, discount_pct, customers.
    """
    return offers_df.groupBy("persona", "offer_code", "offer_title", "discount_pct").agg(
        F.count(F.lit(1)).alias("customers")
    )


def silver_quality_steps(ledger_df: DataFrame, silver_rows: int) -> DataFrame:
    """The ledger's totals of the silver run that left the current silver table, in rule order.

    That run read the highest bronze version; when several runs read it (other rule options),
    the one whose balance matches today's silver row count is taken. Per-batch entries
    (`silver:batch:<id>`) are left out.

    Returns:
        step, rule, rows_in, rows_out, rows_quarantined, rows_removed, detail (JSON).
    """
    silver_df = ledger_df.where(
        (F.col("layer") == "silver") & ~F.col("run_id").startswith("silver:batch:")
    ).withColumn(
        "bronze_version",
        F.regexp_extract("run_id", r"bronze_v(\d+)", 1).cast("long"),
    )
    balances_df = silver_df.where(F.col("rule") == "balance").select(
        "run_id",
        "bronze_version",
        (F.col("rows_out") == F.lit(silver_rows)).alias("matches_silver"),
    )
    latest = Window.orderBy(
        F.col("matches_silver").desc(), F.col("bronze_version").desc_nulls_last()
    )
    run_df = balances_df.withColumn("order", F.row_number().over(latest)).where("order = 1")
    return (
        silver_df.join(run_df.select("run_id"), "run_id")
        .select("step", "rule", "rows_in", "rows_out", "rows_quarantined", "rows_removed", "detail")
        .orderBy("step")
    )


def top_countries(sales_by_country_df: DataFrame, top_n: int = 15) -> DataFrame:
    """The `top_n` countries by net sales (gold_sales_by_country), best first."""
    return sales_by_country_df.orderBy(F.col("net_sales").desc(), "country").limit(top_n)


@dataclass(frozen=True)
class Fit:
    """One fit of the sweep, as the report charts it."""

    algorithm: str
    k: int
    silhouette: float
    wcss: float | None
    log_likelihood: float | None
    smallest_cluster_share: float
    adjusted_rand_index: float | None = None


@dataclass(frozen=True)
class ReportData:
    """Everything the report draws, already small: lists of plain rows (dicts)."""

    title: str
    summary: dict[str, Any]
    segments: list[dict[str, Any]]
    rfm_quantiles: list[dict[str, Any]]
    fits: list[Fit]
    winner: str | None
    quality_steps: list[dict[str, Any]]
    top_products: list[dict[str, Any]]
    offers: list[dict[str, Any]]
    weekday_hour: list[dict[str, Any]]
    countries: list[dict[str, Any]]
    tables: list[dict[str, Any]] = field(default_factory=list)


def rows(df: DataFrame) -> list[dict[str, Any]]:
    """A small summary DataFrame as plain dicts."""
    return [row.asDict(recursive=True) for row in df.collect()]
