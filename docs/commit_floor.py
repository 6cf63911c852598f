"""What the daily benchmark's second run would cost if its tasks computed nothing: each of its
Delta commits redone, with the rows it wrote already in memory.

    .venv/bin/retail-seg benchmark --daily --work-dir /tmp/daily --json /tmp/daily.json
    .venv/bin/python docs/commit_floor.py /tmp/daily /tmp/daily.json [--rounds 3]

The benchmark's JSON names each table's version before the second run; every later commit in
the tables' logs is the second run's. On a copy of the tables, each commit is redone the way
it was made, in the same order, from a source read from the table and held in memory first
(the time starts after that): an append of as many rows, a `replaceWhere` overwrite with the
same predicate and the rows it matches, a whole overwrite with the table's rows, a MERGE of as
many source rows on the same condition. Maintenance commits (OPTIMIZE) are listed, not redone.
Each round redoes them all; per commit the median of the rounds counts (the first round is the
JVM's first writes). The report gives, per task, its seconds in the second run, its commits'
floor and the rest: what reading, computing and planning cost.

Figures in BENCHMARKS.md ("A day's file after 1,067,371 lines", the commits' floor) come from
this script.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from retail_segmentation.benchmark import BENCH_SCHEMA
from retail_segmentation.common import delta_log
from retail_segmentation.common.spark import get_spark
from retail_segmentation.common.tables import PIPELINE_LEDGER

WHOLE_OVERWRITES = ("CREATE OR REPLACE TABLE AS SELECT", "REPLACE TABLE AS SELECT")


@dataclass
class Commit:
    """One commit of the second run, and the seconds of each redo."""

    table: str
    version: int
    operation: str
    parameters: dict[str, str | None]
    metrics: dict[str, object]
    task: str
    timestamp: int
    seconds: list[float] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """append, replaceWhere, overwrite, merge, or the operation when it is not redone."""
        mode = self.parameters.get("mode")
        if self.operation == "WRITE" and mode == "Append":
            return "append"
        if self.operation == "WRITE" and mode == "Overwrite":
            return "replaceWhere" if self.predicate() else "overwrite"
        if self.operation in WHOLE_OVERWRITES:
            return "overwrite"
        if self.operation == "MERGE":
            return "merge"
        return self.operation

    def predicate(self) -> str | None:
        """The write's predicate, its parts joined by AND; None for a whole overwrite."""
        raw = self.parameters.get("predicate")
        if not raw or raw == "[]":
            return None
        parts = json.loads(raw) if raw.startswith("[") else [raw]
        return " AND ".join(f"({p})" for p in parts)

    def rows(self) -> int:
        """Rows the commit wrote."""
        return delta_log.operation_rows(self.operation, self.metrics)


def second_run_commits(tables_dir: Path, figures: dict) -> list[Commit]:
    """The commits after `versions_before_second_run`, oldest first, each named by the task
    that made it: the task whose rows_written lists the table, or for the ledger, the task
    its run id starts with."""
    before = figures["versions_before_second_run"]
    task_of = {t: run["task"] for run in figures["second"] for t in run["rows_written"]}
    commits = []
    for table, latest in delta_log.table_versions(tables_dir).items():
        files = delta_log.commit_files(tables_dir / table)
        for version in range(before.get(table, -1) + 1, latest + 1):
            info = delta_log.commit_info(files[version])
            parameters = delta_log.operation_parameters(info)
            task = task_of.get(table, "?")
            if table == PIPELINE_LEDGER:
                # the upsert's predicate names its run ids, which start with the task's key
                _, marker, run_id = (parameters.get("predicate") or "").partition("run_id = '")
                task = run_id.split(":", 1)[0] if marker else "?"
            commits.append(
                Commit(
                    table,
                    version,
                    info.get("operation", ""),
                    parameters,
                    info.get("operationMetrics") or {},
                    task,
                    int(info.get("timestamp", 0)),
                )
            )
    return sorted(commits, key=lambda c: (c.timestamp, c.table))


