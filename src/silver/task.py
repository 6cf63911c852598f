"""Silver task: clean new bronze batches into `silver_transactions`, `silver_quarantine` and
`silver_products`.

A run cleans the bronze batches no earlier run cleaned with the current rule parameters
(`silver_rule_parameters`: IQR bounds and modal prices, versioned), and of the earlier lines
only those a new line changes: a line of the same invoice (duplicates, the customer fill) or a
cancellation whose match a new line changes (see `silver.increment`). Both tables are changed
in one Delta commit each: the new batches' rows replaced when no earlier line changed, a MERGE
by `_row_id` when some did.

The parameters are refitted on the whole of bronze, and every line cleaned again with them (one
overwrite per table), when there are none yet, on `--refit`, when the rule options change, when
the new lines reach `--refit-after-days` days past the data the parameters were fitted on, or
when the share of new lines outside the IQR bounds exceeds the fitted share by more than
`--refit-drift`. `--full-refresh` cleans everything again with the current parameters. The
rules are deterministic, so rerunning on the same bronze leaves identical tables, and cleaning
batch by batch gives the same rows as cleaning them all at once with the same parameters.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from pyspark.sql import Column, DataFrame, Row, SparkSession
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
    PIPELINE_LEDGER,
    ROWS_PER_FILE,
    SILVER_PRODUCTS,
    SILVER_QUARANTINE,
    SILVER_RULE_PARAMETERS,
    SILVER_TRANSACTIONS,
    DataCommit,
    Lakehouse,
    run_at_once,
    sql_string,
)
from retail_segmentation.silver import increment, rules
from retail_segmentation.silver.options import (
    add_cleaning_arguments,
    add_refit_arguments,
    parse_flag,
    parse_null_tokens,
    validate_date_format,
)
from retail_segmentation.silver.parameters import (
    RuleParameters,
    current_parameters,
    modal_prices,
    save_parameters,
)
from retail_segmentation.silver.products import build_products
from retail_segmentation.silver.rules import QUARANTINE_DETAIL, QUARANTINE_RULE, IqrBounds

log = logging.getLogger(__name__)

SILVER_TABLES = (SILVER_TRANSACTIONS, SILVER_QUARANTINE, SILVER_PRODUCTS, SILVER_RULE_PARAMETERS)
# what an increment reads of the lines already cleaned
HISTORY_TABLES = (SILVER_TRANSACTIONS, SILVER_QUARANTINE)
RULE_VERSION = "_rule_version"

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
    RULE_VERSION,
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


# A drift judgement needs this many new product lines; fewer are cleaned with the current
# parameters whatever their share outside the bounds.
DRIFT_MIN_LINES = 500


@dataclass(frozen=True)
class SilverConfig:
    """Parameters of the silver task.

    Args:
        date_format: a Spark datetime pattern tried first on every file's invoice_date (it
            decides between day-first and month-first), or None: each file's is detected
            among `rules.DATE_FORMATS`.
        null_tokens: texts that mean "missing" in any column (case-insensitive).
        full_refresh: clean every bronze line again, with the current parameters.
        refit: fit the parameters again on all of bronze and clean every line with them.
        refit_after_days: refit when new lines are dated this many days or more after the
            newest line the parameters were fitted on (0: never on age).
        refit_drift: refit when the share of new product lines the IQR bounds clip exceeds
            the share when they were fitted by more than this (judged on DRIFT_MIN_LINES new
            product lines or more; 1 never refits on drift).
    """

    tables: TableConfig
    iqr_multiplier: float = 1.5
    non_product_codes: tuple[str, ...] = rules.DEFAULT_NON_PRODUCT_CODES
    date_format: str | None = None
    null_tokens: tuple[str, ...] = rules.DEFAULT_NULL_TOKENS
    full_refresh: bool = False
    refit: bool = False
    refit_after_days: int = 30
    refit_drift: float = 0.05

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
        if not 0 <= self.refit_after_days <= 3650:
            raise ConfigError(
                f"parameter refit_after_days={self.refit_after_days}: expected whole days in "
                "[0, 3650], 0 for never"
            )
        if not 0 < self.refit_drift <= 1:
            raise ConfigError(
                f"parameter refit_drift={self.refit_drift}: expected a share in (0, 1], e.g. "
                "0.05 (five points more new lines outside the bounds than at the fit)"
            )


@dataclass(frozen=True)
class SilverResult:
    """Row accounting of the silver tables after a run (totals over every batch), and what the
    run did.

    `mode` is "refit" (parameters fitted, every line cleaned), "full_refresh" (every line
    cleaned with the current parameters), "incremental" (new batches) or "up_to_date".
    """

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
    rule_version: int = 0
    mode: str = "refit"
    refit_reason: str | None = None
    new_batches: tuple[str, ...] = ()
    earlier_lines_changed: int = 0
    drift: float | None = None


@dataclass(frozen=True)
class FittedRules:
    """The parameter values the last rules apply: IQR bounds and modal prices."""

    quantity: IqrBounds
    price: IqrBounds
    modal_price_df: DataFrame


@dataclass(frozen=True)
class CleanedLines:
    """The silver rules applied: the lines to write, marked kept or quarantined."""

    marked_df: DataFrame
    fitted: FittedRules
    deduplicated: dict[str, int]  # batch -> its lines left after removing exact duplicates
    repeat_lines: dict[str, int]  # batch -> identical lines kept as purchases
    files: dict[str, tuple[str, ...]]  # batch -> its files
    date_formats: tuple[rules.FileDateFormat, ...] = ()

    def date_formats_of(self, batch: str) -> dict[str, str | None]:
        """file -> the date format detected for it, for the files of one batch."""
        files = set(self.files.get(batch, ()))
        return {f.file: f.pattern for f in self.date_formats if f.file in files}


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


def _typed_lines(
    trimmed_df: DataFrame, patterns: Mapping[str, str | None], non_product_codes: Sequence[str]
) -> DataFrame:
    """The rules that look at one invoice at a time: duplicates, types, the customer fill,
    the line type."""
    return (
        trimmed_df.transform(rules.filter_exact_duplicates)
        .transform(rules.with_typed_columns, date_formats=patterns)
        .transform(rules.with_customer_from_invoice)
        .transform(rules.with_line_type, non_product_codes=non_product_codes)
    )


def _typed_counts(
    typed_df: DataFrame, bronze_df: DataFrame, batches: Sequence[str] | None = None
) -> tuple[dict[str, int], dict[str, int], dict[str, tuple[str, ...]]]:
    """Lines per batch after removing duplicates, identical lines kept as purchases, and
    files, of `batches` (all when None); refuses a batch the typing rules rejected whole
    before anything is written (one Spark action)."""
    typed_rows = [
        r
        for r in typed_df.groupBy("_batch_id", "_source_file", QUARANTINE_RULE)
        .agg(F.count(F.lit(1)).alias("rows"), F.count_if("is_repeat_line").alias("repeats"))
        .collect()
        if batches is None or r["_batch_id"] in batches
    ]
    typed_rules_df = typed_df.select("_row_id", QUARANTINE_RULE)
    check_batches(batch_counts(typed_rows), _raw_samples(bronze_df.join(typed_rules_df, "_row_id")))
    deduplicated: dict[str, int] = {}
    repeats: dict[str, int] = {}
    files: dict[str, set[str]] = {}
    for r in typed_rows:
        deduplicated[r["_batch_id"]] = deduplicated.get(r["_batch_id"], 0) + r["rows"]
        repeats[r["_batch_id"]] = repeats.get(r["_batch_id"], 0) + r["repeats"]
        files.setdefault(r["_batch_id"], set()).add(r["_source_file"])
    return deduplicated, repeats, {b: tuple(sorted(f)) for b, f in files.items()}


def _matched(typed_df: DataFrame, keep: Callable[[DataFrame, str], DataFrame]) -> DataFrame:
    """Cancellations matched (one row per cancellation kept, so the window behind it runs
    once; broadcast while the cancellations are few enough)."""
    broadcast = rules.product_cancellations(typed_df).count() <= rules.BROADCAST_CANCELLATIONS
    matches_df = keep(rules.cancellation_matches(typed_df, broadcast), "matches")
    return rules.with_matched_cancellations(typed_df, matches_df, broadcast)


def _priced_and_clipped(
    matched_df: DataFrame,
    iqr_multiplier: float,
    fitted: FittedRules | None,
    keep: Callable[[DataFrame, str], DataFrame],
) -> tuple[DataFrame, FittedRules]:
    """Zero prices imputed and outliers clipped, with `fitted` or with values fitted here on
    `matched_df` (the modal prices, then the IQR bounds: one Spark action)."""
    if fitted is None:
        modal_price_df = keep(rules.modal_prices(matched_df), "modal_prices")
        before_df = matched_df.transform(rules.with_imputed_zero_prices, modal_price_df)
        quantity, price = rules.iqr_bounds(before_df, iqr_multiplier)
        fitted = FittedRules(quantity, price, modal_price_df)
    before_df = matched_df.transform(rules.with_imputed_zero_prices, fitted.modal_price_df)
    marked_df = before_df.transform(
        rules.with_clipped_outliers, quantity=fitted.quantity, price=fitted.price
    )
    return marked_df, fitted


def clean_transactions(
    bronze_df: DataFrame,
    iqr_multiplier: float = 1.5,
    non_product_codes: Sequence[str] = rules.DEFAULT_NON_PRODUCT_CODES,
    date_format: str | None = None,
    null_tokens: Sequence[str] = rules.DEFAULT_NULL_TOKENS,
    keep: Callable[[DataFrame, str], DataFrame] = _read_twice,
    fitted: FittedRules | None = None,
) -> CleanedLines:
    """Apply the silver rules to all of `bronze_df`, with `fitted` parameters or fitting them.

    Each file's dates are parsed with the format detected from its values, `date_format`
    first (see `rules.choose_date_formats`). `keep(df, name)` holds a frame that several
    actions read (`Intermediates.keep`); the default recomputes it. Spark actions: the date
    formats, the lines per batch and rule after typing (which computes the typed lines once),
    the count of cancellations, and when fitting the IQR bounds.

    Raises:
        AmbiguousDateError: a file's dates fit both month-first and day-first formats.
        QuarantinedBatchError: the typing rules rejected every line of a bronze batch.
    """
    trimmed_df = bronze_df.transform(rules.with_trimmed_text, null_tokens=null_tokens)
    date_formats = detect_date_formats(trimmed_df, date_format)
    patterns = {f.file: f.pattern for f in date_formats}
    typed_df = keep(_typed_lines(trimmed_df, patterns, non_product_codes), "typed")
    deduplicated, repeats, files = _typed_counts(typed_df, bronze_df)
    marked_df, fitted = _priced_and_clipped(_matched(typed_df, keep), iqr_multiplier, fitted, keep)
    return CleanedLines(marked_df, fitted, deduplicated, repeats, files, date_formats)


def clean_increment(
    bronze_df: DataFrame,
    new_batches: Sequence[str],
    history_df: DataFrame,
    earlier_formats: Mapping[str, str | None],
    fitted: FittedRules,
    config: SilverConfig,
    keep: Callable[[DataFrame, str], DataFrame] = _read_twice,
) -> CleanedLines:
    """Apply the silver rules to the lines of `new_batches` and to the earlier lines they can
    change (see `silver.increment`), with the current parameters.

    `history_df` is `increment.history_state` of the silver tables; `earlier_formats` the
    date format of every file cleaned before. The marked lines returned are the new ones and
    the earlier ones whose outcome changed.
    """
    new_df = bronze_df.where(F.col("_batch_id").isin(list(new_batches))).transform(
        rules.with_trimmed_text, null_tokens=config.null_tokens
    )
    date_formats = detect_date_formats(new_df, config.date_format)
    patterns = {**earlier_formats, **{f.file: f.pattern for f in date_formats}}
    invoices_df = keep(increment.invoices_of(new_df), "invoices")
    typed_df = keep(
        _typed_lines(
            increment.lines_of_invoices(bronze_df, invoices_df, config.null_tokens),
            patterns,
            config.non_product_codes,
        ),
        "typed",
    )
    deduplicated, repeats, files = _typed_counts(typed_df, bronze_df, new_batches)
    group_df, earlier_df = increment.matching_group(typed_df, history_df, invoices_df, keep)
    marked_df, _ = _priced_and_clipped(
        _matched(group_df, keep), config.iqr_multiplier, fitted, keep
    )
    changed_df = increment.changed_lines(marked_df, earlier_df, new_batches)
    return CleanedLines(
        keep(changed_df, "changed"), fitted, deduplicated, repeats, files, date_formats
    )


def quarantine_rows(bronze_df: DataFrame, marked_df: DataFrame, rule_version: int) -> DataFrame:
    """The bronze row of every quarantined line, with the rule that rejected it, its typed
    values (`_typed`, what later runs match against) and the rule version."""
    rejected = marked_df.where(F.col(QUARANTINE_RULE).isNotNull()).select(
        "_row_id", QUARANTINE_RULE, QUARANTINE_DETAIL, increment.typed_state()
    )
    return bronze_df.join(rejected, "_row_id").withColumn(
        RULE_VERSION, F.lit(rule_version).cast("int")
    )


def silver_rows(marked_df: DataFrame, rule_version: int) -> DataFrame:
    """The kept lines in silver's columns."""
    return (
        marked_df.where(rules.is_kept())
        .withColumn(RULE_VERSION, F.lit(rule_version).cast("int"))
        .select(*SILVER_COLUMNS)
    )


