"""`pipeline_ledger`: rows in and out per rule per run, so every raw row is accounted for.

Entries are keyed by (run_id, rule) and merged, not appended: a run id names its input
(for silver, the bronze Delta version), so rerunning a task on the same input rewrites the
same entries and leaves the ledger as it was.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from retail_segmentation.common.tables import PIPELINE_LEDGER, Lakehouse

LEDGER_SCHEMA = (
    "run_id string, layer string, step int, rule string, rows_in long, rows_out long, "
    "rows_quarantined long, rows_removed long, detail string"
)


@dataclass(frozen=True)
class LedgerEntry:
    """One rule's accounting in one run."""

    run_id: str
    layer: str
    step: int
    rule: str
    rows_in: int
    rows_out: int
    rows_quarantined: int = 0
    rows_removed: int = 0
    detail: dict[str, Any] = field(default_factory=dict)

    def as_row(self) -> tuple:
        """The entry as a row of LEDGER_SCHEMA."""
        return (
            self.run_id,
            self.layer,
            self.step,
            self.rule,
            self.rows_in,
            self.rows_out,
            self.rows_quarantined,
            self.rows_removed,
            json.dumps(self.detail, sort_keys=True, default=str),
        )


def record_ledger(lakehouse: Lakehouse, entries: list[LedgerEntry]) -> None:
    """Upsert entries into the ledger table in one Delta commit."""
    spark = lakehouse.spark
    entries_df = spark.createDataFrame([e.as_row() for e in entries], LEDGER_SCHEMA)
    if not lakehouse.exists(PIPELINE_LEDGER):
        lakehouse.append(entries_df, PIPELINE_LEDGER)
        return
    # SQL MERGE from a session view: the same statement on a classic session, over Spark
    # Connect and on serverless, with no DeltaTable API (no Delta Connect plugin needed)
    view = f"_ledger_entries_{uuid.uuid4().hex[:12]}"
    entries_df.createOrReplaceTempView(view)
    try:
        spark.sql(
            f"MERGE INTO {lakehouse.name(PIPELINE_LEDGER)} AS t USING {view} AS s "
            "ON t.run_id = s.run_id AND t.rule = s.rule "
            "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
        )
    finally:
        spark.catalog.dropTempView(view)


def has_finished(lakehouse: Lakehouse, run_id: str, rule: str | None = None) -> bool:
    """True when the ledger records `run_id` (and `rule`): a task writes its ledger entries
    last, in one commit, so their presence means every table of that run was written."""
    from pyspark.sql import functions as F

    if not lakehouse.exists(PIPELINE_LEDGER):
        return False
    condition = F.col("run_id") == run_id
    if rule is not None:
        condition = condition & (F.col("rule") == rule)
    return not lakehouse.read(PIPELINE_LEDGER).where(condition).isEmpty()
