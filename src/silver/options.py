"""Silver's cleaning options and their defaults, importable without Spark (the CLI builds its
parser from them before a session starts)."""

from __future__ import annotations

import argparse
import re

from retail_segmentation.common.errors import ConfigError

# What R, pandas, Excel and databases write for a missing value. Compared case-insensitively
# after trimming, in every column: `NA`, `nan`, ` null ` and a blank cell all become null.
DEFAULT_NULL_TOKENS: tuple[str, ...] = ("NA", "N/A", "#N/A", "NaN", "NULL", "None", "-")

# Letters Spark's datetime patterns know; any other letter outside quotes is an error there.
_PATTERN_LETTERS = set("GyuDMLdQqEFaBhKkHmsSVzOXxZe")


def validate_date_format(pattern: str) -> str:
    """A Spark datetime pattern, e.g. `d/M/yyyy H:mm`, checked before it reaches Spark.

    Raises:
        ConfigError: empty, or a letter Spark's patterns do not define.
    """
    unquoted = re.sub(r"'[^']*'", "", pattern)
    unknown = sorted({c for c in unquoted if c.isalpha() and c not in _PATTERN_LETTERS})
    if not pattern.strip() or unknown or not any(c in unquoted for c in "yu"):
        raise ConfigError(
            f"parameter date_format={pattern!r}: expected a Spark datetime pattern with a year, "
            "e.g. 'd/M/yyyy H:mm', 'yyyyMMdd' or 'yyyy-MM-dd HH:mm:ss'"
            + (f" (unknown pattern letters {unknown})" if unknown else "")
        )
    return pattern


def add_cleaning_arguments(parser: argparse.ArgumentParser) -> None:
    """--date-format and --null-tokens, shared by the silver task and `retail-seg run`."""
    parser.add_argument(
        "--date-format",
        default="",
        help="Spark datetime pattern of invoice_date, e.g. 'd/M/yyyy H:mm' or 'dd.MM.yy': "
        "tried first on every file, it decides between day-first and month-first (default: "
        "each file's detected among ISO, yyyyMMdd, yyyy/MM/dd, M/d/yyyy and d/M/yyyy forms, "
        "with and without time)",
    )
    parser.add_argument(
        "--null-tokens",
        default=",".join(DEFAULT_NULL_TOKENS),
        help="comma-separated texts that mean a missing value in any column, compared "
        f"case-insensitively (default: {','.join(DEFAULT_NULL_TOKENS)}; blanks always)",
    )


def parse_null_tokens(text: str) -> tuple[str, ...]:
    """`NA,NaN, NULL` -> ('NA', 'NaN', 'NULL'); empty -> only blank cells are missing."""
    return tuple(t.strip() for t in text.split(",") if t.strip())


_TRUE, _FALSE = {"true", "yes", "1"}, {"false", "no", "0", ""}


def parse_flag(text: str, parameter: str) -> bool:
    """A job parameter's true/false (`--refit` alone means true)."""
    value = text.strip().lower()
    if value not in _TRUE | _FALSE:
        raise ConfigError(f"parameter {parameter}={text!r}: expected true or false")
    return value in _TRUE


def add_refit_arguments(parser: argparse.ArgumentParser) -> None:
    """When silver fits its rule parameters again (`silver_rule_parameters`), shared by the
    silver task and `retail-seg run`."""
    parser.add_argument(
        "--refit",
        nargs="?",
        const="true",
        default="false",
        help="fit the IQR bounds and modal prices again on all of bronze and clean every line "
        "with them (a new rule version); true/false, alone: true",
    )
    parser.add_argument(
        "--full-refresh",
        nargs="?",
        const="true",
        default="false",
        help="clean every bronze line again with the current rule version; true/false, alone: true",
    )
    parser.add_argument(
        "--refit-after-days",
        type=int,
        default=30,
        help="refit when new lines are dated this many days after the newest line the rule "
        "version was fitted on (default: 30; 0: never on age)",
    )
    parser.add_argument(
        "--refit-drift",
        type=float,
        default=0.05,
        help="refit when the share of new product lines outside the IQR bounds exceeds the "
        "share at the fit by more than this (default: 0.05; 1: never on drift)",
    )
