"""Bronze task: ingest new landed files into `bronze_transactions` (incremental, idempotent)."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from retail_segmentation.bronze.columns import (
    SourceFormat,
    add_source_arguments,
    source_format_from_args,
)
from retail_segmentation.bronze.ingest import (
    BRONZE_SCHEMA,
    LandedFile,
    batch_id_for,
    has_undecodable_text,
    hash_files,
    list_landed_files,
    read_landed_file,
    with_batch_metadata,
)
from retail_segmentation.bronze.readers import READABLE_SUFFIXES, file_kind
from retail_segmentation.common.config import (
    TableConfig,
    add_table_arguments,
    table_config_from_args,
)
from retail_segmentation.common.errors import ConfigError, IngestError
from retail_segmentation.common.ledger import LedgerEntry, record_ledger
from retail_segmentation.common.spark import get_spark
from retail_segmentation.common.tables import BRONZE_TRANSACTIONS, Lakehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BronzeConfig:
    """Parameters of the bronze task."""

    landing_path: str
    source_format: SourceFormat
    tables: TableConfig

    def __post_init__(self) -> None:
        if not self.landing_path:
            raise ConfigError(
                "parameter landing_path is empty: expected a folder or file of landed files"
            )


@dataclass(frozen=True)
class BronzeResult:
    """What one bronze run did."""

    batch_id: str | None
    files_ingested: list[str]
    files_skipped: int
    rows_ingested: int
    undecodable_rows: int = 0
    files_unreadable: tuple[str, ...] = ()


def _ingested_files(lakehouse: Lakehouse) -> list:
    """One row per file already in bronze: path, size, modification time, content hash."""
    if not lakehouse.exists(BRONZE_TRANSACTIONS):
        return []
    columns = ["_source_file", "_file_size", "_file_modified_at", "_file_hash"]
    return lakehouse.read(BRONZE_TRANSACTIONS).select(columns).distinct().collect()


@dataclass(frozen=True)
class LandingScan:
    """What the landing folder holds: new files to ingest, files already in bronze, and files
    of a kind bronze does not read."""

    new: list[LandedFile]
    already_ingested: int
    unreadable: tuple[str, ...]


def find_new_files(spark: SparkSession, lakehouse: Lakehouse, landing_path: str) -> LandingScan:
    """Files under `landing_path` whose content is not in bronze yet, the count of those it is,
    and the files of a kind bronze cannot read (by name).

    Files whose path, size and modification time are in bronze are skipped unread; the others
    are hashed, and skipped if their content is. Only file-level rows reach the driver.

    Raises:
        ConfigError: `landing_path` does not exist.
        IngestError: it holds no readable file at all (the message lists what it holds).
    """
    try:
        listed = list_landed_files(spark, landing_path).collect()
    except Exception as exc:
        if "PATH_NOT_FOUND" in str(exc) or "does not exist" in str(exc):
            raise ConfigError(
                f"parameter landing_path={landing_path!r}: no such folder or file"
            ) from None
        raise
    readable = [r for r in listed if file_kind(r.path) is not None]
    unreadable = tuple(sorted(r.path for r in listed if file_kind(r.path) is None))
    if not readable:
        found = ", ".join(p.rsplit("/", 1)[-1] for p in unreadable[:5]) + (
            f" and {len(unreadable) - 5} more" if len(unreadable) > 5 else ""
        )
        raise IngestError(
            f"parameter landing_path={landing_path!r} holds no file bronze can read "
            f"({'found ' + found if unreadable else 'it is empty'}); expected files named "
            f"*{', *'.join(READABLE_SUFFIXES.split(', '))}"
        )
    ingested = _ingested_files(lakehouse)
    seen = {(r._source_file, r._file_size, r._file_modified_at) for r in ingested}
    known = {r._file_hash for r in ingested}
    candidates = [r for r in readable if (r.path, r.size, r.modified_at) not in seen]
    hashes = {r.path: r.sha256 for r in hash_files(spark, [r.path for r in candidates]).collect()}
    new: list[LandedFile] = []
    for row in sorted(candidates, key=lambda r: r.path):
        digest = hashes[row.path]
        if digest in known:
            log.info("%s: already ingested (same content), skipped", row.path)
            continue
        known.add(digest)
        new.append(LandedFile(row.path, row.size, row.modified_at, digest))
    return LandingScan(new, len(readable) - len(new), unreadable)


def ingest_bronze(
    spark: SparkSession, lakehouse: Lakehouse, config: BronzeConfig, now: dt.datetime | None = None
) -> BronzeResult:
    """Append every new landed file to bronze in one Delta commit; files of a kind it cannot
    read are named in the ledger and the result."""
    scan = find_new_files(spark, lakehouse, config.landing_path)
    files, skipped = scan.new, scan.already_ingested
    if scan.unreadable:
        log.warning(
            "bronze: skipped %d file(s) of a kind it cannot read: %s (readable: %s)",
            len(scan.unreadable),
            ", ".join(scan.unreadable),
            READABLE_SUFFIXES,
        )
        _record_unreadable(lakehouse, scan.unreadable)
    frames = [
        df for f in files if (df := read_landed_file(spark, f, config.source_format)) is not None
    ]
    if not frames:
        log.info(
            "bronze: no new data under %s (%d file(s) already ingested)",
            config.landing_path,
            skipped,
        )
        return BronzeResult(None, [], skipped, 0, files_unreadable=scan.unreadable)
    ingested_at = (now or dt.datetime.now(dt.timezone.utc)).replace(microsecond=0, tzinfo=None)
    batch_id = batch_id_for(files, ingested_at)
    observation = Observation("bronze_batch")
    new_df = (
        reduce(DataFrame.unionByName, frames)
        .transform(with_batch_metadata, batch_id=batch_id, ingested_at=ingested_at)
        .observe(observation, F.count_if(has_undecodable_text()).alias("undecodable"))
    )
    lakehouse.append(new_df.select([f.name for f in BRONZE_SCHEMA.fields]), BRONZE_TRANSACTIONS)
    rows = lakehouse.last_commit_rows(BRONZE_TRANSACTIONS)
    undecodable = _undecodable_rows(lakehouse, observation, batch_id)
    if undecodable:
        log.warning(
            "bronze batch %s: %d row(s) hold characters that are not valid %s; declare the "
            "files' encoding with --encoding (the public Online Retail exports are ISO-8859-1)",
            batch_id,
            undecodable,
            config.source_format.encoding,
        )
    record_ledger(
        lakehouse,
        [
            LedgerEntry(
                run_id=f"bronze:{batch_id}",
                layer="bronze",
                step=1,
                rule="ingest",
                rows_in=rows,
                rows_out=rows,
                detail={"files": [f.path for f in files]},
            )
        ],
    )
    # a batch a day: one file (or a few) each time
    lakehouse.compact_if_fragmented(BRONZE_TRANSACTIONS)
    return BronzeResult(
        batch_id, [f.path for f in files], skipped, rows, undecodable, scan.unreadable
    )


def _record_unreadable(lakehouse: Lakehouse, paths: tuple[str, ...]) -> None:
    """One ledger entry per set of unreadable files (the same set twice: one entry)."""
    digest = hashlib.sha256("\n".join(paths).encode()).hexdigest()[:12]
    record_ledger(
        lakehouse,
        [
            LedgerEntry(
                run_id=f"bronze:unreadable:{digest}",
                layer="bronze",
                step=0,
                rule="skip_unreadable_files",
                rows_in=0,
                rows_out=0,
                detail={"files": list(paths), "readable_kinds": READABLE_SUFFIXES},
            )
        ],
    )


def _undecodable_rows(lakehouse: Lakehouse, observation: Observation, batch_id: str) -> int:
    """Rows of the batch holding U+FFFD: observed while the batch was written, or, where the
    observation came back empty (it can over Spark Connect), counted in the committed batch."""
    observed = observation.get
    if "undecodable" in observed:
        return int(observed["undecodable"])
    log.info("bronze batch %s: no observed metrics, counting undecodable rows", batch_id)
    return (
        lakehouse.read(BRONZE_TRANSACTIONS)
        .where((F.col("_batch_id") == batch_id) & has_undecodable_text())
        .count()
    )


def parse_args(argv: list[str] | None = None) -> BronzeConfig:
    """Job parameters -> BronzeConfig."""
    parser = argparse.ArgumentParser(prog="retail-seg-bronze", description=__doc__)
    parser.add_argument(
        "--landing-path",
        required=True,
        help=f"folder (or file) of landed files: {READABLE_SUFFIXES}",
    )
    add_source_arguments(parser)
    add_table_arguments(parser)
    args = parser.parse_args(argv)
    return BronzeConfig(
        landing_path=args.landing_path,
        source_format=source_format_from_args(args),
        tables=table_config_from_args(args),
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point of the bronze task (python_wheel_task / console script)."""
    config = parse_args(argv)
    spark = get_spark(warehouse_dir=f"{config.tables.lakehouse_dir}/spark-warehouse")
    result = ingest_bronze(spark, Lakehouse.attach(spark, config.tables), config)
    print(
        f"bronze: {result.rows_ingested} rows from {len(result.files_ingested)} new file(s), "
        f"{result.files_skipped} already ingested"
        + (
            f"; skipped {len(result.files_unreadable)} file(s) of a kind it cannot read: "
            + ", ".join(result.files_unreadable)
            if result.files_unreadable
            else ""
        )
    )
