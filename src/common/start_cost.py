"""`retail-seg benchmark-start`: what a local Spark start costs with and without the JVM
class archive (`class_archive.py`), each in a new process, the two alternated.

Per start: the seconds until `local_spark` returns a session (the JVM started, Spark and
Delta set up), then the seconds of a first small Delta write and read (the classes a task's
first commit needs), and the whole process's wall time.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from retail_segmentation.common import class_archive

HEADER = f"{'class archive':<14} {'session s':>10} {'first Delta s':>14} {'process s':>10}"

# Run in a new process: prints one JSON line with its timings.
_START = """
import json, sys, time
started = time.perf_counter()
from retail_segmentation.common.spark import local_spark
spark = local_spark(app_name="retail-seg-benchmark-start", warehouse_dir=sys.argv[1] + "/warehouse")
session = time.perf_counter()
spark.range(100).write.format("delta").save(sys.argv[1] + "/t")
assert spark.read.format("delta").load(sys.argv[1] + "/t").count() == 100
delta = time.perf_counter()
spark.stop()
print(json.dumps({"session_s": session - started, "first_delta_s": delta - session}))
"""


def _start(mode: str, folder: Path) -> dict[str, float]:
    from retail_segmentation.common.spark import run_python

    began = time.perf_counter()
    result = run_python(_START, str(folder), env={class_archive.ENV: mode})
    wall = time.perf_counter() - began
    if result.returncode != 0:
        raise RuntimeError(f"the start with the class archive {mode} failed:\n{result.stderr}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    return {**figures, "process_s": wall}


def run_benchmark(
    repeat: int = 3, work_dir: str | None = None, echo: bool = False
) -> dict[str, list[dict[str, float]]]:
    """`repeat` starts with the archive and as many without, alternated (which goes first
    alternates too); builds the archive first if needed. The figures per mode."""
    from retail_segmentation.common.spark import prepare_local_jvm

    prepare_local_jvm()
    root = Path(work_dir or tempfile.mkdtemp(prefix="retail-seg-start-"))
    shutil.rmtree(root, ignore_errors=True)
    figures: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    for i in range(repeat):
        for mode in ("on", "off") if i % 2 == 0 else ("off", "on"):
            run = _start(mode, root / f"{mode}-{i}")
            figures[mode].append(run)
            if echo:
                print(
                    f"{mode:<14} {run['session_s']:>10.2f} {run['first_delta_s']:>14.2f} "
                    f"{run['process_s']:>10.2f}",
                    flush=True,
                )
    if echo:
        for mode, runs in figures.items():
            print(
                f"{mode + ' (median)':<14} "
                f"{statistics.median(r['session_s'] for r in runs):>10.2f} "
                f"{statistics.median(r['first_delta_s'] for r in runs):>14.2f} "
                f"{statistics.median(r['process_s'] for r in runs):>10.2f}"
            )
    shutil.rmtree(root, ignore_errors=True)
    return figures


def write_json(figures: dict[str, list[dict[str, float]]], path: str) -> None:
    """The figures, with the machine's cores, for docs/benchmarks/."""
    Path(path).write_text(
        json.dumps({"cores": os.cpu_count(), "starts": figures}, indent=2) + "\n",
        encoding="utf-8",
    )
