"""Silver task: rebuild `silver_transactions`, `silver_quarantine`, `silver_products` from bronze.

Silver is recomputed from the whole of bronze on every run: cancellations are matched to
earlier orders, zero prices take the modal price and outliers the IQR bounds of all the data,
so a line's silver value can depend on lines that arrived in other batches. Each table is
replaced in one Delta commit, and the rules are deterministic, so rerunning on the same
bronze leaves identical tables.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from retail_segmentation.common.config import (
    TableConfig,
    add_table_arguments,
    table_config_from_args,
)
from retail_segmentation.common.errors import (
    ConfigError,
    LedgerImbalanceError,
    QuarantinedBatchError,
)
from retail_segmentation.common.ledger import LedgerEntry, has_finished, record_ledger
from retail_segmentation.common.materialize import Intermediates
from retail_segmentation.common.spark import get_spark
from retail_segmentation.common.tables import (
    BRONZE_TRANSACTIONS,
    SILVER_PRODUCTS,
    SILVER_QUARANTINE,
    SILVER_TRANSACTIONS,
    DataCommit,
    Lakehouse,
)
from retail_segmentation.silver import rules
from retail_segmentation.silver.options import (
    add_cleaning_arguments,
    parse_null_tokens,
    validate_date_format,
)
from retail_segmentation.silver.products import build_products
from retail_segmentation.silver.rules import QUARANTINE_DETAIL, QUARANTINE_RULE, IqrBounds

log = logging.getLogger(__name__)

SILVER_TABLES = (SILVER_TRANSACTIONS, SILVER_QUARANTINE, SILVER_PRODUCTS)

SILVER_COLUMNS = (
    "invoice",
    "invoice_date",
    "customer_id",
    "stock_code",
    "description",
    "quantity",
    "price",
    "line_amount",
    "country",
    "line_type",
    "is_cancellation",
    "matched_invoice",
    "is_customer_imputed",
    "is_price_imputed",
    "is_quantity_clipped",
    "is_price_clipped",
    "quantity_original",
    "price_original",
    "_row_id",
    "_batch_id",
    "_source_file",
)

# Rule order, and the quarantine reasons each rule can give.
RULE_REASONS: dict[str, tuple[str, ...]] = {
    "parse_types": (
        "malformed_record",
        "missing_invoice",
        "unparseable_invoice_date",
        "invoice_date_in_future",
        "invalid_quantity",
        "zero_quantity",
        "invalid_price",
    ),
    "fill_customer_id": ("missing_customer_id",),
    "separate_non_product": (),
    "match_cancellations": ("unmatched_cancellation",),
    "impute_zero_prices": ("negative_price", "zero_price_without_reference"),
    "clip_iqr_outliers": (),
}


@dataclass(frozen=True)
class SilverConfig:
    """Parameters of the silver task.

    Args:
        date_format: a Spark datetime pattern tried first on every file's invoice_date (it
            decides between day-first and month-first), or None: each file's is detected
            among `rules.DATE_FORMATS`.
        null_tokens: texts that mean "missing" in any column (case-insensitive).
    """

    tables: TableConfig
    iqr_multiplier: float = 1.5
    non_product_codes: tuple[str, ...] = rules.DEFAULT_NON_PRODUCT_CODES
    date_format: str | None = None
    null_tokens: tuple[str, ...] = rules.DEFAULT_NULL_TOKENS

    def __post_init__(self) -> None:
        if not 0 < self.iqr_multiplier <= 100:
            raise ConfigError(
                f"parameter iqr_multiplier={self.iqr_multiplier}: expected a value in (0, 100], "
                "usually 1.5 or 3"
            )
        if self.date_format is not None:
            validate_date_format(self.date_format)
        if any(len(t) > 40 or "," in t for t in self.null_tokens):
            raise ConfigError(
                f"parameter null_tokens={list(self.null_tokens)}: expected short texts without "
                "commas, e.g. NA,NaN,NULL,-"
            )


@dataclass(frozen=True)
class SilverResult:
    """Row accounting of one silver run."""

    run_id: str
    bronze_rows: int
    duplicates_removed: int
    silver_rows: int
    quarantined_rows: int
    quarantine_by_rule: dict[str, int]
    quantity_bounds: IqrBounds
    price_bounds: IqrBounds
    repeat_lines: int = 0
    date_formats: tuple[rules.FileDateFormat, ...] = ()


@dataclass(frozen=True)
class CleanedLines:
    """The silver rules applied: every deduplicated line once, marked kept or quarantined."""

    marked_df: DataFrame
    quantity_bounds: IqrBounds
    price_bounds: IqrBounds
    input_rows: int  # bronze rows read
    deduplicated_rows: int  # rows left after removing exact duplicates
    repeat_lines: int = 0  # identical lines kept as purchases (files without invoice numbers)
    date_formats: tuple[rules.FileDateFormat, ...] = ()


def _read_twice(df: DataFrame, _name: str) -> DataFrame:
    return df


def detect_date_formats(
    trimmed_df: DataFrame, declared: str | None = None
) -> tuple[rules.FileDateFormat, ...]:
    """Each file's date format, from its values, a declared one first (one Spark action; a
    row per file returns)."""
    candidates = rules.date_candidates(declared)
    votes = rules.date_format_votes(trimmed_df, formats=candidates).collect()
    return tuple(rules.choose_date_formats(votes, candidates))


def clean_transactions(
    bronze_df: DataFrame,
    iqr_multiplier: float = 1.5,
    non_product_codes: Sequence[str] = rules.DEFAULT_NON_PRODUCT_CODES,
    date_format: str | None = None,
    null_tokens: Sequence[str] = rules.DEFAULT_NULL_TOKENS,
    keep: Callable[[DataFrame, str], DataFrame] = _read_twice,
) -> CleanedLines:
    """Apply the silver rules to bronze rows.

    Each file's dates are parsed with the format detected from its values, `date_format`
    first (see `rules.choose_date_formats`). `keep(df,
    name)` holds a frame that several actions read (`Intermediates.keep`); the default
    recomputes it. Spark actions: the bronze count (Delta answers it from its log), the date
    formats, the lines per batch and rule after typing (which computes the typed lines once),
    the count of cancellations, and the IQR bounds.

    Raises:
        AmbiguousDateError: a file's dates fit both month-first and day-first formats.
        QuarantinedBatchError: the typing rules rejected every line of a bronze batch.
    """
    input_rows = bronze_df.count()
    trimmed_df = bronze_df.transform(rules.with_trimmed_text, null_tokens=null_tokens)
    date_formats = detect_date_formats(trimmed_df, date_format)
    patterns = {f.file: f.pattern for f in date_formats}
    # Kept once: the cancellation matches, the modal prices, the IQR bounds and both writes
    # all read it.
    typed_df = keep(
        trimmed_df.transform(rules.filter_exact_duplicates)
        .transform(rules.with_typed_columns, date_formats=patterns)
        .transform(rules.with_customer_from_invoice)
        .transform(rules.with_line_type, non_product_codes=non_product_codes),
        "typed",
    )
    # Lines per batch and rule so far: counts the deduplicated lines, and refuses a batch the
    # typing rules rejected whole before anything is written.
    typed_rows = (
        typed_df.groupBy("_batch_id", "_source_file", QUARANTINE_RULE)
        .agg(F.count(F.lit(1)).alias("rows"), F.count_if("is_repeat_line").alias("repeats"))
        .collect()
    )
    typed_rules_df = typed_df.select("_row_id", QUARANTINE_RULE)
    check_batches(batch_counts(typed_rows), _raw_samples(bronze_df.join(typed_rules_df, "_row_id")))
    deduplicated_rows = sum(r["rows"] for r in typed_rows)
    repeat_lines = sum(r["repeats"] for r in typed_rows)
    # One row per cancellation, kept so the window behind it runs once; broadcast while the
    # cancellations are few enough.
    broadcast = rules.product_cancellations(typed_df).count() <= rules.BROADCAST_CANCELLATIONS
    matches_df = keep(rules.cancellation_matches(typed_df, broadcast), "matches")
    matched_df = rules.with_matched_cancellations(typed_df, matches_df, broadcast)
    before_clipping_df = matched_df.transform(
        rules.with_imputed_zero_prices, modal_price_df=rules.modal_prices(matched_df)
    )
    quantity_bounds, price_bounds = rules.iqr_bounds(before_clipping_df, iqr_multiplier)
    marked_df = before_clipping_df.transform(
        rules.with_clipped_outliers, quantity=quantity_bounds, price=price_bounds
    )
    return CleanedLines(
        marked_df,
        quantity_bounds,
        price_bounds,
        input_rows,
        deduplicated_rows,
        repeat_lines,
        date_formats,
    )


def quarantine_rows(bronze_df: DataFrame, marked_df: DataFrame, run_id: str) -> DataFrame:
    """The bronze row of every quarantined line, with the rule that rejected it."""
    rejected = marked_df.where(F.col(QUARANTINE_RULE).isNotNull()).select(
        "_row_id", QUARANTINE_RULE, QUARANTINE_DETAIL
    )
    return bronze_df.join(rejected, "_row_id").withColumn("_silver_run_id", F.lit(run_id))


def _ledger_entries(result: SilverResult, counts: dict[str, int]) -> list[LedgerEntry]:
    entries = [
        LedgerEntry(
            result.run_id,
            "silver",
            1,
            "remove_exact_duplicates",
            rows_in=result.bronze_rows,
            rows_out=result.bronze_rows - result.duplicates_removed,
            rows_removed=result.duplicates_removed,
            detail={"identical_lines_kept_as_purchases": result.repeat_lines},
        )
    ]
    rows = result.bronze_rows - result.duplicates_removed
    details = {
        "parse_types": {
            "date_formats": {f.file: f.pattern for f in result.date_formats},
        },
        "fill_customer_id": {"customer_ids_imputed": counts["customer_imputed"]},
        "separate_non_product": {"non_product_lines": counts["non_product"]},
        "match_cancellations": {"returns_matched": counts["returns"]},
        "impute_zero_prices": {"prices_imputed": counts["price_imputed"]},
        "clip_iqr_outliers": {
            "quantity": result.quantity_bounds.as_dict(),
            "price": result.price_bounds.as_dict(),
            "quantities_clipped": counts["quantity_clipped"],
            "prices_clipped": counts["price_clipped"],
            "iqr_multiplier": result.quantity_bounds.multiplier,
        },
    }
    for step, (rule, reasons) in enumerate(RULE_REASONS.items(), start=2):
        quarantined = sum(result.quarantine_by_rule.get(r, 0) for r in reasons)
        by_reason = {r: result.quarantine_by_rule.get(r, 0) for r in reasons}
        entries.append(
            LedgerEntry(
                result.run_id,
                "silver",
                step,
                rule,
                rows_in=rows,
                rows_out=rows - quarantined,
                rows_quarantined=quarantined,
                detail={**details.get(rule, {}), **({"by_reason": by_reason} if reasons else {})},
            )
        )
        rows -= quarantined
    entries.append(
        LedgerEntry(
            result.run_id,
            "silver",
            len(entries) + 1,
            "balance",
            rows_in=result.bronze_rows,
            rows_out=result.silver_rows,
            rows_quarantined=result.quarantined_rows,
            rows_removed=result.duplicates_removed,
            detail={"bronze = silver + quarantine + duplicates": True},
        )
    )
    return entries


def silver_run_id(bronze_version: int, config: SilverConfig) -> str:
    """Names the input of a silver run: the bronze data version (maintenance commits such as
    OPTIMIZE do not count) and a digest of the rule parameters."""
    params = json.dumps(
        [
            config.iqr_multiplier,
            sorted(config.non_product_codes),
            [f[0] for f in rules.date_candidates(config.date_format)],
            sorted({t.strip().lower() for t in config.null_tokens}),
        ]
    )
    return f"silver:bronze_v{bronze_version}:{hashlib.sha256(params.encode()).hexdigest()[:8]}"


def is_up_to_date(lakehouse: Lakehouse, run_id: str) -> bool:
    """True when a run with this input finished (its balance entry is the last thing written)."""
    tables_exist = all(lakehouse.exists(t) for t in SILVER_TABLES)
    return tables_exist and has_finished(lakehouse, run_id, rule="balance")


def _bronze_commit(lakehouse: Lakehouse) -> DataCommit:
    if not lakehouse.exists(BRONZE_TRANSACTIONS):
        raise ConfigError(
            f"table {lakehouse.name(BRONZE_TRANSACTIONS)} does not exist: run the bronze task first"
        )
    return lakehouse.data_commit(BRONZE_TRANSACTIONS)


# The option that usually fixes a batch whose every line one rule rejected.
_FIXES: dict[str, str] = {
    "malformed_record": "declare the separator with --delimiter (',', ';', tab, '|' or "
    "'whitespace') or the character set with --encoding",
    "missing_invoice": "name the invoice column with --column-mapping",
    "unparseable_invoice_date": "declare the date format with --date-format (a Spark datetime "
    "pattern, e.g. 'yyyyMMdd' or 'd/M/yyyy H:mm'), or name the date column with "
    "--column-mapping",
    "invoice_date_in_future": "check the file's dates; if day and month are swapped, declare "
    "the format with --date-format",
    "invalid_quantity": "name the quantity column with --column-mapping",
    "zero_quantity": "name the quantity column with --column-mapping",
    "invalid_price": "name the price or amount column with --column-mapping",
    "missing_customer_id": "name the customer column with --column-mapping, or narrow "
    "--null-tokens if real customer ids were read as missing",
    "unmatched_cancellation": "land the orders the cancellations refer to",
    "negative_price": "name the price column with --column-mapping",
    "zero_price_without_reference": "name the price or amount column with --column-mapping",
}

# The bronze column whose raw text shows why a rule rejected a line.
_RAW_COLUMN: dict[str, str] = {
    "malformed_record": "_raw_record",
    "missing_invoice": "invoice",
    "unparseable_invoice_date": "invoice_date",
    "invoice_date_in_future": "invoice_date",
    "invalid_quantity": "quantity",
    "zero_quantity": "quantity",
    "invalid_price": "price",
    "missing_customer_id": "customer_id",
    "negative_price": "price",
    "zero_price_without_reference": "price",
}


@dataclass(frozen=True)
class BatchCounts:
    """Lines of one bronze batch per quarantine rule (None: kept in silver), and its files."""

    batch_id: str
    files: tuple[str, ...]
    by_rule: dict[str | None, int]

    @property
    def is_all_quarantined(self) -> bool:
        """True when no line reached silver and some were quarantined."""
        return self.by_rule.get(None, 0) == 0 and sum(self.by_rule.values()) > 0


def batch_counts(rows: Sequence[Mapping[str, object]]) -> list[BatchCounts]:
    """Rows of (_batch_id, _source_file, _quarantine_rule, rows) -> one BatchCounts a batch."""
    files: dict[str, set[str]] = {}
    by_batch: dict[str, dict[str | None, int]] = {}
    for row in rows:
        batch = str(row["_batch_id"])
        files.setdefault(batch, set()).add(str(row["_source_file"]))
        by_rule = by_batch.setdefault(batch, {})
        rule = row[QUARANTINE_RULE]
        by_rule[rule] = by_rule.get(rule, 0) + int(row["rows"])
    return [BatchCounts(b, tuple(sorted(files[b])), r) for b, r in sorted(by_batch.items())]


def _silver_flags() -> dict[str, Column]:
    """What the ledger counts among the silver lines."""
    return {
        "customer_imputed": F.col("is_customer_imputed"),
        "non_product": F.col("line_type") == rules.LINE_NON_PRODUCT,
        "returns": F.col("line_type") == rules.LINE_RETURN,
        "price_imputed": F.col("is_price_imputed"),
        "quantity_clipped": F.col("is_quantity_clipped"),
        "price_clipped": F.col("is_price_clipped"),
    }


def written_counts(lakehouse: Lakehouse) -> tuple[list[BatchCounts], dict[str, int]]:
    """Lines per batch and rule in the written silver and quarantine tables, and the ledger's
    counts of silver lines (two aggregations reading a few columns; small results)."""
    silver_rows = (
        lakehouse.read(SILVER_TRANSACTIONS)
        .groupBy("_batch_id", "_source_file")
        .agg(
            F.count(F.lit(1)).alias("rows"),
            *[F.count_if(condition).alias(name) for name, condition in _silver_flags().items()],
        )
        .collect()
    )
    quarantine_rows_ = (
        lakehouse.read(SILVER_QUARANTINE)
        .groupBy("_batch_id", "_source_file", QUARANTINE_RULE)
        .agg(F.count(F.lit(1)).alias("rows"))
        .collect()
    )
    rows = [{**r.asDict(), QUARANTINE_RULE: None} for r in silver_rows]
    counts = {name: sum(r[name] for r in silver_rows) for name in _silver_flags()}
    return batch_counts([*rows, *[r.asDict() for r in quarantine_rows_]]), counts


def check_batches(
    batches: Sequence[BatchCounts], samples: Callable[[str, str, str], list[str]]
) -> None:
    """Refuse a run in which a bronze batch lost every line to quarantine.

    `samples(batch_id, rule, column)` returns up to two raw values of the batch's lines the rule
    rejected. Raises QuarantinedBatchError in one sentence: how many lines, the dominant rule,
    two sample values and the option that fixes it.
    """
    for batch in batches:
        if not batch.is_all_quarantined:
            continue
        total = sum(batch.by_rule.values())
        rule, rejected = max(
            ((r, n) for r, n in batch.by_rule.items() if r is not None), key=lambda x: x[1]
        )
        column = _RAW_COLUMN.get(rule)
        examples = samples(batch.batch_id, rule, column) if column else []
        shown = ", ".join(repr(v) for v in examples) or "no value"
        files = ", ".join(batch.files[:3]) + (" ..." if len(batch.files) > 3 else "")
        raise QuarantinedBatchError(
            f"silver: all {total:,} lines of bronze batch {batch.batch_id} ({files}) were "
            f"quarantined, {rejected:,} of them as {rule} ({column or 'line'} e.g. {shown}); "
            f"{_FIXES.get(rule, 'see silver_quarantine for the reasons')}"
        )


def _raw_samples(rejected_df: DataFrame):
    """`samples` for check_batches: up to two raw values of a batch's lines a rule rejected,
    from a frame holding each rejected line's bronze columns and its rule."""

    def samples(batch_id: str, rule: str, column: str) -> list[str]:
        rows = (
            rejected_df.where((F.col("_batch_id") == batch_id) & (F.col(QUARANTINE_RULE) == rule))
            .select(F.col(column).alias("value"))
            .orderBy("_row_id")
            .limit(2)
            .collect()
        )
        return [r["value"] for r in rows]

    return samples


