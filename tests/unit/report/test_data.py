"""The report's summaries, each on a few literal rows: quantiles, top products, offers, the
silver run's ledger steps, countries."""

from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality

from retail_segmentation.report import data

SEGMENTS_DDL = "customer_id string, segment_id int, persona string"


def test_rfm_quantiles_per_segment_and_measure(spark):
    segments_df = spark.createDataFrame(
        [("a", 0, "VIP"), ("b", 0, "VIP"), ("c", 0, "VIP"), ("d", 1, "Churned")], SEGMENTS_DDL
    )
    rfm_df = spark.createDataFrame(
        [
            ("a", 10, 5, 100.0),
            ("b", 20, 7, 300.0),
            ("c", 30, 9, 500.0),
            ("d", 400, 1, None),  # no spend recorded: left out of monetary, counted elsewhere
            ("e", 1, 1, 1.0),  # not segmented: not in any box
        ],
        "customer_id string, recency_days int, frequency long, monetary double",
    )

    result = data.rfm_quantiles(segments_df, rfm_df)

    expected = spark.createDataFrame(
        [
            (0, "VIP", "recency_days", 10.0, 10.0, 20.0, 30.0, 30.0, 20.0, 3),
            (0, "VIP", "frequency", 5.0, 5.0, 7.0, 9.0, 9.0, 7.0, 3),
            (0, "VIP", "monetary", 100.0, 100.0, 300.0, 500.0, 500.0, 300.0, 3),
            (1, "Churned", "recency_days", 400.0, 400.0, 400.0, 400.0, 400.0, 400.0, 1),
            (1, "Churned", "frequency", 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1),
            (1, "Churned", "monetary", None, None, None, None, None, None, 0),
        ],
        "segment_id int, persona string, measure string, p05 double, q1 double, median double, "
        "q3 double, p95 double, mean double, customers long",
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_top_products_per_segment_are_net_of_returns_and_before_the_as_of_date(spark):
    lines = [
        # customer, stock code, amount, line type, day
        ("a", "P1", 30.0, "sale", 1),
        ("a", "P1", -10.0, "return", 2),  # P1 nets 20 for segment 0
        ("b", "P2", 25.0, "sale", 1),
        ("b", "P3", 5.0, "sale", 1),
        ("a", "P3", 5.0, "sale", 3),  # P3: 10 from two customers
        ("a", "POST", 99.0, "non_product", 1),  # postage is not a product
        ("b", "P4", 500.0, "sale", 20),  # on or after the as-of date: not counted
        ("c", "P1", 7.0, "sale", 1),  # segment 1
    ]
    silver_df = spark.createDataFrame(
        [(c, s, amount, kind, dt.datetime(2011, 12, day, 10)) for c, s, amount, kind, day in lines],
        "customer_id string, stock_code string, line_amount double, line_type string, "
        "invoice_date timestamp",
    )
    segments_df = spark.createDataFrame(
        [("a", 0, "Loyal"), ("b", 0, "Loyal"), ("c", 1, "New")], SEGMENTS_DDL
    )
    products_df = spark.createDataFrame(
        [("P1", "RED MUG"), ("P2", "TEA SET"), ("P3", None)],
        "stock_code string, description string",
    )

    result = data.top_products_per_segment(
        silver_df, segments_df, products_df, dt.date(2011, 12, 10), top_n=2
    )

    expected = spark.createDataFrame(
        [
            (0, "Loyal", 1, "P2", "TEA SET", 25.0, 1),
            (0, "Loyal", 2, "P1", "RED MUG", 20.0, 1),
            (1, "New", 1, "P1", "RED MUG", 7.0, 1),
        ],
        "segment_id int, persona string, rank int, stock_code string, description string, "
        "net_sales double, customers long",
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_offers_per_persona_counts_customers(spark):
    offers_df = spark.createDataFrame(
        [
            ("a", "VIP", "VIP-EARLY", "Early access", 0.0),
            ("b", "VIP", "VIP-EARLY", "Early access", 0.0),
            ("c", "Churned", "WINBACK-30", "We miss you", 30.0),
        ],
        "customer_id string, persona string, offer_code string, offer_title string, "
        "discount_pct double",
    )
    expected = spark.createDataFrame(
        [
            ("VIP", "VIP-EARLY", "Early access", 0.0, 2),
            ("Churned", "WINBACK-30", "We miss you", 30.0, 1),
        ],
        "persona string, offer_code string, offer_title string, discount_pct double, "
        "customers long",
    )
    assert_df_equality(
        data.offers_per_persona(offers_df), expected, ignore_row_order=True, ignore_nullable=True
    )


LEDGER_DDL = (
    "run_id string, layer string, step int, rule string, rows_in long, rows_out long, "
    "rows_quarantined long, rows_removed long, detail string"
)


def test_quality_steps_are_those_of_the_run_that_built_todays_silver(spark):
    def run(run_id, silver_rows):
        return [
            (run_id, "silver", 1, "remove_exact_duplicates", 10, 9, 0, 1, "{}"),
            (run_id, "silver", 2, "parse_types", 9, silver_rows, 9 - silver_rows, 0, "{}"),
            (run_id, "silver", 3, "balance", 10, silver_rows, 9 - silver_rows, 1, "{}"),
        ]

    ledger_df = spark.createDataFrame(
        [
            *run("silver:bronze_v0:aaaa", 8),
            *run("silver:bronze_v10:aaaa", 7),  # v10 > v9: compared as numbers, not text
            *run("silver:bronze_v9:aaaa", 6),
            *run("silver:bronze_v10:bbbb", 5),  # same bronze, other parameters: not today's
            ("gold:silver_v3", "gold", 1, "gold_customer_rfm", 7, 3, 0, 0, "{}"),
        ],
        LEDGER_DDL,
    )

    result = data.silver_quality_steps(ledger_df, silver_rows=7)

    expected = spark.createDataFrame(
        [
            (1, "remove_exact_duplicates", 10, 9, 0, 1, "{}"),
            (2, "parse_types", 9, 7, 2, 0, "{}"),
            (3, "balance", 10, 7, 2, 1, "{}"),
        ],
        "step int, rule string, rows_in long, rows_out long, rows_quarantined long, "
        "rows_removed long, detail string",
    )
    assert_df_equality(result, expected, ignore_nullable=True)


def test_top_countries_best_first(spark):
    countries_df = spark.createDataFrame(
        [("France", 50.0), ("United Kingdom", 900.0), ("EIRE", 50.0), ("Spain", 10.0)],
        "country string, net_sales double",
    )
    expected = spark.createDataFrame(
        [("United Kingdom", 900.0), ("EIRE", 50.0), ("France", 50.0)],
        "country string, net_sales double",
    )
    assert_df_equality(data.top_countries(countries_df, top_n=3), expected)


def test_segment_label_names_persona_and_id():
    assert data.segment_label(3, "VIP") == "VIP #3"
