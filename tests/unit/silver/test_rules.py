"""Each silver rule on a few literal rows, with a null and an edge case."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from retail_segmentation.common.errors import AmbiguousDateError
from retail_segmentation.silver import rules

TS = dt.datetime

BRONZE_DDL = (
    "_row_id string, invoice string, stock_code string, description string, quantity string, "
    "invoice_date string, price string, customer_id string, country string, amount string, "
    "_raw_record string, _batch_id string, _source_file string, _ingested_at timestamp"
)

TYPED_DDL = (
    "_row_id string, invoice string, invoice_date timestamp, customer_id string, "
    "stock_code string, quantity int, price double, line_type string, "
    "_quarantine_rule string, _quarantine_detail string"
)


def _bronze_row(
    row_id,
    invoice="489434",
    stock="85048",
    qty="12",
    date="2009-12-01 07:45:00",
    price="6.95",
    customer="13085.0",
    amount=None,
    raw=None,
    file="f.csv",
):
    return (
        row_id,
        invoice,
        stock,
        "LIGHT",
        qty,
        date,
        price,
        customer,
        "United Kingdom",
        amount,
        raw,
        "b1",
        file,
        TS(2011, 12, 10),
    )


def test_with_trimmed_text_blanks_become_null(spark):
    source_df = spark.createDataFrame(
        [_bronze_row("1", invoice="  489434 ", customer="   "), _bronze_row("2", stock=None)],
        BRONZE_DDL,
    )
    actual = rules.with_trimmed_text(source_df).select(
        "_row_id", "invoice", "customer_id", "stock_code"
    )
    expected = spark.createDataFrame(
        [("1", "489434", None, "85048"), ("2", "489434", "13085.0", None)],
        "_row_id string, invoice string, customer_id string, stock_code string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True)


def test_filter_exact_duplicates_keeps_smallest_row_id_and_treats_nulls_as_equal(spark):
    source_df = spark.createDataFrame(
        [
            _bronze_row("b", customer=None),
            _bronze_row("a", customer=None),  # same line as b, null customer on both
            _bronze_row("c", customer="13085.0"),  # differs only by customer
            _bronze_row("d", qty="13"),
        ],
        BRONZE_DDL,
    )
    actual = rules.filter_exact_duplicates(source_df).select("_row_id")
    expected = spark.createDataFrame([("a",), ("c",), ("d",)], "_row_id string")
    assert_df_equality(actual, expected, ignore_row_order=True)


def test_with_typed_columns_types_values_and_quarantines_what_cannot_be_typed(spark):
    source_df = spark.createDataFrame(
        [
            _bronze_row("ok"),
            _bronze_row(
                "classic", date="12/1/2010 8:26", customer="17850", qty="6.0", file="c.csv"
            ),
            _bronze_row("bad_date", date="31/02/2011 25:61"),
            _bronze_row("bad_qty", qty="twelve"),
            _bronze_row("zero_qty", qty="0"),
            _bronze_row("future", date="2012-01-05 10:00:00"),
            _bronze_row("malformed", raw="489435,85049,SHORT", date=None, price=None),
            _bronze_row("no_invoice", invoice=None),
            _bronze_row("amount_only", qty="4", price=None, amount="£10.00"),
            _bronze_row("bad_price", price="n/a"),
        ],
        BRONZE_DDL,
    )
    formats = {"f.csv": "yyyy-MM-dd HH:mm:ss", "c.csv": "M/d/yyyy H:mm"}
    actual = rules.with_typed_columns(source_df, date_formats=formats).select(
        "_row_id", "invoice_date", "customer_id", "quantity", "price", "_quarantine_rule"
    )
    expected = spark.createDataFrame(
        [
            ("ok", TS(2009, 12, 1, 7, 45), "13085", 12, 6.95, None),
            ("classic", TS(2010, 12, 1, 8, 26), "17850", 6, 6.95, None),
            ("bad_date", None, "13085", 12, 6.95, "unparseable_invoice_date"),
            ("bad_qty", TS(2009, 12, 1, 7, 45), "13085", None, 6.95, "invalid_quantity"),
            ("zero_qty", TS(2009, 12, 1, 7, 45), "13085", 0, 6.95, "zero_quantity"),
            ("future", TS(2012, 1, 5, 10), "13085", 12, 6.95, "invoice_date_in_future"),
            ("malformed", None, "13085", 12, None, "malformed_record"),
            ("no_invoice", TS(2009, 12, 1, 7, 45), "13085", 12, 6.95, "missing_invoice"),
            ("amount_only", TS(2009, 12, 1, 7, 45), "13085", 4, 2.5, None),
            ("bad_price", TS(2009, 12, 1, 7, 45), "13085", 12, None, "invalid_price"),
        ],
        "_row_id string, invoice_date timestamp, customer_id string, quantity int, price double, "
        "_quarantine_rule string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def _typed(spark, rows):
    return spark.createDataFrame(rows, TYPED_DDL)


def test_with_customer_from_invoice_fills_only_from_one_agreeing_customer(spark):
    day = TS(2010, 12, 1, 8)
    source_df = _typed(
        spark,
        [
            ("1", "A", day, "17850", "X", 1, 1.0, None, None, None),
            ("2", "A", day, None, "Y", 1, 1.0, None, None, None),  # filled from line 1
            ("3", "B", day, None, "X", 1, 1.0, None, None, None),  # guest invoice
            ("4", "C", day, "1", "X", 1, 1.0, None, None, None),
            ("5", "C", day, "2", "X", 1, 1.0, None, None, None),
            ("6", "C", day, None, "X", 1, 1.0, None, None, None),  # two customers: no guess
            ("7", "D", day, "9", "X", 1, 1.0, None, "malformed_record", None),
            ("8", "D", day, None, "X", 1, 1.0, None, None, None),  # quarantined line ignored
        ],
    )
    actual = rules.with_customer_from_invoice(source_df).select(
        "_row_id", "customer_id", "is_customer_imputed", "_quarantine_rule"
    )
    expected = spark.createDataFrame(
        [
            ("1", "17850", False, None),
            ("2", "17850", True, None),
            ("3", None, False, "missing_customer_id"),
            ("4", "1", False, None),
            ("5", "2", False, None),
            ("6", None, False, "missing_customer_id"),
            ("7", "9", False, "malformed_record"),
            ("8", None, False, "missing_customer_id"),
        ],
        "_row_id string, customer_id string, is_customer_imputed boolean, _quarantine_rule string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_with_line_type_separates_non_products_and_cancellations(spark):
    day = TS(2010, 12, 1, 8)
    source_df = _typed(
        spark,
        [
            ("1", "536365", day, "1", "85123A", 6, 2.55, None, None, None),
            ("2", "C536379", day, "1", "85123A", -6, 2.55, None, None, None),
            ("3", "536380", day, "1", "POST", 1, 18.0, None, None, None),
            ("4", "C536381", day, "1", "d", -1, 5.0, None, None, None),  # lower-case discount
            ("5", "536382", day, "1", "gift_0001_20", 1, 20.0, None, None, None),
            ("6", "536383", day, "1", "22423", None, 12.75, None, None, None),
        ],
    )
    actual = rules.with_line_type(source_df.drop("line_type")).select(
        "_row_id", "is_cancellation", "line_type"
    )
    expected = spark.createDataFrame(
        [
            ("1", False, "sale"),
            ("2", True, "return"),
            ("3", False, "non_product"),
            ("4", True, "non_product"),
            ("5", False, "non_product"),
            ("6", False, "sale"),
        ],
        "_row_id string, is_cancellation boolean, line_type string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


# the cancellation matching joins either way: broadcast (few cancellations) or shuffled
BROADCAST_OR_SHUFFLED = pytest.mark.parametrize(
    "broadcast", [True, False], ids=["broadcast", "shuffled"]
)


@BROADCAST_OR_SHUFFLED
def test_with_matched_cancellations_matches_latest_earlier_sale_or_quarantines(spark, broadcast):
    source_df = _typed(
        spark,
        [
            ("s1", "100", TS(2010, 1, 1), "1", "X", 6, 1.0, "sale", None, None),
            ("s2", "200", TS(2010, 2, 1), "1", "X", 6, 1.0, "sale", None, None),
            ("c1", "C300", TS(2010, 3, 1), "1", "X", -6, 1.0, "return", None, None),
            ("c2", "C301", TS(2009, 1, 1), "1", "X", -6, 1.0, "return", None, None),  # before
            ("c3", "C302", TS(2010, 3, 1), "1", "X", -5, 1.0, "return", None, None),  # qty
            ("c4", "C303", TS(2010, 3, 1), "2", "X", -6, 1.0, "return", None, None),  # customer
            ("s3", "400", TS(2010, 1, 1), "3", "X", 2, 1.0, "sale", "malformed_record", None),
            ("c5", "C401", TS(2010, 3, 1), "3", "X", -2, 1.0, "return", None, None),
        ],
    )
    actual = rules.with_matched_cancellations(source_df, broadcast=broadcast).select(
        "_row_id", "matched_invoice", "_quarantine_rule"
    )
    expected = spark.createDataFrame(
        [
            ("s1", None, None),
            ("s2", None, None),
            ("c1", "200", None),
            ("c2", None, "unmatched_cancellation"),
            ("c3", None, "unmatched_cancellation"),
            ("c4", None, "unmatched_cancellation"),
            ("s3", None, "malformed_record"),
            ("c5", None, "unmatched_cancellation"),
        ],
        "_row_id string, matched_invoice string, _quarantine_rule string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


@BROADCAST_OR_SHUFFLED
def test_cancellation_matches_holds_one_row_per_cancellation_from_its_key_only(spark, broadcast):
    source_df = _typed(
        spark,
        [
            ("s1", "100", TS(2010, 1, 1), "1", "X", 6, 1.0, "sale", None, None),
            ("s2", "200", TS(2010, 2, 1), "1", "X", 6, 1.0, "sale", None, None),
            ("s3", "250", TS(2010, 2, 15), "1", "X", 12, 1.0, "sale", None, None),  # other qty
            ("c1", "C300", TS(2010, 3, 1), "1", "X", -6, 1.0, "return", None, None),
            ("c2", "C301", TS(2010, 3, 1), "1", "X", -6, 1.0, "return", None, None),  # same sale
            ("s4", "400", TS(2010, 1, 1), "2", None, 3, 1.0, "sale", None, None),
            ("c3", "C401", TS(2010, 3, 1), "2", None, -3, 1.0, "return", None, None),  # null code
            ("s5", "500", TS(2010, 1, 1), "3", "Y", 1, 1.0, "sale", None, None),  # no return
            ("q1", "C501", TS(2010, 3, 1), "3", "Y", -1, 1.0, "return", "malformed_record", None),
        ],
    )
    expected = spark.createDataFrame(
        [("c1", "200"), ("c2", "200"), ("c3", "400")],
        "_row_id string, matched_invoice string",
    )
    assert_df_equality(
        rules.cancellation_matches(source_df, broadcast),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_modal_prices_prefers_most_common_then_lowest_price(spark):
    day = TS(2010, 1, 1)
    source_df = _typed(
        spark,
        [
            ("1", "1", day, "1", "X", 1, 2.0, "sale", None, None),
            ("2", "2", day, "1", "X", 1, 2.0, "sale", None, None),
            ("3", "3", day, "1", "X", 1, 3.0, "sale", None, None),
            ("4", "4", day, "1", "Y", 1, 5.0, "sale", None, None),
            ("5", "5", day, "1", "Y", 1, 4.0, "sale", None, None),  # tie: lower price wins
            ("6", "6", day, "1", "Z", 1, 0.0, "sale", None, None),  # zero never the mode
            ("7", "7", day, "1", "Y", 1, 1.0, "sale", "malformed_record", None),
        ],
    )
    expected = spark.createDataFrame(
        [("X", 2.0), ("Y", 4.0)], "stock_code string, modal_price double"
    )
    assert_df_equality(
        rules.modal_prices(source_df), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_with_imputed_zero_prices(spark):
    day = TS(2010, 1, 1)
    source_df = _typed(
        spark,
        [
            ("1", "1", day, "1", "X", 1, 0.0, "sale", None, None),
            ("2", "2", day, "1", "X", 1, 2.5, "sale", None, None),
            ("3", "3", day, "1", "NEW", 1, 0.0, "sale", None, None),  # no reference price
            ("4", "4", day, "1", "X", 1, -3.0, "sale", None, None),
            ("5", "5", day, "1", "POST", 1, 0.0, "non_product", None, None),  # left alone
        ],
    ).withColumn("price_original", F.col("price"))
    modal_df = spark.createDataFrame([("X", 2.5)], "stock_code string, modal_price double")
    actual = rules.with_imputed_zero_prices(source_df, modal_df).select(
        "_row_id", "price", "is_price_imputed", "_quarantine_rule"
    )
    expected = spark.createDataFrame(
        [
            ("1", 2.5, True, None),
            ("2", 2.5, False, None),
            ("3", 0.0, False, "zero_price_without_reference"),
            ("4", -3.0, False, "negative_price"),
            ("5", 0.0, False, None),
        ],
        "_row_id string, price double, is_price_imputed boolean, _quarantine_rule string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_iqr_bounds_and_clipping(spark):
    day = TS(2010, 1, 1)
    values = [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (1000, 900.0)]
    rows = [
        (str(i), str(i), day, "1", "X", q, p, "sale", None, None) for i, (q, p) in enumerate(values)
    ]
    rows += [
        ("r", "C9", day, "1", "X", -1000, 900.0, "return", None, None),
        ("n", "N", day, "1", "POST", 1000, 900.0, "non_product", None, None),
        ("q", "Q", day, "1", "X", 5000, 900.0, "sale", "malformed_record", None),
    ]
    source_df = _typed(spark, rows).withColumn("quantity_original", F.col("quantity"))
    quantity, price = rules.iqr_bounds(source_df, multiplier=1.5)
    assert (quantity.q1, quantity.q3, quantity.lower, quantity.upper) == (2.0, 4.0, 1.0, 7.0)
    assert (price.q1, price.q3, price.lower, price.upper) == (2.0, 4.0, 0.0, 7.0)

    actual = rules.with_clipped_outliers(source_df, quantity, price).select(
        "_row_id", "quantity", "price", "line_amount", "is_quantity_clipped", "is_price_clipped"
    )
    expected = spark.createDataFrame(
        [
            ("0", 1, 1.0, 1.0, False, False),
            ("1", 2, 2.0, 4.0, False, False),
            ("2", 3, 3.0, 9.0, False, False),
            ("3", 4, 4.0, 16.0, False, False),
            ("4", 7, 7.0, 49.0, True, True),
            ("r", -7, 7.0, -49.0, True, True),  # returns clipped by magnitude
            ("n", 1000, 900.0, 900000.0, False, False),  # non-products untouched
            ("q", 5000, 900.0, 4500000.0, False, False),  # quarantined untouched
        ],
        "_row_id string, quantity int, price double, line_amount double, "
        "is_quantity_clipped boolean, is_price_clipped boolean",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.parametrize(
    ("text", "pattern", "expected"),
    [
        ("2011-12-09 12:50:00", "yyyy-MM-dd HH:mm:ss", TS(2011, 12, 9, 12, 50)),
        ("1/4/2011 10:00", "M/d/yyyy H:mm", TS(2011, 1, 4, 10)),
        ("1/4/2011 10:00", "d/M/yyyy H:mm", TS(2011, 4, 1, 10)),
        ("19970311", "yyyyMMdd", TS(1997, 3, 11)),
        ("2011-12-09 12:50", "yyyy-MM-dd", None),  # the whole text must fit
        ("not a date", "yyyy-MM-dd", None),
        (None, "yyyy-MM-dd", None),
    ],
)
def test_parse_invoice_date_with_one_pattern(spark, text, pattern, expected):
    df = spark.createDataFrame([(text, "f.csv")], "invoice_date string, _source_file string")
    assert df.select(rules.parse_invoice_date(pattern)).first()[0] == expected


def test_parse_invoice_date_per_file(spark):
    source_df = spark.createDataFrame(
        [("1/4/2011 10:00", "us.csv"), ("1/4/2011 10:00", "uk.csv"), ("1/4/2011", "other.csv")],
        "invoice_date string, _source_file string",
    )
    formats = {"us.csv": "M/d/yyyy H:mm", "uk.csv": "d/M/yyyy H:mm", "other.csv": None}
    actual = source_df.select("_source_file", rules.parse_invoice_date(formats).alias("ts"))
    expected = spark.createDataFrame(
        [("us.csv", TS(2011, 1, 4, 10)), ("uk.csv", TS(2011, 4, 1, 10)), ("other.csv", None)],
        "_source_file string, ts timestamp",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def _votes(spark, rows):
    source_df = spark.createDataFrame(rows, "_source_file string, invoice_date string")
    return [r.asDict() for r in rules.date_format_votes(source_df).collect()]


def test_choose_date_formats_picks_the_format_that_parses_most_values(spark):
    votes = _votes(
        spark,
        [
            ("iso.csv", "2010-12-01 08:26:00"),
            ("iso.csv", "2010-12-01 08:26:00"),
            ("iso.csv", "31/02/2011 25:61"),  # fits nothing: quarantined later
            ("ymd.txt", "19970101"),
            ("uk.csv", "13/12/2010 08:26"),  # a day above 12 decides
            ("uk.csv", "1/12/2010 08:26"),
            ("us.csv", "12/13/2010 8:26"),
            ("us.csv", "12/1/2010 8:26"),
            ("bad.csv", "yesterday"),
            ("bad.csv", None),
        ],
    )
    chosen = {f.file: (f.pattern, f.parsed, f.values) for f in rules.choose_date_formats(votes)}
    assert chosen == {
        "iso.csv": ("yyyy-MM-dd HH:mm:ss", 2, 3),
        "ymd.txt": ("yyyyMMdd", 1, 1),
        "uk.csv": ("d/M/yyyy H:mm", 2, 2),
        "us.csv": ("M/d/yyyy H:mm", 2, 2),
        "bad.csv": (None, 0, 1),
    }


def test_choose_date_formats_refuses_a_file_that_fits_day_first_and_month_first(spark):
    votes = _votes(spark, [("shop.csv", "1/12/2010 08:26"), ("shop.csv", "12/11/2010 09:00")])
    with pytest.raises(AmbiguousDateError) as error:
        rules.choose_date_formats(votes)
    message = str(error.value)
    assert "shop.csv" in message and "--date-format" in message
    assert "'1/12/2010 08:26'" in message and "'12/11/2010 09:00'" in message


def test_with_trimmed_text_null_tokens_any_case_in_every_column(spark):
    source_df = spark.createDataFrame(
        [
            _bronze_row("r", customer=" NA "),
            _bronze_row("p", customer="nan", stock="-", qty="NULL"),
            _bronze_row("d", customer="None", price="N/A", date="#n/a"),
            _bronze_row("k", customer="NAB"),  # a token inside a value is a value
        ],
        BRONZE_DDL,
    )
    actual = rules.with_trimmed_text(source_df).select(
        "_row_id", "customer_id", "stock_code", "quantity", "price", "invoice_date"
    )
    expected = spark.createDataFrame(
        [
            ("r", None, "85048", "12", "6.95", "2009-12-01 07:45:00"),
            ("p", None, None, None, "6.95", "2009-12-01 07:45:00"),
            ("d", None, "85048", "12", None, None),
            ("k", "NAB", "85048", "12", "6.95", "2009-12-01 07:45:00"),
        ],
        "_row_id string, customer_id string, stock_code string, quantity string, "
        "price string, invoice_date string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True)


def test_with_trimmed_text_declared_tokens_replace_the_default(spark):
    source_df = spark.createDataFrame(
        [_bronze_row("1", customer="NA"), _bronze_row("2", customer="unknown")], BRONZE_DDL
    )
    actual = rules.with_trimmed_text(source_df, null_tokens=["Unknown"]).select(
        "_row_id", "customer_id"
    )
    expected = spark.createDataFrame(
        [("1", "NA"), ("2", None)], "_row_id string, customer_id string"
    )
    assert_df_equality(actual, expected, ignore_row_order=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("13085.0", "13085"), ("13085.00", "13085"), ("013085", "013085"), ("C-12.0", "C-12.0")],
)
def test_customer_ids_are_normalised_once(spark, text, expected):
    source_df = spark.createDataFrame([_bronze_row("1", customer=text)], BRONZE_DDL)
    typed = rules.with_typed_columns(source_df, date_formats="yyyy-MM-dd HH:mm:ss")
    assert typed.select("customer_id").first()[0] == expected


def test_identical_lines_without_invoice_numbers_are_separate_purchases(spark):
    ddl = BRONZE_DDL + ", _defaulted_columns array<string>"
    source_df = spark.createDataFrame(
        [
            (*_bronze_row("a", invoice="AUTO-1"), ["invoice"]),
            (*_bronze_row("b", invoice="AUTO-1"), ["invoice"]),  # same line, derived invoice
            (*_bronze_row("c"), []),
            (*_bronze_row("d"), []),  # same line, the source's invoice: a duplicate
        ],
        ddl,
    )
    actual = rules.filter_exact_duplicates(source_df).select("_row_id", "is_repeat_line")
    expected = spark.createDataFrame(
        [("a", False), ("b", True), ("c", False)], "_row_id string, is_repeat_line boolean"
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
