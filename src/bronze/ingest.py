"""Landed files (CSV, text, Excel, Parquet) -> canonical bronze rows (text), with provenance.

A file is identified by the SHA-256 of its bytes: a file already in bronze adds nothing when
it lands again, under any name. The set of ingested files is read back from bronze itself,
so the rows and the record of their file land in the same Delta commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from retail_segmentation.bronze import readers
from retail_segmentation.bronze.columns import (
    CANONICAL_COLUMNS,
    DEFAULTS,
    SourceFormat,
    map_header,
)
from retail_segmentation.bronze.readers import CORRUPT_COLUMN, FileKind, file_kind
from retail_segmentation.common.errors import IngestError

log = logging.getLogger(__name__)


BRONZE_SCHEMA = T.StructType(
    [T.StructField(c, T.StringType()) for c in CANONICAL_COLUMNS]
    + [
        T.StructField("_raw_record", T.StringType()),
        T.StructField("_extra_columns", T.StringType()),
        T.StructField("_defaulted_columns", T.ArrayType(T.StringType())),
        T.StructField("_source_file", T.StringType()),
        T.StructField("_file_hash", T.StringType()),
        T.StructField("_file_size", T.LongType()),
        T.StructField("_file_modified_at", T.TimestampType()),
        T.StructField("_row_id", T.StringType()),
        T.StructField("_batch_id", T.StringType()),
        T.StructField("_ingested_at", T.TimestampType()),
    ]
)


@dataclass(frozen=True)
class LandedFile:
    """One file found in the landing folder."""

    path: str
    size: int
    modified_at: dt.datetime
    sha256: str


def list_landed_files(spark: SparkSession, landing_path: str) -> DataFrame:
    """path, size, modified_at of every file under `landing_path` (no content read).

    Spark's file listing leaves out names starting with `_` or `.` (`_SUCCESS`, `.crc`, the
    generator's `_truth/` folder); every other file is listed, readable kind or not.
    """
    return (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .load(landing_path)
        .select(
            F.col("path"),
            F.col("length").alias("size"),
            F.col("modificationTime").alias("modified_at"),
        )
    )


def hash_files(spark: SparkSession, paths: list[str]) -> DataFrame:
    """path, sha256 of the given files, hashed by the executors."""
    if not paths:
        return spark.createDataFrame([], "path string, sha256 string")
    return (
        spark.read.format("binaryFile")
        .load(paths)
        .select("path", F.sha2(F.col("content"), 256).alias("sha256"))
    )


def read_landed_file(
    spark: SparkSession, file: LandedFile, source_format: SourceFormat
) -> DataFrame | None:
    """Read one file of any readable kind into the canonical text columns and its provenance,
    or None if it holds no data line.

    Raises:
        IngestError: the header lacks a required column, or repeats one (the message names
            the file).
    """
    kind = file_kind(file.path)
    if kind is FileKind.PARQUET:
        raw_df, header = readers.read_parquet(spark, file.path)
        frames = [(raw_df, header, file.path)]
    elif kind is FileKind.EXCEL:
        frames = [
            (raw_df, header, f"{file.path}, sheet {sheet!r}")
            for sheet, raw_df, header in readers.read_excel(spark, file.path, source_format.sheet)
        ]
    else:
        frame = _read_text_file(spark, file.path, source_format)
        frames = [frame] if frame is not None else []
    if not frames:
        log.warning("%s: empty file, nothing to ingest", file.path)
        return None
    canonical = []
    for raw_df, header, where in frames:
        if len(set(header)) != len(header):
            raise IngestError(f"{where}: duplicate column names in header {header}")
        mapping = map_header(header, source_format, where)
        kept = [*header, readers.SHEET_COLUMN] if readers.SHEET_COLUMN in raw_df.columns else header
        canonical.append(raw_df.transform(to_canonical, mapping=mapping, header=kept))
    return reduce(DataFrame.unionByName, canonical).transform(with_file_metadata, file=file)


def _read_text_file(
    spark: SparkSession, path: str, source_format: SourceFormat
) -> tuple[DataFrame, list[str], str] | None:
    line = readers.first_line(spark, path)
    if line is None or not line.strip():
        return None
    delimiter = source_format.delimiter or readers.detect_delimiter(line)
    cells = readers.split_header(line, delimiter)
    has_header = not source_format.is_positional
    header = cells if has_header else [f"_c{i}" for i in range(len(cells))]
    if delimiter == readers.WHITESPACE:
        raw_df = readers.read_whitespace(spark, path, header, source_format.encoding, has_header)
    else:
        raw_df = readers.read_delimited(
            spark, path, header, delimiter, source_format.encoding, has_header
        )
    return raw_df, header, path


def to_canonical(raw_df: DataFrame, mapping: dict[str, str], header: list[str]) -> DataFrame:
    """Rename mapped source columns, default the absent ones, keep unknown ones in a map."""
    columns: list[Column] = []
    defaulted: list[str] = []
    for canonical in CANONICAL_COLUMNS:
        if canonical in mapping:
            columns.append(F.col(f"`{mapping[canonical]}`").alias(canonical))
        elif canonical == "invoice":
            defaulted.append(canonical)
            columns.append(_derived_invoice(mapping).alias(canonical))
        else:
            if canonical != "amount":  # amount is optional; a missing price comes from it
                defaulted.append(canonical)
            columns.append(F.lit(DEFAULTS[canonical]).cast("string").alias(canonical))
    extra = [h for h in header if h not in mapping.values()]
    # A JSON object rather than a map: map columns cannot be compared, grouped or deduplicated.
    extra_json = (
        F.to_json(
            F.map_from_arrays(
                F.array(*[F.lit(h) for h in extra]), F.array(*[F.col(f"`{h}`") for h in extra])
            )
        )
        if extra
        else F.lit(None).cast("string")
    )
    return raw_df.select(
        *columns,
        F.col(CORRUPT_COLUMN),
        extra_json.alias("_extra_columns"),
        F.array(*[F.lit(c) for c in defaulted]).cast("array<string>").alias("_defaulted_columns"),
    )


def _derived_invoice(mapping: dict[str, str]) -> Column:
    # One order per customer and timestamp, for files that carry no invoice number.
    key = F.concat_ws(
        "|", F.col(f"`{mapping['customer_id']}`"), F.col(f"`{mapping['invoice_date']}`")
    )
    return F.concat(F.lit("AUTO-"), F.substring(F.sha2(key, 256), 1, 12))


def with_file_metadata(df: DataFrame, file: LandedFile) -> DataFrame:
    """Add the source file's path, hash, size and modification time."""
    return df.select(
        "*",
        F.lit(file.path).alias("_source_file"),
        F.lit(file.sha256).alias("_file_hash"),
        F.lit(file.size).cast("long").alias("_file_size"),
        F.lit(file.modified_at).cast("timestamp").alias("_file_modified_at"),
    )


def has_undecodable_text() -> Column:
    """True for a row holding U+FFFD, what a file read with the wrong encoding turns into."""
    text = F.concat_ws("", *[F.col(c) for c in CANONICAL_COLUMNS], F.col(CORRUPT_COLUMN))
    return F.contains(text, F.lit("\ufffd"))


def with_batch_metadata(df: DataFrame, batch_id: str, ingested_at: dt.datetime) -> DataFrame:
    """Add the batch id, ingest time and a row id unique within bronze."""
    return df.select(
        "*",
        F.concat(
            F.substring("_file_hash", 1, 16),
            F.lit("-"),
            F.monotonically_increasing_id().cast("string"),
        ).alias("_row_id"),
        F.lit(batch_id).alias("_batch_id"),
        F.lit(ingested_at).cast("timestamp").alias("_ingested_at"),
    ).select([f.name for f in BRONZE_SCHEMA.fields])


def batch_id_for(files: list[LandedFile], ingested_at: dt.datetime) -> str:
    """A readable batch id: ingest time plus a digest of the files in the batch."""
    digest = hashlib.sha256("".join(sorted(f.sha256 for f in files)).encode()).hexdigest()[:8]
    return f"{ingested_at:%Y%m%dT%H%M%SZ}-{digest}"
