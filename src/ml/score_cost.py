"""`retail-seg benchmark-score`: the score task on many customers, in bounded driver memory.

The command builds gold from generated lines (bronze -> silver -> gold), fits and registers
a champion on it (the scikit-learn engine), then for each customer count writes a scaled
copy of the two customer tables the score task reads (`sweep_cost.scaled_customers`), once
as one file and once as several, and runs the score task (`score_customers`, always in
Spark's Python workers, as above its driver bound) on each:
seconds, the peak resident memory of the Python driver and of the JVM with its Python
workers, and how many customers' segments differ between the two layouts (0: the model
scores a customer the same whichever batch it lands in). Figures come from this command,
never from timed tests.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from pyspark.sql import DataFrame

from retail_segmentation.common.config import TableConfig
from retail_segmentation.common.tables import (
    GOLD_CUSTOMER_BEHAVIOR,
    GOLD_CUSTOMER_RFM,
    GOLD_CUSTOMER_SEGMENTS,
    Lakehouse,
)

DEFAULT_CUSTOMERS = (5_000, 55_000, 500_000)
DEFAULT_ROWS = 50_000
# The layouts each count is scored in: the customer tables as one file, and as several.
LAYOUTS = (1, 8)
# What a customer's score is; the rest of a segments row names the run.
SCORE_COLUMNS = ("customer_id", "segment_id", "persona", "membership_probability")


@dataclass(frozen=True)
class ScoreCost:
    """One customer count in one layout: seconds, peaks (MiB), rows written."""

    customers: int
    files: int
    seconds: float
    python_peak_mib: float | None
    jvm_peak_mib: float | None
    segments_rows: int
    differing_customers: int | None  # against the first layout; None for the first itself


def differing_customers(left: DataFrame, right: DataFrame) -> int:
    """Customers whose score differs between two segments tables (or who are in one only)."""
    a = left.select(*SCORE_COLUMNS)
    b = right.select(*SCORE_COLUMNS)
    return a.exceptAll(b).union(b.exceptAll(a)).select("customer_id").distinct().count()


HEADER = (
    f"{'customers':>10} {'files':>5} {'seconds':>8} {'Python MiB':>10} {'JVM MiB':>8} "
    f"{'segments':>9} {'differ':>7}"
)


def row(cost: ScoreCost) -> str:
    """One line of the printed table (see HEADER)."""

    def mib(value: float | None) -> str:
        return "-" if value is None else f"{value:,.0f}"

    differ = "-" if cost.differing_customers is None else f"{cost.differing_customers:,}"
    return (
        f"{cost.customers:>10,} {cost.files:>5} {cost.seconds:>8.1f} "
        f"{mib(cost.python_peak_mib):>10} {mib(cost.jvm_peak_mib):>8} "
        f"{cost.segments_rows:>9,} {differ:>7}"
    )


def run_benchmark(
    customers: Sequence[int] = DEFAULT_CUSTOMERS,
    rows: int = DEFAULT_ROWS,
    work_dir: str | None = None,
    echo: bool = False,
) -> list[ScoreCost]:
    """Build gold from `rows` generated lines, register a champion on it, then score each
    count of customers in each layout (see the module's docstring)."""
    from retail_segmentation.benchmark import MemorySampler
    from retail_segmentation.ml.clustering import SKLEARN, SweepParams
    from retail_segmentation.ml.registry import RegisterConfig, register_winner
    from retail_segmentation.ml.sweep import SweepConfig, run_sweep
    from retail_segmentation.ml.sweep_cost import generated_gold, scaled_customers
    from retail_segmentation.ml.tasks import score_customers
    from retail_segmentation.ml.tracking import MlflowConfig

    root = Path(work_dir or tempfile.mkdtemp(prefix="retail-seg-score-bench-")).absolute()
    source_lakehouse = generated_gold(root, rows, "score_bench_source")
    spark, source = source_lakehouse.spark, source_lakehouse.config
    mlflow_config = MlflowConfig.for_tables(source, "score_bench")
    run_sweep(
        spark, source_lakehouse, SweepConfig(source, mlflow_config, SweepParams(), engine=SKLEARN)
    )
    register_winner(spark, source_lakehouse, RegisterConfig(source, mlflow_config))

    figures: list[ScoreCost] = []
    with MemorySampler() as sampler:
        for n in customers:
            first: DataFrame | None = None
            for files in LAYOUTS:
                tables = TableConfig(
                    schema=f"score_bench_{n}_{files}", lakehouse_dir=str(root / "lakehouse")
                )
                lakehouse = Lakehouse.attach(spark, tables)
                for table in (GOLD_CUSTOMER_RFM, GOLD_CUSTOMER_BEHAVIOR):
                    scaled = scaled_customers(source_lakehouse.read(table), n)
                    lakehouse.overwrite(scaled.repartition(files), table)
                # the champion of the source schema scores every copy
                start = time.perf_counter()
                with sampler.measure() as peaks:
                    written = score_customers(
                        spark, lakehouse, mlflow_config, force=True, driver_max_customers=0
                    )
                seconds = time.perf_counter() - start
                segments = lakehouse.read(GOLD_CUSTOMER_SEGMENTS)
                differ = None if first is None else differing_customers(first, segments)
                first = segments if first is None else first
                figures.append(
                    ScoreCost(
                        n,
                        files,
                        seconds,
                        peaks["python"],
                        peaks["jvm"],
                        written[GOLD_CUSTOMER_SEGMENTS],  # force: always written
                        differ,
                    )
                )
                if echo:
                    print(row(figures[-1]), flush=True)
    return figures


def write_json(figures: Sequence[ScoreCost], json_path: str, rows: int = DEFAULT_ROWS) -> None:
    """The figures and how they were made, as JSON (docs/benchmarks/score-cost.json)."""
    payload = {
        "generated_rows": rows,
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "figures": [asdict(f) for f in figures],
    }
    Path(json_path).parent.mkdir(parents=True, exist_ok=True)
    Path(json_path).write_text(json.dumps(payload, indent=2) + "\n")
