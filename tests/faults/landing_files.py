"""Landing folders the fault tests build, and the checks they share: every raw row accounted
for (bronze = silver + quarantine + removed duplicates, in the tables and the ledger)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import functions as F

from retail_segmentation.bronze.columns import SourceFormat
from retail_segmentation.bronze.task import BronzeConfig, BronzeResult, ingest_bronze
from retail_segmentation.common.config import TableConfig
from retail_segmentation.common.tables import (
    BRONZE_TRANSACTIONS,
    PIPELINE_LEDGER,
    SILVER_QUARANTINE,
    SILVER_TRANSACTIONS,
    Lakehouse,
)
from retail_segmentation.silver.task import (
    BATCH_RUN_PREFIX,
    SilverConfig,
    SilverResult,
    build_silver,
)

# the tables silver writes a bronze line to, unless it removes it as a duplicate
WRITTEN = (SILVER_TRANSACTIONS, SILVER_QUARANTINE)
HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
# A few good lines every landing folder below also holds: two customers, three products.
GOOD_LINES = (
    "536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
    "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom",
    "536366,22633,HAND WARMER UNION JACK,6,2010-12-01 08:28:00,1.85,17850.0,United Kingdom",
    "536367,84879,ASSORTED COLOUR BIRD,32,2010-12-01 08:34:00,1.69,13047.0,United Kingdom",
    "536368,22960,JAM MAKING SET,6,2010-12-02 08:34:00,4.25,13047.0,United Kingdom",
    "536369,85123A,WHITE HANGING HEART,4,2010-12-03 09:00:00,2.55,13047.0,United Kingdom",
)


def write_landed(folder, name: str, lines, encoding: str = "utf-8", header: str = HEADER):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    text = "\n".join([header, *lines] if header is not None else list(lines))
    path.write_bytes((text + "\n").encode(encoding) if text else b"")
    return path


def ingest(spark, lakehouse, landing, source_format: SourceFormat | None = None):
    config = BronzeConfig(str(landing), source_format or SourceFormat(), lakehouse.config)
    return ingest_bronze(spark, lakehouse, config)


def silver(spark, lakehouse, **options):
    return build_silver(spark, lakehouse, SilverConfig(tables=lakehouse.config, **options))


def quarantined(lakehouse, batch_id: str | None = None) -> dict[str, list[str]]:
    """rule -> the invoices it quarantined (of one bronze batch, given its id)."""
    quarantine = lakehouse.read(SILVER_QUARANTINE)
    if batch_id is not None:
        quarantine = quarantine.where(F.col("_batch_id") == batch_id)
    rows = (
        quarantine.groupBy("_quarantine_rule")
        .agg(F.sort_array(F.collect_list(F.coalesce("invoice", F.lit("?")))).alias("invoices"))
        .collect()
    )
    return {r["_quarantine_rule"]: list(r["invoices"]) for r in rows}


def assert_balanced(lakehouse, result) -> None:
    """bronze = silver + quarantine + removed duplicates, in the tables and in the ledger."""
    counts = [lakehouse.read(t).count() for t in (BRONZE_TRANSACTIONS, *WRITTEN)]
    balance = (
        lakehouse.read(PIPELINE_LEDGER)
        .where((F.col("run_id") == result.run_id) & (F.col("rule") == "balance"))
        .first()
    )
    assert balance is not None, f"no balance entry for {result.run_id}"
    assert [balance.rows_in, balance.rows_out, balance.rows_quarantined] == counts
    assert balance.rows_removed == result.duplicates_removed == counts[0] - sum(counts[1:])


def assert_ledger_balances(lakehouse, total_run_id: str) -> None:
    """Per bronze batch: bronze = silver + quarantine + removed duplicates, the tables counted
    by `_batch_id` and the batch's balance entry in the ledger alike; in total: the entry of
    `total_run_id` is the sum of the batches'."""

    def per_batch(table: str) -> dict[str, int]:
        rows = lakehouse.read(table).groupBy("_batch_id").count().collect()
        return {r["_batch_id"]: r["count"] for r in rows}

    bronze, silver_rows, quarantine = (per_batch(t) for t in (BRONZE_TRANSACTIONS, *WRITTEN))
    balances = lakehouse.read(PIPELINE_LEDGER).where("layer = 'silver' AND rule = 'balance'")
    entries = {r.run_id: r for r in balances.collect()}
    per_batch_entries = {
        run_id[len(BATCH_RUN_PREFIX) :]: entry
        for run_id, entry in entries.items()
        if run_id.startswith(BATCH_RUN_PREFIX)
    }
    assert set(per_batch_entries) == set(bronze)
    for batch, entry in per_batch_entries.items():
        written = (silver_rows.get(batch, 0), quarantine.get(batch, 0))
        assert (entry.rows_in, entry.rows_out, entry.rows_quarantined) == (bronze[batch], *written)
        assert entry.rows_removed == bronze[batch] - sum(written)
    total = entries[total_run_id]
    for column in ("rows_in", "rows_out", "rows_quarantined", "rows_removed"):
        assert total[column] == sum(e[column] for e in per_batch_entries.values()), column


def good_lines(offset: int = 0) -> tuple[str, ...]:
    """GOOD_LINES with each invoice number raised by `offset`: the same two customers and
    three products in lines no other case's lines duplicate (silver removes an identical line
    landed again, and bronze skips a file whose bytes it has ingested)."""
    return tuple(str(int(line[:6]) + offset) + line[6:] for line in GOOD_LINES)


class _Collected(logging.Handler):
    """The messages logged to it."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@dataclass(frozen=True)
class Landed:
    """Cases landed side by side in one lakehouse, one folder and one bronze batch each
    (`ingested[case]`, as a day's folders would land), then cleaned by one silver run."""

    lakehouse: Lakehouse
    ingested: dict[str, BronzeResult]
    silver: SilverResult
    log: str  # what bronze logged at WARNING and above while ingesting

    @classmethod
    def build(
        cls,
        spark,
        root: Path,
        schema: str,
        land_cases: Callable[..., dict[str, BronzeResult]],
    ) -> Landed:
        """`land_cases(spark, lakehouse, landing_root)` writes and ingests each case's folder."""
        lakehouse = Lakehouse.attach(
            spark, TableConfig(schema=schema, lakehouse_dir=str(root / "lakehouse"))
        )
        handler = _Collected(logging.WARNING)
        bronze_log = logging.getLogger("retail_segmentation.bronze")
        bronze_log.addHandler(handler)
        try:
            ingested = land_cases(spark, lakehouse, root / "landing")
        finally:
            bronze_log.removeHandler(handler)
        return cls(lakehouse, ingested, silver(spark, lakehouse), "\n".join(handler.messages))

    def batch(self, case: str) -> str:
        batch_id = self.ingested[case].batch_id
        assert batch_id is not None, f"case {case} ingested nothing"
        return batch_id

    def read(self, table: str, case: str):
        """The rows of `table` from the case's bronze batch."""
        return self.lakehouse.read(table).where(F.col("_batch_id") == self.batch(case))

    def assert_balanced(self) -> None:
        """Each case's batch balances, and so do the totals; bronze holds one batch per case
        that brought lines, and no other."""
        assert_ledger_balances(self.lakehouse, self.silver.run_id)
        assert_balanced(self.lakehouse, self.silver)
        batches = {r.batch_id for r in self.ingested.values() if r.batch_id is not None}
        rows = self.lakehouse.read(BRONZE_TRANSACTIONS).select("_batch_id").distinct().collect()
        assert {r["_batch_id"] for r in rows} == batches
