"""What real landing folders contain, fed to bronze and silver: each case ends in a quarantine
row with its reason, a flag with the original value kept, or one clear error naming the file
and the problem; and in every case the ledger balances (bronze = silver + quarantine +
removed duplicates), so no row is silently lost."""

from __future__ import annotations

import json

import pytest
from chispa import assert_df_equality
from landing_files import (
    GOOD_LINES,
    HEADER,
    assert_balanced,
    ingest,
    quarantined,
    silver,
    write_landed,
)
from pyspark.sql import Observation
from pyspark.sql import functions as F

from retail_segmentation.bronze.columns import SourceFormat
from retail_segmentation.common.errors import IngestError
from retail_segmentation.common.tables import (
    BRONZE_TRANSACTIONS,
    GOLD_CUSTOMER_RFM,
    PIPELINE_LEDGER,
    SILVER_QUARANTINE,
    SILVER_TRANSACTIONS,
)
from retail_segmentation.gold.task import GoldConfig, build_gold

pytestmark = pytest.mark.faults


def test_an_empty_file_and_a_header_only_file_add_nothing(spark, lakehouse, tmp_path):
    landing = tmp_path / "landing"
    write_landed(landing, "good.csv", GOOD_LINES)
    write_landed(landing, "empty.csv", [], header=None)
    write_landed(landing, "header_only.csv", [])

    result = ingest(spark, lakehouse, landing)

    assert result.rows_ingested == len(GOOD_LINES)
    # both are ingested as files (their lines: none), so they are not read again next run
    assert sorted(p.rsplit("/", 1)[1] for p in result.files_ingested) == [
        "good.csv",
        "header_only.csv",
    ]
    assert_balanced(lakehouse, silver(spark, lakehouse))


def test_a_missing_required_column_is_one_error_naming_the_file_and_nothing_is_ingested(
    spark, lakehouse, tmp_path
):
    landing = tmp_path / "landing"
    write_landed(landing, "a_good.csv", GOOD_LINES)
    no_customer = HEADER.replace(",Customer ID", "")
    bad = write_landed(
        landing, "b_no_customer.csv", ["1,X,THING,1,2010-12-01 08:00:00,1.0,UK"], header=no_customer
    )

    with pytest.raises(IngestError) as failure:
        ingest(spark, lakehouse, landing)

    message = str(failure.value)
    assert message.startswith(f"file:{bad}: missing required column(s) ['customer_id']")
    assert "--column-mapping" in message
    # the batch is one Delta commit: the good file did not go in alone either
    assert not lakehouse.exists(BRONZE_TRANSACTIONS)


def test_extra_unknown_columns_are_kept_as_json(spark, lakehouse, tmp_path):
    landing = tmp_path / "landing"
    header = HEADER + ",Channel,Coupon"
    write_landed(
        landing, "extra.csv", [line + ",web,XMAS10" for line in GOOD_LINES[:2]], header=header
    )

    ingest(spark, lakehouse, landing)

    extras = [json.loads(r[0]) for r in lakehouse.read(BRONZE_TRANSACTIONS).select(
        "_extra_columns").collect()]  # fmt: skip
    assert extras == [{"Channel": "web", "Coupon": "XMAS10"}] * 2
    result = silver(spark, lakehouse)
    assert result.silver_rows == 2
    assert_balanced(lakehouse, result)


def test_a_semicolon_file_is_read_like_a_comma_file(spark, lakehouse, tmp_path):
    landing = tmp_path / "landing"
    write_landed(landing, "semicolon.csv", [line.replace(",", ";") for line in GOOD_LINES],
           header=HEADER.replace(",", ";"))  # fmt: skip

    ingest(spark, lakehouse, landing)
    result = silver(spark, lakehouse)

    assert result.silver_rows == len(GOOD_LINES)
    first = lakehouse.read(SILVER_TRANSACTIONS).where("invoice = '536367'").first()
    assert (first.customer_id, first.quantity_original, first.price) == ("13047", 32, 1.69)
    assert_balanced(lakehouse, result)


LATIN1_LINE = "536370,22728,ALARM CLOCK CAFÉ ROSÉ,2,2010-12-03 10:00:00,3.75,12583.0,France"


def test_a_latin1_file_read_as_latin1_keeps_its_accents(spark, lakehouse, tmp_path):
    landing = tmp_path / "landing"
    write_landed(landing, "latin1.csv", [*GOOD_LINES, LATIN1_LINE], encoding="latin-1")

    result = ingest(spark, lakehouse, landing, SourceFormat(encoding="ISO-8859-1"))

    assert result.undecodable_rows == 0
    row = lakehouse.read(BRONZE_TRANSACTIONS).where("invoice = '536370'").first()
    assert row.description == "ALARM CLOCK CAFÉ ROSÉ"
    assert_balanced(lakehouse, silver(spark, lakehouse))


def test_a_latin1_file_read_as_utf8_is_flagged_not_dropped(spark, lakehouse, tmp_path, caplog):
    landing = tmp_path / "landing"
    write_landed(landing, "latin1.csv", [*GOOD_LINES, LATIN1_LINE], encoding="latin-1")

    result = ingest(spark, lakehouse, landing)  # the default, UTF-8

    assert (result.rows_ingested, result.undecodable_rows) == (len(GOOD_LINES) + 1, 1)
    assert "declare the files' encoding with --encoding" in caplog.text
    row = lakehouse.read(BRONZE_TRANSACTIONS).where("invoice = '536370'").first()
    assert row.description == "ALARM CLOCK CAF\ufffd ROS\ufffd"
    assert_balanced(lakehouse, silver(spark, lakehouse))


