"""The silver lines every gold table is computed from."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from retail_segmentation.silver.rules import LINE_RETURN, LINE_SALE


def filter_product_lines_before(silver_df: DataFrame, as_of_date: dt.date) -> DataFrame:
    """Sale and return lines (no postage or fees) dated before the as-of date."""
    return silver_df.where(
        F.col("line_type").isin(LINE_SALE, LINE_RETURN)
        & (F.to_date("invoice_date") < F.lit(as_of_date).cast("date"))
    )
