"""The offer catalogue (offers.yml, edited by marketing) and the offer plus recommended
products each segmented customer receives.

Completeness is guaranteed by the catalogue, not checked on customer rows: a catalogue only
loads (and offer_catalogue_df only builds) when every persona of PERSONAS has exactly one
offer, and with_persona only assigns personas of PERSONAS, so the inner join in
segmented_offers keeps every customer without collecting any row to the driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from retail_segmentation.common.errors import ConfigError
from retail_segmentation.gold.profiles import PERSONAS

CATALOGUE_FILE = "offers.yml"
CHANNELS = ("email", "sms", "direct_mail")
MAX_DISCOUNT_PCT = 100

OFFER_CATALOGUE_DDL = (
    "persona string, offer_code string, offer_title string, offer_message string, "
    "channel string, discount_pct double, valid_days int"
)
TOP_PRODUCTS_TYPE = "array<struct<rank:int, stock_code:string, description:string>>"


@dataclass(frozen=True)
class Offer:
    """One catalogue entry: the offer sent to the customers of one persona."""

    persona: str
    offer_code: str
    title: str
    message: str
    channel: str
    discount_pct: float
    valid_days: int


_FIELDS = tuple(field.name for field in fields(Offer))


def _read_catalogue(path: str | None) -> tuple[str, str]:
    """(name of the file for messages, its text); the packaged offers.yml when path is None."""
    if path is None:
        packaged = resources.files("retail_segmentation.gold").joinpath(CATALOGUE_FILE)
        return str(packaged), packaged.read_text(encoding="utf-8")
    try:
        return path, Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"offer catalogue {path} cannot be read ({exc.strerror}): expected a YAML file"
        ) from None


def _is_number(value: Any) -> bool:
    # YAML `true` loads as bool, which is an int subclass: never a valid number here.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_offer(entry: Any, number: int, source: str) -> Offer:
    """One validated Offer from the `number`-th (1-based) entry of the `offers` list."""
    if not isinstance(entry, dict):
        raise ConfigError(
            f"offer catalogue {source}, entry {number}: expected a mapping of the fields "
            f"{list(_FIELDS)}, got {type(entry).__name__}"
        )
    where = f"offer catalogue {source}, entry {number}"
    if isinstance(entry.get("persona"), str):
        where += f" (persona {entry['persona']!r})"
    missing = [name for name in _FIELDS if name not in entry]
    if missing:
        raise ConfigError(f"{where}: missing field(s) {missing}: expected all of {list(_FIELDS)}")
    unknown = sorted(str(name) for name in entry if name not in _FIELDS)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}: expected only {list(_FIELDS)}")
    for name in ("persona", "offer_code", "title", "message", "channel"):
        value = entry[name]
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(
                f"{where}: field {name}={value!r} is invalid: expected a non-empty text"
            )
    if entry["channel"] not in CHANNELS:
        raise ConfigError(
            f"{where}: field channel={entry['channel']!r} is invalid: expected one of "
            f"{list(CHANNELS)}"
        )
    discount = entry["discount_pct"]
    if not _is_number(discount) or not 0 <= discount <= MAX_DISCOUNT_PCT:
        raise ConfigError(
            f"{where}: field discount_pct={discount!r} is invalid: expected a number from 0 to "
            f"{MAX_DISCOUNT_PCT}"
        )
    valid_days = entry["valid_days"]
    if isinstance(valid_days, bool) or not isinstance(valid_days, int) or valid_days < 1:
        raise ConfigError(
            f"{where}: field valid_days={valid_days!r} is invalid: expected an integer >= 1"
        )
    return Offer(**{**entry, "discount_pct": float(discount)})


def validate_catalogue(offers: Sequence[Offer], source: str = "offers argument") -> None:
    """Raise ConfigError unless every persona of PERSONAS has exactly one offer, no offer names
    another persona and no two offers share an offer_code."""
    for number, offer in enumerate(offers, start=1):
        if offer.persona not in PERSONAS:
            raise ConfigError(
                f"offer catalogue {source}, entry {number}: persona {offer.persona!r} is "
                f"unknown: expected one of {list(PERSONAS)}"
            )
    for key in ("persona", "offer_code"):
        entries: dict[str, list[int]] = {}
        for number, offer in enumerate(offers, start=1):
            entries.setdefault(getattr(offer, key), []).append(number)
        for value, numbers in entries.items():
            if len(numbers) > 1:
                raise ConfigError(
                    f"offer catalogue {source}: {key} {value!r} appears in entries {numbers}: "
                    "expected exactly one entry per " + key
                )
    missing = [p for p in PERSONAS if p not in {offer.persona for offer in offers}]
    if missing:
        raise ConfigError(
            f"offer catalogue {source}: no offer for persona(s) {missing}: expected one entry "
            f"for each of {list(PERSONAS)}"
        )


def load_offer_catalogue(path: str | None = None) -> tuple[Offer, ...]:
    """The validated offers of a catalogue file; the packaged offers.yml by default."""
    source, text = _read_catalogue(path)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"offer catalogue {source} is not valid YAML: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("offers"), list):
        raise ConfigError(
            f"offer catalogue {source}: expected a mapping with an `offers` list at the top level"
        )
    offers = tuple(
        _parse_offer(entry, number, source)
        for number, entry in enumerate(document["offers"], start=1)
    )
    validate_catalogue(offers, source)
    return offers


def offer_catalogue_df(spark: SparkSession, offers: Sequence[Offer]) -> DataFrame:
    """The catalogue as a small DataFrame (OFFER_CATALOGUE_DDL), validated first."""
    validate_catalogue(offers)
    rows = [
        (
            o.persona,
            o.offer_code,
            o.title,
            o.message,
            o.channel,
            float(o.discount_pct),
            o.valid_days,
        )
        for o in offers
    ]
    return spark.createDataFrame(rows, OFFER_CATALOGUE_DDL)


def segmented_offers(
    segments_df: DataFrame, offers_df: DataFrame, recommendations_df: DataFrame
) -> DataFrame:
    """One row per customer of segments_df: the persona's offer and the customer's recommended
    products ordered by rank.

    Args:
        segments_df: customer_id, segment_id, persona (one row per customer; other columns
            are ignored).
        offers_df: the output of offer_catalogue_df.
        recommendations_df: customer_id, rank, stock_code, description, score, source.

    Returns:
        customer_id, segment_id, persona, offer_code, offer_title, offer_message, channel,
        discount_pct, valid_days and top_products (TOP_PRODUCTS_TYPE; empty, not null, for a
        customer without recommendations). A persona outside PERSONAS has no offer and its
        customer is dropped; with_persona never assigns one (see the module docstring).
    """
    product = F.struct(
        F.col("rank").cast("int").alias("rank"),
        F.col("stock_code").cast("string").alias("stock_code"),
        F.col("description").cast("string").alias("description"),
    )
    # Structs sort field by field, so rank (the first field) orders the array.
    products = recommendations_df.groupBy("customer_id").agg(
        F.array_sort(F.collect_list(product)).alias("top_products")
    )
    no_products = F.array().cast(TOP_PRODUCTS_TYPE)
    return (
        segments_df.select("customer_id", "segment_id", "persona")
        .join(F.broadcast(offers_df), "persona")
        .join(products, "customer_id", "left")
        .select(
            "customer_id",
            "segment_id",
            "persona",
            "offer_code",
            "offer_title",
            "offer_message",
            "channel",
            "discount_pct",
            "valid_days",
            F.coalesce(F.col("top_products"), no_products).alias("top_products"),
        )
    )
