"""Offer catalogue loading and validation, and the offer each segmented customer receives."""

from __future__ import annotations

import re

import pytest
import yaml
from chispa import assert_df_equality

from retail_segmentation.common.errors import ConfigError
from retail_segmentation.gold import offers
from retail_segmentation.gold.profiles import PERSONAS

SEGMENTS_DDL = "customer_id string, segment_id int, persona string, share double"
RECOMMENDATIONS_DDL = (
    "customer_id string, rank int, stock_code string, description string, score double, "
    "source string"
)
OUTPUT_DDL = (
    "customer_id string, segment_id int, persona string, offer_code string, "
    "offer_title string, offer_message string, channel string, discount_pct double, "
    f"valid_days int, top_products {offers.TOP_PRODUCTS_TYPE}"
)


def _entries() -> list[dict]:
    """A valid catalogue, one entry per persona in PERSONAS order (VIP is entry 1)."""
    return [
        {
            "persona": persona,
            "offer_code": persona.upper().replace(" ", "-"),
            "title": f"Title for {persona}",
            "message": f"Message for {persona}",
            "channel": "email",
            "discount_pct": 10,
            "valid_days": 30,
        }
        for persona in PERSONAS
    ]


def _write_catalogue(tmp_path, entries) -> str:
    path = tmp_path / "offers.yml"
    path.write_text(yaml.safe_dump({"offers": entries}), encoding="utf-8")
    return str(path)


def _entry(entries: list[dict], persona: str) -> dict:
    return next(entry for entry in entries if entry["persona"] == persona)


def test_packaged_catalogue_has_one_valid_offer_per_persona():
    catalogue = offers.load_offer_catalogue()
    assert sorted(offer.persona for offer in catalogue) == sorted(PERSONAS)
    assert len({offer.offer_code for offer in catalogue}) == len(PERSONAS)
    assert all(0 <= offer.discount_pct <= 50 for offer in catalogue)
    assert all(offer.channel in offers.CHANNELS and offer.valid_days >= 1 for offer in catalogue)
    vip = next(offer for offer in catalogue if offer.persona == "VIP")
    assert vip.offer_code == "VIP-EARLY-ACCESS" and isinstance(vip.discount_pct, float)


def test_catalogue_file_given_by_path_is_read(tmp_path):
    entries = _entries()
    _entry(entries, "Loyal")["discount_pct"] = 12.5
    catalogue = offers.load_offer_catalogue(_write_catalogue(tmp_path, entries))
    assert next(o for o in catalogue if o.persona == "Loyal").discount_pct == 12.5


def _drop_field(entries):
    del _entry(entries, "New")["channel"]


def _text_days(entries):
    _entry(entries, "Loyal")["valid_days"] = "thirty"


def _bool_discount(entries):
    _entry(entries, "VIP")["discount_pct"] = True


def _big_discount(entries):
    _entry(entries, "Churned")["discount_pct"] = 150


def _bad_channel(entries):
    _entry(entries, "Occasional")["channel"] = "fax"


def _empty_message(entries):
    _entry(entries, "New")["message"] = "  "


def _extra_field(entries):
    _entry(entries, "New")["discount"] = 5


def _duplicate_persona(entries):
    entries.append({**_entry(entries, "VIP"), "offer_code": "VIP-AGAIN"})


def _duplicate_code(entries):
    _entry(entries, "New")["offer_code"] = "VIP"


def _missing_persona(entries):
    entries.remove(_entry(entries, "Bargain Hunter"))


def _unknown_persona(entries):
    entries.append({**_entry(entries, "VIP"), "persona": "Whale", "offer_code": "WHALE"})


