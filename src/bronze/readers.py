"""How each kind of landed file is read into text columns named by its header.

| kind        | file names                                 | read with                          |
|-------------|--------------------------------------------|------------------------------------|
| delimited   | .csv .tsv .txt .dat (also .gz)             | Spark's CSV reader; `, ; tab \\|`  |
| whitespace  | the same, when the header splits on spaces | Spark's CSV reader, split on `\\s+` |
| excel       | .xlsx .xlsm                                | openpyxl, on the executors         |
| parquet     | .parquet                                   | Spark's Parquet reader             |

Every reader returns the file's columns as text, named by its header, plus `_raw_record` (the
line, for a line that does not fit the header; null otherwise), so bronze treats every kind the
same way. A file without a header line is read when the column mapping names its columns by
position, Spark's way: `_c0`, `_c1`, ...

An Excel workbook is parsed where the data is, by the executors, one file per task from its
bytes (`binaryFile`), streaming its rows in read-only mode: the driver never holds a workbook.
Every sheet is read, each with its own header (or only the `--sheet` one); a row's sheet is kept
in `_extra_columns` as `_sheet`. Cells become text the way the CSV export would write them:
dates as `yyyy-MM-dd HH:mm:ss`, whole numbers without `.0`.
"""

from __future__ import annotations

import datetime as dt
import enum
import io
from collections.abc import Iterator

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from retail_segmentation.bronze.columns import WHITESPACE
from retail_segmentation.common.errors import IngestError

CORRUPT_COLUMN = "_raw_record"
SHEET_COLUMN = "_sheet"
_DELIMITERS = (",", ";", "\t", "|")


class FileKind(str, enum.Enum):
    """What a landed file is, from its name."""

    DELIMITED = "delimited"
    EXCEL = "excel"
    PARQUET = "parquet"


_SUFFIXES: tuple[tuple[str, FileKind], ...] = (
    (".csv", FileKind.DELIMITED),
    (".tsv", FileKind.DELIMITED),
    (".txt", FileKind.DELIMITED),
    (".dat", FileKind.DELIMITED),
    (".xlsx", FileKind.EXCEL),
    (".xlsm", FileKind.EXCEL),
    (".parquet", FileKind.PARQUET),
)
READABLE_SUFFIXES = ", ".join(
    [s for s, k in _SUFFIXES] + [f"{s}.gz" for s, k in _SUFFIXES if k is FileKind.DELIMITED]
)


def file_kind(path: str) -> FileKind | None:
    """The kind of a file from its name (case-insensitive; `.gz` on delimited text), or None."""
    name = path.rsplit("/", 1)[-1].lower()
    for suffix, kind in _SUFFIXES:
        if name.endswith(suffix) or (kind is FileKind.DELIMITED and name.endswith(suffix + ".gz")):
            return kind
    return None


def detect_delimiter(header_line: str) -> str:
    """The candidate separator that splits the header line most often (comma on a tie), or
    WHITESPACE when none occurs and runs of spaces split the line."""
    counts = {d: header_line.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: (counts[d], d == ","))
    if counts[best] > 0:
        return best
    return WHITESPACE if len(header_line.split()) > 1 else ","


def split_header(line: str, delimiter: str) -> list[str]:
    """The header cells of a delimited or whitespace-aligned first line."""
    if delimiter == WHITESPACE:
        return line.split()
    # Header cells may be quoted; they never contain the delimiter in practice.
    return [cell.strip().strip('"').strip() for cell in line.split(delimiter)]


def first_line(spark: SparkSession, path: str) -> str | None:
    """The file's first line (gzip is decompressed by name), without a byte-order mark."""
    first = spark.read.text(path).limit(1).collect()
    return first[0][0].lstrip("\ufeff") if first else None


def read_delimited(
    spark: SparkSession,
    path: str,
    header: list[str],
    delimiter: str,
    encoding: str,
    has_header: bool,
) -> DataFrame:
    """A CSV-like file read as text columns named `header`; a line that does not parse into
    them keeps its text in `_raw_record`."""
    schema = T.StructType(
        [T.StructField(h, T.StringType()) for h in header]
        + [T.StructField(CORRUPT_COLUMN, T.StringType())]
    )
    return (
        spark.read.schema(schema)
        .option("header", has_header)
        .option("enforceSchema", "true")
        .option("sep", delimiter)
        .option("encoding", encoding)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT_COLUMN)
        .option("multiLine", "false")
        .csv(path)
    )


def read_whitespace(
    spark: SparkSession, path: str, header: list[str], encoding: str, has_header: bool
) -> DataFrame:
    """A whitespace-aligned text file: each line split on runs of blanks into `header`'s
    columns; a line with another number of fields keeps its text in `_raw_record`."""
    lines = (
        spark.read.schema("line string")
        .option("header", has_header)
        .option("sep", "\u0001")  # never in a text export: each line is one value
        .option("quote", "")
        .option("encoding", encoding)
        .csv(path)
    )
    cells = F.split(F.regexp_replace(F.col("line"), r"^\s+|\s+$", ""), r"\s+")
    fits = F.size(cells) == len(header)
    return lines.where(F.col("line").rlike(r"\S")).select(
        *[
            F.when(fits, F.try_element_at(cells, F.lit(i + 1))).alias(h)
            for i, h in enumerate(header)
        ],
        F.when(~fits, F.col("line")).alias(CORRUPT_COLUMN),
    )


