"""Logical table names -> physical Delta tables.

On Databricks a logical name such as `silver_transactions` is the Unity Catalog table
`<catalog>.<schema>.silver_transactions`. Locally it is the Delta table in
`<lakehouse_dir>/tables/<schema>/silver_transactions`, registered in the session catalog
as `<schema>.silver_transactions`; every session built through `Lakehouse.attach` registers
the tables found on disk again, so a second process can query them by name.
"""

from __future__ import annotations

import contextvars
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from itertools import takewhile
from pathlib import Path
from typing import TypeVar

from pyspark.sql import DataFrame, SparkSession

from retail_segmentation.common import delta_log
from retail_segmentation.common.config import TableConfig, validate_identifier
from retail_segmentation.common.errors import ConfigError, is_concurrent_write_conflict
from retail_segmentation.common.spark import is_connect_session, is_databricks

BRONZE_TRANSACTIONS = "bronze_transactions"
SILVER_TRANSACTIONS = "silver_transactions"
SILVER_QUARANTINE = "silver_quarantine"
SILVER_PRODUCTS = "silver_products"
SILVER_RULE_PARAMETERS = "silver_rule_parameters"
PIPELINE_LEDGER = "pipeline_ledger"
GOLD_CUSTOMER_RFM = "gold_customer_rfm"
GOLD_CUSTOMER_BEHAVIOR = "gold_customer_behavior"
GOLD_PRODUCT_PERFORMANCE = "gold_product_performance"
GOLD_SALES_BY_COUNTRY = "gold_sales_by_country"
GOLD_SALES_BY_DAY = "gold_sales_by_day"
GOLD_SALES_BY_WEEKDAY_HOUR = "gold_sales_by_weekday_hour"
GOLD_CUSTOMER_SEGMENTS = "gold_customer_segments"
GOLD_SEGMENT_PROFILES = "gold_segment_profiles"
GOLD_SEGMENT_HISTORY = "gold_segment_history"
GOLD_PRODUCT_RECOMMENDATIONS = "gold_product_recommendations"
GOLD_SEGMENTED_OFFERS = "gold_segmented_offers"

# Delta operations that rewrite or annotate files without changing what a table holds:
# compaction (OPTIMIZE, ZORDER, liquid clustering, auto-compaction), VACUUM, statistics,
# properties and protocol changes. Unity Catalog's predictive optimization commits these on
# its own schedule; they must not make a task think its input changed. Any other operation
# (WRITE, MERGE, DELETE, RESTORE, ...) counts as a data change.
MAINTENANCE_OPERATIONS = frozenset(
    {
        "OPTIMIZE",
        "VACUUM START",
        "VACUUM END",
        "REORG",
        "ANALYZE",
        "ANALYZE STATS",
        "COMPUTE STATS",
        "SET TBLPROPERTIES",
        "UNSET TBLPROPERTIES",
        "UPGRADE PROTOCOL",
        "ADD CONSTRAINT",
        "DROP CONSTRAINT",
        "CHANGE COLUMN",
        "CLUSTER BY",
        "DROP FEATURE",
        "ROW TRACKING BACKFILL",
        "DOMAIN METADATA CLEANUP",
    }
)
# Tables that record Delta's change data feed from their first commit, so a downstream task
# reads only the rows that changed since the version it last read (`Lakehouse.changes`).
CHANGE_FEED_TABLES = frozenset({SILVER_TRANSACTIONS})
CHANGE_FEED_PROPERTY = "delta.enableChangeDataFeed"

# Independent table writes a task runs at once (`run_at_once`, `Lakehouse.overwrite_all`).
# A write's planning and commit run on the driver one step after another, and a small table's
# Spark job is short, so one write at a time leaves a core idle much of the time; two at once
# keep it busy.
WRITES_AT_ONCE = 2

T = TypeVar("T")

# A table written a little at a time (bronze's and silver's daily batches, the ledger's entries,
# the segment history) is compacted (`Lakehouse.compact_if_fragmented`) once it holds this many
# data files. Every file costs each scan of the table: on 1M lines, 25 daily writes had left
# silver in 208 files, and a scan of them took 1.3-2x as long as of the same rows in one.
COMPACT_AT_FILES = 32
# Rows per file of a small write (a day's batch): one file, not one per shuffle partition.
ROWS_PER_FILE = 1_000_000