def test_undecodable_rows_are_counted_even_when_spark_connect_observes_nothing(
    spark, lakehouse, tmp_path, monkeypatch
):
    """Over Spark Connect a Delta write can return an empty Observation ({}); bronze then
    counts the batch's undecodable rows in the table it just committed."""
    landing = tmp_path / "landing"
    write_landed(landing, "latin1.csv", [*GOOD_LINES, LATIN1_LINE], encoding="latin-1")
    monkeypatch.setattr(Observation, "get", property(lambda self: {}))

    result = ingest(spark, lakehouse, landing)

    assert (result.rows_ingested, result.undecodable_rows) == (len(GOOD_LINES) + 1, 1)
    ledger = lakehouse.read(PIPELINE_LEDGER).where(f"run_id = 'bronze:{result.batch_id}'")
    assert [r.rows_out for r in ledger.collect()] == [len(GOOD_LINES) + 1]


def test_values_that_cannot_be_typed_are_quarantined_with_their_rule(spark, lakehouse, tmp_path):
    landing = tmp_path / "landing"
    bad_lines = [
        "900001,85123A,HEART,ten,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
        "900002,85123A,HEART,2.5,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
        "900003,85123A,HEART,6,31/31/2010 08:26,2.55,17850.0,United Kingdom",
        "900004,85123A,HEART,6,2099-01-01 00:00:00,2.55,17850.0,United Kingdom",
        "900005,85123A,HEART,6,2010-12-01 08:26:00,-4.00,17850.0,United Kingdom",
        "900006,85123A,HEART,6,2010-12-01 08:26:00,free,17850.0,United Kingdom",
        "900007,85123A",  # a line cut short: only some fields
        '900008,85123A,"HEART, BIG,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom',
        "900009,85123A,HEART,0,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
    ]
    write_landed(landing, "dirty.csv", [*GOOD_LINES, *bad_lines])

    ingest(spark, lakehouse, landing)
    result = silver(spark, lakehouse)

    assert quarantined(lakehouse) == {
        "invalid_quantity": ["900001", "900002"],
        "unparseable_invoice_date": ["900003"],
        "invoice_date_in_future": ["900004"],
        "negative_price": ["900005"],
        "invalid_price": ["900006"],
        "malformed_record": ["900007", "900008"],  # too few fields, an open quote
        "zero_quantity": ["900009"],
    }
    # the quarantine keeps what was wrong, next to the whole bronze row
    details = {
        r.invoice: r._quarantine_detail
        for r in lakehouse.read(SILVER_QUARANTINE).select("invoice", "_quarantine_detail").collect()
    }
    assert (details["900001"], details["900003"], details["900005"]) == ("ten", "31/31/2010 08:26",
                                                                         "-4.0")  # fmt: skip
    assert result.silver_rows == len(GOOD_LINES)
    assert_balanced(lakehouse, result)


def test_an_absurd_price_is_clipped_and_flagged_with_the_original_kept(spark, lakehouse, tmp_path):
    landing = tmp_path / "landing"
    absurd = (
        "900010,85123A,WHITE HANGING HEART,6,2010-12-04 08:26:00,99999.0,13047.0,United Kingdom"
    )
    write_landed(landing, "prices.csv", [*GOOD_LINES, absurd])

    ingest(spark, lakehouse, landing)
    result = silver(spark, lakehouse)

    row = lakehouse.read(SILVER_TRANSACTIONS).where("invoice = '900010'").first()
    assert row.is_price_clipped and row.price_original == 99999.0
    bounds = json.loads(
        lakehouse.read(PIPELINE_LEDGER)
        .where((F.col("run_id") == result.run_id) & (F.col("rule") == "clip_iqr_outliers"))
        .first()
        .detail
    )
    assert row.price == bounds["price"]["upper"] < 10  # the upper IQR bound, not 99,999
    assert_balanced(lakehouse, result)


def test_a_file_landed_twice_under_another_name_adds_nothing(spark, lakehouse, tmp_path):
    landing = tmp_path / "landing"
    write_landed(landing, "2010-12.csv", GOOD_LINES)
    first = ingest(spark, lakehouse, landing)
    write_landed(landing / "again", "2010-12 (1).csv", GOOD_LINES)  # the same bytes

    second = ingest(spark, lakehouse, landing)

    assert (first.rows_ingested, second.rows_ingested, second.files_skipped) == (6, 0, 2)
    assert lakehouse.read(BRONZE_TRANSACTIONS).count() == len(GOOD_LINES)
    assert_balanced(lakehouse, silver(spark, lakehouse))


def test_a_customer_whose_every_line_is_cancelled_never_reaches_gold(spark, lakehouse, tmp_path):
    landing = tmp_path / "landing"
    cancelled = [
        "C900020,85123A,WHITE HANGING HEART,-6,2010-12-05 10:00:00,2.55,19999.0,France",
        "C900021,22633,HAND WARMER UNION JACK,-2,2010-12-05 11:00:00,1.85,19999.0,France",
    ]
    write_landed(landing, "returns.csv", [*GOOD_LINES, *cancelled])

    ingest(spark, lakehouse, landing)
    result = silver(spark, lakehouse)
    build_gold(spark, lakehouse, GoldConfig(tables=lakehouse.config))

    assert quarantined(lakehouse) == {"unmatched_cancellation": ["C900020", "C900021"]}
    customers = lakehouse.read(GOLD_CUSTOMER_RFM).select("customer_id")
    expected = spark.createDataFrame([("13047",), ("17850",)], "customer_id string")
    assert_df_equality(customers, expected, ignore_row_order=True, ignore_nullable=True)
    assert_balanced(lakehouse, result)