def _as_text(column: str, data_type: T.DataType) -> Column:
    value = F.col(f"`{column}`")
    if isinstance(data_type, (T.DoubleType, T.FloatType)):
        # Spark writes 1e7 and more in scientific notation; whole numbers lose their ".0".
        whole = (value == F.floor(value)) & (F.abs(value) < 1e15)
        return F.when(whole, value.cast("long").cast("string")).otherwise(value.cast("string"))
    if isinstance(data_type, (T.ArrayType, T.MapType, T.StructType)):
        return F.to_json(value)
    return value.cast("string")


def read_parquet(spark: SparkSession, path: str) -> tuple[DataFrame, list[str]]:
    """A Parquet file's columns as text, and its column names (the header)."""
    df = spark.read.parquet(path)
    header = df.columns
    return (
        df.select(
            *[_as_text(f.name, f.dataType).alias(f.name) for f in df.schema.fields],
            F.lit(None).cast("string").alias(CORRUPT_COLUMN),
        ),
        header,
    )


# --- Excel ------------------------------------------------------------------------------------

_HEADER_SCHEMA = "sheet string, header_row long, header array<string>"
_ROWS_SCHEMA = "sheet string, row long, cells array<string>"
_CHUNK_ROWS = 5_000


def cell_text(value: object) -> str | None:
    """A cell as its CSV export would write it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.replace(microsecond=0).isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    text = str(value)
    return text if text.strip() else None


def _sheets(content: bytes, sheet: str | None):
    import openpyxl  # on the executors

    workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    try:
        names = [sheet] if sheet is not None and sheet in workbook.sheetnames else []
        if sheet is None:
            names = list(workbook.sheetnames)
        for name in names:
            yield name, workbook[name].iter_rows(values_only=True)
    finally:
        workbook.close()


def _rows_with_cells(rows) -> Iterator[tuple[int, list[str | None]]]:
    for number, values in enumerate(rows, start=1):
        cells = [cell_text(v) for v in values]
        if any(c is not None for c in cells):
            yield number, cells


def _excel_headers(sheet: str | None):
    def headers(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for content in batch["content"]:
                for name, rows in _sheets(content, sheet):
                    for number, cells in _rows_with_cells(rows):
                        while cells and cells[-1] is None:
                            cells.pop()
                        yield pd.DataFrame(
                            {"sheet": [name], "header_row": [number], "header": [cells]}
                        )
                        break

    return headers


def _excel_rows(sheet: str | None):
    def rows_of(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for content in batch["content"]:
                for name, rows in _sheets(content, sheet):
                    chunk: list[tuple[int, list[str | None]]] = []
                    for number, cells in _rows_with_cells(rows):
                        chunk.append((number, cells))
                        if len(chunk) == _CHUNK_ROWS:
                            yield _rows_frame(name, chunk)
                            chunk = []
                    if chunk:
                        yield _rows_frame(name, chunk)

    return rows_of


def _rows_frame(sheet: str, chunk: list[tuple[int, list[str | None]]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sheet": [sheet] * len(chunk),
            "row": [n for n, _ in chunk],
            "cells": [c for _, c in chunk],
        }
    )


def read_excel(
    spark: SparkSession, path: str, sheet: str | None
) -> list[tuple[str, DataFrame, list[str]]]:
    """(sheet, text columns named by the sheet's header plus `_sheet`, header) per sheet with
    data; cells beyond the header that hold a value make the row's `_raw_record`.

    Raises:
        IngestError: `sheet` is not in the workbook, or a sheet's header has blank or
            duplicate names.
    """
    content_df = spark.read.format("binaryFile").load(path).select("content")
    headers = (
        content_df.mapInPandas(_excel_headers(sheet), _HEADER_SCHEMA).orderBy("sheet").collect()
    )
    if sheet is not None and not headers:
        raise IngestError(
            f"{path}: no sheet named {sheet!r} with data; check --sheet (sheet names are "
            "case-sensitive)"
        )
    rows_df = content_df.mapInPandas(_excel_rows(sheet), _ROWS_SCHEMA)
    frames = []
    for row in headers:
        header = [h.strip() if h else "" for h in row["header"]]
        if "" in header or len(set(header)) != len(header):
            raise IngestError(
                f"{path}, sheet {row['sheet']!r}: the header row {row['header_row']} has blank "
                f"or duplicate names {header}; expected one name per column"
            )
        cells = F.col("cells")
        extra = F.filter(F.slice(cells, len(header) + 1, 1 << 20), lambda c: c.isNotNull())
        raw = F.when(F.size(extra) > 0, F.array_join(cells, "\t", ""))
        frames.append(
            (
                row["sheet"],
                rows_df.where(
                    (F.col("sheet") == row["sheet"]) & (F.col("row") > row["header_row"])
                ).select(
                    *[F.try_element_at(cells, F.lit(i + 1)).alias(h) for i, h in enumerate(header)],
                    F.col("sheet").alias(SHEET_COLUMN),
                    raw.alias(CORRUPT_COLUMN),
                ),
                header,
            )
        )
    return frames
