"""Tests for the synthetic Online Retail II generator: size, determinism, dialects, dirt, truth."""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from retail_segmentation.common.errors import ConfigError
from retail_segmentation.data import embedded, generator
from retail_segmentation.data.generator import (
    HEADERS,
    NON_PRODUCT_CODES,
    PROFILE_NAMES,
    TRUTH_FILE,
    GeneratorConfig,
    generate_transactions,
    main,
    write_dataset,
)

II_CONFIG = GeneratorConfig(rows=20_000, seed=11, files=2)
# The same lines as II_CONFIG, written through the CLI in the classic dialect as one file.
CLASSIC_ARGS = ["--rows", "20000", "--seed", "11", "--header-variant", "classic", "--files", "1"]
II_DATE = "yyyy-MM-dd HH:mm:ss"
CLASSIC_DATE = "M/d/yyyy H:mm"


@pytest.fixture(scope="module")
def ii_run(spark, tmp_path_factory) -> tuple[Path, dict]:
    """20k lines in the Online Retail II dialect, two part files: (folder, summary)."""
    out = tmp_path_factory.mktemp("generated_ii")
    return out, write_dataset(spark, II_CONFIG, str(out))


@pytest.fixture(scope="module")
def classic_run(spark, tmp_path_factory) -> tuple[Path, dict]:
    """The classic dialect, written through the CLI (on the test session)."""
    out = tmp_path_factory.mktemp("generated_classic")
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setattr(generator, "get_spark", lambda: spark)
        main([*CLASSIC_ARGS, "--out", str(out)])
    return out, json.loads(printed.getvalue())


def _read(spark, out: Path) -> DataFrame:
    return spark.read.option("header", True).csv(str(out / "transactions"))


def _read_profiles(spark, out: Path) -> DataFrame:
    return spark.read.option("header", True).csv(str(out / TRUTH_FILE))


@pytest.fixture(scope="module")
def ii_df(spark, ii_run):
    """The 20k written lines read back as strings (empty fields as null)."""
    df = _read(spark, ii_run[0]).cache()
    yield df
    df.unpersist()


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"rows": 999}, "rows"),
        ({"files": 0}, "files"),
        ({"header_variant": "xlsx"}, "header_variant"),
        ({"end_date": "09/12/2011"}, "end_date"),
        ({"seed": "42"}, "seed"),
    ],
)
def test_config_rejects_bad_values(kwargs, parameter):
    with pytest.raises(ConfigError, match=f"parameter {parameter}="):
        GeneratorConfig(**kwargs)


def test_writes_exact_row_count_with_a_header_per_file(spark, ii_run, ii_df):
    out, summary = ii_run
    parts = sorted((out / "transactions").glob("part-*.csv"))
    headers = {part.read_text(encoding="utf-8").splitlines()[0] for part in parts}
    raw_lines = spark.read.text(str(out / "transactions")).count()

    assert len(parts) == 2
    assert headers == {",".join(HEADERS["ii"])}
    assert raw_lines == II_CONFIG.rows + len(parts)
    assert ii_df.count() == II_CONFIG.rows
    assert ii_df.columns == list(HEADERS["ii"])
    assert summary["rows"] == II_CONFIG.rows
    assert summary["files_written"] == 2
    assert not list((out / "transactions").glob("_SUCCESS"))


def test_ii_formats(ii_df):
    customer_ids = ii_df.filter(F.col("Customer ID").isNotNull())
    sales = ii_df.filter(~F.col("Invoice").startswith("C"))

    assert customer_ids.filter(~F.col("Customer ID").rlike(r"^1\d{4}\.0$")).count() == 0
    assert sales.filter(~F.col("Invoice").rlike(r"^\d{6}$")).count() == 0
    assert ii_df.filter(F.col("InvoiceDate").rlike(r"^\d{4}-\d\d-\d\d \d\d:\d\d:00$")).count() > (
        0.999 * II_CONFIG.rows
    )
    assert ii_df.filter(F.col("Price") == "0.0").count() > 0


