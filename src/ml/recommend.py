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

Between fits (`RefitPolicy`, `plan_recommendations`) a daily run refreshes the lists without
fitting ALS (`refresh_recommendations`): a customer the new lines do not touch keeps their
rows; a touched customer keeps the ALS products of their last list they still have not
bought, completed from the popular ones; a new customer gets the popular products.
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

FIT = "fit"
REFRESH = "refresh"
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
    max_bought = _most_bought(purchases)
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


def _most_bought(purchases: DataFrame) -> int | None:
    """The most products any one customer bought (one scalar); None when nobody bought."""
    return purchases.groupBy("customer_id").count().agg(F.max("count")).first()[0]


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


def _popular_candidates(
    purchases: DataFrame, customers: DataFrame, limit: int, bought: DataFrame | None = None
) -> DataFrame:
    """Of the `limit` most bought products (distinct buyers), those each customer has not
    bought (in `bought`, the customers' own purchases, when given; else in `purchases`)."""
    popular = (
        purchases.groupBy("stock_code")
        .agg(F.count_distinct("customer_id").alias("buyers"))
        .orderBy(F.desc("buyers"), "stock_code")
        .limit(limit)
    )
    return (
        customers.crossJoin(popular)
        .join(purchases if bought is None else bought, ["customer_id", "stock_code"], "left_anti")
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


@dataclass(frozen=True)
class RefitPolicy:
    """When a daily run fits ALS again rather than refreshing the last fit's lists.

    `refit_after_days`: the fit is this many days older than the as-of date or more (0: on
    every run). A week by default: what a customer likes moves slowly, a new product is
    offered as a popular one until the next fit, and the fit is the recommend task's largest
    cost (1,067,371 lines: ALS and its lists about 18 s, a refresh a few).
    `max_new_customer_share`: customers the fit never saw are more than this share of
    today's (they get only popular products until the next fit).
    """

    refit_after_days: int = 7
    max_new_customer_share: float = 0.10

    def __post_init__(self) -> None:
        days = self.refit_after_days
        if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 3650:
            raise ConfigError(
                f"parameter refit_after_days={days!r}: expected whole days in [0, 3650], "
                "0 to fit on every run"
            )
        share = self.max_new_customer_share
        if not isinstance(share, (int, float)) or isinstance(share, bool) or not 0 < share <= 1:
            raise ConfigError(
                f"parameter max_new_customer_share={share!r}: expected a share in (0, 1], e.g. 0.1"
            )


@dataclass(frozen=True)
class FitState:
    """What the recommendations table was last written from, as its run recorded it."""

    silver_version: int
    as_of_date: dt.date
    fitted_as_of: dt.date
    fitted_customers: int
    als_digest: str


@dataclass(frozen=True)
class RecommendPlan:
    """FIT (ALS on all purchases) or REFRESH (the last lists carried to the silver rows
    changed after version `since`), and why."""

    mode: str
    reason: str
    since: int | None = None


def plan_recommendations(
    state: FitState | None,
    als_digest: str,
    as_of: dt.date,
    customers: int,
    policy: RefitPolicy,
    silver_rewrites: Callable[[int], list[str]],
    refit: bool = False,
) -> RecommendPlan:
    """FIT unless the policy lets the last fit's lists be refreshed; `silver_rewrites(since)`
    names the commits after `since` that rewrote silver whole (no change feed to read)."""
    if refit:
        return RecommendPlan(FIT, "requested (--refit)")
    if state is None:
        return RecommendPlan(FIT, "no recommendations recorded by a finished run")
    if state.als_digest != als_digest:
        return RecommendPlan(FIT, "the ALS parameters changed")
    if as_of < state.as_of_date:
        return RecommendPlan(
            FIT, f"as-of date {as_of} is before the recommendations' ({state.as_of_date})"
        )
    age = (as_of - state.fitted_as_of).days
    if age >= policy.refit_after_days:
        return RecommendPlan(
            FIT,
            f"the fit is {_days(age)} old (fitted for {state.fitted_as_of}; "
            f"refit_after_days={policy.refit_after_days})",
        )
    new_share = max(customers - state.fitted_customers, 0) / customers if customers else 0.0
    if new_share > policy.max_new_customer_share:
        return RecommendPlan(
            FIT,
            f"{new_share:.1%} of the customers are new since the fit "
            f"(max_new_customer_share={policy.max_new_customer_share})",
        )
    rebuilt = silver_rewrites(state.silver_version)
    if rebuilt:
        return RecommendPlan(
            FIT, f"silver was rewritten whole since v{state.silver_version}: {', '.join(rebuilt)}"
        )
    return RecommendPlan(
        REFRESH,
        f"the fit is {_days(age)} old and {new_share:.1%} of the customers are new since it",
        state.silver_version,
    )


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def refresh_recommendations(
    old_df: DataFrame,
    purchases_df: DataFrame,
    customers_df: DataFrame,
    changed_df: DataFrame,
    products_df: DataFrame,
    top_n: int,
    keep: Callable[[DataFrame, str], DataFrame] = _recompute,
) -> DataFrame:
    """The last lists (`old_df`) carried to today's purchases without fitting ALS.

    Touched: the customers of the changed silver rows (`changed_df`), and customers of
    `customers_df` without a list. An untouched customer's rows stay as they are (without
    `as_of_date`, which the caller stamps again); a touched customer's are ranked again from
    the ALS products of their last list they have not bought since, then the most popular
    products they have not bought. Customers no longer in `customers_df` are dropped.
    `keep(df, name)` holds the touched customers and their purchases, which several joins
    read (`Intermediates.keep`; the default recomputes).
    """
    customers = (
        customers_df.select("customer_id").where(F.col("customer_id").isNotNull()).distinct()
    )
    old = old_df.drop("as_of_date").join(customers, "customer_id", "left_semi")
    listless = customers.join(old, "customer_id", "left_anti")
    touched = F.broadcast(
        keep(
            changed_df.select("customer_id")
            .join(customers, "customer_id", "left_semi")
            .unionByName(listless)
            .distinct(),
            "touched",
        )
    )
    purchases = purchases_df.select("customer_id", "stock_code", "quantity")
    touched_purchases = keep(purchases.join(touched, "customer_id", "left_semi"), "bought")
    als_df = (
        old.where(F.col("source") == SOURCE_ALS)
        .join(touched, "customer_id", "left_semi")
        .join(touched_purchases, ["customer_id", "stock_code"], "left_anti")
        .select(
            "customer_id",
            "stock_code",
            "score",
            F.lit(None).cast("long").alias("buyers"),
            "source",
        )
    )
    depth = top_n + (_most_bought(touched_purchases) or 0)
    popular_df = _popular_candidates(purchases, touched, depth, touched_purchases)
    fresh = _top_n_with_descriptions(als_df.unionByName(popular_df), products_df, top_n)
    return old.join(touched, "customer_id", "left_anti").select(*fresh.columns).unionByName(fresh)
