"""Seeded, distributed generator of Online Retail II-shaped CSV with a hidden profile per customer.

Everything is computed by Spark from `spark.range` with hash expressions: every random draw is
`xxhash64(seed, salt, keys...)` turned into a uniform number, so a value depends only on the
config and its keys, never on partitioning or scheduling. Prefix sums go through windows over
small block and day tables; only `files` partition keys are collected to the driver.

Generation runs in five levels:

1. customers (a pool larger than needed, ids 12346, 12347, ...) with profile and country;
2. units: one per customer purchase, holding the sale invoice, its duplicate and non-product
   lines and its optional cancellation invoice(s); each unit knows how many CSV lines it makes;
3. global line offsets: a cumulative sum inside blocks of customers plus a prefix over the block
   totals; units and lines whose offset is >= `rows` are dropped, so exactly `rows` lines remain
   (only the last customer is cut short, losing its oldest purchases);
4. invoices: numbered in time order (prefix over per-day counts plus a row number in the day);
5. lines: one exploded row per CSV line, joined to a broadcast product table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from pyspark.sql import Column, DataFrame, Observation, SparkSession, Window
from pyspark.sql import functions as F

from retail_segmentation.common.config import parse_date
from retail_segmentation.common.errors import ConfigError
from retail_segmentation.common.spark import compute_kind, get_spark
from retail_segmentation.data import embedded

HEADERS: dict[str, tuple[str, ...]] = {
    "ii": (
        "Invoice",
        "StockCode",
        "Description",
        "Quantity",
        "InvoiceDate",
        "Price",
        "Customer ID",
        "Country",
    ),
    "classic": (
        "InvoiceNo",
        "StockCode",
        "Description",
        "Quantity",
        "InvoiceDate",
        "UnitPrice",
        "CustomerID",
        "Country",
    ),
}
PROFILE_NAMES = ("VIP", "loyal", "new", "slipping_away", "churned", "bargain_hunter")
NON_PRODUCT_CODES = (
    "POST",
    "DOT",
    "M",
    "BANK CHARGES",
    "AMAZONFEE",
    "C2",
    "D",
    "CRUK",
    "PADS",
    "ADJUST",
)

FIRST_CUSTOMER_ID = 12346
FIRST_INVOICE_NO = 489434  # stays 6 digits up to ~510k invoices (~9M rows), grows after
SPAN_DAYS = 738  # 2009-12-01 .. 2011-12-09 in the real data
MINUTES_PER_DAY = 1440
_UNIT_SLOTS = 64  # > the largest invoice count per customer, packs (customer, k) in one long

# Shares of invoices or lines; see `write_dataset`'s summary for the measured values.
GUEST_RATE = 0.20  # of a customer's invoices other than the latest one (~18% of all invoices)
BLANK_ID_RATE = 0.01
DUPLICATE_RATE = 0.01
CANCEL_RATE = 0.02
# The rarest dirt is spaced evenly rather than drawn, so that small files still hold some:
UNMATCHED_CANCEL_EVERY = 50  # customers: one unmatched cancellation each (~0.2% of invoices)
NON_PRODUCT_RATE_UK = 0.035  # invoices with one non-product line; export invoices mostly POST
NON_PRODUCT_RATE_EXPORT = 0.45
ZERO_PRICE_RATE = 0.003
QUANTITY_OUTLIER_RATE = 0.0005
PRICE_OUTLIER_RATE = 0.0005
# The hidden profiles, beside the transactions: `_` keeps them out of Spark's file listings.
TRUTH_DIR, TRUTH_FILE = embedded.TRUTH_DIR, embedded.TRUTH_FILE
MALFORMED_EVERY = 5000  # line positions (0.02%), cycling bad date, bad quantity, short line


@dataclass(frozen=True)
class _Profile:
    name: str
    share: float
    invoices: tuple[int, int]
    lines: tuple[int, int]
    last_days_ago: tuple[int, int]  # recency of the latest purchase
    tenure_days: tuple[int, int]  # first purchase = latest + tenure (capped at SPAN_DAYS)
    quantities: tuple[tuple[int, float], ...]


# Sale quantities are never odd above 3: unmatched cancellations use 5, 7, ... so that no earlier
# sale of the same customer, product and quantity can exist.
_GENERAL_QTY = ((1, 14), (2, 14), (3, 8), (4, 10), (6, 14), (8, 6), (10, 6), (12, 18), (24, 7))
_VIP_QTY = ((2, 8), (4, 10), (6, 16), (12, 30), (24, 20), (36, 4), (48, 8), (96, 4))
_BARGAIN_QTY = ((12, 15), (24, 25), (48, 20), (72, 10), (96, 10), (100, 5), (144, 10), (200, 5))
_UNMATCHED_QTY = ((5, 1), (7, 1), (9, 1), (11, 1), (13, 1), (15, 1), (17, 1))

PROFILES = (
    _Profile("VIP", 0.05, (30, 60), (20, 40), (0, 30), (500, 738), _VIP_QTY),
    _Profile("loyal", 0.20, (10, 25), (8, 25), (0, 30), (250, 700), _GENERAL_QTY),
    _Profile("new", 0.15, (1, 3), (8, 25), (0, 30), (0, 30), _GENERAL_QTY),
    _Profile("slipping_away", 0.20, (5, 12), (8, 25), (90, 200), (150, 500), _GENERAL_QTY),
    _Profile("churned", 0.25, (1, 4), (8, 25), (300, 700), (0, 200), _GENERAL_QTY),
    _Profile("bargain_hunter", 0.15, (4, 10), (3, 10), (0, 400), (100, 600), _BARGAIN_QTY),
)

_COUNTRIES = (
    ("United Kingdom", 85.0),
    ("Germany", 2.4),
    ("France", 2.1),
    ("EIRE", 1.9),
    ("Spain", 0.9),
    ("Netherlands", 0.8),
    ("Belgium", 0.8),
    ("Switzerland", 0.7),
    ("Portugal", 0.7),
    ("Australia", 0.5),
    ("Norway", 0.5),
    ("Italy", 0.5),
    ("Channel Islands", 0.4),
    ("Finland", 0.4),
    ("Sweden", 0.4),
    ("Denmark", 0.4),
    ("Cyprus", 0.3),
    ("Austria", 0.3),
    ("Poland", 0.3),
    ("Japan", 0.3),
    ("USA", 0.2),
    ("Israel", 0.1),
    ("Greece", 0.1),
)

# code, description, price range, weight on UK invoices, weight on export invoices
_NON_PRODUCTS = (
    ("POST", "POSTAGE", 5.0, 40.0, 5.0, 85.0),
    ("DOT", "DOTCOM POSTAGE", 10.0, 1500.0, 30.0, 0.0),
    ("M", "Manual", 0.19, 1000.0, 22.0, 5.0),
    ("BANK CHARGES", "Bank Charges", 10.0, 20.0, 6.0, 2.0),
    ("AMAZONFEE", "AMAZON FEE", 5.0, 15000.0, 4.0, 0.0),
    ("C2", "CARRIAGE", 50.0, 50.0, 5.0, 5.0),
    ("D", "Discount", 0.5, 200.0, 10.0, 3.0),
    ("CRUK", "CRUK Commission", 1.0, 200.0, 5.0, 0.0),
    ("PADS", "PADS TO MATCH ALL CUSHIONS", 0.001, 0.001, 5.0, 0.0),
    ("ADJUST", "Adjust bad debt", 10.0, 12000.0, 3.0, 0.0),
)

_PRICES = (0.29, 0.39, 0.42, 0.55, 0.65, 0.72, 0.79, 0.85, 0.95, 1.25, 1.45, 1.65, 1.69, 1.95)
_PRICES += (2.1, 2.46, 2.55, 2.95, 3.25, 3.75, 4.25, 4.95, 5.95, 6.75, 7.95, 8.5, 9.95, 12.75)
_PRICES += (14.95, 16.95, 19.95)
_BIG_PRICES = (24.95, 29.95, 39.95, 49.95, 79.95, 125.0, 165.0, 295.0)

_COLOURS = ("WHITE", "RED", "PINK", "BLUE", "GREEN", "IVORY", "CREAM", "BLACK", "SILVER")
_COLOURS += ("GOLD", "PASTEL", "VINTAGE", "ANTIQUE", "NATURAL", "TURQUOISE", "PURPLE")
_STYLES = ("HANGING", "REGENCY", "JUMBO", "SMALL", "LARGE", "FELTCRAFT", "WOODEN", "GLASS")
_STYLES += ("ENAMEL", "CERAMIC", "PAPER", "METAL", "ZINC", "SET OF 3", "SET/6", "PACK OF 12")
_MOTIFS = ("HEART", "STAR", "RETROSPOT", "SPOTTY", "FLORAL", "BIRD", "CHRISTMAS", "DOLLY GIRL")
_MOTIFS += ("SPACEBOY", "LOVE", "ROSE", "OWL", "BUNTING", "PAISLEY", "SKULL", "ALPHABET")
_MOTIFS += ("JAM MAKING", "PARISIENNE")
_ACCENTED = ("CAFÉ", "NOËL", "CRÈME")  # on ~2% of products
_ITEMS = ("T-LIGHT HOLDER", "LANTERN", "SHOPPER BAG", "LUNCH BOX", "MUG", "CAKE STAND")
_ITEMS += ("DOORMAT", "CUSHION COVER", "NAPKINS", "PAPER CHAIN KIT", "CANDLE", "PHOTO FRAME")
_ITEMS += ("WALL CLOCK", "TEA SET", "JAM JAR", "COAT HANGER", "HOT WATER BOTTLE", "DOORSTOP")
_ITEMS += ("CAKE CASES", "GIFT WRAP", "NOTEBOOK", "PURSE", "TRINKET BOX", "PLATE", "BOWL")
_ITEMS += ("STORAGE TIN", "TEA,COFFEE,SUGAR TINS", "BAKING SET", "CHILDRENS APRON", "SIGN")
_ITEMS += ("WICKER WREATH", "CHALKBOARD", "BEAKERS", "MAGNETS", "PARASOL", "WASHBAG")
_LETTERS = ("A", "B", "C", "D", "E", "F", "G", "L", "N", "P", "S", "W")


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate.

    Attributes:
        rows: exact number of CSV data lines written, dirt included (>= 1000).
        seed: every draw is a hash of the seed and a key, so a config always gives the same data.
        end_date: last invoice date (YYYY-MM-DD); the data spans the ~2 years before it.
        header_variant: "ii" (Online Retail II names, "2011-12-09 12:50:00", "13085.0") or
            "classic" (UCI Online Retail names, "12/9/2011 12:50", "13085").
        files: number of CSV part files, each a contiguous range of invoices. Each file is
            written by one task, so use about one per few million rows for large outputs.
    """

    rows: int = 20_000
    seed: int = 42
    end_date: str = "2011-12-09"
    header_variant: str = "ii"
    files: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.rows, int) or isinstance(self.rows, bool) or self.rows < 1000:
            raise ConfigError(
                f"parameter rows={self.rows!r} is invalid: expected an integer >= 1000"
            )
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ConfigError(f"parameter seed={self.seed!r} is invalid: expected an integer")
        if not isinstance(self.files, int) or isinstance(self.files, bool) or self.files < 1:
            raise ConfigError(
                f"parameter files={self.files!r} is invalid: expected an integer >= 1"
            )
        if self.header_variant not in HEADERS:
            raise ConfigError(
                f"parameter header_variant={self.header_variant!r} is invalid: expected one of "
                f"{sorted(HEADERS)}"
            )
        parse_date(self.end_date, "end_date")