def _not_a_mapping(entries):
    entries.append("VIP-EARLY-ACCESS")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_drop_field, r"entry \d+ \(persona 'New'\): missing field\(s\) \['channel'\]"),
        (_text_days, r"\(persona 'Loyal'\): field valid_days='thirty' .* expected an integer >= 1"),
        (_bool_discount, r"\(persona 'VIP'\): field discount_pct=True .* number from 0 to 100"),
        (_big_discount, r"\(persona 'Churned'\): field discount_pct=150 .* number from 0 to 100"),
        (_bad_channel, r"field channel='fax' .* one of \['email', 'sms', 'direct_mail'\]"),
        (_empty_message, r"\(persona 'New'\): field message='  ' .* non-empty text"),
        (_extra_field, r"\(persona 'New'\): unknown field\(s\) \['discount'\]"),
        (_duplicate_persona, r"persona 'VIP' appears in entries \[1, 8\]: expected exactly one"),
        (_duplicate_code, r"offer_code 'VIP' appears in entries \[1, 4\]"),
        (_missing_persona, r"no offer for persona\(s\) \['Bargain Hunter'\]"),
        (_unknown_persona, r"entry 8: persona 'Whale' is unknown: expected one of \['VIP'"),
        (_not_a_mapping, r"entry 8: expected a mapping of the fields"),
    ],
)
def test_bad_catalogue_names_file_entry_and_field(tmp_path, edit, message):
    entries = _entries()
    edit(entries)
    path = _write_catalogue(tmp_path, entries)
    with pytest.raises(ConfigError, match=re.escape(f"offer catalogue {path}") + ".*" + message):
        offers.load_offer_catalogue(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("offers: [unclosed", r"is not valid YAML"),
        ("- persona: VIP\n", r"expected a mapping with an `offers` list"),
        ("", r"expected a mapping with an `offers` list"),
    ],
)
def test_catalogue_that_is_not_an_offers_list_is_rejected(tmp_path, text, message):
    path = tmp_path / "offers.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        offers.load_offer_catalogue(str(path))


def test_missing_catalogue_file_is_named(tmp_path):
    path = str(tmp_path / "nowhere.yml")
    with pytest.raises(ConfigError, match=re.escape(path) + r" cannot be read .*expected a YAML"):
        offers.load_offer_catalogue(path)


def test_offer_catalogue_df_refuses_an_incomplete_catalogue(spark):
    catalogue = offers.load_offer_catalogue()
    without_vip = tuple(offer for offer in catalogue if offer.persona != "VIP")
    with pytest.raises(ConfigError, match=r"offers argument: no offer for persona\(s\) \['VIP'\]"):
        offers.offer_catalogue_df(spark, without_vip)


def test_segmented_offers_one_row_per_customer_with_ranked_products(spark):
    offers_df = offers.offer_catalogue_df(spark, offers.load_offer_catalogue())
    segments_df = spark.createDataFrame(
        [("a", 0, "VIP", 0.2), ("b", 3, "Churned", 0.5), ("c", 1, "New", 0.3)],
        SEGMENTS_DDL,
    )
    recommendations_df = spark.createDataFrame(
        [
            ("a", 3, "P3", "MUG", 0.1, "als"),
            ("a", 1, "P1", "LANTERN", 0.9, "als"),
            ("a", 2, "P2", None, 0.5, "popular"),  # null description is kept
            ("b", 1, "P9", "CANDLE", 0.7, "popular"),
            ("z", 1, "P1", "LANTERN", 0.9, "als"),  # not segmented: no row
        ],
        RECOMMENDATIONS_DDL,
    )
    catalogue = {o.persona: o for o in offers.load_offer_catalogue()}

    def offer_columns(persona: str) -> tuple:
        o = catalogue[persona]
        return (o.offer_code, o.title, o.message, o.channel, o.discount_pct, o.valid_days)

    expected_df = spark.createDataFrame(
        [
            (
                "a",
                0,
                "VIP",
                *offer_columns("VIP"),
                [(1, "P1", "LANTERN"), (2, "P2", None), (3, "P3", "MUG")],
            ),
            ("b", 3, "Churned", *offer_columns("Churned"), [(1, "P9", "CANDLE")]),
            ("c", 1, "New", *offer_columns("New"), []),  # no recommendations: empty, not null
        ],
        OUTPUT_DDL,
    )
    actual_df = offers.segmented_offers(segments_df, offers_df, recommendations_df)
    assert_df_equality(actual_df, expected_df, ignore_row_order=True, ignore_nullable=True)
    assert offer_columns("VIP")[0] == "VIP-EARLY-ACCESS"
