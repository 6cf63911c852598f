"""Which lines a run over new bronze batches must clean, and how they replace silver's rows.

A silver line's outcome depends on three things beyond the line itself:

- the other lines of its invoice: exact duplicates are removed within an invoice (the copy of
  the earliest batch stays) and a missing customer is filled from the invoice's other lines;
- the lines sharing its cancellation key (customer, stock code, |quantity|): a cancellation
  is matched to the latest earlier sale with that key;
- the fitted rule parameters (modal prices, IQR bounds): fixed per version.

So with the parameters fixed, new lines can change an earlier line only through a shared
invoice or a shared cancellation key. A run over new batches therefore cleans:

1. every bronze line of the invoices the new lines carry (history and new, from bronze, so
   deduplication and the customer fill see the whole invoice);
2. for the cancellation keys those lines carry now or carried before, every line with such a
   key, its typed state read back from silver and quarantine (`typed_history`), so matching
   sees the whole key group;

and keeps the new lines plus the earlier lines whose outcome changed (`changed_history`).
Cleaning all of bronze at once with the same parameters gives the same rows (the test of
tests/integration/test_incremental_silver.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from retail_segmentation.silver import rules
from retail_segmentation.silver.rules import QUARANTINE_DETAIL, QUARANTINE_RULE

# The columns of a typed line (after the per-invoice rules, before cancellation matching).
TYPED_COLUMNS = (
    "_row_id",
    "invoice",
    "invoice_date",
    "customer_id",
    "stock_code",
    "description",
    "quantity",
    "price",
    "country",
    "quantity_original",
    "price_original",
    "is_repeat_line",
    "_batch_id",
    "_source_file",
    QUARANTINE_RULE,
    QUARANTINE_DETAIL,
    "is_customer_imputed",
    "is_cancellation",
    "line_type",
)
# What a quarantined line keeps of its typed state (`_typed` in silver_quarantine).
TYPED_STATE_FIELDS = (
    "invoice",
    "invoice_date",
    "customer_id",
    "stock_code",
    "description",
    "quantity_original",
    "price_original",
    "country",
    "is_customer_imputed",
    "is_cancellation",
    "line_type",
    "matched_invoice",
)
TYPED_STATE = "_typed"
# Quarantine reasons given after cancellation matching: such a line was kept when matching ran.
LATER_REASONS = ("unmatched_cancellation", "negative_price", "zero_price_without_reference")
KEY = ("customer_id", "stock_code", "_abs_quantity")
# What decides whether an earlier line's outcome changed.
OUTCOME = (QUARANTINE_RULE, "customer_id", "is_customer_imputed", "matched_invoice")


def typed_state() -> Column:
    """`_typed`: the typed values of a quarantined line, from its marked row."""
    return F.struct(*[F.col(c) for c in TYPED_STATE_FIELDS]).alias(TYPED_STATE)


def _and(conditions: Sequence[Column]) -> Column:
    out = conditions[0]
    for condition in conditions[1:]:
        out = out & condition
    return out


def history_state(silver_df: DataFrame, quarantine_df: DataFrame, new_batches: Sequence[str]):
    """Every earlier line's typed state and outcome, read back from silver and quarantine.

    Columns: TYPED_COLUMNS, `matched_invoice`, `_abs_quantity` and `_kept_at_matching`. Lines
    of `new_batches` are left out (a killed run may have written some). A line a killed MERGE
    left in both tables appears twice; `_history_lines` keeps one copy and marks it.
    """
    # silver keeps the typed quantity and price as *_original; the rules run again from there
    unset = {
        "quantity": F.col("quantity_original"),
        "price": F.col("price_original"),
        "is_repeat_line": F.lit(False),
        QUARANTINE_RULE: F.lit(None).cast("string"),
        QUARANTINE_DETAIL: F.lit(None).cast("string"),
    }
    from_silver = silver_df.select(
        *[unset.get(c, F.col(c)).alias(c) for c in TYPED_COLUMNS], "matched_invoice"
    )
    typed = F.col(TYPED_STATE)

    def from_typed(column: str) -> Column:
        if column in ("quantity", "price"):
            return typed[f"{column}_original"]
        if column in TYPED_STATE_FIELDS:
            return typed[column]
        return unset["is_repeat_line"] if column == "is_repeat_line" else F.col(column)

    from_quarantine = quarantine_df.select(
        *[from_typed(c).alias(c) for c in (*TYPED_COLUMNS, "matched_invoice")]
    )
    both = from_silver.unionByName(from_quarantine)
    if new_batches:
        both = both.where(~F.col("_batch_id").isin(list(new_batches)))
    return both.select(
        "*",
        F.abs("quantity").alias("_abs_quantity"),
        (F.col(QUARANTINE_RULE).isNull() | F.col(QUARANTINE_RULE).isin(list(LATER_REASONS))).alias(
            "_kept_at_matching"
        ),
    )


def invoices_of(trimmed_df: DataFrame) -> DataFrame:
    """The distinct invoices (null included) of trimmed bronze lines."""
    return trimmed_df.select("invoice").distinct()


def _invoice_join(df: DataFrame, invoices_df: DataFrame, how: str) -> DataFrame:
    return df.alias("l").join(
        F.broadcast(invoices_df.alias("r")),
        F.col("l.invoice").eqNullSafe(F.col("r.invoice")),
        how,
    )


def lines_of_invoices(
    bronze_df: DataFrame, invoices_df: DataFrame, null_tokens: Sequence[str]
) -> DataFrame:
    """Bronze lines whose (trimmed) invoice is one of `invoices_df`'s, null matching null,
    trimmed. Only the invoice is trimmed before the join, so the other columns of all of
    bronze are never computed."""
    keyed = bronze_df.withColumn("_invoice_key", rules.cleaned_text("invoice", null_tokens))
    matching = keyed.join(
        F.broadcast(invoices_df.withColumnRenamed("invoice", "_key")),
        F.col("_invoice_key").eqNullSafe(F.col("_key")),
        "left_semi",
    ).drop("_invoice_key")
    return rules.with_trimmed_text(matching, null_tokens)


def _keys(df: DataFrame, kept: Column) -> DataFrame:
    product = F.col("line_type").isin(rules.LINE_SALE, rules.LINE_RETURN)
    return df.where(kept & product).select(
        "customer_id", "stock_code", F.abs("quantity_original").alias("_abs_quantity")
    )


def _once(df: DataFrame) -> DataFrame:
    """One row per `_row_id`, `_in_both` where a killed MERGE left it in both tables."""
    by_row = Window.partitionBy("_row_id")
    first = Window.partitionBy("_row_id").orderBy(F.col(QUARANTINE_RULE).asc_nulls_first())
    return (
        df.withColumns(
            {"_in_both": F.count(F.lit(1)).over(by_row) > 1, "_n": F.row_number().over(first)}
        )
        .where(F.col("_n") == 1)
        .drop("_n")
    )


def matching_group(
    typed_df: DataFrame,
    history_df: DataFrame,
    invoices_df: DataFrame,
    keep: Callable[[DataFrame, str], DataFrame],
) -> tuple[DataFrame, DataFrame]:
    """The lines cancellation matching must see, and the earlier lines involved.

    `typed_df` holds the typed lines of the affected invoices (new and earlier); `history_df`
    is `history_state`; `invoices_df` the affected invoices. The keys are those the typed lines
    carry now (kept product lines) and those the earlier lines of these invoices carried
    before; the group is the typed lines plus every earlier line outside the invoices that has
    such a key and was kept when matching ran (its later quarantine rule cleared: the rules run
    again on it). Returns (group with TYPED_COLUMNS, the earlier lines of the invoices and of
    the keys with their outcome, one row each).

    The history is scanned twice, once per subset, and each subset is kept: the keys need the
    first, and both results read both. (Kept only as the two results, the history was scanned
    again for each: silver on 50 new lines after 1,067,371 took 25.9-27.2 s against 21.5-22.7
    s, warm, alternated.)
    """
    in_invoices = keep(_once(_invoice_join(history_df, invoices_df, "left_semi")), "in_invoices")
    keys_df = (
        _keys(typed_df, rules.is_kept())
        .unionByName(_keys(in_invoices, F.col("_kept_at_matching")))
        .distinct()
    )
    with_key = _once(
        _invoice_join(
            history_df.where(F.col("_kept_at_matching"))
            .alias("h")
            .join(
                F.broadcast(keys_df.alias("k")),
                _and([F.col(f"h.{c}").eqNullSafe(F.col(f"k.{c}")) for c in KEY]),
                "left_semi",
            ),
            invoices_df,
            "left_anti",
        )
    )
    with_key = keep(with_key, "with_key")
    group_df = typed_df.select(*TYPED_COLUMNS).unionByName(
        with_key.withColumns(
            {
                QUARANTINE_RULE: F.lit(None).cast("string"),
                QUARANTINE_DETAIL: F.lit(None).cast("string"),
            }
        ).select(*TYPED_COLUMNS)
    )
    return group_df, in_invoices.unionByName(with_key)


def changed_lines(
    marked_df: DataFrame, history_lines_df: DataFrame, new_batches: Sequence[str]
) -> DataFrame:
    """The marked lines to write: every line of `new_batches`, and the earlier lines whose
    outcome (OUTCOME: quarantine rule, customer, its imputation, the matched invoice) differs
    from what silver or quarantine holds, or that a killed MERGE left in both tables."""
    is_new = F.col("_batch_id").isin(list(new_batches))
    before = history_lines_df.select(
        "_row_id", "_in_both", *[F.col(c).alias(f"_before_{c}") for c in OUTCOME]
    )
    joined = marked_df.join(before, "_row_id", "left")
    differs = ~_and([F.col(c).eqNullSafe(F.col(f"_before_{c}")) for c in OUTCOME])
    keep = is_new | differs | F.coalesce(F.col("_in_both"), F.lit(False))
    return joined.where(keep).drop("_in_both", *[f"_before_{c}" for c in OUTCOME])