# --- random draws -----------------------------------------------------------------------------


def _uniform(seed: int, salt: str, *keys: str) -> Column:
    """Uniform double in [0, 1) that depends only on seed, salt and the named key columns."""
    hashed = f"xxhash64({int(seed)}, '{salt}', {', '.join(f'`{k}`' for k in keys)})"
    return F.expr(f"CAST({hashed} & {(1 << 53) - 1} AS DOUBLE) / {float(1 << 53)}")


def _seeded_offset(seed: int, salt: str, modulus: int) -> Column:
    """Constant in [0, modulus) chosen by the seed."""
    return F.pmod(F.xxhash64(F.lit(seed), F.lit(salt)), F.lit(modulus))


def _between(u: Column, low: Column | int, high: Column | int) -> Column:
    """Integer uniform in [low, high] from a uniform `u`."""
    low = F.lit(low) if isinstance(low, int) else low
    high = F.lit(high) if isinstance(high, int) else high
    return (low + F.floor(u * (high - low + 1))).cast("int")


def _pick(u: Column, choices: Sequence[tuple[object, float]]) -> Column:
    """Weighted choice among literal values from a uniform `u`."""
    kept = [(value, weight) for value, weight in choices if weight > 0]
    total = sum(weight for _, weight in kept)
    expr, cumulative = None, 0.0
    for value, weight in kept[:-1]:
        cumulative += weight / total
        expr = (F if expr is None else expr).when(u < cumulative, F.lit(value))
    last = F.lit(kept[-1][0])
    return last if expr is None else expr.otherwise(last)