def _ledger_entries(
    result: SilverResult,
    counts: Mapping[str, int],
    date_formats: Mapping[str, str | None],
    balance_detail: Mapping[str, object],
) -> list[LedgerEntry]:
    """The entries of one batch (or of the totals): rows in and out per rule, then the balance."""
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
        "parse_types": {"date_formats": dict(sorted(date_formats.items()))},
        "fill_customer_id": {"customer_ids_imputed": counts.get("customer_imputed", 0)},
        "separate_non_product": {"non_product_lines": counts.get("non_product", 0)},
        "match_cancellations": {"returns_matched": counts.get("returns", 0)},
        "impute_zero_prices": {"prices_imputed": counts.get("price_imputed", 0)},
        "clip_iqr_outliers": {
            "quantity": result.quantity_bounds.as_dict(),
            "price": result.price_bounds.as_dict(),
            "quantities_clipped": counts.get("quantity_clipped", 0),
            "prices_clipped": counts.get("price_clipped", 0),
            "iqr_multiplier": result.quantity_bounds.multiplier,
            "rule_version": result.rule_version,
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
            detail={"bronze = silver + quarantine + duplicates": True, **balance_detail},
        )
    )
    return entries


def options_digest(config: SilverConfig) -> str:
    """A digest of the rule options: lines cleaned under other options need a refit."""
    params = json.dumps(
        [
            config.iqr_multiplier,
            sorted(config.non_product_codes),
            [f[0] for f in rules.date_candidates(config.date_format)],
            sorted({t.strip().lower() for t in config.null_tokens}),
        ]
    )
    return hashlib.sha256(params.encode()).hexdigest()[:8]


