"""The silver rules, each a small pure transformation `DataFrame -> DataFrame`.

Rows are never dropped by a rule, except exact duplicates: a rule that rejects a row sets
`_quarantine_rule` (and `_quarantine_detail`), and later rules leave such rows alone. The
task splits the result into `silver_transactions` and `silver_quarantine` at the end, so
bronze = silver + quarantine + removed duplicates holds by construction and is checked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from retail_segmentation.bronze.columns import CANONICAL_COLUMNS
from retail_segmentation.common.errors import AmbiguousDateError
from retail_segmentation.silver.options import DEFAULT_NULL_TOKENS

QUARANTINE_RULE = "_quarantine_rule"
QUARANTINE_DETAIL = "_quarantine_detail"

# The date formats a file's invoice_date column is detected among, in order of preference.
# Each file is parsed with one of them: the one that parses most of its values (the first
# listed on a tie), unless both a month-first and a day-first one do, then the file is
# refused until --date-format says which (see `choose_date_formats`). A declared format
# (--date-format, any Spark pattern) is tried first and wins every tie it is in, so it
# decides ambiguous files and reads files in a form not listed, while files it does not fit
# (an ISO export next to them) keep their own format.
YEAR_FIRST, MONTH_FIRST, DAY_FIRST = "year-first", "month-first", "day-first"
DECLARED = "declared"
DATE_FORMATS: tuple[tuple[str, str], ...] = (
    ("yyyy-MM-dd HH:mm:ss", YEAR_FIRST),
    ("yyyy-MM-dd HH:mm", YEAR_FIRST),
    ("yyyy-MM-dd'T'HH:mm:ss", YEAR_FIRST),
    ("yyyy-MM-dd'T'HH:mm", YEAR_FIRST),
    ("yyyy-MM-dd", YEAR_FIRST),
    ("yyyyMMdd", YEAR_FIRST),
    ("yyyy/MM/dd HH:mm:ss", YEAR_FIRST),
    ("yyyy/MM/dd HH:mm", YEAR_FIRST),
    ("yyyy/MM/dd", YEAR_FIRST),
    ("M/d/yyyy H:mm", MONTH_FIRST),  # Online Retail (classic), US exports
    ("M/d/yyyy H:mm:ss", MONTH_FIRST),
    ("M/d/yyyy", MONTH_FIRST),
    ("M/d/yy H:mm", MONTH_FIRST),
    ("M/d/yy", MONTH_FIRST),
    ("d/M/yyyy H:mm", DAY_FIRST),  # the UK form of the UCI data, most of Europe
    ("d/M/yyyy H:mm:ss", DAY_FIRST),
    ("d/M/yyyy", DAY_FIRST),
    ("d/M/yy H:mm", DAY_FIRST),
    ("d/M/yy", DAY_FIRST),
    ("d.M.yyyy H:mm", DAY_FIRST),
    ("d.M.yyyy", DAY_FIRST),
)

# Postage, fees, discounts, manual adjustments and test lines: not products.
DEFAULT_NON_PRODUCT_CODES: tuple[str, ...] = (
    "POST",
    "DOT",
    "M",
    "BANK CHARGES",
    "AMAZONFEE",
    "C2",
    "C3",
    "D",
    "CRUK",
    "PADS",
    "ADJUST",
    "ADJUST2",
    "B",
    "S",
    "SP1002",
    "TEST001",
    "TEST002",
)
NON_PRODUCT_PATTERN = r"^(GIFT_|TEST)"

LINE_SALE = "sale"
LINE_RETURN = "return"
LINE_NON_PRODUCT = "non_product"


def is_kept() -> Column:
    """True for rows no rule has quarantined so far."""
    return F.col(QUARANTINE_RULE).isNull()


def with_quarantine(
    df: DataFrame, condition: Column, rule: str, detail: Column | None = None
) -> DataFrame:
    """Quarantine kept rows where `condition` holds, naming `rule` (first rule wins)."""
    hit = is_kept() & F.coalesce(condition, F.lit(False))
    return df.withColumns(
        {
            QUARANTINE_RULE: F.when(hit, F.lit(rule)).otherwise(F.col(QUARANTINE_RULE)),
            QUARANTINE_DETAIL: F.when(
                hit, detail.cast("string") if detail is not None else F.lit(None).cast("string")
            ).otherwise(F.col(QUARANTINE_DETAIL)),
        }
    )


def cleaned_text(column: str, null_tokens: Sequence[str] = DEFAULT_NULL_TOKENS) -> Column:
    """A text column trimmed; blank and null tokens (any case) become null."""
    tokens = sorted({t.strip().lower() for t in null_tokens} | {""})
    trimmed = F.trim(F.col(column))
    return F.when(~F.lower(trimmed).isin(tokens), trimmed)


def with_trimmed_text(
    bronze_df: DataFrame, null_tokens: Sequence[str] = DEFAULT_NULL_TOKENS
) -> DataFrame:
    """Trim the canonical text columns; blanks and null tokens (any case) become null."""
    return bronze_df.withColumns({c: cleaned_text(c, null_tokens) for c in CANONICAL_COLUMNS})


def filter_exact_duplicates(df: DataFrame) -> DataFrame:
    """Keep one row (the earliest batch's, then the smallest `_row_id`) of each group of
    identical source lines, and mark
    identical lines of files without invoice numbers `is_repeat_line` instead of dropping them.

    A file that carries invoice numbers repeats a line only by mistake. In a file without them
    (bronze derived the invoice from customer and time) two identical lines are two purchases
    of the same item at the same moment, and both are kept.

    Partitioned by invoice, as the customer fill that follows is, so both share one shuffle;
    identical lines sort next to each other and a row equal to its predecessor is dropped.
    """
    key = [*CANONICAL_COLUMNS, "_raw_record"]
    # batch ids start with the ingest time: a line landing again later is the duplicate
    by_line = Window.partitionBy("invoice").orderBy(*key, "_batch_id", "_row_id")
    same_as_previous = F.lit(True)
    for column in key:
        same_as_previous = same_as_previous & F.lag(column).over(by_line).eqNullSafe(F.col(column))
    is_first = F.row_number().over(by_line) == 1
    is_derived_invoice = (
        F.coalesce(F.array_contains(F.col("_defaulted_columns"), F.lit("invoice")), F.lit(False))
        if "_defaulted_columns" in df.columns
        else F.lit(False)
    )
    is_identical = ~is_first & same_as_previous
    return (
        df.withColumns(
            {
                "_is_duplicate": is_identical & ~is_derived_invoice,
                "is_repeat_line": is_identical & is_derived_invoice,
            }
        )
        .where(~F.col("_is_duplicate"))
        .drop("_is_duplicate")
    )


def date_format_votes(
    df: DataFrame,
    column: str = "invoice_date",
    file_column: str = "_source_file",
    formats: Sequence[tuple[str, str]] = DATE_FORMATS,
) -> DataFrame:
    """Per file: its non-null date values, the lowest and highest, and how many of them each
    candidate format parses (`parsed_0`, `parsed_1`, ... in `formats` order).

    Each distinct value is parsed once per format and weighted by its count: a file holds far
    fewer distinct timestamps than lines.
    """
    values_df = df.where(F.col(column).isNotNull()).groupBy(file_column, column).count()
    return values_df.groupBy(file_column).agg(
        F.sum("count").alias("values"),
        F.min(column).alias("lowest"),
        F.max(column).alias("highest"),
        *[
            F.sum(
                F.when(
                    F.try_to_timestamp(F.col(column), F.lit(pattern)).isNotNull(), F.col("count")
                )
            ).alias(f"parsed_{i}")
            for i, (pattern, _) in enumerate(formats)
        ],
    )


@dataclass(frozen=True)
class FileDateFormat:
    """The format chosen for one file's dates, and how many of its values it parses."""

    file: str
    pattern: str | None
    values: int
    parsed: int


def date_candidates(declared: str | None = None) -> tuple[tuple[str, str], ...]:
    """The formats files are detected among: a declared one first, then DATE_FORMATS."""
    if declared is None:
        return DATE_FORMATS
    return ((declared, DECLARED), *[f for f in DATE_FORMATS if f[0] != declared])


def choose_date_formats(
    votes: Sequence[Mapping[str, object]],
    formats: Sequence[tuple[str, str]] = DATE_FORMATS,
    file_column: str = "_source_file",
) -> list[FileDateFormat]:
    """The format of each file: the one parsing most of its values, the first listed on a tie
    (a declared format, listed first, wins every tie it is in).

    A file no format fits gets none (its lines are quarantined as unparseable).

    Raises:
        AmbiguousDateError: a month-first and a day-first format parse the same, largest number
            of a file's values (every day is 12 or less) and no declared format does: the
            message names the file, two of its values and --date-format.
    """
    chosen = []
    for vote in sorted(votes, key=lambda v: str(v[file_column])):
        parsed = [int(vote[f"parsed_{i}"] or 0) for i in range(len(formats))]
        best = max(parsed, default=0)
        if best == 0:
            chosen.append(FileDateFormat(str(vote[file_column]), None, int(vote["values"]), 0))
            continue
        winners = [formats[i] for i, n in enumerate(parsed) if n == best]
        orders = {order for _, order in winners}
        if DECLARED not in orders and {MONTH_FIRST, DAY_FIRST} <= orders:
            month_first = next(p for p, o in winners if o == MONTH_FIRST)
            day_first = next(p for p, o in winners if o == DAY_FIRST)
            raise AmbiguousDateError(
                f"{vote[file_column]}: its dates fit both month-first and day-first (e.g. "
                f"{vote['lowest']!r} and {vote['highest']!r}: no day above 12); declare the "
                f"format with --date-format, e.g. --date-format '{day_first}' or "
                f"--date-format '{month_first}'"
            )
        chosen.append(
            FileDateFormat(str(vote[file_column]), winners[0][0], int(vote["values"]), best)
        )
    return chosen


def parse_invoice_date(
    date_formats: str | Mapping[str, str | None],
    column: str = "invoice_date",
    file_column: str = "_source_file",
) -> Column:
    """`column` parsed with one pattern for every file, or with each file's own pattern
    ({file: pattern}; a file without one parses nothing). Null where the text does not fit."""
    if isinstance(date_formats, str):
        return F.try_to_timestamp(F.col(column), F.lit(date_formats))
    files_by_pattern: dict[str, list[str]] = {}
    for file, pattern in sorted(date_formats.items()):
        if pattern is not None:
            files_by_pattern.setdefault(pattern, []).append(file)
    parsed = F.lit(None).cast("timestamp")
    for pattern, files in files_by_pattern.items():
        parsed = F.when(
            F.col(file_column).isin(files), F.try_to_timestamp(F.col(column), F.lit(pattern))
        ).otherwise(parsed)
    return parsed


def with_typed_columns(df: DataFrame, date_formats: str | Mapping[str, str | None]) -> DataFrame:
    """Type quantity, price, invoice_date and customer_id; quarantine lines that cannot be typed.

    Dates are parsed with `parse_invoice_date(date_formats)`. Customer ids are text: trimmed,
    a float rendering `13085.0` becomes `13085`, leading zeros stay. Adds `quantity_original`,
    `price_original` (typed, before any later fix) and the quarantine columns. A missing price
    is taken from `amount / quantity` when the file only had an amount.
    """
    quantity_d = F.col("quantity").try_cast("double")
    money = r"[£$€\s]"
    price_d = F.regexp_replace(F.col("price"), money, "").try_cast("double")
    amount_d = F.regexp_replace(F.col("amount"), money, "").try_cast("double")
    typed = df.select(
        "*",
        F.when((quantity_d == F.floor(quantity_d)) & (F.abs(quantity_d) < 2**31), quantity_d)
        .cast("int")
        .alias("_quantity"),
        F.coalesce(price_d, amount_d / F.nullif(quantity_d, F.lit(0.0))).alias("_price"),
        parse_invoice_date(date_formats).alias("_invoice_ts"),
        F.regexp_replace(F.col("customer_id"), r"^(\d+)\.0+$", "$1").alias("_customer"),
        F.lit(None).cast("string").alias(QUARANTINE_RULE),
        F.lit(None).cast("string").alias(QUARANTINE_DETAIL),
    )
    if "is_repeat_line" not in typed.columns:  # not deduplicated by filter_exact_duplicates
        typed = typed.withColumn("is_repeat_line", F.lit(False))
    checks: list[tuple[Column, str, Column | None]] = [
        (F.col("_raw_record").isNotNull(), "malformed_record", F.col("_raw_record")),
        (F.col("invoice").isNull(), "missing_invoice", None),
        (F.col("_invoice_ts").isNull(), "unparseable_invoice_date", F.col("invoice_date")),
        (
            F.col("_invoice_ts") > F.col("_ingested_at") + F.expr("INTERVAL 1 DAY"),
            "invoice_date_in_future",
            F.col("invoice_date"),
        ),
        (F.col("_quantity").isNull(), "invalid_quantity", F.col("quantity")),
        (F.col("_quantity") == 0, "zero_quantity", F.col("quantity")),
        (F.col("_price").isNull(), "invalid_price", F.coalesce(F.col("price"), F.col("amount"))),
    ]
    for condition, rule, detail in checks:
        typed = with_quarantine(typed, condition, rule, detail)
    return typed.select(
        "_row_id",
        "invoice",
        F.col("_invoice_ts").alias("invoice_date"),
        F.col("_customer").alias("customer_id"),
        F.upper(F.col("stock_code")).alias("stock_code"),
        "description",
        F.col("_quantity").alias("quantity"),
        F.col("_price").alias("price"),
        "country",
        F.col("_quantity").alias("quantity_original"),
        F.col("_price").alias("price_original"),
        "is_repeat_line",
        "_batch_id",
        "_source_file",
        QUARANTINE_RULE,
        QUARANTINE_DETAIL,
    )


def with_customer_from_invoice(df: DataFrame) -> DataFrame:
    """Fill a missing customer_id from the other lines of the same invoice.

    Only when those lines agree on one customer; otherwise the line is quarantined
    (`missing_customer_id`), since a sale nobody made cannot be segmented.
    """
    known = F.when(is_kept(), F.col("customer_id"))
    by_invoice = Window.partitionBy("invoice")
    lowest, highest = F.min(known).over(by_invoice), F.max(known).over(by_invoice)
    filled = F.when(lowest == highest, lowest)
    is_imputed = is_kept() & F.col("customer_id").isNull() & filled.isNotNull()
    out = df.withColumns(
        {
            "is_customer_imputed": is_imputed,
            "customer_id": F.coalesce(F.col("customer_id"), filled),
        }
    )
    return with_quarantine(out, F.col("customer_id").isNull(), "missing_customer_id")


def with_line_type(
    df: DataFrame,
    non_product_codes: Sequence[str] = DEFAULT_NON_PRODUCT_CODES,
    non_product_pattern: str = NON_PRODUCT_PATTERN,
) -> DataFrame:
    """Add `is_cancellation` and `line_type`: non_product for postage, fees, adjustments..."""
    code = F.upper(F.col("stock_code"))
    is_non_product = code.isin([c.upper() for c in non_product_codes]) | code.rlike(
        non_product_pattern
    )
    is_cancellation = F.col("invoice").startswith("C") | (F.col("quantity") < 0)
    return df.withColumns(
        {
            "is_cancellation": F.coalesce(is_cancellation, F.lit(False)),
            "line_type": F.when(is_non_product, F.lit(LINE_NON_PRODUCT))
            .when(is_cancellation, F.lit(LINE_RETURN))
            .otherwise(F.lit(LINE_SALE)),
        }
    )


def _is_sale() -> Column:
    return is_kept() & (F.col("line_type") == LINE_SALE)


def _is_return() -> Column:
    return is_kept() & (F.col("line_type") == LINE_RETURN)


# Up to this many product cancellations, their keys and their matches are broadcast to every
# task (tens of MB at most); above it, both joins shuffle instead, so no input is too big.
BROADCAST_CANCELLATIONS = 1_000_000


def product_cancellations(df: DataFrame) -> DataFrame:
    """The kept product cancellation lines (those `cancellation_matches` matches)."""
    return df.where(_is_return())


def _maybe_broadcast(df: DataFrame, broadcast: bool) -> DataFrame:
    return F.broadcast(df) if broadcast else df


def cancellation_matches(df: DataFrame, broadcast: bool = True) -> DataFrame:
    """_row_id, matched_invoice of every product cancellation: the latest earlier sale of the
    same customer, stock code and quantity (null when there is none).

    A window over (customer, stock code, |quantity|) ordered by time, not a self-join, so a
    customer buying one item many times cannot fan out. Only the lines sharing a key with some
    cancellation enter the window: with `broadcast`, the keys of the cancellations (at most one
    per cancellation line, a small share) go to every task and the other lines never leave
    their partition, so the shuffle holds a few per cent of the rows instead of all of them.
    """
    lines = df.select(
        "_row_id",
        "invoice",
        "invoice_date",
        "line_type",
        QUARANTINE_RULE,
        "customer_id",
        "stock_code",
        F.abs("quantity").alias("_abs_quantity"),
    )
    key = ("customer_id", "stock_code", "_abs_quantity")
    return_keys = product_cancellations(lines).select(*key).distinct().alias("_returns")
    sharing_key = lines.alias("_lines").join(
        _maybe_broadcast(return_keys, broadcast),
        [F.col(f"_lines.{c}").eqNullSafe(F.col(f"_returns.{c}")) for c in key],
        "left_semi",
    )
    earlier = (
        Window.partitionBy(*key)
        .orderBy(F.col("invoice_date").cast("long"))
        .rangeBetween(Window.unboundedPreceding, -1)
    )
    latest_earlier_sale = F.max_by(
        F.when(_is_sale(), F.col("invoice")),
        F.when(_is_sale(), F.struct("invoice_date", "invoice")),
    ).over(earlier)
    return (
        sharing_key.withColumn("matched_invoice", latest_earlier_sale)
        .where(_is_return())
        .select("_row_id", "matched_invoice")
    )


def with_matched_cancellations(
    df: DataFrame, matches_df: DataFrame | None = None, broadcast: bool = True
) -> DataFrame:
    """Add `matched_invoice` to product cancellations (from `cancellation_matches`, computed
    here unless given) and quarantine the unmatched ones.

    `matches_df` has one row per cancellation line, a small share of the lines: with
    `broadcast` it is joined without moving the other lines.
    """
    if matches_df is None:
        matches_df = cancellation_matches(df, broadcast)
    out = df.join(_maybe_broadcast(matches_df, broadcast), "_row_id", "left")
    return with_quarantine(
        out, _is_return() & F.col("matched_invoice").isNull(), "unmatched_cancellation"
    )


def modal_prices(df: DataFrame) -> DataFrame:
    """stock_code, modal_price: the most common positive sale price (lowest on a tie)."""
    counts = (
        df.where(is_kept() & (F.col("line_type") == LINE_SALE) & (F.col("price") > 0))
        .groupBy("stock_code", "price")
        .count()
    )
    rank = Window.partitionBy("stock_code").orderBy(F.desc("count"), F.asc("price"))
    return (
        counts.withColumn("_rank", F.row_number().over(rank))
        .where(F.col("_rank") == 1)
        .select("stock_code", F.col("price").alias("modal_price"))
    )


def with_imputed_zero_prices(df: DataFrame, modal_price_df: DataFrame) -> DataFrame:
    """Replace zero prices of product lines by the stock code's modal price.

    Negative prices, and zero prices of codes never sold at a positive price, are quarantined.
    """
    is_product = F.col("line_type") != LINE_NON_PRODUCT
    out = df.join(F.broadcast(modal_price_df), "stock_code", "left")
    is_zero = is_kept() & is_product & (F.col("price") == 0)
    out = out.withColumns(
        {
            "is_price_imputed": is_zero & F.col("modal_price").isNotNull(),
            "price": F.when(is_zero, F.coalesce(F.col("modal_price"), F.col("price"))).otherwise(
                F.col("price")
            ),
        }
    ).drop("modal_price")
    for condition, rule in (
        (is_product & (F.col("price") < 0), "negative_price"),
        (is_product & (F.col("price") == 0), "zero_price_without_reference"),
    ):
        out = with_quarantine(out, condition, rule, F.col("price_original"))
    return out


@dataclass(frozen=True)
class IqrBounds:
    """Clipping bounds of one column: [lower, upper] from Q1/Q3 and the multiplier."""

    column: str
    q1: float
    q3: float
    multiplier: float
    floor: float

    @property
    def lower(self) -> float:
        """Q1 - multiplier * IQR, never below the column's floor."""
        return max(self.q1 - self.multiplier * (self.q3 - self.q1), self.floor)

    @property
    def upper(self) -> float:
        """Q3 + multiplier * IQR."""
        return self.q3 + self.multiplier * (self.q3 - self.q1)

    def as_dict(self) -> dict[str, float]:
        """For the ledger."""
        return {"q1": self.q1, "q3": self.q3, "lower": self.lower, "upper": self.upper}


def iqr_bounds(
    df: DataFrame, multiplier: float = 1.5, accuracy: int = 100_000
) -> tuple[IqrBounds, IqrBounds]:
    """Quantity and price bounds from the kept sale lines (one Spark action)."""
    row = (
        df.where(is_kept() & (F.col("line_type") == LINE_SALE))
        .agg(
            F.percentile_approx("quantity", [0.25, 0.75], accuracy).alias("q"),
            F.percentile_approx("price", [0.25, 0.75], accuracy).alias("p"),
        )
        .first()
    )
    q, p = row["q"] or [1, 1], row["p"] or [0.0, 0.0]
    return (
        IqrBounds("quantity", float(q[0]), float(q[1]), multiplier, floor=1.0),
        IqrBounds("price", float(p[0]), float(p[1]), multiplier, floor=0.0),
    )


def _clip(column: str, bounds: IqrBounds, integral: bool = False) -> Column:
    """Clip the magnitude (returns are negative) into the bounds, keeping the sign."""
    lower, upper = bounds.lower, bounds.upper
    if integral:  # a whole quantity inside the bounds
        lower, upper = math.ceil(lower), max(math.floor(upper), math.ceil(lower))
    magnitude = F.abs(F.col(column))
    clipped = F.least(F.greatest(magnitude, F.lit(lower)), F.lit(upper))
    return F.signum(F.col(column)) * clipped


def with_clipped_outliers(df: DataFrame, quantity: IqrBounds, price: IqrBounds) -> DataFrame:
    """Clip |quantity| and price of kept product lines into their IQR bounds; add line_amount."""
    is_product = is_kept() & (F.col("line_type") != LINE_NON_PRODUCT)
    clipped_qty = F.when(is_product, _clip("quantity", quantity, integral=True).cast("int"))
    clipped_price = F.when(is_product, F.round(_clip("price", price), 4))
    return (
        df.withColumns(
            {
                "is_quantity_clipped": F.coalesce(clipped_qty != F.col("quantity"), F.lit(False)),
                "is_price_clipped": F.coalesce(clipped_price != F.col("price"), F.lit(False)),
            }
        )
        .withColumns(
            {
                "quantity": F.coalesce(clipped_qty, F.col("quantity")),
                "price": F.coalesce(clipped_price, F.col("price")),
            }
        )
        .withColumn("line_amount", F.round(F.col("quantity") * F.col("price"), 4))
    )