def build_silver(spark: SparkSession, lakehouse: Lakehouse, config: SilverConfig) -> SilverResult:
    """Rebuild the silver tables from the current bronze version and record the ledger.

    Raises:
        AmbiguousDateError: a file's dates fit both month-first and day-first formats.
        QuarantinedBatchError: every line of a bronze batch was quarantined: by the typing
            rules, before anything is written; by later ones, after the writes and before
            the ledger's balance entry (so the next run redoes silver).
        LedgerImbalanceError: the written rows do not add up to bronze's.
    """
    bronze = _bronze_commit(lakehouse)
    run_id = silver_run_id(bronze.version, config)
    bronze_df = lakehouse.read(BRONZE_TRANSACTIONS, version=bronze.latest_version)
    with Intermediates(lakehouse, "silver") as intermediates:
        cleaned = clean_transactions(
            bronze_df,
            config.iqr_multiplier,
            config.non_product_codes,
            config.date_format,
            config.null_tokens,
            keep=intermediates.keep,
        )
        kept_df = cleaned.marked_df.where(rules.is_kept()).select(*SILVER_COLUMNS)
        lakehouse.overwrite(kept_df, SILVER_TRANSACTIONS)
        silver_rows = lakehouse.last_commit_rows(SILVER_TRANSACTIONS)
        lakehouse.overwrite(
            quarantine_rows(bronze_df, cleaned.marked_df, run_id), SILVER_QUARANTINE
        )
        quarantined_rows = lakehouse.last_commit_rows(SILVER_QUARANTINE)
    # A batch whose last lines later rules rejected (every one an unmatched cancellation,
    # say) fails here: written, but without a balance entry, so the next run redoes silver,
    # and no task after silver runs on it.
    batches, counts = written_counts(lakehouse)
    check_batches(batches, _raw_samples(lakehouse.read(SILVER_QUARANTINE)))
    lakehouse.overwrite(build_products(lakehouse.read(SILVER_TRANSACTIONS)), SILVER_PRODUCTS)

    by_rule: dict[str, int] = {}
    for batch in batches:
        for rule, n in batch.by_rule.items():
            if rule is not None:
                by_rule[rule] = by_rule.get(rule, 0) + n
    bronze_rows, deduplicated_rows = cleaned.input_rows, cleaned.deduplicated_rows
    result = SilverResult(
        run_id=run_id,
        bronze_rows=bronze_rows,
        duplicates_removed=bronze_rows - deduplicated_rows,
        silver_rows=silver_rows,
        quarantined_rows=quarantined_rows,
        quarantine_by_rule=by_rule,
        quantity_bounds=cleaned.quantity_bounds,
        price_bounds=cleaned.price_bounds,
        repeat_lines=cleaned.repeat_lines,
        date_formats=cleaned.date_formats,
    )
    unknown = set(by_rule) - {r for reasons in RULE_REASONS.values() for r in reasons}
    if (
        unknown
        or silver_rows + quarantined_rows != deduplicated_rows
        or quarantined_rows != sum(by_rule.values())
    ):
        raise LedgerImbalanceError(
            f"{run_id}: bronze {bronze_rows} != silver {silver_rows} + quarantine "
            f"{quarantined_rows} + duplicates {result.duplicates_removed}"
            + (f"; unknown quarantine rules {sorted(unknown)}" if unknown else "")
        )
    record_ledger(lakehouse, _ledger_entries(result, counts))
    return result