def _normalized(df: DataFrame, date_format: str) -> DataFrame:
    """Lines in a dialect-free form: the two header variants differ only in formatting."""
    parsed = F.try_to_timestamp(df[4], F.lit(date_format))
    return df.select(
        df[0].alias("invoice"),
        df[1].alias("stock_code"),
        df[2].alias("description"),
        df[3].alias("quantity"),
        F.coalesce(F.date_format(parsed, "yyyy-MM-dd HH:mm"), df[4]).alias("invoice_date"),
        df[5].try_cast("double").alias("price"),
        F.regexp_replace(df[6], r"\.0$", "").alias("customer_id"),
        df[7].alias("country"),
    )


def test_same_seed_gives_identical_data(spark, ii_run, ii_df, classic_run):
    ii_out, classic_out = ii_run[0], classic_run[0]
    ii_lines_df = _normalized(ii_df, II_DATE).cache()
    classic_lines_df = _normalized(_read(spark, classic_out), CLASSIC_DATE).cache()

    assert ii_lines_df.count() == classic_lines_df.count() == II_CONFIG.rows
    assert ii_lines_df.exceptAll(classic_lines_df).count() == 0
    assert classic_lines_df.exceptAll(ii_lines_df).count() == 0
    assert (ii_out / TRUTH_FILE).read_bytes() == (classic_out / TRUTH_FILE).read_bytes()
    ii_lines_df.unpersist()
    classic_lines_df.unpersist()


def test_different_seed_gives_different_profiles(spark, ii_run):
    # Everything else follows from the profiles; they depend only on (seed, customer id).
    transactions_df, profiles_df = generate_transactions(
        spark, GeneratorConfig(rows=II_CONFIG.rows, seed=12)
    )
    seed_11 = {r["customer_id"]: r["profile"] for r in _read_profiles(spark, ii_run[0]).collect()}
    seed_12 = {str(r["customer_id"]): r["profile"] for r in profiles_df.collect()}
    shared = seed_11.keys() & seed_12.keys()

    assert transactions_df.dtypes == [(name, "string") for name in HEADERS["ii"]]
    assert profiles_df.dtypes == [("customer_id", "int"), ("profile", "string")]
    assert len(shared) >= 80
    assert sum(seed_11[c] == seed_12[c] for c in shared) < 0.5 * len(shared)


def test_part_files_hold_consecutive_invoice_ranges(ii_run):
    out, _ = ii_run
    numbers = [
        int(fields[0].lstrip("C"))
        for part in sorted((out / "transactions").glob("part-*.csv"))
        for fields in list(csv.reader(io.StringIO(part.read_text(encoding="utf-8"))))[1:]
    ]

    assert numbers == sorted(numbers)
    assert numbers[0] == 489434


def test_classic_dialect(spark, classic_run):
    out, summary = classic_run
    df = _read(spark, out)
    parsed = df.withColumn("ts", F.try_to_timestamp("InvoiceDate", F.lit(CLASSIC_DATE)))
    bad_dates = parsed.filter(F.col("ts").isNull())

    header = (out / "transactions").glob("part-*.csv").__next__().read_text("utf-8").splitlines()[0]

    assert summary["rows"] == df.count() == II_CONFIG.rows
    assert summary["files_written"] == 1
    assert header == ",".join(HEADERS["classic"])
    assert bad_dates.count() == summary["counts"]["malformed_date_lines"] >= 1
    assert {r[0] for r in bad_dates.select("InvoiceDate").collect()} <= {
        "31/02/2011 25:61",
        "not a date",
    }
    assert parsed.filter(
        F.col("InvoiceDate").rlike(r"^\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d\d$")
    ).count() == (II_CONFIG.rows - bad_dates.count())
    assert (
        df.filter(F.col("CustomerID").isNotNull() & ~F.col("CustomerID").rlike(r"^\d+$")).count()
        == 0
    )
    assert df.filter(F.col("UnitPrice") == "0").count() > 0


def test_share_of_missing_customer_ids(ii_df):
    missing = ii_df.filter(F.col("Customer ID").isNull()).count()

    assert 0.15 <= missing / II_CONFIG.rows <= 0.25


def test_blanked_ids_are_recoverable_within_their_invoice(ii_df):
    per_invoice = ii_df.groupBy("Invoice").agg(
        F.count_if(F.col("Customer ID").isNull()).alias("blank"),
        F.count(F.lit(1)).alias("lines"),
        F.countDistinct("Customer ID").alias("ids"),
    )
    partly_blank = per_invoice.filter((F.col("blank") > 0) & (F.col("blank") < F.col("lines")))

    assert partly_blank.count() > 0
    assert partly_blank.filter(F.col("ids") != 1).count() == 0


