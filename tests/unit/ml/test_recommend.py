"""Purchase matrix, ALS parameters and recommendations on literal rows."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from retail_segmentation.common.errors import ConfigError
from retail_segmentation.ml import recommend
from retail_segmentation.ml.recommend import AlsParams

TS = dt.datetime
AS_OF = dt.date(2011, 12, 10)
SILVER_DDL = (
    "customer_id string, stock_code string, description string, quantity int, "
    "invoice_date timestamp, line_type string"
)
PURCHASES_DDL = "customer_id string, stock_code string, quantity double"
RECOMMENDATIONS_DDL = (
    "customer_id string, rank int, stock_code string, description string, score double, "
    "source string"
)
# small and fast; two factors can collapse into one taste group, three separate both
TEST_PARAMS = AlsParams(
    rank=3, max_iter=5, reg_param=0.1, alpha=10.0, top_n=5, seed=7, num_blocks=1
)


def test_purchase_matrix_sums_sale_units_before_as_of(spark):
    source_df = spark.createDataFrame(
        [
            ("A", "P1", "mug", 2, TS(2011, 12, 1, 10), "sale"),
            ("A", "P1", "mug", 3, TS(2011, 12, 2, 11), "sale"),
            ("A", "P1", "mug", -4, TS(2011, 12, 3, 9), "return"),  # a return is no taste signal
            ("A", "P2", "jar", 6, TS(2011, 12, 10, 9), "sale"),  # on the as-of day: excluded
            ("A", "POST", "postage", 1, TS(2011, 12, 1, 10), "non_product"),
            ("B", "P2", "jar", None, TS(2011, 12, 1, 10), "sale"),  # unknown units: dropped
            ("B", "P3", "tin", 1, TS(2010, 12, 1, 10), "sale"),
            ("C", "P3", "tin", 0, TS(2011, 12, 1, 10), "sale"),  # nothing bought: dropped
            (None, "P3", "tin", 7, TS(2011, 12, 1, 10), "sale"),  # nobody to recommend to
        ],
        SILVER_DDL,
    )
    expected = spark.createDataFrame([("A", "P1", 5.0), ("B", "P3", 1.0)], PURCHASES_DDL)
    actual = recommend.purchase_matrix(source_df, AS_OF)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_als_params_defaults():
    assert AlsParams() == AlsParams(
        rank=10,
        max_iter=10,
        reg_param=0.1,
        alpha=1.0,
        top_n=5,
        seed=42,
        num_blocks=0,
        max_candidates=100,
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("top_n", 0, "parameter top_n=0 of AlsParams: expected an integer >= 1"),
        ("rank", 2.5, "parameter rank=2.5 of AlsParams: expected an integer >= 1"),
        ("max_iter", True, "parameter max_iter=True of AlsParams: expected an integer >= 1"),
        ("seed", "42", "parameter seed='42' of AlsParams: expected an integer"),
        ("num_blocks", -1, "parameter num_blocks=-1 of AlsParams: expected an integer >= 0"),
        (
            "max_candidates",
            -1,
            "parameter max_candidates=-1 of AlsParams: expected an integer >= 0",
        ),
        ("reg_param", -0.1, "parameter reg_param=-0.1 of AlsParams: expected a finite number"),
        ("alpha", float("nan"), "parameter alpha=nan of AlsParams: expected a finite number"),
        ("alpha", None, "parameter alpha=None of AlsParams: expected a finite number >= 0"),
    ],
)
def test_als_params_reject_bad_values(field, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        AlsParams(**{field: value})


@pytest.fixture(scope="module")
def world(spark):
    """Two taste groups (P1-P3 and P4-P6); each buyer misses one product of their group.

    Distinct buyers: P4 and P5 have three (c7 too), every other product two.
    """
    purchases_df = spark.createDataFrame(
        [
            ("c1", "P1", 3.0),
            ("c1", "P2", 1.0),
            ("c2", "P2", 2.0),
            ("c2", "P3", 2.0),
            ("c3", "P1", 1.0),
            ("c3", "P3", 4.0),
            ("c4", "P4", 2.0),
            ("c4", "P5", 1.0),
            ("c5", "P5", 5.0),
            ("c5", "P6", 1.0),
            ("c6", "P4", 1.0),
            ("c6", "P6", 3.0),
            ("c7", "P4", 1.0),  # counts for the model and popularity; not asked for
            ("c7", "P5", 1.0),
        ],
        PURCHASES_DDL,
    )
    # c0 bought nothing yet; c7 is not among the customers to recommend to
    customers_df = spark.createDataFrame(
        [(c,) for c in ("c0", "c1", "c2", "c3", "c4", "c5", "c6", None)], "customer_id string"
    )
    products_df = spark.createDataFrame(
        [
            ("P1", "red mug"),
            ("P2", "red jar"),
            ("P3", "red tin"),
            ("P4", "blue mug"),
            ("P5", "blue jar"),
            ("P5", "BLUE JAR"),  # two descriptions: the first alphabetically is kept
        ],  # P6 has no description: null
        "stock_code string, description string",
    )
    # cached: one ALS fit serves every test of this module
    recs_df = recommend.recommend_products(purchases_df, customers_df, products_df, TEST_PARAMS)
    yield purchases_df, customers_df, products_df, recs_df.cache()
    recs_df.unpersist()


def test_first_recommendation_completes_the_taste_group(spark, world):
    _, _, _, recs_df = world
    first = recs_df.where("rank = 1 AND source = 'als'").alias("a")
    second = recs_df.where("rank = 2").alias("b")
    actual = first.join(second, "customer_id").select(
        "customer_id",
        "a.stock_code",
        "a.description",
        "a.source",
        (F.col("a.score") > F.col("b.score")).alias("is_ahead_of_rank_2"),
    )
    expected = spark.createDataFrame(
        [
            ("c1", "P3", "red tin", "als", True),
            ("c2", "P1", "red mug", "als", True),
            ("c3", "P2", "red jar", "als", True),
            ("c4", "P6", None, "als", True),
            ("c5", "P4", "blue mug", "als", True),
            ("c6", "P5", "BLUE JAR", "als", True),
        ],
        "customer_id string, stock_code string, description string, source string, "
        "is_ahead_of_rank_2 boolean",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_buyers_get_every_unbought_product_and_nothing_bought(spark, world):
    purchases_df, _, _, recs_df = world
    # top_n=5 but only four products are left to each buyer: four rows, all from ALS
    actual = (
        recs_df.where("customer_id != 'c0'")
        .groupBy("customer_id")
        .agg(
            F.array_sort(F.collect_list("stock_code")).alias("stock_codes"),
            F.array_sort(F.collect_list("rank")).alias("ranks"),
            F.array_sort(F.collect_set("source")).alias("sources"),
        )
    )
    ranks, als = [1, 2, 3, 4], ["als"]
    expected = spark.createDataFrame(
        [
            ("c1", ["P3", "P4", "P5", "P6"], ranks, als),
            ("c2", ["P1", "P4", "P5", "P6"], ranks, als),
            ("c3", ["P2", "P4", "P5", "P6"], ranks, als),
            ("c4", ["P1", "P2", "P3", "P6"], ranks, als),
            ("c5", ["P1", "P2", "P3", "P4"], ranks, als),
            ("c6", ["P1", "P2", "P3", "P5"], ranks, als),
        ],
        "customer_id string, stock_codes array<string>, ranks array<int>, sources array<string>",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)

    bought_df = recs_df.join(purchases_df, ["customer_id", "stock_code"], "left_semi").select(
        recs_df.columns
    )
    assert_df_equality(bought_df, spark.createDataFrame([], recs_df.schema))


def test_customer_without_purchases_gets_popular_products(spark, world):
    _, _, _, recs_df = world
    expected = spark.createDataFrame(
        [
            ("c0", 1, "P4", "blue mug", None, "popular"),  # three buyers, then stock code
            ("c0", 2, "P5", "BLUE JAR", None, "popular"),
            ("c0", 3, "P1", "red mug", None, "popular"),  # two buyers, then stock code
            ("c0", 4, "P2", "red jar", None, "popular"),
            ("c0", 5, "P3", "red tin", None, "popular"),
        ],
        RECOMMENDATIONS_DDL,
    )
    actual = recs_df.where("customer_id = 'c0'")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_buyer_short_of_als_candidates_is_completed_from_popular_products(spark, world):
    purchases_df, customers_df, products_df, _ = world
    # ALS asked for top_n = 2 items only: for c1 both may be products c1 already bought
    params = replace(TEST_PARAMS, top_n=2, max_candidates=0)
    recs_df = recommend.recommend_products(purchases_df, customers_df, products_df, params)
    actual = recs_df.groupBy("customer_id").agg(
        F.count(F.lit(1)).alias("rows"),
        F.count_distinct("stock_code").alias("products"),
    )
    expected = spark.createDataFrame(
        [(c, 2, 2) for c in ("c0", "c1", "c2", "c3", "c4", "c5", "c6")],
        "customer_id string, rows long, products long",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    bought_df = recs_df.join(purchases_df, ["customer_id", "stock_code"], "left_semi")
    assert bought_df.isEmpty()


def test_same_input_and_seed_give_the_same_rows(world):
    purchases_df, customers_df, products_df, recs_df = world
    again_df = recommend.recommend_products(purchases_df, customers_df, products_df, TEST_PARAMS)
    assert_df_equality(again_df, recs_df, ignore_row_order=True)


def test_no_purchases_give_no_recommendations(spark):
    purchases_df = spark.createDataFrame([], PURCHASES_DDL)
    customers_df = spark.createDataFrame([("c0",)], "customer_id string")
    products_df = spark.createDataFrame(
        [("P1", "red mug")], "stock_code string, description string"
    )
    actual = recommend.recommend_products(purchases_df, customers_df, products_df, AlsParams())
    expected = spark.createDataFrame([], RECOMMENDATIONS_DDL)
    assert_df_equality(actual, expected, ignore_nullable=True)
