"""Product recommendations per customer: implicit-feedback ALS on what each customer bought.

- `purchase_matrix`: units bought per (customer, stock code) on sale lines before the as-of
  date; ALS reads the quantity as a confidence that the customer likes the product, not a rating.
- `recommend_products`: customers and stock codes get dense integer ids (alphabetical, so the
  same input gives the same ids), Spark ML ALS is fitted with `implicitPrefs`, and each customer
  is asked for top_n + min(most products any one customer bought, max_candidates) items, so
  that top_n products remain after dropping those the customer already has; these are
  re-ranked by score. Asking every customer for as many items as the heaviest buyer bought
  (hundreds) made the candidate list, not the model, the cost; max_candidates bounds it.
- Cold start and short lists: a customer ALS cannot score (nothing bought before the as-of
  date), or a heavy buyer whose ALS candidates were all bought already, is completed with the
  most popular products (distinct buyers) they have not bought, with source 'popular' and a
  null score. Fewer than top_n rows come back only when the catalogue holds no more
  products the customer has not bought.

Ties are broken by stock_code, so the same input and seed give the same rows.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.ml.feature import IndexToString, StringIndexer, StringIndexerModel
from pyspark.ml.recommendation import ALS
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from retail_segmentation.common.errors import ConfigError
from retail_segmentation.common.spark import default_parallelism
from retail_segmentation.gold.lines import filter_product_lines_before
from retail_segmentation.silver.rules import LINE_SALE

SOURCE_ALS = "als"
SOURCE_POPULAR = "popular"
SCORE_DECIMALS = 6


@dataclass(frozen=True)
class AlsParams:
    """ALS hyperparameters and the number of products to recommend per customer."""

    rank: int = 10
    max_iter: int = 10
    reg_param: float = 0.1
    alpha: float = 1.0
    top_n: int = 5
    seed: int = 42
    # ALS user and item blocks; 0 = one per core (`default_parallelism`). Spark's own
    # default of 10 fits several times slower on a laptop. Set it to repeat results exactly
    # on machines with other core counts.
    num_blocks: int = 0
    # ALS candidates asked per customer beyond top_n, to leave top_n after dropping products
    # already bought; a heavy buyer still short is completed from the popular products
    max_candidates: int = 100

    def __post_init__(self) -> None:
        integers = (
            ("rank", 1),
            ("max_iter", 1),
            ("top_n", 1),
            ("seed", None),
            ("num_blocks", 0),
            ("max_candidates", 0),
        )
        for name, minimum in integers:
            value = getattr(self, name)
            # bool is an int to Python, but True as a rank is a mistake, not a 1
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(
                    f"parameter {name}={value!r} of AlsParams: expected an integer"
                    + ("" if minimum is None else f" >= {minimum}")
                )
            if minimum is not None and value < minimum:
                raise ConfigError(
                    f"parameter {name}={value!r} of AlsParams: expected an integer >= {minimum}"
                )
        for name in ("reg_param", "alpha"):
            value = getattr(self, name)
            is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not is_number or not math.isfinite(value) or value < 0:
                raise ConfigError(
                    f"parameter {name}={value!r} of AlsParams: expected a finite number >= 0"
                )


def purchase_matrix(silver_df: DataFrame, as_of_date: dt.date) -> DataFrame:
    """Units bought (double) per customer_id and stock_code on sale lines before the as-of date;
    positive sums only."""
    return (
        filter_product_lines_before(silver_df, as_of_date)
        .where(
            (F.col("line_type") == LINE_SALE)
            & F.col("customer_id").isNotNull()
            & F.col("stock_code").isNotNull()
        )
        .groupBy("customer_id", "stock_code")
        .agg(F.sum("quantity").cast("double").alias("quantity"))
        # a null sum (no known quantity) is no evidence of taste either
        .where(F.col("quantity") > 0)
    )


def _recompute(df: DataFrame, _name: str) -> DataFrame:
    return df


def recommend_products(
    purchases_df: DataFrame,
    customers_df: DataFrame,
    products_df: DataFrame,
    params: AlsParams,
    keep: Callable[[DataFrame, str], DataFrame] = _recompute,
) -> DataFrame:
    """Top params.top_n products per customer of customers_df that the customer has not bought,
    by ALS score; by popularity for a customer who bought nothing. `keep(df, name)` holds the
    ALS candidates, which two actions read (`Intermediates.keep`; the default recomputes)."""
    purchases = purchases_df.select("customer_id", "stock_code", "quantity")
    customers = (
        customers_df.select("customer_id").where(F.col("customer_id").isNotNull()).distinct()
    )

    # one scalar, not rows: how far down each customer's ALS list bought products can reach
    max_bought = purchases.groupBy("customer_id").count().agg(F.max("count")).first()[0]
    if max_bought is None:  # nothing bought: no model to fit, and nothing is popular either
        popular_df = _popular_candidates(purchases, customers, params.top_n)
        return _top_n_with_descriptions(popular_df, products_df, params.top_n)

    depth = params.top_n + min(max_bought, params.max_candidates)
    # kept once: both the short-list check and the final ranking read the candidates
    als_df = keep(_als_candidates(purchases, customers, params, depth), "als_candidates")
    # customers ALS left short (cold, or heavy buyers past max_candidates) are completed from
    # the popular products; few customers, so their list may reach as deep as anyone bought
    full_df = als_df.groupBy("customer_id").count().where(F.col("count") >= params.top_n)
    short_df = customers.join(full_df, "customer_id", "left_anti")
    popular_df = _popular_candidates(purchases, short_df, params.top_n + max_bought)
    return _top_n_with_descriptions(als_df.unionByName(popular_df), products_df, params.top_n)


def _als_candidates(
    purchases: DataFrame, customers: DataFrame, params: AlsParams, depth: int
) -> DataFrame:
    """ALS-scored products each customer has not bought, at most `depth` asked per customer."""
    # alphabetical ids: the frequency order would renumber everything when counts shift
    indexer = StringIndexer(
        inputCols=["customer_id", "stock_code"],
        outputCols=["user_index", "item_index"],
        stringOrderType="alphabetAsc",
    ).fit(purchases)
    customer_labels, item_labels = indexer.labelsArray
    indexed = indexer.transform(purchases).select(
        F.col("user_index").cast("int").alias("user_id"),
        F.col("item_index").cast("int").alias("item_id"),
        "quantity",
    )
    blocks = params.num_blocks or default_parallelism(purchases.sparkSession)
    model = ALS(
        rank=params.rank,
        maxIter=params.max_iter,
        regParam=params.reg_param,
        alpha=params.alpha,
        implicitPrefs=True,
        nonnegative=True,
        userCol="user_id",
        itemCol="item_id",
        ratingCol="quantity",
        coldStartStrategy="drop",
        seed=params.seed,
        numUserBlocks=blocks,
        numItemBlocks=blocks,
    ).fit(indexed)

    # only the customers asked for, and only those ALS knows (the rest are cold)
    wanted_users = (
        StringIndexerModel.from_labels(
            customer_labels, "customer_id", "user_index", handleInvalid="skip"
        )
        .transform(customers)
        .select(F.col("user_index").cast("int").alias("user_id"))
    )
    recommendations = model.recommendForUserSubset(wanted_users, min(depth, len(item_labels)))
    scored = recommendations.select("user_id", F.explode("recommendations").alias("rec")).select(
        "user_id",
        F.col("rec.item_id").alias("item_id"),
        # ALS scores are floats: digits beyond these are noise, not preference
        F.round(F.col("rec.rating").cast("double"), SCORE_DECIMALS).alias("score"),
    )
    # back to the business keys through the same label lists: no join, no shuffle
    to_customer = IndexToString(inputCol="user_id", outputCol="customer_id", labels=customer_labels)
    to_stock_code = IndexToString(inputCol="item_id", outputCol="stock_code", labels=item_labels)
    return (
        to_stock_code.transform(to_customer.transform(scored))
        .join(purchases, ["customer_id", "stock_code"], "left_anti")
        .select(
            "customer_id",
            "stock_code",
            "score",
            F.lit(None).cast("long").alias("buyers"),
            F.lit(SOURCE_ALS).alias("source"),
        )
    )


def _popular_candidates(purchases: DataFrame, customers: DataFrame, limit: int) -> DataFrame:
    """Of the `limit` most bought products (distinct buyers), those each customer has not
    bought."""
    popular = (
        purchases.groupBy("stock_code")
        .agg(F.count_distinct("customer_id").alias("buyers"))
        .orderBy(F.desc("buyers"), "stock_code")
        .limit(limit)
    )
    return (
        customers.crossJoin(popular)
        .join(purchases, ["customer_id", "stock_code"], "left_anti")
        .select(
            "customer_id",
            "stock_code",
            F.lit(None).cast("double").alias("score"),
            "buyers",
            F.lit(SOURCE_POPULAR).alias("source"),
        )
    )


def _top_n_with_descriptions(
    candidates: DataFrame, products_df: DataFrame, top_n: int
) -> DataFrame:
    """Rank 1..top_n per customer (ALS before popular; ties by stock_code), with descriptions."""
    order = Window.partitionBy("customer_id").orderBy(
        (F.col("source") == SOURCE_POPULAR).asc(),
        F.desc_nulls_last("score"),
        F.desc_nulls_last("buyers"),
        F.asc("stock_code"),
    )
    # one description per stock code, so the join cannot duplicate a ranked row
    descriptions = products_df.groupBy("stock_code").agg(F.min("description").alias("description"))
    # a product ALS proposed may also be a popular one: keep its ALS row only
    first_source = Window.partitionBy("customer_id", "stock_code").orderBy(
        (F.col("source") == SOURCE_POPULAR).asc()
    )
    return (
        candidates.withColumn("_copy", F.row_number().over(first_source))
        .where(F.col("_copy") == 1)
        .withColumn("rank", F.row_number().over(order))
        .where(F.col("rank") <= top_n)
        .join(descriptions, "stock_code", "left")
        .select(
            F.col("customer_id").cast("string"),
            F.col("rank").cast("int"),
            F.col("stock_code").cast("string"),
            F.col("description").cast("string"),
            F.col("score").cast("double"),
            F.col("source").cast("string"),
        )
    )