def test_exact_duplicate_lines_are_present(ii_df):
    extra_copies = (
        ii_df.groupBy(*ii_df.columns)
        .count()
        .filter(F.col("count") > 1)
        .agg(F.sum(F.col("count") - 1))
        .first()[0]
    )

    assert 0.005 * II_CONFIG.rows <= extra_copies <= 0.02 * II_CONFIG.rows


def test_cancellations_negate_an_earlier_sale_or_have_none(ii_df):
    typed = ii_df.withColumns(
        {
            "qty": F.col("Quantity").try_cast("int"),
            "ts": F.try_to_timestamp("InvoiceDate", F.lit(II_DATE)),
        }
    )
    cancels = typed.filter(F.col("Invoice").startswith("C"))
    sales = typed.filter(~F.col("Invoice").startswith("C")).select(
        F.col("Customer ID").alias("sale_customer"),
        F.col("StockCode").alias("sale_code"),
        F.col("qty").alias("sale_qty"),
        F.col("ts").alias("sale_ts"),
    )
    matches = (
        F.col("Customer ID").eqNullSafe(F.col("sale_customer"))
        & (F.col("StockCode") == F.col("sale_code"))
        & (-F.col("qty") == F.col("sale_qty"))
        & (F.col("sale_ts") < F.col("ts"))
    )
    matched = cancels.join(sales, matches, "left_semi").count()
    unmatched = cancels.join(sales, matches, "left_anti").count()

    assert cancels.count() > 0
    assert cancels.filter(~(F.col("qty") < 0)).count() == 0
    assert cancels.filter(~F.col("Invoice").rlike(r"^C\d{6}$")).count() == 0
    assert matched > 0.8 * cancels.count()
    assert unmatched >= 1


def test_zero_prices_outliers_and_non_product_codes(ii_df):
    codes = {r[0] for r in ii_df.select("StockCode").distinct().collect()}
    non_product = {code for code in codes if not code[:5].isdigit()}
    prices = ii_df.select(F.col("Price").try_cast("double").alias("price"))
    quantities = ii_df.select(F.col("Quantity").try_cast("int").alias("qty"))

    assert ii_df.filter(F.col("Price") == "0.0").count() > 0
    assert prices.filter(F.col("price") >= 500).count() > 0
    assert quantities.filter(F.col("qty") >= 1000).count() > 0
    assert non_product and non_product <= set(NON_PRODUCT_CODES)
    assert all(len(code) <= 6 for code in codes - non_product)


def test_malformed_lines(ii_run, ii_df):
    out, summary = ii_run
    bad_dates = ii_df.filter(F.try_to_timestamp("InvoiceDate", F.lit(II_DATE)).isNull())
    bad_quantities = ii_df.filter(F.col("Quantity").try_cast("int").isNull())
    field_counts = [
        len(fields)
        for part in (out / "transactions").glob("part-*.csv")
        for fields in csv.reader(io.StringIO(part.read_text(encoding="utf-8")))
    ]

    assert 1 <= bad_dates.count() <= 0.001 * II_CONFIG.rows
    assert {r[0] for r in bad_quantities.select("Quantity").collect()} <= {"twelve", "1O"}
    assert bad_quantities.count() >= 1
    assert set(field_counts) == {7, 8}
    assert field_counts.count(7) == summary["counts"]["missing_field_lines"] >= 1


def test_descriptions_with_commas_are_quoted(ii_run, ii_df):
    out, _ = ii_run
    with_comma = ii_df.filter(F.col("Description").contains(",")).select("Description").first()[0]
    text = "\n".join(p.read_text(encoding="utf-8") for p in (out / "transactions").glob("*.csv"))

    assert f',"{with_comma}",' in text
    assert ii_df.filter(F.col("Description").rlike("[^\\x00-\\x7F]")).count() > 0


def test_countries_and_weekdays(ii_df):
    uk = ii_df.filter(F.col("Country") == "United Kingdom").count()
    dates = ii_df.select(F.try_to_timestamp("InvoiceDate", F.lit(II_DATE)).alias("ts"))
    saturdays = dates.filter(F.dayofweek("ts") == 7).count()
    hours = dates.filter(F.hour("ts").between(7, 20)).count()

    assert uk / II_CONFIG.rows > 0.7
    assert ii_df.select("Country").distinct().count() >= 5
    assert saturdays < 0.02 * II_CONFIG.rows
    assert hours > 0.99 * II_CONFIG.rows