def silver_run_id(bronze_version: int, config: SilverConfig) -> str:
    """Names the input of a silver run: the bronze data version (maintenance commits such as
    OPTIMIZE do not count) and a digest of the rule options. Its ledger entries hold the
    totals over every batch; each batch has its own (`batch_run_id`)."""
    return f"silver:bronze_v{bronze_version}:{options_digest(config)}"


BATCH_RUN_PREFIX = "silver:batch:"


def batch_run_id(batch_id: str) -> str:
    """The run id under which the ledger accounts for one bronze batch's lines in silver."""
    return f"{BATCH_RUN_PREFIX}{batch_id}"


@dataclass(frozen=True)
class BatchRecord:
    """What the ledger says of one cleaned bronze batch."""

    rule_version: int
    deduplicated: int  # silver + quarantine rows
    repeat_lines: int
    date_formats: dict[str, str | None]


def batch_records(lakehouse: Lakehouse) -> dict[str, BatchRecord]:
    """Every batch the ledger records as cleaned (a balance entry), from its entries (one small
    read)."""
    if not lakehouse.exists(PIPELINE_LEDGER):
        return {}
    rows = (
        lakehouse.read(PIPELINE_LEDGER)
        .where(
            (F.col("layer") == "silver")
            & F.col("run_id").startswith(BATCH_RUN_PREFIX)
            & F.col("rule").isin("remove_exact_duplicates", "parse_types", "balance")
        )
        .select("run_id", "rule", "rows_out", "rows_quarantined", "detail")
        .collect()
    )
    by_batch: dict[str, dict[str, object]] = {}
    for row in rows:
        by_batch.setdefault(row["run_id"][len(BATCH_RUN_PREFIX) :], {})[row["rule"]] = row
    records = {}
    for batch, entries in by_batch.items():
        if "balance" not in entries:
            continue
        balance = entries["balance"]
        dedup = entries.get("remove_exact_duplicates")
        parse = entries.get("parse_types")
        records[batch] = BatchRecord(
            rule_version=int(json.loads(balance["detail"]).get("rule_version", 0)),
            deduplicated=int(balance["rows_out"]) + int(balance["rows_quarantined"]),
            repeat_lines=int(
                json.loads(dedup["detail"]).get("identical_lines_kept_as_purchases", 0)
            )
            if dedup
            else 0,
            date_formats=json.loads(parse["detail"]).get("date_formats", {}) if parse else {},
        )
    return records


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