# How far back the history is read to find the latest data-changing commit (then all of it).
_HISTORY_WINDOW = 100


@dataclass(frozen=True)
class DataCommit:
    """The latest commit of a table that changed its data (its version names the data), the
    rows it wrote, and the table's latest version (maintenance commits may follow; a task reads
    this one: the same data, and files VACUUM has not removed)."""

    version: int
    operation: str
    rows: int
    latest_version: int


def is_data_change(operation: str) -> bool:
    """False for Delta's maintenance operations (OPTIMIZE, VACUUM, ...), True otherwise."""
    return operation not in MAINTENANCE_OPERATIONS


# The local session catalog while a table enters it: a task's first write of a table, and a
# task attaching (registering what it finds on disk), from threads of one process.
_LOCAL_CATALOG = threading.RLock()

# per thread (a context variable): a task's commits are made in the thread that runs it
_COMMITTED: ContextVar[set[str] | None] = ContextVar("committed_tables", default=None)


@contextmanager
def recording_commits() -> Iterator[set[str]]:
    """Name every table a `Lakehouse` commits to in this thread while the block runs: the
    local runner tells apart the writes of tasks that run at the same time this way."""
    committed: set[str] = set()
    token = _COMMITTED.set(committed)
    try:
        yield committed
    finally:
        _COMMITTED.reset(token)


def _note_commit(table: str) -> None:
    committed = _COMMITTED.get()
    if committed is not None:
        committed.add(table)


def run_at_once(calls: Sequence[Callable[[], T]], at_once: int = WRITES_AT_ONCE) -> list[T]:
    """Run independent calls (table writes, or reads of tables none of them writes) `at_once`
    at a time in threads, started in order; their results in order. Every call is attempted;
    the first error (in order) is raised once all have ended."""
    with ThreadPoolExecutor(max_workers=max(1, at_once), thread_name_prefix="write") as pool:
        # each call in a copy of this thread's context, so `recording_commits` sees its writes
        futures = [pool.submit(contextvars.copy_context().run, call) for call in calls]
    return [future.result() for future in futures]