def _element(u: Column, values: Sequence[object]) -> Column:
    """Uniform choice among literal values (1-based `element_at`, index always in range)."""
    index = (F.floor(u * len(values)) + 1).cast("int")
    return F.element_at(F.array(*[F.lit(v) for v in values]), index)


def _by_profile(values: Mapping[str, object]) -> Column:
    """Per-profile literal, e.g. the lower bound of the invoice count."""
    profile, expr = F.col("profile"), None
    for name, value in values.items():
        expr = (F if expr is None else expr).when(profile == name, F.lit(value))
    return expr


def _zipf_rank(u: Column, n: int, offset: float) -> Column:
    """Rank in [0, n) with P(rank) ~ 1 / (rank + offset): a few ranks are very common."""
    rank = F.floor(F.lit(offset) * F.pow(F.lit((n + offset) / offset), u) - offset)
    return F.least(rank, F.lit(n - 1)).cast("int")


def _minute_of_day(seed: int, salt: str, *keys: str) -> Column:
    """Minute of the day: hours 7-20 around a noon peak (sum of four uniforms ~ normal)."""
    total = sum((_uniform(seed, f"{salt}-h{i}", *keys) for i in range(4)), F.lit(0.0))
    z = (total - 2.0) * math.sqrt(3.0)
    hour = F.least(F.greatest(F.floor(12.5 + 2.2 * z), F.lit(7)), F.lit(20))
    return (hour * 60 + F.floor(_uniform(seed, f"{salt}-m", *keys) * 60)).cast("int")


# --- sizes --------------------------------------------------------------------------------------