def written_counts(
    lakehouse: Lakehouse,
) -> tuple[list[BatchCounts], dict[str, dict[str, int]]]:
    """Lines per batch and rule in the written silver and quarantine tables, and per batch the
    ledger's counts of silver lines (one aggregation over both tables reading a few columns;
    a small result)."""
    flags = _silver_flags()
    kept = lakehouse.read(SILVER_TRANSACTIONS).select(
        "_batch_id",
        "_source_file",
        F.lit(None).cast("string").alias(QUARANTINE_RULE),
        *[condition.alias(name) for name, condition in flags.items()],
    )
    quarantined = lakehouse.read(SILVER_QUARANTINE).select(
        "_batch_id", "_source_file", QUARANTINE_RULE, *[F.lit(False).alias(name) for name in flags]
    )
    rows = [
        r.asDict()
        for r in kept.unionByName(quarantined)
        .groupBy("_batch_id", "_source_file", QUARANTINE_RULE)
        .agg(F.count(F.lit(1)).alias("rows"), *[F.count_if(name).alias(name) for name in flags])
        .collect()
    ]
    counts: dict[str, dict[str, int]] = {}
    for r in rows:
        if r[QUARANTINE_RULE] is None:
            batch = counts.setdefault(r["_batch_id"], dict.fromkeys(flags, 0))
            for name in flags:
                batch[name] += r[name]
    return batch_counts(rows), counts


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