def redo(spark, path: Path, commit: Commit) -> float | None:
    """Seconds to make `commit` again on the table at `path`; None when it is not redone."""
    table = spark.read.format("delta").load(str(path))
    kind = commit.kind
    if kind == "replaceWhere":
        source = table.where(commit.predicate())
    elif kind == "overwrite":
        source = table
    elif kind in ("append", "merge"):
        source = table.limit(max(commit.rows(), 1))
    else:
        return None
    source = source.localCheckpoint()  # read and held before the clock starts
    start = time.perf_counter()
    writer = source.write.format("delta")
    if kind == "append":
        writer.mode("append").save(str(path))
    elif kind == "replaceWhere":
        writer.mode("overwrite").option("replaceWhere", commit.predicate()).save(str(path))
    elif kind == "overwrite":
        writer.mode("overwrite").save(str(path))
    else:
        condition = json.loads(commit.parameters["predicate"] or '[""]')
        source.createOrReplaceTempView("commit_floor_source")
        spark.sql(
            f"MERGE INTO delta.`{path}` AS t USING commit_floor_source AS s ON "
            f"{' AND '.join(condition)} WHEN MATCHED THEN UPDATE SET * "
            "WHEN NOT MATCHED THEN INSERT *"
        )
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work_dir", help="the daily benchmark's --work-dir")
    parser.add_argument("figures", help="the daily benchmark's --json")
    parser.add_argument("--rounds", type=int, default=3, help="default: 3")
    args = parser.parse_args(argv)
    figures = json.loads(Path(args.figures).read_text("utf-8"))
    if "versions_before_second_run" not in figures:
        print(
            f"{args.figures}: not a daily benchmark's JSON (no versions_before_second_run)",
            file=sys.stderr,
        )
        return 2
    tables_dir = Path(args.work_dir) / "tables" / BENCH_SCHEMA
    if not tables_dir.is_dir():
        print(f"{args.work_dir}: no benchmark tables in {tables_dir}", file=sys.stderr)
        return 2
    commits = second_run_commits(tables_dir, figures)
    copy = Path(args.work_dir) / "commit-floor" / BENCH_SCHEMA
    shutil.rmtree(copy.parent, ignore_errors=True)
    shutil.copytree(tables_dir, copy)
    spark = get_spark(warehouse_dir=str(copy.parent / "spark-warehouse"))
    for _ in range(args.rounds):
        for commit in commits:
            seconds = redo(spark, copy / commit.table, commit)
            if seconds is not None:
                commit.seconds.append(seconds)

    print(f"{'task':<10} {'table':<30} {'version':>7} {'kind':<13} {'rows':>8} {'median s':>9}")
    for c in commits:
        median = f"{statistics.median(c.seconds):.2f}" if c.seconds else "not redone"
        print(f"{c.task:<10} {c.table:<30} {c.version:>7} {c.kind:<13} {c.rows():>8,} {median:>9}")
    print()
    print(f"{'task':<10} {'2nd run s':>9} {'commits':>7} {'floor s':>8} {'rest s':>7}")
    floor_total = 0.0
    for run in figures["second"]:
        own = [c for c in commits if c.task == run["task"] and c.seconds]
        floor = sum(statistics.median(c.seconds) for c in own)
        floor_total += floor
        rest = run["seconds"] - floor
        print(f"{run['task']:<10} {run['seconds']:>9.1f} {len(own):>7} {floor:>8.2f} {rest:>7.1f}")
    first, second = figures["totals"]["first_seconds"], figures["totals"]["second_seconds"]
    print(
        f"the second run's {sum(1 for c in commits if c.seconds)} commits, redone: "
        f"{floor_total:.1f} s = {floor_total / first:.1%} of the first run ({first} s); "
        f"the second run took {second} s ({second / first:.1%})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
