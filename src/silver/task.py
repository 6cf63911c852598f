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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from retail_segmentation.common.config import (
    TableConfig,
    add_table_arguments,
    table_config_from_args,
)
from retail_segmentation.common.errors import ConfigError, LedgerImbalanceError
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
    """Parameters of the silver task."""

    tables: TableConfig
    iqr_multiplier: float = 1.5
    non_product_codes: tuple[str, ...] = rules.DEFAULT_NON_PRODUCT_CODES
    timestamp_formats: tuple[str, ...] = rules.DEFAULT_TIMESTAMP_FORMATS

    def __post_init__(self) -> None:
        if not 0 < self.iqr_multiplier <= 100:
            raise ConfigError(
                f"parameter iqr_multiplier={self.iqr_multiplier}: expected a value in (0, 100], "
                "usually 1.5 or 3"
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


@dataclass(frozen=True)
class CleanedLines:
    """The silver rules applied: every deduplicated line once, marked kept or quarantined."""

    marked_df: DataFrame
    quantity_bounds: IqrBounds
    price_bounds: IqrBounds
    input_rows: int  # bronze rows read
    deduplicated_rows: int  # rows left after removing exact duplicates


def _read_twice(df: DataFrame, _name: str) -> DataFrame:
    return df


def clean_transactions(
    bronze_df: DataFrame,
    iqr_multiplier: float = 1.5,
    non_product_codes: Sequence[str] = rules.DEFAULT_NON_PRODUCT_CODES,
    timestamp_formats: Sequence[str] = rules.DEFAULT_TIMESTAMP_FORMATS,
    keep: Callable[[DataFrame, str], DataFrame] = _read_twice,
) -> CleanedLines:
    """Apply the silver rules to bronze rows.

    `keep(df, name)` holds a frame that several actions read (`Intermediates.keep`); the
    default recomputes it. Spark actions: the bronze count (Delta answers it from its log), the
    count of deduplicated lines (which computes the typed lines once), the count of
    cancellations, and the IQR bounds.
    """
    input_rows = bronze_df.count()
    # Kept once: the cancellation matches, the modal prices, the IQR bounds and both writes
    # all read it.
    typed_df = keep(
        bronze_df.transform(rules.with_trimmed_text)
        .transform(rules.filter_exact_duplicates)
        .transform(rules.with_typed_columns, timestamp_formats=timestamp_formats)
        .transform(rules.with_customer_from_invoice)
        .transform(rules.with_line_type, non_product_codes=non_product_codes),
        "typed",
    )
    deduplicated_rows = typed_df.count()
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
    return CleanedLines(marked_df, quantity_bounds, price_bounds, input_rows, deduplicated_rows)


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
        )
    ]
    rows = result.bronze_rows - result.duplicates_removed
    details = {
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
        [config.iqr_multiplier, sorted(config.non_product_codes), list(config.timestamp_formats)]
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


def build_silver(spark: SparkSession, lakehouse: Lakehouse, config: SilverConfig) -> SilverResult:
    """Rebuild the silver tables from the current bronze version and record the ledger."""
    bronze = _bronze_commit(lakehouse)
    run_id = silver_run_id(bronze.version, config)
    bronze_df = lakehouse.read(BRONZE_TRANSACTIONS, version=bronze.latest_version)
    with Intermediates(lakehouse, "silver") as intermediates:
        cleaned = clean_transactions(
            bronze_df,
            config.iqr_multiplier,
            config.non_product_codes,
            config.timestamp_formats,
            keep=intermediates.keep,
        )
        kept_df = cleaned.marked_df.where(rules.is_kept()).select(*SILVER_COLUMNS)
        lakehouse.overwrite(kept_df, SILVER_TRANSACTIONS)
        lakehouse.overwrite(
            quarantine_rows(bronze_df, cleaned.marked_df, run_id), SILVER_QUARANTINE
        )
    silver_df = lakehouse.read(SILVER_TRANSACTIONS)
    lakehouse.overwrite(build_products(silver_df), SILVER_PRODUCTS)

    counts = (
        silver_df.agg(
            F.count(F.lit(1)).alias("silver"),
            F.count_if(F.col("is_customer_imputed")).alias("customer_imputed"),
            F.count_if(F.col("line_type") == rules.LINE_NON_PRODUCT).alias("non_product"),
            F.count_if(F.col("line_type") == rules.LINE_RETURN).alias("returns"),
            F.count_if(F.col("is_price_imputed")).alias("price_imputed"),
            F.count_if(F.col("is_quantity_clipped")).alias("quantity_clipped"),
            F.count_if(F.col("is_price_clipped")).alias("price_clipped"),
        )
        .first()
        .asDict()
    )
    by_rule = {
        r[QUARANTINE_RULE]: r["count"]
        for r in lakehouse.read(SILVER_QUARANTINE).groupBy(QUARANTINE_RULE).count().collect()
    }
    bronze_rows, deduplicated_rows = cleaned.input_rows, cleaned.deduplicated_rows
    result = SilverResult(
        run_id=run_id,
        bronze_rows=bronze_rows,
        duplicates_removed=bronze_rows - deduplicated_rows,
        silver_rows=counts["silver"],
        quarantined_rows=sum(by_rule.values()),
        quarantine_by_rule=by_rule,
        quantity_bounds=cleaned.quantity_bounds,
        price_bounds=cleaned.price_bounds,
    )
    unknown = set(by_rule) - {r for reasons in RULE_REASONS.values() for r in reasons}
    if unknown or result.silver_rows + result.quarantined_rows != deduplicated_rows:
        raise LedgerImbalanceError(
            f"{run_id}: bronze {bronze_rows} != silver {result.silver_rows} + quarantine "
            f"{result.quarantined_rows} + duplicates {result.duplicates_removed}"
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
    )