def sql_string(value: str) -> str:
    """`value` as a quoted Spark SQL string literal (backslashes and quotes escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class Lakehouse:
    """Reads, writes and names the project's Delta tables for one catalog/schema."""

    spark: SparkSession
    config: TableConfig
    databricks: bool = False

    @classmethod
    def attach(cls, spark: SparkSession, config: TableConfig) -> Lakehouse:
        """Bind to `config`; locally, (re)register the Delta tables already on disk."""
        lakehouse = cls(spark, config, databricks=is_databricks())
        if lakehouse.databricks:
            spark.sql(f"CREATE SCHEMA IF NOT EXISTS {config.catalog}.{config.schema}")
        else:
            lakehouse._register_local_tables()
        return lakehouse

    @property
    def local_root(self) -> Path:
        """Folder holding this schema's Delta tables on a laptop."""
        return Path(self.config.lakehouse_dir).absolute() / "tables" / self.config.schema

    def name(self, table: str) -> str:
        """Fully qualified name of a logical table."""
        validate_identifier(table, "table")
        if self.databricks:
            return f"{self.config.catalog}.{self.config.schema}.{table}"
        return f"{self.config.schema}.{table}"

    def three_level_name(self, table: str) -> str:
        """catalog.schema.table: the Unity Catalog name, or spark_catalog.schema.table locally
        (what lineage tools such as MLflow datasets expect)."""
        name = self.name(table)
        return name if self.databricks else f"spark_catalog.{name}"

    def location(self, table: str) -> str:
        """Local folder of a table's Delta log and files."""
        return str(self.local_root / validate_identifier(table, "table"))

    def exists(self, table: str) -> bool:
        """True when the table has been written at least once."""
        if self.databricks:
            return self.spark.catalog.tableExists(self.name(table))
        return (Path(self.location(table)) / "_delta_log").is_dir()

    def read(self, table: str, version: int | None = None) -> DataFrame:
        """The current version of a table, or the given Delta version (time travel)."""
        reader = self.spark.read
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.table(self.name(table))

    @property
    def _history_from_files(self) -> bool:
        """Locally, on a classic session, a table's versions and history are read from its log
        files (`delta_log`); on Databricks, and under Spark Connect (serverless's stand-in,
        which proves what serverless runs), by DESCRIBE HISTORY."""
        return not self.databricks and not is_connect_session(self.spark)

    def _no_log(self, table: str) -> ConfigError:
        return ConfigError(f"table {self.name(table)} has no Delta log in {self.location(table)}")

    def version(self, table: str) -> int:
        """Latest Delta version of a table (what a task pins its reads to)."""
        if self._history_from_files:
            latest = delta_log.latest_version(Path(self.location(table)))
            if latest is None:
                raise self._no_log(table)
            return latest
        row = self.spark.sql(f"DESCRIBE HISTORY {self.name(table)} LIMIT 1").first()
        return int(row["version"])

    def data_commit(self, table: str) -> DataCommit:
        """The latest commit that changed the table's data, skipping maintenance commits
        (OPTIMIZE, VACUUM, ...): its version names the data a task read, so maintenance
        never makes a task redo its work; its rows are what that write committed."""
        name = self.name(table)
        if self._history_from_files:
            latest = None
            for version, info in delta_log.history(Path(self.location(table))):
                latest = version if latest is None else latest
                operation = info.get("operation", "")
                if is_data_change(operation):
                    rows = delta_log.operation_rows(operation, info.get("operationMetrics"))
                    return DataCommit(version, operation, rows, latest)
            if latest is None:
                raise self._no_log(table)
            raise ConfigError(f"table {name} has no data-changing commit in its Delta history")
        for limit in (f" LIMIT {_HISTORY_WINDOW}", ""):
            rows = (
                self.spark.sql(f"DESCRIBE HISTORY {name}{limit}")
                .select("version", "operation", "operationMetrics")
                .collect()
            )
            latest = max((int(r["version"]) for r in rows), default=-1)
            for row in sorted(rows, key=lambda r: -r["version"]):
                if is_data_change(row["operation"]):
                    return DataCommit(
                        int(row["version"]),
                        row["operation"],
                        delta_log.operation_rows(row["operation"], row["operationMetrics"]),
                        latest,
                    )
            if len(rows) < _HISTORY_WINDOW:
                break
        raise ConfigError(f"table {name} has no data-changing commit in its Delta history")

    def data_version(self, table: str) -> int:
        """Version of the latest data-changing commit (see `data_commit`)."""
        return self.data_commit(table).version

    def last_commit_rows(self, table: str) -> int:
        """Rows written by the table's latest data-changing commit, from Delta's metrics."""
        return self.data_commit(table).rows

    def history(self, table: str, after_version: int) -> list[tuple[int, str, dict]]:
        """(version, operation, operation parameters) of every commit after `after_version`,
        oldest first: the log files of just those commits, or one DESCRIBE HISTORY read of
        them."""
        if self._history_from_files:
            table_dir = Path(self.location(table))
            commits = list(
                takewhile(lambda commit: commit[0] > after_version, delta_log.history(table_dir))
            )
            if not commits and delta_log.latest_version(table_dir) is None:
                raise self._no_log(table)  # as DESCRIBE HISTORY fails on a missing table
            return [
                (version, info.get("operation", ""), delta_log.operation_parameters(info))
                for version, info in reversed(commits)
            ]
        latest = self.version(table)
        if latest <= after_version:
            return []
        rows = (
            self.spark.sql(f"DESCRIBE HISTORY {self.name(table)} LIMIT {latest - after_version}")
            .select("version", "operation", "operationParameters")
            .collect()
        )
        return sorted(
            (int(r["version"]), r["operation"], dict(r["operationParameters"] or {}))
            for r in rows
            if int(r["version"]) > after_version
        )

    def changes(self, table: str, first_version: int, last_version: int) -> DataFrame:
        """Delta's change data feed of a table between two versions (both included): the rows
        inserted, deleted and the before and after images of updated rows, with
        `_change_type`, `_commit_version` and `_commit_timestamp`."""
        return (
            self.spark.read.option("readChangeFeed", "true")
            .option("startingVersion", first_version)
            .option("endingVersion", last_version)
            .table(self.name(table))
        )

    def ensure_change_feed(self, table: str) -> None:
        """Turn on the change data feed of a table created before it was recorded (one
        SET TBLPROPERTIES commit, once; a maintenance commit, so no task redoes its work)."""
        name = self.name(table)
        row = self.spark.sql(f"SHOW TBLPROPERTIES {name} ({CHANGE_FEED_PROPERTY})").first()
        if row is None or str(row["value"]).lower() != "true":
            _note_commit(table)
            self.spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ({CHANGE_FEED_PROPERTY} = true)")

    def file_count(self, table: str) -> int:
        """Data files in the table's latest version: locally from the checksum Delta writes
        beside each commit, else (or without one) DESCRIBE DETAIL's numFiles."""
        if self._history_from_files:
            files = delta_log.live_file_count(Path(self.location(table)))
            if files is not None:
                return files
        return int(self.spark.sql(f"DESCRIBE DETAIL {self.name(table)}").first()["numFiles"])

    def compact_if_fragmented(self, table: str, at_files: int | None = None) -> bool:
        """OPTIMIZE the table when it holds `at_files` (default COMPACT_AT_FILES) data files or
        more; True when it did.

        A maintenance commit: the same rows in fewer files, so no task takes it for new data
        (`data_commit`) and the change data feed records nothing. A writer committing at the
        same time wins: the compaction is skipped, and the next run tries again. (Unity
        Catalog's predictive optimization does the same on Databricks; this keeps a laptop's
        daily runs, and workspaces without it, from slowing down as the files pile up.)"""
        if self.file_count(table) < (at_files or COMPACT_AT_FILES):
            return False
        try:
            self.spark.sql(f"OPTIMIZE {self.name(table)}")
        except Exception as exc:  # Delta's conflicts arrive as Py4J or Spark Connect errors
            if is_concurrent_write_conflict(exc):
                return False
            raise
        return True

    def overwrite(self, df: DataFrame, table: str) -> None:
        """Replace a table's content in one Delta commit."""
        self._save(df, table, "overwrite")

    def overwrite_all(self, frames: Mapping[str, DataFrame], at_once: int = WRITES_AT_ONCE) -> None:
        """Replace several tables' content, one Delta commit each, `at_once` writes at a time
        in threads (started in `frames`' order). The tables must not depend on each other's
        new content. Every write is attempted; the first error (in `frames`' order) is
        raised once all have ended, so each table is left either as it was or replaced."""
        run_at_once([partial(self.overwrite, df, table) for table, df in frames.items()], at_once)

    def append(self, df: DataFrame, table: str) -> None:
        """Append rows to a table in one Delta commit (creating it if needed)."""
        self._save(df, table, "append")

    def replace_where(self, df: DataFrame, table: str, column: str, value: str) -> None:
        """Replace the rows where `column` = `value` with `df` in one Delta commit (creating
        the table if needed): rewriting the same key twice leaves one copy."""
        self.replace_where_condition(
            df, table, f"{validate_identifier(column, 'column')} = {sql_string(value)}"
        )

    def replace_where_condition(self, df: DataFrame, table: str, condition: str) -> None:
        """Replace the rows matching the SQL `condition` with `df` (whose rows must all match
        it) in one Delta commit, creating the table if needed. Build `condition` from
        validated identifiers and `sql_string` literals only."""
        if not self.exists(table):
            self._save(df, table, "append")
            return
        self._save(df, table, "overwrite", replace_where=condition)

    def replace_where_all(
        self, frames: Mapping[str, DataFrame], condition: str, at_once: int = WRITES_AT_ONCE
    ) -> None:
        """`replace_where_condition` with one `condition` on several tables, `at_once` writes
        at a time as in `overwrite_all` (the same rules: independent tables, every write
        attempted, the first error raised at the end)."""
        run_at_once(
            [
                partial(self.replace_where_condition, df, table, condition)
                for table, df in frames.items()
            ],
            at_once,
        )

    def merge_rows(self, df: DataFrame, table: str, key: str, delete: str | None = None) -> None:
        """Upsert `df`'s rows into an existing table by `key` (null matching null) in one Delta
        commit (a SQL MERGE, the same on Spark Connect). With `delete`, a row whose boolean
        column `delete` is true removes the table's row with its key instead and is never
        inserted (`delete` itself is not written). Rows of the table whose key `df` lacks stay
        as they are."""
        key = validate_identifier(key, "column")
        clauses = "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
        if delete is not None:
            delete = validate_identifier(delete, "column")
            clauses = (
                f"WHEN MATCHED AND s.{delete} THEN DELETE WHEN MATCHED THEN UPDATE SET * "
                f"WHEN NOT MATCHED AND NOT s.{delete} THEN INSERT *"
            )
        self._merge(df, table, key, clauses)

    def delete_rows(self, keys_df: DataFrame, table: str, key: str) -> None:
        """Delete the table's rows whose `key` is one of `keys_df`'s, in one Delta commit."""
        self._merge(keys_df, table, validate_identifier(key, "column"), "WHEN MATCHED THEN DELETE")

    def _merge(self, df: DataFrame, table: str, key: str, clauses: str) -> None:
        view = f"_merge_source_{validate_identifier(table, 'table')}"
        _note_commit(table)
        df.createOrReplaceTempView(view)
        try:
            self.spark.sql(
                f"MERGE INTO {self.name(table)} AS t USING {view} AS s "
                f"ON t.{key} <=> s.{key} {clauses}"
            )
        finally:
            self.spark.catalog.dropTempView(view)

    def _save(self, df: DataFrame, table: str, mode: str, replace_where: str | None = None) -> None:
        _note_commit(validate_identifier(table, "table"))
        writer = df.write.format("delta").mode(mode)
        if replace_where is not None:
            writer = writer.option("replaceWhere", replace_where)
        elif mode == "overwrite":
            writer = writer.option("overwriteSchema", "true")
        if table in CHANGE_FEED_TABLES:  # a table property: applies when the write creates it
            writer = writer.option(CHANGE_FEED_PROPERTY, "true")
        if self.databricks:
            writer.saveAsTable(self.name(table))
            return
        writer = writer.option("path", self.location(table))
        if self.exists(table):  # in a schema that exists
            writer.saveAsTable(self.name(table))
            return
        # the table's first commit and its entry in the session catalog, which another task
        # attaching at the same time would otherwise register first
        with _LOCAL_CATALOG:
            self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {self.config.schema}")
            writer.saveAsTable(self.name(table))

    @property
    def scratch_root(self) -> Path:
        """Folder of this schema's scratch Delta tables on a laptop (outside `tables/`)."""
        return Path(self.config.lakehouse_dir).absolute() / "scratch" / self.config.schema

    def write_scratch(self, df: DataFrame, name: str) -> DataFrame:
        """Write `df` once as a scratch Delta table and return a frame reading it back: a
        managed table `_scratch_<name>` in the schema on Databricks (never the DBFS root), a
        folder under `scratch/` locally."""
        validate_identifier(name, "scratch table")
        writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
        if self.databricks:
            table = self.name(f"_scratch_{name}")
            writer.saveAsTable(table)
            return self.spark.read.table(table)
        path = str(self.scratch_root / name)
        writer.save(path)
        return self.spark.read.format("delta").load(path)

    def drop_scratch(self, name: str) -> None:
        """Remove a scratch table written by `write_scratch` (no error if it is gone)."""
        validate_identifier(name, "scratch table")
        if self.databricks:
            self.spark.sql(f"DROP TABLE IF EXISTS {self.name(f'_scratch_{name}')}")
        else:
            shutil.rmtree(self.scratch_root / name, ignore_errors=True)

    def _register_local_tables(self) -> None:
        with _LOCAL_CATALOG:
            self._register_local_tables_once()

    def _register_local_tables_once(self) -> None:
        self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {self.config.schema}")
        if not self.local_root.is_dir():
            return
        # one listing, then a CREATE only for what the session does not know yet (each task
        # attaches again; a CREATE TABLE IF NOT EXISTS per table per attach added up)
        registered = {
            row["tableName"]
            for row in self.spark.sql(f"SHOW TABLES IN {self.config.schema}").collect()
        }
        for table_dir in sorted(self.local_root.iterdir()):
            if (table_dir / "_delta_log").is_dir() and table_dir.name not in registered:
                name = self.name(table_dir.name)
                location = str(table_dir).replace("'", "\\'")
                self.spark.sql(
                    f"CREATE TABLE IF NOT EXISTS {name} USING DELTA LOCATION '{location}'"
                )
