"""What real landing folders contain, fed to bronze and silver: each case ends in a quarantine
row with its reason, a flag with the original value kept, or one clear error naming the file
and the problem; and in every case the ledger balances (bronze = silver + quarantine +
removed duplicates), so no row is silently lost.

The cases that clean without an error land side by side in one lakehouse, one landing folder
and one bronze batch each (as a day's folders would), and one silver run cleans them all:
each test reads its own batch. Every case's lines are its own (`good_lines(offset)`), so no
case removes another's as a duplicate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chispa import assert_df_equality
from landing_files import (
    GOOD_LINES,
    HEADER,
    Landed,
    good_lines,
    ingest,
    quarantined,
    write_landed,
)
from pyspark.sql import Observation
from pyspark.sql import functions as F

from retail_segmentation.bronze.columns import SourceFormat
from retail_segmentation.bronze.task import BronzeResult
from retail_segmentation.common.errors import IngestError
from retail_segmentation.common.tables import (
    BRONZE_TRANSACTIONS,
    GOLD_CUSTOMER_RFM,
    PIPELINE_LEDGER,
    SILVER_QUARANTINE,
    SILVER_TRANSACTIONS,
    Lakehouse,
)
from retail_segmentation.gold.task import GoldConfig, build_gold

pytestmark = pytest.mark.faults

LATIN1_LINE = "{invoice},22728,ALARM CLOCK CAFÉ ROSÉ,2,2010-12-03 10:00:00,3.75,12583.0,France"
UNTYPEABLE_LINES = (
    "900001,85123A,HEART,ten,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
    "900002,85123A,HEART,2.5,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
    "900003,85123A,HEART,6,31/31/2010 08:26,2.55,17850.0,United Kingdom",
    "900004,85123A,HEART,6,2099-01-01 00:00:00,2.55,17850.0,United Kingdom",
    "900005,85123A,HEART,6,2010-12-01 08:26:00,-4.00,17850.0,United Kingdom",
    "900006,85123A,HEART,6,2010-12-01 08:26:00,free,17850.0,United Kingdom",
    "900007,85123A",  # a line cut short: only some fields
    '900008,85123A,"HEART, BIG,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom',
    "900009,85123A,HEART,0,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
)
UNTYPEABLE_RULES = {
    "invalid_quantity": ["900001", "900002"],
    "unparseable_invoice_date": ["900003"],
    "invoice_date_in_future": ["900004"],
    "negative_price": ["900005"],
    "invalid_price": ["900006"],
    "malformed_record": ["900007", "900008"],  # too few fields, an open quote
    "zero_quantity": ["900009"],
}
ABSURD_PRICE_LINE = (
    "900010,85123A,WHITE HANGING HEART,6,2010-12-04 08:26:00,99999.0,13047.0,United Kingdom"
)
CANCELLED_LINES = (  # every line of customer 19999, and no order to match
    "C900020,85123A,WHITE HANGING HEART,-6,2010-12-05 10:00:00,2.55,19999.0,France",
    "C900021,22633,HAND WARMER UNION JACK,-2,2010-12-05 11:00:00,1.85,19999.0,France",
)


def _land_cases(spark, lakehouse: Lakehouse, root: Path) -> dict[str, BronzeResult]:
    ingested: dict[str, BronzeResult] = {}
    empty = root / "empty"
    write_landed(empty, "good.csv", GOOD_LINES)
    write_landed(empty, "empty.csv", [], header=None)
    write_landed(empty, "header_only.csv", [])
    ingested["empty"] = ingest(spark, lakehouse, empty)

    extra = root / "extra"
    lines = [line + ",web,XMAS10" for line in good_lines(100)[:2]]
    write_landed(extra, "extra.csv", lines, header=HEADER + ",Channel,Coupon")
    ingested["extra"] = ingest(spark, lakehouse, extra)

    semicolon = root / "semicolon"
    lines = [line.replace(",", ";") for line in good_lines(200)]
    write_landed(semicolon, "semicolon.csv", lines, header=HEADER.replace(",", ";"))
    ingested["semicolon"] = ingest(spark, lakehouse, semicolon)

    latin1 = root / "latin1"
    lines = [*good_lines(300), LATIN1_LINE.format(invoice=536670)]
    write_landed(latin1, "latin1.csv", lines, encoding="latin-1")
    ingested["latin1"] = ingest(spark, lakehouse, latin1, SourceFormat(encoding="ISO-8859-1"))

    as_utf8 = root / "latin1_as_utf8"
    lines = [*good_lines(400), LATIN1_LINE.format(invoice=536770)]
    write_landed(as_utf8, "latin1.csv", lines, encoding="latin-1")
    ingested["latin1_as_utf8"] = ingest(spark, lakehouse, as_utf8)  # the default, UTF-8

    untypeable = root / "untypeable"
    write_landed(untypeable, "dirty.csv", [*good_lines(500), *UNTYPEABLE_LINES])
    ingested["untypeable"] = ingest(spark, lakehouse, untypeable)

    prices = root / "prices"
    write_landed(prices, "prices.csv", [*good_lines(600), ABSURD_PRICE_LINE])
    ingested["prices"] = ingest(spark, lakehouse, prices)

    twice = root / "twice"
    write_landed(twice, "2010-12.csv", good_lines(700))
    ingested["twice"] = ingest(spark, lakehouse, twice)
    write_landed(twice / "again", "2010-12 (1).csv", good_lines(700))  # the same bytes
    ingested["twice_again"] = ingest(spark, lakehouse, twice)

    returns = root / "returns"
    write_landed(returns, "returns.csv", [*good_lines(800), *CANCELLED_LINES])
    ingested["returns"] = ingest(spark, lakehouse, returns)
    return ingested


@pytest.fixture(scope="module")
def landed(spark, tmp_path_factory) -> Landed:
    root = tmp_path_factory.mktemp("bad-input")
    return Landed.build(spark, root, "bad_input", _land_cases)


def test_every_case_balances_in_its_batch_and_in_total(landed):
    landed.assert_balanced()
    assert landed.ingested["twice_again"].batch_id is None  # the same file again: no batch
    assert landed.silver.mode == "refit"


def test_an_empty_file_and_a_header_only_file_add_nothing(landed):
    result = landed.ingested["empty"]

    assert result.rows_ingested == len(GOOD_LINES)
    # both are ingested as files (their lines: none), so they are not read again next run
    assert sorted(p.rsplit("/", 1)[1] for p in result.files_ingested) == [
        "good.csv",
        "header_only.csv",
    ]
    assert landed.read(SILVER_TRANSACTIONS, "empty").count() == len(GOOD_LINES)


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


def test_extra_unknown_columns_are_kept_as_json(landed):
    rows = landed.read(BRONZE_TRANSACTIONS, "extra").select("_extra_columns").collect()

    assert [json.loads(r[0]) for r in rows] == [{"Channel": "web", "Coupon": "XMAS10"}] * 2
    assert landed.read(SILVER_TRANSACTIONS, "extra").count() == 2
    assert landed.read(SILVER_QUARANTINE, "extra").isEmpty()


def test_a_semicolon_file_is_read_like_a_comma_file(landed):
    silver_lines = landed.read(SILVER_TRANSACTIONS, "semicolon")

    assert silver_lines.count() == len(GOOD_LINES)
    first = silver_lines.where("invoice = '536567'").first()  # 536367 of GOOD_LINES, + 200
    assert (first.customer_id, first.quantity_original, first.price) == ("13047", 32, 1.69)


def test_a_latin1_file_read_as_latin1_keeps_its_accents(landed):
    assert landed.ingested["latin1"].undecodable_rows == 0
    row = landed.read(BRONZE_TRANSACTIONS, "latin1").where("invoice = '536670'").first()
    assert row.description == "ALARM CLOCK CAFÉ ROSÉ"
    assert landed.read(SILVER_TRANSACTIONS, "latin1").count() == len(GOOD_LINES) + 1


def test_a_latin1_file_read_as_utf8_is_flagged_not_dropped(landed):
    result = landed.ingested["latin1_as_utf8"]

    assert (result.rows_ingested, result.undecodable_rows) == (len(GOOD_LINES) + 1, 1)
    assert "declare the files' encoding with --encoding" in landed.log
    row = landed.read(BRONZE_TRANSACTIONS, "latin1_as_utf8").where("invoice = '536770'").first()
    assert row.description == "ALARM CLOCK CAF\ufffd ROS\ufffd"
    # flagged, not dropped: the line is in silver with its garbled description
    assert landed.read(SILVER_TRANSACTIONS, "latin1_as_utf8").count() == len(GOOD_LINES) + 1


def test_undecodable_rows_are_counted_even_when_spark_connect_observes_nothing(
    spark, lakehouse, tmp_path, monkeypatch
):
    """Over Spark Connect a Delta write can return an empty Observation ({}); bronze then
    counts the batch's undecodable rows in the table it just committed."""
    landing = tmp_path / "landing"
    lines = [*GOOD_LINES, LATIN1_LINE.format(invoice=536370)]
    write_landed(landing, "latin1.csv", lines, encoding="latin-1")
    monkeypatch.setattr(Observation, "get", property(lambda self: {}))

    result = ingest(spark, lakehouse, landing)

    assert (result.rows_ingested, result.undecodable_rows) == (len(GOOD_LINES) + 1, 1)
    ledger = lakehouse.read(PIPELINE_LEDGER).where(f"run_id = 'bronze:{result.batch_id}'")
    assert [r.rows_out for r in ledger.collect()] == [len(GOOD_LINES) + 1]