def _product_count(rows: int) -> int:
    return min(4000, rows // 250 + 200)


def _expected_lines_per_customer() -> float:
    extra = 0.1 + CANCEL_RATE * 2
    per_customer = sum(
        p.share * (sum(p.invoices) / 2) * (sum(p.lines) / 2 * (1 + DUPLICATE_RATE) + extra)
        for p in PROFILES
    )
    return per_customer + 1 / UNMATCHED_CANCEL_EVERY


def _customer_pool(rows: int) -> int:
    """Customers generated before the cut: 1.5x the expected need, far beyond its variance."""
    return math.ceil(1.5 * rows / _expected_lines_per_customer()) + 200


def _line_partitions(rows: int) -> int:
    """Partitions for the line explode (~250k lines each), fixed so AQE cannot collapse them."""
    return max(2, min(4096, math.ceil(rows / 250_000)))


# --- levels -------------------------------------------------------------------------------------


def _customers_df(spark: SparkSession, config: GeneratorConfig) -> DataFrame:
    """Customer pool: id, hidden profile, country, invoice count and purchase window."""
    seed, idx = config.seed, F.col("customer_idx")

    def draw(salt: str, bounds: Callable[[_Profile], tuple[int, int]]) -> Column:
        low = _by_profile({p.name: bounds(p)[0] for p in PROFILES})
        high = _by_profile({p.name: bounds(p)[1] for p in PROFILES})
        return _between(_uniform(seed, salt, "customer_idx"), low, high)

    customers = (
        spark.range(_customer_pool(config.rows))
        .withColumnRenamed("id", "customer_idx")
        .withColumns(
            {
                "customer_id": (idx + FIRST_CUSTOMER_ID).cast("int"),
                "profile": _pick(
                    _uniform(seed, "profile", "customer_idx"), [(p.name, p.share) for p in PROFILES]
                ),
                "country": _pick(_uniform(seed, "country", "customer_idx"), _COUNTRIES),
            }
        )
    )
    last_ago = draw("last", lambda p: p.last_days_ago)
    return customers.withColumns(
        {
            "n_invoices": draw("invoices", lambda p: p.invoices),
            "last_ago": last_ago,
            "first_ago": F.least(
                last_ago + draw("tenure", lambda p: p.tenure_days), F.lit(SPAN_DAYS)
            ),
        }
    )


def _with_units(customers_df: DataFrame, config: GeneratorConfig) -> DataFrame:
    """One row per purchase (unit): invoice time, guest flag, line counts and cancellations.

    `t` columns are minutes from the end date's midnight (negative before it); k = 0 is the
    customer's latest purchase and purchases are spread evenly back to the first one.
    """
    seed = config.seed
    end_weekday = dt.date.fromisoformat(config.end_date).weekday()  # Monday = 0, Saturday = 5
    k, n, idx = F.col("k"), F.col("n_invoices"), F.col("customer_idx")
    last, first = F.col("last_ago"), F.col("first_ago")
    day, raw_day, later, n_prod = F.col("day"), F.col("raw_day"), F.col("later"), F.col("n_prod")

    def weekday(day: Column) -> Column:
        return F.pmod(F.lit(end_weekday) + day, F.lit(7))

    def uniform(salt: str) -> Column:
        return _uniform(seed, salt, "unit_key")

    jitter = 0.8 * (uniform("jitter") - 0.5)
    position = F.when(k == 0, 0.0).when(k == n - 1, 1.0).otherwise((k + jitter) / (n - 1))
    # The shop sells on Saturdays almost never: move ~98% of them to Wednesday..Friday.
    saturday_shift = F.when(
        (weekday(raw_day) == 5) & (uniform("saturday") >= 0.02),
        _pick(_uniform(seed, "saturday-to", "unit_key"), [(-1, 0.4), (-2, 0.3), (-3, 0.3)]),
    ).otherwise(0)
    lines_low = _by_profile({p.name: p.lines[0] for p in PROFILES})
    lines_high = _by_profile({p.name: p.lines[1] for p in PROFILES})
    non_product_rate = F.when(F.col("country") == "United Kingdom", NON_PRODUCT_RATE_UK).otherwise(
        NON_PRODUCT_RATE_EXPORT
    )
    has_unmatched = (
        F.pmod(
            idx + _seeded_offset(seed, "unmatched", UNMATCHED_CANCEL_EVERY),
            F.lit(UNMATCHED_CANCEL_EVERY),
        )
        == 0
    )
    unmatched_k = F.floor(_uniform(seed, "unmatched-k", "customer_idx") * n)

    # Cancellation: half the same day a little later, half 1-30 days later, never after the end
    # date and (almost) never on a Saturday.
    later_days = F.least(1 + F.floor(29 * F.pow(uniform("cancel-days"), 2)), -day).cast("int")
    off_saturday = F.when(
        (later > 0) & (weekday(day + later) == 5),
        F.when(later >= 2, later - 1).when(later + 1 <= -day, later + 1).otherwise(later),
    ).otherwise(later)
    same_day = F.least(
        F.col("t") + 20 + F.floor(uniform("cancel-minutes") * 220),
        day * MINUTES_PER_DAY + MINUTES_PER_DAY - 1,
    )
    cancel_t = F.when((uniform("cancel-same-day") < 0.5) | (later == 0), same_day).otherwise(
        (day + off_saturday) * MINUTES_PER_DAY + _minute_of_day(seed, "cancel-time", "unit_key")
    )

    units = customers_df.withColumn("k", F.explode(F.sequence(F.lit(0), n - 1))).withColumns(
        {
            "unit_key": idx * _UNIT_SLOTS + k,
            "raw_day": -F.round(last + (first - last) * position).cast("int"),
        }
    )
    units = units.withColumns(
        {
            "day": raw_day + saturday_shift,
            "is_guest": (k > 0) & (uniform("guest") < GUEST_RATE),
            "n_prod": _between(uniform("lines"), lines_low, lines_high),
            "n_nonprod": (uniform("nonprod") < non_product_rate).cast("int"),
            "n_unmatched": (has_unmatched & (k == unmatched_k)).cast("int"),
            "n_cancel_lines": _between(uniform("cancel-lines"), 1, 3),
        }
    )
    units = units.withColumns(
        {
            "t": day * MINUTES_PER_DAY + _minute_of_day(seed, "time", "unit_key"),
            "unmatched_t": day * MINUTES_PER_DAY
            + _minute_of_day(seed, "unmatched-time", "unit_key"),
            "later": later_days,
            "n_dup": F.floor(n_prod * DUPLICATE_RATE + uniform("dups")).cast("int"),
            "n_cancel": F.when(
                uniform("cancel") < CANCEL_RATE, F.least(F.col("n_cancel_lines"), n_prod)
            ).otherwise(0),
            "cancel_from": _between(uniform("cancel-from"), 0, n_prod - 1),
        }
    )
    units = units.withColumns(
        {
            "cancel_t": cancel_t.cast("int"),
            "off_nonprod": n_prod + F.col("n_dup"),
            "off_cancel": n_prod + F.col("n_dup") + F.col("n_nonprod"),
            "off_unmatched": n_prod + F.col("n_dup") + F.col("n_nonprod") + F.col("n_cancel"),
        }
    )
    return units.withColumn("n_lines", F.col("off_unmatched") + F.col("n_unmatched")).drop(
        "raw_day", "later", "n_cancel_lines"
    )


def _filter_to_row_budget(units_df: DataFrame, rows: int) -> DataFrame:
    """Give each unit its global line offset (customers in id order, latest purchase first)
    and keep the units that start before `rows`."""
    block_size = max(1, math.ceil(_customer_pool(rows) / 1024))
    units = units_df.withColumn("block", F.floor(F.col("customer_idx") / block_size))
    in_block = Window.partitionBy("block").orderBy("customer_idx", "k")
    units = units.withColumn(
        "start_in_block",
        F.coalesce(
            F.sum("n_lines").over(in_block.rowsBetween(Window.unboundedPreceding, -1)), F.lit(0)
        ),
    )
    # A few thousand block totals: a window without partitions is fine at that size.
    blocks = units_df.groupBy(F.floor(F.col("customer_idx") / block_size).alias("block")).agg(
        F.sum("n_lines").alias("block_lines")
    )
    blocks = blocks.select(
        "block",
        F.coalesce(
            F.sum("block_lines").over(
                Window.orderBy("block").rowsBetween(Window.unboundedPreceding, -1)
            ),
            F.lit(0),
        ).alias("block_start"),
    )
    return (
        units.join(F.broadcast(blocks), "block")
        .withColumn("unit_start", F.col("block_start") + F.col("start_in_block"))
        .filter(F.col("unit_start") < rows)
        .drop("block", "block_start", "start_in_block")
    )


def _numbered_invoices_df(units_df: DataFrame, config: GeneratorConfig) -> DataFrame:
    """One row per invoice kept (a unit's sale invoice and its 0-2 cancellation invoices) with
    the unit's columns, its slot range in the unit and its rank (number - FIRST_INVOICE_NO).

    Invoices are numbered in time order: a prefix over per-day counts plus a row number within
    the day. File i of `config.files` holds the i-th slice of ranks.
    """
    budget = config.rows - F.col("unit_start")

    def invoice(kind: int, t: str, first: str, end: str, kept: Column) -> Column:
        return F.struct(
            F.lit(kind).alias("invoice_kind"),
            F.col(t).alias("invoice_t"),
            (F.col(first) if first else F.lit(0)).alias("first_slot"),
            F.least(F.col(end), budget).cast("int").alias("end_slot"),
            kept.alias("kept"),
        )

    candidates = F.array(
        invoice(0, "t", "", "off_cancel", F.lit(True)),
        invoice(1, "cancel_t", "off_cancel", "off_unmatched", F.col("n_cancel") > 0),
        invoice(2, "unmatched_t", "off_unmatched", "n_lines", F.col("n_unmatched") > 0),
    )
    invoices = (
        units_df.select("*", F.explode(candidates).alias("invoice"))
        .select("*", "invoice.*")
        .drop("invoice")
        .filter(F.col("kept") & (F.col("first_slot") < F.col("end_slot")))
        .drop("kept")
        .withColumns(
            {
                "day": F.floor(F.col("invoice_t") / MINUTES_PER_DAY),
                "tie": F.xxhash64(F.lit(config.seed), F.lit("tie"), "unit_key", "invoice_kind"),
            }
        )
    )
    days = invoices.groupBy("day").agg(F.count(F.lit(1)).alias("day_invoices"))
    days = days.select(
        "day",
        F.coalesce(
            F.sum("day_invoices").over(
                Window.orderBy("day").rowsBetween(Window.unboundedPreceding, -1)
            ),
            F.lit(0),
        ).alias("day_start"),
        F.sum("day_invoices").over(Window.partitionBy()).alias("total_invoices"),
    )
    in_day = Window.partitionBy("day").orderBy("invoice_t", "tie", "unit_key", "invoice_kind")
    rank = F.col("day_start") + F.row_number().over(in_day) - 1
    file_id = F.floor(F.col("rank") * config.files / F.col("total_invoices"))
    return (
        invoices.join(F.broadcast(days), "day")
        .withColumn("rank", rank)
        .withColumn("file_id", F.least(file_id, F.lit(config.files - 1)).cast("int"))
        .drop("day", "tie", "day_start", "total_invoices")
    )


def _products_df(spark: SparkSession, config: GeneratorConfig) -> DataFrame:
    """Products (ids 0.. in popularity order) and the non-product codes (ids -1..-10)."""
    seed, pid = config.seed, F.col("product_id")
    n = _product_count(config.rows)
    # 7919 is prime and coprime with 90000, so stock numbers are distinct for distinct ids.
    number = F.lit(10000) + F.pmod(pid * 7919 + (seed * 7777) % 90000, F.lit(90000))
    letter = F.when(
        _uniform(seed, "letter", "product_id") < 0.12,
        _element(_uniform(seed, "letter-which", "product_id"), _LETTERS),
    )
    prices_cheap, prices_mid, prices_premium = _PRICES[:17], _PRICES[9:28], _PRICES[21:]
    tier = F.pmod(pid, F.lit(10))
    u_price = _uniform(seed, "base-price", "product_id")
    base_price = (
        F.when(tier.between(1, 4), _element(u_price, prices_cheap))
        .when(tier != 0, _element(u_price, prices_mid))
        .when(_uniform(seed, "big", "product_id") < 0.15, _element(u_price, _BIG_PRICES))
        .otherwise(_element(u_price, prices_premium))
    )

    def optional(salt: str, share: float, words: Sequence[str]) -> Column:
        return F.when(
            _uniform(seed, salt, "product_id") < share,
            _element(_uniform(seed, f"{salt}-w", "product_id"), words),
        )

    description = F.concat_ws(
        " ",
        optional("colour", 0.55, _COLOURS),
        optional("style", 0.45, _STYLES),
        optional("motif", 0.6, _MOTIFS),
        optional("accented", 0.02, _ACCENTED),
        _element(_uniform(seed, "item", "product_id"), _ITEMS),
    )
    products = spark.range(n).select(
        F.col("id").alias("product_id"),
        F.concat(number.cast("string"), F.coalesce(letter, F.lit(""))).alias("stock_code"),
        description.alias("description"),
        base_price.cast("double").alias("base_price"),
        F.lit(None).cast("double").alias("price_low"),
        F.lit(None).cast("double").alias("price_high"),
    )
    specials = spark.createDataFrame(
        [
            (-(i + 1), code, desc, low, low, high)
            for i, (code, desc, low, high, *_) in enumerate(_NON_PRODUCTS)
        ],
        "product_id long, stock_code string, description string, base_price double, "
        "price_low double, price_high double",
    )
    return products.unionByName(specials)


def _product_choice(n_products: int, profile: Column, u_rank: Column, u_mode: Column) -> Column:
    """Product id for a sale line from a popularity quantile `u_rank`: popular ids more often;
    VIPs lean to premium ids (id % 10 == 0), bargain hunters to cheap ids (id % 10 in 1..4)."""
    n_premium = math.ceil(n_products / 10)
    n_cheap = n_products // 10 * 4 + max(0, min(n_products % 10, 5) - 1)
    general = _zipf_rank(u_rank, n_products, 30.0)
    premium = _zipf_rank(u_rank, n_premium, 10.0) * 10
    cheap_rank = _zipf_rank(u_rank, n_cheap, 20.0)
    cheap = F.floor(cheap_rank / 4) * 10 + 1 + F.pmod(cheap_rank, F.lit(4))
    return (
        F.when((profile == "VIP") & (u_mode < 0.3), premium)
        .when((profile == "bargain_hunter") & (u_mode < 0.8), cheap)
        .otherwise(general)
        .cast("long")
    )


def _lines_df(invoices_df: DataFrame, products_df: DataFrame, config: GeneratorConfig) -> DataFrame:
    """Explode invoices into CSV lines with clean typed values and the dirt flags.

    kind: 0 sale line, 1 duplicate, 2 non-product line, 3 cancellation line, 4 unmatched
    cancellation. Duplicates and cancellations reuse the draws of the sale line `j` they copy.
    """
    seed, rows = config.seed, config.rows
    n_products = _product_count(rows)
    s, j, kind = F.col("s"), F.col("j"), F.col("kind")
    n_prod, profile = F.col("n_prod"), F.col("profile")
    is_sale_copy = kind.isin(0, 1, 3)

    kind_expr = (
        F.when(s < n_prod, 0)
        .when(s < F.col("off_nonprod"), 1)
        .when(s < F.col("off_cancel"), 2)
        .when(s < F.col("off_unmatched"), 3)
        .otherwise(4)
    )
    j_expr = (
        F.when(kind == 0, s)
        .when(kind == 1, F.floor(_uniform(seed, "dup-of", "unit_key", "s") * n_prod))
        .when(kind == 3, F.pmod(F.col("cancel_from") + s - F.col("off_cancel"), n_prod))
        .otherwise(-1)
        .cast("int")
    )
    # Sale, duplicate and non-product lines keep their slot order (slots are distinct), except
    # that most duplicates move right after their original; ties are between identical lines.
    line_order = (
        F.when((kind == 1) & (_uniform(seed, "dup-at-end", "unit_key", "s") >= 0.3), j * 4 + 1)
        .when(kind == 3, s - F.col("off_cancel"))
        .when(kind == 4, 0)
        .otherwise(s * 4)
    )
    non_product = _pick(
        _uniform(seed, "nonprod-code", "unit_key"),
        [(-(i + 1), uk) for i, (_, _, _, _, uk, _) in enumerate(_NON_PRODUCTS)],
    )
    non_product_export = _pick(
        _uniform(seed, "nonprod-code", "unit_key"),
        [(-(i + 1), export) for i, (*_, export) in enumerate(_NON_PRODUCTS)],
    )
    # Stratified popularity: line j draws from its own quantile stratum (strata permuted by a
    # prime stride), so the marginal popularity is unchanged but an invoice rarely repeats a
    # product - exact duplicate lines then come from the injected duplicates only.
    stratum = F.pmod(j * 7919 + F.floor(_uniform(seed, "strata", "unit_key") * n_prod), n_prod)
    u_rank = (stratum + _uniform(seed, "product", "unit_key", "j")) / n_prod
    u_mode = _uniform(seed, "product-mode", "unit_key", "j")
    product_id = (
        F.when(is_sale_copy, _product_choice(n_products, profile, u_rank, u_mode))
        .when(
            kind == 2,
            F.when(F.col("country") == "United Kingdom", non_product).otherwise(non_product_export),
        )
        .otherwise(_zipf_rank(_uniform(seed, "unmatched-product", "unit_key"), n_products, 30.0))
        .cast("long")
    )

    def per_profile_quantity(u: Column) -> Column:
        return (
            F.when(profile == "VIP", _pick(u, _VIP_QTY))
            .when(profile == "bargain_hunter", _pick(u, _BARGAIN_QTY))
            .otherwise(_pick(u, _GENERAL_QTY))
        )

    sale_quantity = F.when(
        _uniform(seed, "qty-outlier", "unit_key", "j") < QUANTITY_OUTLIER_RATE,
        1000 + F.floor(F.pow(_uniform(seed, "qty-outlier-value", "unit_key", "j"), 4) * 79995.999),
    ).otherwise(per_profile_quantity(_uniform(seed, "qty", "unit_key", "j")))
    sale_qty = F.col("sale_qty")
    quantity = (
        F.when(kind.isin(0, 1), sale_qty)
        .when(kind == 3, -sale_qty)
        .when(kind == 2, 1)
        .otherwise(-_pick(_uniform(seed, "unmatched-qty", "unit_key"), _UNMATCHED_QTY))
        .cast("int")
    )

    u_price = _uniform(seed, "price", "unit_key", "j")
    base = F.col("base_price")
    sale_price = (
        F.when(u_price < ZERO_PRICE_RATE, 0.0)
        .when(
            u_price < ZERO_PRICE_RATE + PRICE_OUTLIER_RATE,
            F.round(500 * F.pow(F.lit(80.0), _uniform(seed, "price-outlier", "unit_key", "j")), 2),
        )
        .when(F.abs(F.col("quantity")) >= 48, F.greatest(F.round(base * 0.85, 2), F.lit(0.01)))
        .otherwise(base)
    )
    low, high = F.col("price_low"), F.col("price_high")
    non_product_price = F.when(low == high, low).otherwise(
        F.round(low + (high - low) * F.pow(_uniform(seed, "nonprod-price", "unit_key"), 3), 2)
    )
    price = F.when(is_sale_copy, sale_price).when(kind == 2, non_product_price).otherwise(base)

    is_guest_line = F.col("is_guest") & (kind != 4)
    is_blanked = (
        ~F.col("is_guest")
        & kind.isin(0, 1)
        & (j > 0)
        & (_uniform(seed, "blank-id", "unit_key", "j") < BLANK_ID_RATE)
    )
    # Keyed on the position of the sale line (s == j for it), so a duplicate stays verbatim.
    position = F.col("unit_start") + j + _seeded_offset(seed, "malformed", MALFORMED_EVERY)
    malformed = F.when(
        kind.isin(0, 1) & (F.pmod(position, F.lit(MALFORMED_EVERY)) == 0),
        F.pmod(F.floor(position / MALFORMED_EVERY), F.lit(3)) * 2
        + (_uniform(seed, "malformed-variant", "unit_key", "j") < 0.5).cast("int"),
    ).cast("int")

    slots = F.sequence(F.col("first_slot"), F.col("end_slot") - 1)
    return (
        invoices_df.withColumn("s", F.explode(slots))
        .withColumn("kind", kind_expr)
        .withColumn("j", j_expr)
        .withColumn("product_id", product_id)
        .join(F.broadcast(products_df), "product_id")
        .withColumn("sale_qty", sale_quantity)
        .withColumn("quantity", quantity)
        .withColumn("price", price.cast("double"))
        .select(
            "customer_id",
            "profile",
            F.col("country").alias("_country"),
            "kind",
            F.col("quantity").alias("_quantity"),
            F.col("price").alias("_price"),
            "stock_code",
            F.col("description").alias("_description"),
            F.col("is_guest").alias("is_guest_invoice"),
            is_guest_line.alias("is_guest_line"),
            is_blanked.alias("is_blanked"),
            malformed.alias("malformed"),
            (F.col("rank") + FIRST_INVOICE_NO).alias("invoice_no"),
            "file_id",
            line_order.alias("line_order"),
            F.col("invoice_t").alias("t"),
            (s == F.col("first_slot")).alias("is_first_of_invoice"),
            ((F.col("k") == 0) & (s == 0)).alias("is_first_of_customer"),
        )
    )


def _with_csv_columns(lines_df: DataFrame, config: GeneratorConfig) -> DataFrame:
    """Add the 8 CSV string columns (variant names). A null Country means the field is
    missing from the line altogether (a malformed short line)."""
    names = HEADERS[config.header_variant]
    classic = config.header_variant == "classic"
    kind, malformed, t = F.col("kind"), F.col("malformed"), F.col("t")
    day = F.floor(t / MINUTES_PER_DAY)
    minute_of_day = t - day * MINUTES_PER_DAY
    date = F.date_add(F.lit(config.end_date).cast("date"), day.cast("int"))
    hour, minute = (
        F.floor(minute_of_day / 60).cast("int"),
        F.pmod(minute_of_day, F.lit(60)).cast("int"),
    )
    if classic:
        invoice_date = F.concat(
            F.date_format(date, "M/d/yyyy"),
            F.lit(" "),
            hour.cast("string"),
            F.lit(":"),
            F.lpad(minute.cast("string"), 2, "0"),
        )
    else:
        invoice_date = F.concat(
            F.date_format(date, "yyyy-MM-dd"),
            F.lit(" "),
            F.lpad(hour.cast("string"), 2, "0"),
            F.lit(":"),
            F.lpad(minute.cast("string"), 2, "0"),
            F.lit(":00"),
        )
    invoice_date = (
        F.when(malformed == 0, "31/02/2011 25:61")
        .when(malformed == 1, "not a date")
        .otherwise(invoice_date)
    )
    quantity = (
        F.when(malformed == 2, "twelve")
        .when(malformed == 3, "1O")
        .otherwise(F.col("_quantity").cast("string"))
    )
    price = F.col("_price").cast("string")
    if classic:
        price = F.regexp_replace(price, r"\.0$", "")
    customer = F.col("customer_id").cast("string")
    if not classic:
        customer = F.concat(customer, F.lit(".0"))
    customer = F.when(F.col("is_guest_line") | F.col("is_blanked"), "").otherwise(customer)
    invoice = F.col("invoice_no").cast("string")
    invoice = F.when(kind.isin(3, 4), F.concat(F.lit("C"), invoice)).otherwise(invoice)
    country = F.when(malformed.isin(4, 5), F.lit(None).cast("string")).otherwise(F.col("_country"))
    values = (
        invoice,
        F.col("stock_code"),
        F.col("_description"),
        quantity,
        invoice_date,
        price,
        customer,
        country,
    )
    return lines_df.select(
        "*", *[value.alias(name) for value, name in zip(values, names, strict=True)]
    )


def _generate(spark: SparkSession, config: GeneratorConfig) -> tuple[DataFrame, DataFrame]:
    """Lines with CSV columns plus internal columns, and the profiles of the kept customers."""
    units = _with_units(_customers_df(spark, config), config)
    units = _filter_to_row_budget(units, config.rows)
    invoices = _numbered_invoices_df(units, config).repartition(
        _line_partitions(config.rows), "unit_key"
    )
    lines = _lines_df(invoices, _products_df(spark, config), config)
    profiles = units.filter(F.col("k") == 0).select("customer_id", "profile")
    return _with_csv_columns(lines, config), profiles


def generate_transactions(
    spark: SparkSession, config: GeneratorConfig
) -> tuple[DataFrame, DataFrame]:
    """Return (transactions_df, profiles_df), lazily; nothing is written.

    Args:
        spark: the session.
        config: what to generate.

    Returns:
        transactions_df: the 8 CSV columns as strings, named and ordered as in
            `HEADERS[config.header_variant]`; an empty Customer ID is "" and a null Country marks
            a line whose trailing field is missing.
        profiles_df: customer_id (int), profile (one of PROFILE_NAMES), one row per customer.
    """
    lines, profiles = _generate(spark, config)
    return lines.select(*[F.col(name) for name in HEADERS[config.header_variant]]), profiles


def _csv_field(value: Column) -> Column:
    """RFC 4180 quoting: fields holding a comma, quote or line break are quoted."""
    quoted = F.concat(F.lit('"'), F.regexp_replace(value, '"', '""'), F.lit('"'))
    return F.when(value.rlike('[",\r\n]'), quoted).otherwise(value)


def _file_keys(spark: SparkSession, files: int) -> list[int]:
    """For partition p of `repartition(files, key)`, the smallest key hashed to p.

    Hash partitioning is pmod(hash(key), files); picking such keys makes file i land in
    partition i, so every part file is written and the output does not depend on scheduling.
    """
    candidates = spark.range(files * 64).select(
        F.col("id").alias("key"), F.pmod(F.hash("id"), F.lit(files)).alias("partition")
    )
    rows = candidates.groupBy("partition").agg(F.min("key").alias("key")).collect()  # <= files rows
    keys = {row["partition"]: row["key"] for row in rows}
    if len(keys) < files:  # not seen in practice: 64 candidates per partition
        raise RuntimeError(f"could not find partition keys for {files} files")
    return [keys[p] for p in range(files)]


def _local_dir(path: str) -> Path | None:
    """A local folder for `path` (plain or file: paths, /Volumes), None for object stores."""
    if path.startswith("file:"):
        return Path(path[len("file:") :])
    return None if "://" in path or path.startswith("dbfs:") else Path(path)


def _remove_markers(folder: Path) -> None:
    for marker in [*folder.glob("_SUCCESS"), *folder.glob(".*.crc")]:
        marker.unlink()


def _metrics() -> list[Column]:
    """Aggregates observed while the lines are written (one pass, no extra job)."""
    kind = F.col("kind")
    names = ("sale", "duplicate", "non_product", "cancellation", "unmatched_cancellation")
    first = F.col("is_first_of_invoice")
    return [
        F.count(F.lit(1)).alias("rows"),
        F.count_if(F.col("is_first_of_customer")).alias("customers"),
        F.count_if(first).alias("invoices"),
        F.count_if(first & kind.isin(3, 4)).alias("cancellation_invoices"),
        F.count_if(first & (kind == 0) & F.col("is_guest_invoice")).alias("guest_invoices"),
        *[F.count_if(kind == i).alias(f"{name}_lines") for i, name in enumerate(names)],
        F.count_if(F.col("is_guest_line") | F.col("is_blanked")).alias("missing_customer_id_lines"),
        F.count_if(F.col("is_guest_line")).alias("guest_lines"),
        F.count_if(F.col("is_blanked")).alias("blanked_customer_id_lines"),
        F.count_if((kind != 2) & (F.col("_price") == 0)).alias("zero_price_lines"),
        F.count_if((kind != 2) & (F.abs(F.col("_quantity")) >= 1000)).alias(
            "quantity_outlier_lines"
        ),
        F.count_if((kind != 2) & (F.col("_price") >= 500)).alias("price_outlier_lines"),
        F.count_if(F.col("malformed").isin(0, 1)).alias("malformed_date_lines"),
        F.count_if(F.col("malformed").isin(2, 3)).alias("malformed_quantity_lines"),
        F.count_if(F.col("malformed").isin(4, 5)).alias("missing_field_lines"),
        F.count_if(F.col("_country") == "United Kingdom").alias("uk_lines"),
        F.min("t").alias("first_minute"),
        F.max("t").alias("last_minute"),
    ]


@contextmanager
def _one_job_per_write(spark: SparkSession) -> Iterator[None]:
    """Adaptive execution off for the generator's writes on a classic session, then restored.

    The generator's plan is a chain of a dozen small shuffles; adaptive execution submits and
    re-plans each as its own job, which took 15-20 % longer on 50,000 lines (A/B, same
    session), and its partition counts are fixed anyway. Serverless does not let the setting
    change, so Spark Connect sessions keep theirs. The files written are the same either way.
    """
    if compute_kind(spark).has_serverless_rules:
        yield
        return
    key = "spark.sql.adaptive.enabled"
    before = spark.conf.get(key, None)
    spark.conf.set(key, "false")
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)