@dataclass(frozen=True)
class _Plan:
    """What a run cleans: every batch ("refit", "full_refresh") or the new ones
    ("incremental"), or nothing ("up_to_date"); `fit`: fit the parameters first."""

    mode: str
    reason: str | None = None
    new_batches: tuple[str, ...] = ()
    fit: bool = False


def _refit_reason(
    config: SilverConfig, parameters: RuleParameters | None, digest: str, bronze_version: int
) -> str | None:
    """Why the parameters must be fitted before anything is cleaned, or None."""
    if parameters is None:
        return "no parameters yet"
    if parameters.options_digest != digest:
        return (
            "the rule options changed (iqr_multiplier, non_product_codes, date_format or "
            "null_tokens)"
        )
    if config.refit and parameters.bronze_version != bronze_version:
        return "requested (--refit)"
    return None


def _plan(
    config: SilverConfig,
    parameters: RuleParameters | None,
    bronze_version: int,
    records: Mapping[str, BatchRecord],
    batches: Sequence[str],
    tables_exist: bool,
) -> _Plan:
    reason = _refit_reason(config, parameters, options_digest(config), bronze_version)
    if reason is not None:
        return _Plan("refit", reason, fit=True)
    assert parameters is not None
    done = {b for b, r in records.items() if r.rule_version == parameters.version}
    new = tuple(b for b in batches if b not in done)
    if not done and parameters.bronze_version == bronze_version:
        # fitted on this bronze, nothing cleaned with it yet: a refit killed after it saved
        # the parameters; finished now, as it would have been
        return _Plan("refit", parameters.reason)
    if config.full_refresh:
        return _Plan("full_refresh", "requested (--full-refresh)")
    if not tables_exist or len(new) == len(batches):
        return _Plan("full_refresh", f"no batch cleaned with rule version {parameters.version} yet")
    return _Plan("incremental" if new else "up_to_date", None, new)


def _product_lines(marked_df: DataFrame, by: Sequence[str] = ()) -> list[Row]:
    """Per `by` group: lines, and the kept product lines' count, how many of them the IQR
    bounds clipped (a value outside) and their newest day (one Spark action)."""
    product = rules.is_kept() & (F.col("line_type") != rules.LINE_NON_PRODUCT)
    return (
        marked_df.groupBy(*by)
        .agg(
            F.count(F.lit(1)).alias("all_lines"),
            F.count_if(product).alias("lines"),
            F.count_if(product & (F.col("is_quantity_clipped") | F.col("is_price_clipped"))).alias(
                "clipped"
            ),
            F.max(F.when(product, F.col("invoice_date"))).alias("newest"),
        )
        .collect()
    )


def _sum_lines(rows: Sequence[Row]) -> dict[str, object]:
    """The product-line figures of several `_product_lines` groups together."""
    newest = [r["newest"] for r in rows if r["newest"] is not None]
    return {
        "lines": sum(r["lines"] for r in rows),
        "clipped": sum(r["clipped"] for r in rows),
        "newest": max(newest) if newest else None,
    }


def _share(row: Mapping[str, object]) -> float:
    return row["clipped"] / row["lines"] if row["lines"] else 0.0


def _policy_reason(
    config: SilverConfig, parameters: RuleParameters, new_lines: Mapping[str, object]
) -> tuple[str | None, float | None]:
    """Why the new lines call for a refit (age, drift), or None; and the drift measured."""
    newest = new_lines["newest"]
    if config.refit_after_days and newest is not None and parameters.fitted_through:
        days = (newest.date() - parameters.fitted_through).days
        if days >= config.refit_after_days:
            return (
                f"new lines reach {newest.date()}, {days} days after the data the parameters "
                f"were fitted on (refit_after_days={config.refit_after_days})"
            ), None
    if new_lines["lines"] < DRIFT_MIN_LINES:
        return None, None
    drift = _share(new_lines) - parameters.clipped_share
    if drift > config.refit_drift:
        return (
            f"{_share(new_lines):.1%} of {new_lines['lines']:,} new product lines lie outside the "
            f"IQR bounds against {parameters.clipped_share:.1%} when fitted "
            f"(refit_drift={config.refit_drift})"
        ), drift
    return None, drift