def test_values_that_cannot_be_typed_are_quarantined_with_their_rule(landed):
    assert quarantined(landed.lakehouse, landed.batch("untypeable")) == UNTYPEABLE_RULES
    # the quarantine keeps what was wrong, next to the whole bronze row
    details = {
        r.invoice: r._quarantine_detail
        for r in landed.read(SILVER_QUARANTINE, "untypeable")
        .select("invoice", "_quarantine_detail")
        .collect()
    }
    assert (details["900001"], details["900003"], details["900005"]) == ("ten", "31/31/2010 08:26",
                                                                         "-4.0")  # fmt: skip
    assert landed.read(SILVER_TRANSACTIONS, "untypeable").count() == len(GOOD_LINES)


def test_an_absurd_price_is_clipped_and_flagged_with_the_original_kept(landed):
    row = landed.read(SILVER_TRANSACTIONS, "prices").where("invoice = '900010'").first()

    assert row.is_price_clipped and row.price_original == 99999.0
    bounds = json.loads(
        landed.lakehouse.read(PIPELINE_LEDGER)
        .where((F.col("run_id") == landed.silver.run_id) & (F.col("rule") == "clip_iqr_outliers"))
        .first()
        .detail
    )
    assert row.price == bounds["price"]["upper"] < 10  # the upper IQR bound, not 99,999


