"""What a local run wrote, read from the Delta transaction logs of the tables on disk.

Each commit of a Delta table is a JSON file `_delta_log/<version>.json` whose `commitInfo`
action carries the operation's metrics (numOutputRows for writes, the inserted and updated
target rows for a MERGE). Reading those files tells the local runner which tables a task
committed to and how many rows it wrote, without a Spark job and without touching the tasks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from retail_segmentation.common.tables import commit_rows as operation_rows


def _commits(table_dir: Path) -> dict[int, Path]:
    log_dir = table_dir / "_delta_log"
    commits = {}
    for path in log_dir.glob("*.json"):
        if path.stem.isdigit():
            commits[int(path.stem)] = path
    return commits


def table_versions(schema_dir: Path) -> dict[str, int]:
    """Latest committed version of every Delta table under `schema_dir`."""
    versions = {}
    if not schema_dir.is_dir():
        return versions
    for table_dir in sorted(schema_dir.iterdir()):
        commits = _commits(table_dir)
        if commits:
            versions[table_dir.name] = max(commits)
    return versions


def commit_rows(commit_file: Path) -> int:
    """Rows one commit wrote: numOutputRows, or for a MERGE the rows it inserted and updated."""
    for line in commit_file.read_text(encoding="utf-8").splitlines():
        action = json.loads(line) if line.strip() else {}
        info = action.get("commitInfo")
        if info is None:
            continue
        return operation_rows(info.get("operation", ""), info.get("operationMetrics"))
    return 0


def rows_written_since(schema_dir: Path, before: Mapping[str, int]) -> dict[str, int]:
    """Rows written to each table of `schema_dir` by the commits after the versions in
    `before` (a table not in `before` was created since); tables without a new commit are
    left out."""
    written = {}
    for table, latest in table_versions(schema_dir).items():
        first = before.get(table, -1) + 1
        if latest < first:
            continue
        commits = _commits(schema_dir / table)
        written[table] = sum(
            commit_rows(commits[v]) for v in range(first, latest + 1) if v in commits
        )
    return written