def _write_increment(
    lakehouse: Lakehouse,
    bronze_df: DataFrame,
    marked_df: DataFrame,
    new_batches: Sequence[str],
    touched: Sequence[str],
    rule_version: int,
    keep: Callable[[DataFrame, str], DataFrame],
    rows: int,
) -> None:
    """The new batches' rows, and the earlier rows that changed, into both tables (`rows`:
    how many marked lines there are).

    When no earlier row changed: a replaceWhere on the new batches in each table (one commit
    each). Otherwise MERGEs by `_row_id`, ordered so that a run killed between them leaves a
    line in both tables, never in neither (the next run rewrites it, see
    `increment.changed_lines`): silver's kept rows upserted; quarantine's rows upserted and
    the kept ones deleted; then, if an earlier silver row moved to quarantine, its deletion.

    `marked_df` must come from reads of silver's history at a pinned version: the MERGE
    sources kept here (`keep`, `Intermediates.keep`) are read after silver's MERGE, and a
    frame kept from a table's latest version is computed again once the table has a newer
    one (quarantine's MERGE after a day of 1,067,371 lines: 17.1 s against 1.3 s).
    """
    bronze_rows_df = bronze_df.where(F.col("_batch_id").isin(list(touched)))
    kept_df = silver_rows(marked_df, rule_version)
    quarantined_df = quarantine_rows(bronze_rows_df, marked_df, rule_version)
    if set(touched) <= set(new_batches):
        condition = "_batch_id IN (" + ", ".join(sql_string(b) for b in new_batches) + ")"
        # a day's lines in one file per ROWS_PER_FILE, not one per shuffle partition
        files = max(1, math.ceil(rows / ROWS_PER_FILE))
        # two at a time: both read the kept lines, neither the other's table
        lakehouse.replace_where_all(
            {
                SILVER_TRANSACTIONS: kept_df.coalesce(files),
                SILVER_QUARANTINE: quarantined_df.coalesce(files),
            },
            condition,
        )
        return
    kept = rules.is_kept()
    source_df = quarantined_df.withColumn("_delete", F.lit(False)).unionByName(
        marked_df.where(kept).select("_row_id", F.lit(True).alias("_delete")),
        allowMissingColumns=True,
    )
    moved_df = marked_df.where(~kept & ~F.col("_batch_id").isin(list(new_batches))).select(
        "_row_id"
    )
    moved = not moved_df.isEmpty()
    source_df = keep(source_df, "quarantine_merge")
    moved_df = keep(moved_df, "moved") if moved else moved_df
    lakehouse.merge_rows(kept_df, SILVER_TRANSACTIONS, "_row_id")
    lakehouse.merge_rows(source_df, SILVER_QUARANTINE, "_row_id", "_delete")
    if moved:
        lakehouse.delete_rows(moved_df, SILVER_TRANSACTIONS, "_row_id")