def test_a_file_landed_twice_under_another_name_adds_nothing(landed):
    first, second = landed.ingested["twice"], landed.ingested["twice_again"]

    assert (first.rows_ingested, second.rows_ingested, second.files_skipped) == (6, 0, 2)
    assert second.batch_id is None
    from_folder = landed.lakehouse.read(BRONZE_TRANSACTIONS).where(
        F.col("_source_file").contains("/twice/")
    )
    assert from_folder.count() == len(GOOD_LINES)


def test_a_customer_whose_every_line_is_cancelled_never_reaches_gold(spark, landed):
    lakehouse = landed.lakehouse
    assert quarantined(lakehouse, landed.batch("returns")) == {
        "unmatched_cancellation": ["C900020", "C900021"]
    }
    build_gold(spark, lakehouse, GoldConfig(tables=lakehouse.config))

    customers = lakehouse.read(GOLD_CUSTOMER_RFM).select("customer_id")
    # every customer with a line in silver, and only those: not 19999
    expected = lakehouse.read(SILVER_TRANSACTIONS).select("customer_id").distinct()
    assert_df_equality(customers, expected, ignore_row_order=True, ignore_nullable=True)
    # 19999 is not among them
    assert sorted(r.customer_id for r in customers.collect()) == ["12583", "13047", "17850"]