def write_dataset(spark: SparkSession, config: GeneratorConfig, out_dir: str) -> dict:
    """Write `out_dir/transactions/*.csv` and `out_dir/_truth/customer_profiles.csv`.

    The profiles' folder starts with `_`, which Spark's file listing (and so bronze) leaves
    out: `--landing-path out_dir` ingests the transactions only.

    The transaction files have a header, UTF-8, `config.files` part files in invoice-number order
    (file i holds the i-th slice of invoices). The same config gives byte-identical files.
    Both sub-folders are replaced.

    Returns:
        A summary: config, counts of rows, customers, invoices and each kind of dirt (taken
        with Spark observations during the writes), files written and seconds taken.
    """
    with _one_job_per_write(spark):
        return _write_dataset(spark, config, out_dir)


def _write_dataset(spark: SparkSession, config: GeneratorConfig, out_dir: str) -> dict:
    started = time.perf_counter()
    lines_df, profiles_df = _generate(spark, config)
    names = HEADERS[config.header_variant]
    lines_observation = Observation("generated_lines")
    keys = _file_keys(spark, config.files) if config.files > 1 else [0]
    # Long, like the `spark.range` ids the keys were found with: the hash depends on the type.
    file_key = F.element_at(F.array(*[F.lit(k) for k in keys]), F.col("file_id") + 1).cast("long")
    transactions_dir = f"{out_dir.rstrip('/')}/transactions"
    (
        lines_df.observe(lines_observation, *_metrics())
        .withColumn("file_key", file_key)
        .repartition(config.files, "file_key")
        .sortWithinPartitions("invoice_no", "line_order")
        # One pre-formatted column, written verbatim (no separator or quote char can occur),
        # so that short malformed lines can be written; the column name is the header line.
        .select(
            F.concat_ws(",", *[_csv_field(F.col(name)) for name in names]).alias(",".join(names))
        )
        .write.mode("overwrite")
        .option("header", True)
        .option("sep", "\u0001")
        .option("quote", "")
        .option("ignoreLeadingWhiteSpace", False)
        .option("ignoreTrailingWhiteSpace", False)
        .option("encoding", "UTF-8")
        .csv(transactions_dir)
    )
    metrics = dict(lines_observation.get)
    if metrics["rows"] != config.rows:
        raise RuntimeError(f"generated {metrics['rows']} lines instead of rows={config.rows}")

    profile_observation = Observation("generated_profiles")
    truth_dir = f"{out_dir.rstrip('/')}/{TRUTH_DIR}"
    local_truth = _local_dir(truth_dir)
    target = f"{truth_dir}/customer_profiles.csv"
    if local_truth is not None:
        shutil.rmtree(local_truth, ignore_errors=True)
        target = f"{truth_dir}/_customer_profiles"
    (
        profiles_df.observe(
            profile_observation,
            F.count(F.lit(1)).alias("customers"),
            *[F.count_if(F.col("profile") == name).alias(name) for name in PROFILE_NAMES],
        )
        .repartition(1)
        .sortWithinPartitions("customer_id")
        .write.mode("overwrite")
        .option("header", True)
        .option("encoding", "UTF-8")
        .csv(target)
    )
    profile_counts = dict(profile_observation.get)
    if profile_counts["customers"] != metrics.pop("customers"):
        raise RuntimeError("customers in the profiles and in the transactions differ")
    if local_truth is not None:  # one plain file, readable without Spark
        (part,) = sorted((local_truth / "_customer_profiles").glob("part-*.csv"))
        part.replace(local_truth / "customer_profiles.csv")
        shutil.rmtree(local_truth / "_customer_profiles")

    local_transactions = _local_dir(transactions_dir)
    if local_transactions is not None:
        _remove_markers(local_transactions)
        files_written = len(list(local_transactions.glob("part-*.csv")))
    else:
        files_written = min(config.files, metrics["invoices"])
    end = dt.date.fromisoformat(config.end_date)

    def minute_to_text(minute: int) -> str:
        moment = dt.datetime.combine(end, dt.time()) + dt.timedelta(minutes=minute)
        return moment.strftime("%Y-%m-%d %H:%M")

    rows = metrics.pop("rows")
    return {
        "config": asdict(config),
        "out_dir": out_dir,
        "rows": rows,
        "customers": profile_counts.pop("customers"),
        "invoices": metrics.pop("invoices"),
        "products": _product_count(config.rows),
        "files_written": files_written,
        "first_invoice_date": minute_to_text(metrics.pop("first_minute")),
        "last_invoice_date": minute_to_text(metrics.pop("last_minute")),
        "profiles": profile_counts,
        "counts": metrics,
        "shares": {
            name: round(value / rows, 5)
            for name, value in metrics.items()
            if name.endswith("_lines")
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> None:
    """CLI: generate a data set and print its summary as JSON."""
    parser = argparse.ArgumentParser(
        prog="retail-seg-generate",
        description="Write seeded Online Retail II-shaped CSV plus the hidden customer profiles.",
    )
    defaults = GeneratorConfig()
    parser.add_argument("--rows", type=int, default=defaults.rows, help="CSV data lines (>= 1000)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed")
    parser.add_argument(
        "--end-date", default=defaults.end_date, help="last invoice date, YYYY-MM-DD"
    )
    parser.add_argument(
        "--header-variant",
        default=defaults.header_variant,
        choices=sorted(HEADERS),
        help="ii: Online Retail II column names; classic: the older UCI names and date format",
    )
    parser.add_argument(
        "--files", type=int, default=defaults.files, help="number of CSV part files"
    )
    parser.add_argument("--out", required=True, help="output folder (transactions/ and _truth/)")
    args = parser.parse_args(argv)
    config = GeneratorConfig(
        rows=args.rows,
        seed=args.seed,
        end_date=args.end_date,
        header_variant=args.header_variant,
        files=args.files,
    )
    summary = write_dataset(get_spark(), config, args.out)
    print(json.dumps(summary, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