def build_silver(spark: SparkSession, lakehouse: Lakehouse, config: SilverConfig) -> SilverResult:
    """Clean what bronze holds that silver has not cleaned, fitting the rule parameters when
    the policy says so, and record the ledger per batch and in total.

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
    parameters = current_parameters(lakehouse)
    records = batch_records(lakehouse)
    bronze_rows = {
        r["_batch_id"]: r["count"] for r in bronze_df.groupBy("_batch_id").count().collect()
    }
    batches = sorted(bronze_rows)
    tables_exist = all(lakehouse.exists(t) for t in (SILVER_TRANSACTIONS, SILVER_QUARANTINE))
    plan = _plan(config, parameters, bronze.version, records, batches, tables_exist)
    drift = None
    earlier_changed = 0
    touched: set[str] = set()
    with Intermediates(lakehouse, "silver") as intermediates:
        keep = intermediates.keep
        cleaned: CleanedLines | None = None
        if plan.mode == "incremental":
            assert parameters is not None
            fitted = FittedRules(
                parameters.quantity, parameters.price, modal_prices(lakehouse, parameters.version)
            )
            # pinned: a frame kept from a table's latest version is computed again once the
            # table has a newer one (this run's MERGEs), a pinned one is served from its cache
            history_df = increment.history_state(
                *(lakehouse.read(t, version=lakehouse.version(t)) for t in HISTORY_TABLES),
                plan.new_batches,
            )
            earlier_formats = {
                file: pattern for r in records.values() for file, pattern in r.date_formats.items()
            }
            cleaned = clean_increment(
                bronze_df, plan.new_batches, history_df, earlier_formats, fitted, config, keep
            )
            by_batch = _product_lines(cleaned.marked_df, ["_batch_id"])
            new_lines = _sum_lines([r for r in by_batch if r["_batch_id"] in plan.new_batches])
            policy, drift = _policy_reason(config, parameters, new_lines)
            if policy is not None:
                plan = _Plan("refit", policy, plan.new_batches, fit=True)
            else:
                lines = {r["_batch_id"]: r["all_lines"] for r in by_batch}
                touched = set(lines)
                earlier_changed = sum(n for b, n in lines.items() if b not in plan.new_batches)
                # gold reads what this run changes from the change data feed
                lakehouse.ensure_change_feed(SILVER_TRANSACTIONS)
                _write_increment(
                    lakehouse,
                    bronze_df,
                    cleaned.marked_df,
                    plan.new_batches,
                    sorted(touched),
                    parameters.version,
                    keep,
                    sum(lines.values()),
                )
        if plan.mode in ("refit", "full_refresh"):
            fitted = None
            if not plan.fit:
                assert parameters is not None
                fitted = FittedRules(
                    parameters.quantity,
                    parameters.price,
                    modal_prices(lakehouse, parameters.version),
                )
            cleaned = clean_transactions(
                bronze_df,
                config.iqr_multiplier,
                config.non_product_codes,
                config.date_format,
                config.null_tokens,
                keep=keep,
                fitted=fitted,
            )
            if plan.fit:
                (fit_lines,) = _product_lines(cleaned.marked_df)
                parameters = RuleParameters(
                    version=(parameters.version + 1) if parameters else 1,
                    quantity=cleaned.fitted.quantity,
                    price=cleaned.fitted.price,
                    clipped_share=_share(fit_lines),
                    fitted_lines=int(fit_lines["lines"]),
                    fitted_through=fit_lines["newest"].date() if fit_lines["newest"] else None,
                    bronze_version=bronze.version,
                    options_digest=options_digest(config),
                    reason=str(plan.reason),
                )
                # first, so a run killed after it cleans everything with it next time
                save_parameters(lakehouse, parameters, cleaned.fitted.modal_price_df)
            assert parameters is not None
            # two at a time: both read the kept lines, neither the other's table
            lakehouse.overwrite_all(
                {
                    SILVER_TRANSACTIONS: silver_rows(cleaned.marked_df, parameters.version),
                    SILVER_QUARANTINE: quarantine_rows(
                        bronze_df, cleaned.marked_df, parameters.version
                    ),
                }
            )
    assert parameters is not None
    cleaned_batches = batches if plan.mode in ("refit", "full_refresh") else list(plan.new_batches)
    # The products are rebuilt whole (on 300,000 lines a MERGE of the written stock codes took
    # 5.5 s against 2.3 s for the rebuild), in a thread beside the written counts: both read
    # the new silver version, and neither the other's result.
    calls: list[Callable[[], object]] = [partial(written_counts, lakehouse)]
    if plan.mode != "up_to_date":
        products_df = build_products(lakehouse.read(SILVER_TRANSACTIONS))
        calls.append(partial(lakehouse.overwrite, products_df, SILVER_PRODUCTS))
    all_counts, flags = run_at_once(calls)[0]
    # A batch whose last lines later rules rejected (every one an unmatched cancellation,
    # say) fails here: written, but without a balance entry, so the next run cleans it again,
    # and no task after silver runs on it.
    check_batches(all_counts, _raw_samples(lakehouse.read(SILVER_QUARANTINE)))

    new_records = {
        b: BatchRecord(
            parameters.version,
            cleaned.deduplicated.get(b, 0),
            cleaned.repeat_lines.get(b, 0),
            cleaned.date_formats_of(b),
        )
        for b in cleaned_batches
        if cleaned is not None
    }
    records = {b: r for b, r in {**records, **new_records}.items() if b in set(batches)}
    result = _account(
        lakehouse,
        run_id,
        parameters,
        plan,
        records,
        bronze_rows,
        all_counts,
        flags,
        ledger_batches=set(new_records) | touched,
        date_formats=cleaned.date_formats if cleaned else (),
        drift=drift,
        earlier_changed=earlier_changed,
    )
    # a day's batch adds a file or a few to each (and a MERGE rewrites some)
    if plan.mode != "up_to_date":
        for table in (SILVER_TRANSACTIONS, SILVER_QUARANTINE):
            lakehouse.compact_if_fragmented(table)
    return result


def _account(
    lakehouse: Lakehouse,
    run_id: str,
    parameters: RuleParameters,
    plan: _Plan,
    records: Mapping[str, BatchRecord],
    bronze_rows: Mapping[str, int],
    counts: Sequence[BatchCounts],
    flags: Mapping[str, Mapping[str, int]],
    ledger_batches: set[str],
    date_formats: tuple[rules.FileDateFormat, ...],
    drift: float | None,
    earlier_changed: int,
) -> SilverResult:
    """Check every batch's balance and record the ledger: each batch in `ledger_batches`, then
    the totals, in one commit (the totals' balance entry marks the run finished)."""
    by_batch = {c.batch_id: c for c in counts}
    bounds = {"quantity_bounds": parameters.quantity, "price_bounds": parameters.price}
    results: dict[str, SilverResult] = {}
    for batch, bronze_n in sorted(bronze_rows.items()):
        written = by_batch.get(batch, BatchCounts(batch, (), {}))
        silver_n = written.by_rule.get(None, 0)
        quarantine_by_rule = {r: n for r, n in written.by_rule.items() if r is not None}
        quarantined_n = sum(quarantine_by_rule.values())
        record = records.get(batch)
        expected = record.deduplicated if record else None
        unknown = set(quarantine_by_rule) - {r for rs in RULE_REASONS.values() for r in rs}
        if unknown or expected is None or silver_n + quarantined_n != expected:
            raise LedgerImbalanceError(
                f"{batch_run_id(batch)}: bronze {bronze_n} != silver {silver_n} + quarantine "
                f"{quarantined_n} + duplicates {bronze_n - (expected or 0)}"
                + (f"; unknown quarantine rules {sorted(unknown)}" if unknown else "")
                + ("; the batch was never cleaned" if expected is None else "")
            )
        results[batch] = SilverResult(
            run_id=batch_run_id(batch),
            bronze_rows=bronze_n,
            duplicates_removed=bronze_n - expected,
            silver_rows=silver_n,
            quarantined_rows=quarantined_n,
            quarantine_by_rule=quarantine_by_rule,
            repeat_lines=record.repeat_lines if record else 0,
            rule_version=parameters.version,
            **bounds,
        )
    by_rule: dict[str, int] = {}
    for result in results.values():
        for rule, n in result.quarantine_by_rule.items():
            by_rule[rule] = by_rule.get(rule, 0) + n
    total_flags = {name: sum(f.get(name, 0) for f in flags.values()) for name in _silver_flags()}
    total = SilverResult(
        run_id=run_id,
        bronze_rows=sum(r.bronze_rows for r in results.values()),
        duplicates_removed=sum(r.duplicates_removed for r in results.values()),
        silver_rows=sum(r.silver_rows for r in results.values()),
        quarantined_rows=sum(r.quarantined_rows for r in results.values()),
        quarantine_by_rule=dict(sorted(by_rule.items())),
        repeat_lines=sum(r.repeat_lines for r in results.values()),
        date_formats=date_formats,
        rule_version=parameters.version,
        mode=plan.mode,
        refit_reason=plan.reason if plan.mode == "refit" else None,
        new_batches=plan.new_batches if plan.mode == "incremental" else (),
        earlier_lines_changed=earlier_changed,
        drift=drift,
        **bounds,
    )
    entries: list[LedgerEntry] = []
    for batch in sorted(ledger_batches):
        entries += _ledger_entries(
            results[batch],
            flags.get(batch, {}),
            records[batch].date_formats,
            {"rule_version": parameters.version},
        )
    all_formats = {f: p for r in records.values() for f, p in r.date_formats.items()}
    entries += _ledger_entries(
        total,
        total_flags,
        all_formats,
        {
            "rule_version": parameters.version,
            "mode": plan.mode,
            "reason": plan.reason,
            "batches": len(results),
            "new_batches": list(total.new_batches),
            "drift": drift,
        },
    )
    if plan.mode != "up_to_date":  # a run with nothing new leaves the ledger as it was
        record_ledger(lakehouse, entries)
    return total


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
    add_refit_arguments(parser)
    parser.add_argument(
        "--force",
        action="store_true",
        help="run even when silver is up to date with the current bronze version",
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
        full_refresh=parse_flag(args.full_refresh, "full_refresh"),
        refit=parse_flag(args.refit, "refit"),
        refit_after_days=args.refit_after_days,
        refit_drift=args.refit_drift,
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point of the silver task (python_wheel_task / console script).

    Does nothing when silver was already built from the current bronze version with the
    same options (`--force`, `--refit` and `--full-refresh` run anyway).
    """
    force, config = parse_args(argv)
    spark = get_spark(warehouse_dir=f"{config.tables.lakehouse_dir}/spark-warehouse")
    lakehouse = Lakehouse.attach(spark, config.tables)
    run_id = silver_run_id(_bronze_commit(lakehouse).version, config)
    requested = force or config.refit or config.full_refresh
    if not requested and is_up_to_date(lakehouse, run_id):
        print(f"silver: up to date ({run_id}), nothing to do; --force rebuilds")
        return
    result = build_silver(spark, lakehouse, config)
    print(
        f"silver ({describe_mode(result)}): {result.bronze_rows} bronze rows -> "
        f"{result.silver_rows} silver, {result.quarantined_rows} quarantined, "
        f"{result.duplicates_removed} duplicates removed"
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


def describe_mode(result: SilverResult) -> str:
    """One phrase: what the run cleaned and with which rule version."""
    version = f"rule version {result.rule_version}"
    if result.mode == "refit":
        return f"parameters refitted as {version}: {result.refit_reason}; every line cleaned"
    if result.mode == "full_refresh":
        return f"every line cleaned with {version}"
    if result.mode == "incremental":
        return (
            f"{len(result.new_batches)} new batch(es) cleaned with {version}, "
            f"{result.earlier_lines_changed} earlier line(s) changed"
        )
    return f"no new batch, {version}"