def test_invoice_numbers_increase_with_date(ii_df):
    invoices = ii_df.groupBy("Invoice").agg(
        F.max(F.try_to_timestamp("InvoiceDate", F.lit(II_DATE))).alias("ts")
    )
    ordered = invoices.withColumn(
        "previous_ts",
        F.lag("ts").over(Window.orderBy(F.regexp_replace("Invoice", "C", "").cast("int"))),
    )

    assert ordered.filter(F.col("previous_ts") > F.col("ts")).count() == 0


def test_profiles_truth_matches_customers(spark, ii_run, ii_df):
    out, summary = ii_run
    profiles_df = spark.read.option("header", True).csv(str(out / TRUTH_FILE))
    customers_df = (
        ii_df.filter(F.col("Customer ID").isNotNull())
        .select(F.col("Customer ID").cast("double").cast("int").alias("customer_id"))
        .distinct()
    )
    ids_df = profiles_df.select(F.col("customer_id").cast("int").alias("customer_id"))

    assert profiles_df.columns == ["customer_id", "profile"]
    assert profiles_df.count() == ids_df.distinct().count() == summary["customers"]
    assert {r[0] for r in profiles_df.select("profile").distinct().collect()} == set(PROFILE_NAMES)
    assert_df_equality(ids_df, customers_df, ignore_row_order=True, ignore_nullable=True)
    assert ids_df.agg(F.min("customer_id")).first()[0] == 12346


def test_profiles_drive_recency_and_frequency(spark, ii_run, ii_df):
    out, _ = ii_run
    profiles_df = spark.read.option("header", True).csv(str(out / TRUTH_FILE))
    sales = ii_df.filter(~F.col("Invoice").startswith("C") & F.col("Customer ID").isNotNull())
    rfm = (
        sales.groupBy(F.col("Customer ID").cast("double").cast("int").alias("customer_id"))
        .agg(
            F.datediff(
                F.lit(II_CONFIG.end_date).cast("date"),
                F.max(F.try_to_timestamp("InvoiceDate", F.lit(II_DATE))),
            ).alias("recency"),
            F.countDistinct("Invoice").alias("frequency"),
        )
        .join(
            profiles_df.withColumn("customer_id", F.col("customer_id").cast("int")), "customer_id"
        )
        .groupBy("profile")
        .agg(
            F.max("recency").alias("max_recency"),
            F.min("recency").alias("min_recency"),
            F.median("frequency").alias("median_frequency"),
        )
    )
    by_profile = {r["profile"]: r for r in rfm.collect()}

    for recent in ("VIP", "loyal", "new"):
        assert by_profile[recent]["max_recency"] <= 33
    assert by_profile["slipping_away"]["min_recency"] >= 90
    assert by_profile["slipping_away"]["max_recency"] <= 203
    assert by_profile["churned"]["min_recency"] >= 300
    assert (
        by_profile["VIP"]["median_frequency"]
        > by_profile["loyal"]["median_frequency"]
        > by_profile["slipping_away"]["median_frequency"]
        > by_profile["churned"]["median_frequency"]
    )


def test_the_embedded_default_is_what_the_generator_writes(spark, tmp_path):
    """The data set shipped in the package is the generator's output for its rows and seed,
    byte for byte: `retail-seg run` copies it instead of generating it."""
    write_dataset(spark, GeneratorConfig(rows=embedded.ROWS, seed=embedded.SEED), str(tmp_path))
    (part,) = (tmp_path / "transactions").glob("part-*.csv")
    refresh = "refresh it with retail_segmentation.data.embedded.refresh(DIR)"
    assert gzip.decompress(embedded.TRANSACTIONS.read_bytes()) == part.read_bytes(), refresh
    assert embedded.TRUTH.read_bytes() == (tmp_path / TRUTH_FILE).read_bytes(), refresh

    # refresh() writes the same bytes again: the gzip stream carries no name or time
    again = tmp_path / "embedded"
    embedded.refresh(tmp_path, again)
    assert (again / embedded.TRANSACTIONS.name).read_bytes() == embedded.TRANSACTIONS.read_bytes()
    assert (again / embedded.TRUTH.name).read_bytes() == embedded.TRUTH.read_bytes()
