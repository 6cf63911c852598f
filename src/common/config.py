"""Validated parameters shared by every task: names that reach SQL, dates, paths."""

from __future__ import annotations

import argparse
import datetime as dt
import re
from dataclasses import dataclass

from retail_segmentation.common.errors import ConfigError

# Unity Catalog identifiers are broader, but names that arrive as parameters are kept to
# the portable subset so they can be spliced into SQL without quoting games.
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")


def validate_identifier(value: str, parameter: str) -> str:
    """Return `value` if it is a safe catalog/schema/table name, else raise ConfigError."""
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise ConfigError(
            f"parameter {parameter}={value!r} is not a valid name: expected letters, digits and "
            "underscores, starting with a letter or underscore (at most 255 characters)"
        )
    return value


def parse_date(value: str, parameter: str) -> dt.date:
    """Parse an ISO date (YYYY-MM-DD) given as a parameter."""
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"parameter {parameter}={value!r} is not a date: expected YYYY-MM-DD"
        ) from None


@dataclass(frozen=True)
class TableConfig:
    """Where tables live: `catalog.schema.table` on Databricks, `schema.table` under the
    local lakehouse folder on a laptop."""

    catalog: str = "main"
    schema: str = "retail"
    lakehouse_dir: str = ".lakehouse"

    def __post_init__(self) -> None:
        validate_identifier(self.catalog, "catalog")
        validate_identifier(self.schema, "schema")


def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the --catalog/--schema/--lakehouse-dir options every task accepts."""
    parser.add_argument(
        "--catalog", default="main", help="Unity Catalog catalog (Databricks only; default: main)"
    )
    parser.add_argument(
        "--schema", default="retail", help="schema holding every table (default: retail)"
    )
    parser.add_argument(
        "--lakehouse-dir",
        default=".lakehouse",
        help="local folder of Delta tables and landing files (laptop only; default: .lakehouse)",
    )


def table_config_from_args(args: argparse.Namespace) -> TableConfig:
    """Build the TableConfig from parsed task arguments."""
    return TableConfig(catalog=args.catalog, schema=args.schema, lakehouse_dir=args.lakehouse_dir)


# Tasks a local run starts at once when their dependencies allow: after gold the job's graph
# has two branches (sweep -> register -> score, and recommend), which the deployed job runs
# side by side; 1 runs one task after another.
DEFAULT_PARALLEL_TASKS = 2


def parallel_tasks(value: str) -> int:
    """The value of --parallel-tasks: a whole number >= 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a whole number of tasks >= 1")
    return number


def add_parallel_argument(
    parser: argparse.ArgumentParser, default: int = DEFAULT_PARALLEL_TASKS, note: str = ""
) -> None:
    """--parallel-tasks, for every command that runs the job graph locally."""
    parser.add_argument(
        "--parallel-tasks",
        type=parallel_tasks,
        default=default,
        help="tasks run at once when the job's dependencies allow, in threads sharing one "
        f"Spark session; 1 runs them one after another{note} (default: {default})",
    )