def parse_args(argv: list[str] | None = None) -> tuple[bool, SilverConfig]:
    """Job parameters -> (force, SilverConfig)."""
    parser = argparse.ArgumentParser(prog="retail-seg-silver", description=__doc__)
    parser.add_argument(
        "--iqr-multiplier",
        type=float,
        default=1.5,
        help="k in [Q1 - k*IQR, Q3 + k*IQR] (default: 1.5)",
    )
    parser.add_argument(
        "--non-product-codes",
        default=",".join(rules.DEFAULT_NON_PRODUCT_CODES),
        help="comma-separated StockCodes that are fees/postage/adjustments, not products",
    )
    add_cleaning_arguments(parser)
    parser.add_argument(
        "--force",
        action="store_true",
        help="rebuild even when silver is up to date with the current bronze version",
    )
    add_table_arguments(parser)
    args = parser.parse_args(argv)
    codes = tuple(c.strip() for c in args.non_product_codes.split(",") if c.strip())
    return args.force, SilverConfig(
        tables=table_config_from_args(args),
        iqr_multiplier=args.iqr_multiplier,
        non_product_codes=codes,
        date_format=args.date_format or None,
        null_tokens=parse_null_tokens(args.null_tokens),
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point of the silver task (python_wheel_task / console script).

    Does nothing when silver was already built from the current bronze version with the
    same parameters (`--force` rebuilds anyway; the result would be identical).
    """
    force, config = parse_args(argv)
    spark = get_spark(warehouse_dir=f"{config.tables.lakehouse_dir}/spark-warehouse")
    lakehouse = Lakehouse.attach(spark, config.tables)
    run_id = silver_run_id(_bronze_commit(lakehouse).version, config)
    if not force and is_up_to_date(lakehouse, run_id):
        print(f"silver: up to date ({run_id}), nothing to do; --force rebuilds")
        return
    result = build_silver(spark, lakehouse, config)
    print(
        f"silver: {result.bronze_rows} bronze rows -> {result.silver_rows} silver, "
        f"{result.quarantined_rows} quarantined, {result.duplicates_removed} duplicates removed"
        + (
            f", {result.repeat_lines} identical lines kept as purchases (no invoice numbers)"
            if result.repeat_lines
            else ""
        )
    )
    for detected in result.date_formats:
        print(
            f"  {detected.file}: dates as {detected.pattern or 'no known format'} "
            f"({detected.parsed:,} of {detected.values:,} values)"
        )
