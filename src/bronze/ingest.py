"""Landed CSV files -> canonical bronze rows (all text) with their provenance.

A file is identified by the SHA-256 of its bytes: a file already in bronze adds nothing when
it lands again, under any name. The set of ingested files is read back from bronze itself,
so the rows and the record of their file land in the same Delta commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from retail_segmentation.bronze.columns import (
    CANONICAL_COLUMNS,
    DEFAULTS,
    SourceFormat,
    detect_delimiter,
    map_header,
)
from retail_segmentation.common.errors import IngestError

log = logging.getLogger(__name__)

CSV_GLOB = "*.{csv,CSV,csv.gz,txt,tsv}"
CORRUPT_COLUMN = "_raw_record"

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
    """path, size, modified_at of every CSV file under `landing_path` (no content read)."""
    return (
        spark.read.format("binaryFile")
        .option("pathGlobFilter", CSV_GLOB)
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


def _header_line(spark: SparkSession, path: str) -> str | None:
    first = spark.read.text(path).limit(1).collect()
    return first[0][0].lstrip("\ufeff") if first else None


def _split_header(line: str, delimiter: str) -> list[str]:
    # Header cells may be quoted; they never contain the delimiter in practice.
    return [cell.strip().strip('"').strip() for cell in line.split(delimiter)]


def read_landed_file(
    spark: SparkSession, file: LandedFile, source_format: SourceFormat
) -> DataFrame | None:
    """Read one file into the canonical text columns, or None if it holds no data line.

    Raises:
        IngestError: the header lacks a required column (the message names the file).
    """
    line = _header_line(spark, file.path)
    if line is None or not line.strip():
        log.warning("%s: empty file, nothing to ingest", file.path)
        return None
    delimiter = source_format.delimiter or detect_delimiter(line)
    header = _split_header(line, delimiter)
    if len(set(header)) != len(header):
        raise IngestError(f"{file.path}: duplicate column names in header {header}")
    mapping = map_header(header, source_format, file.path)
    schema = T.StructType(
        [T.StructField(h, T.StringType()) for h in header]
        + [T.StructField(CORRUPT_COLUMN, T.StringType())]
    )
    raw_df = (
        spark.read.schema(schema)
        .option("header", "true")
        .option("enforceSchema", "true")
        .option("sep", delimiter)
        .option("encoding", source_format.encoding)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT_COLUMN)
        .option("multiLine", "false")
        .csv(file.path)
    )
    return raw_df.transform(to_canonical, mapping=mapping, header=header).transform(
        with_file_metadata, file=file
    )


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
