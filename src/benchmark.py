"""`retail-seg benchmark`: time each task on N generated lines, report rows per second.

Figures come from this command, never from timed tests. It writes into a scratch
lakehouse folder, so it never touches `.lakehouse/`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from retail_segmentation.bronze.columns import SourceFormat
from retail_segmentation.bronze.task import BronzeConfig, ingest_bronze
from retail_segmentation.common.config import TableConfig
from retail_segmentation.common.spark import get_spark
from retail_segmentation.common.tables import (
    GOLD_CUSTOMER_RFM,
    GOLD_CUSTOMER_SEGMENTS,
    Lakehouse,
)
from retail_segmentation.data.generator import GeneratorConfig, write_dataset
from retail_segmentation.gold.task import GoldConfig, build_gold
from retail_segmentation.ml import tasks as ml
from retail_segmentation.ml.clustering import SweepParams
from retail_segmentation.ml.recommend import AlsParams
from retail_segmentation.ml.registry import RegisterConfig, register_winner
from retail_segmentation.ml.sweep import SweepConfig, run_sweep
from retail_segmentation.ml.tracking import MlflowConfig
from retail_segmentation.silver.task import SilverConfig, build_silver


@dataclass(frozen=True)
class TaskTiming:
    """One task's figures."""

    task: str
    seconds: float
    rows_in: int
    rows_out: int

    @property
    def rows_per_second(self) -> float:
        """Input rows per wall-clock second."""
        return self.rows_in / self.seconds if self.seconds else 0.0


def run_benchmark(
    rows: int, seed: int, files: int, work_dir: str | None = None
) -> list[TaskTiming]:
    """Generate `rows` lines, then time every task of the graph on them, in job order."""
    root = Path(work_dir or tempfile.mkdtemp(prefix="retail-seg-bench-"))
    if root.exists():
        shutil.rmtree(root / "tables", ignore_errors=True)
    spark = get_spark(warehouse_dir=str(root / "spark-warehouse"))
    tables = TableConfig(schema="bench", lakehouse_dir=str(root))
    lakehouse = Lakehouse.attach(spark, tables)
    timings: list[TaskTiming] = []

    start = time.perf_counter()
    write_dataset(spark, GeneratorConfig(rows=rows, seed=seed, files=files), str(root / "data"))
    timings.append(TaskTiming("generate", time.perf_counter() - start, rows, rows))

    start = time.perf_counter()
    bronze = ingest_bronze(
        spark, lakehouse, BronzeConfig(str(root / "data" / "transactions"), SourceFormat(), tables)
    )
    timings.append(
        TaskTiming(
            "bronze", time.perf_counter() - start, bronze.rows_ingested, bronze.rows_ingested
        )
    )

    start = time.perf_counter()
    silver = build_silver(spark, lakehouse, SilverConfig(tables=tables))
    timings.append(
        TaskTiming("silver", time.perf_counter() - start, silver.bronze_rows, silver.silver_rows)
    )

    start = time.perf_counter()
    gold = build_gold(spark, lakehouse, GoldConfig(tables=tables))
    customers = gold.rows[GOLD_CUSTOMER_RFM]
    timings.append(TaskTiming("gold", time.perf_counter() - start, silver.silver_rows, customers))

    store = MlflowConfig.for_tables(tables)
    start = time.perf_counter()
    truth = str(root / "data" / "truth" / "customer_profiles.csv")
    sweep = run_sweep(spark, lakehouse, SweepConfig(tables, store, SweepParams(), truth))
    timings.append(TaskTiming("sweep", time.perf_counter() - start, customers, len(sweep.results)))

    start = time.perf_counter()
    register_winner(spark, lakehouse, RegisterConfig(tables, store))
    timings.append(TaskTiming("register", time.perf_counter() - start, 1, 1))

    start = time.perf_counter()
    scored = ml.score_customers(spark, lakehouse, store) or {}
    timings.append(
        TaskTiming(
            "score", time.perf_counter() - start, customers, scored.get(GOLD_CUSTOMER_SEGMENTS, 0)
        )
    )

    start = time.perf_counter()
    recommendations = ml.build_recommendations(lakehouse, AlsParams()) or 0
    timings.append(
        TaskTiming("recommend", time.perf_counter() - start, silver.silver_rows, recommendations)
    )

    start = time.perf_counter()
    offers = ml.build_offers(lakehouse).rows or 0
    timings.append(TaskTiming("offers", time.perf_counter() - start, customers, offers))
    return timings


def report(timings: list[TaskTiming], json_path: str | None) -> str:
    """A printable table; also written as JSON when `json_path` is given."""
    lines = [f"{'task':<10} {'seconds':>9} {'rows in':>12} {'rows out':>12} {'rows/s':>10}"]
    for t in timings:
        lines.append(
            f"{t.task:<10} {t.seconds:>9.1f} {t.rows_in:>12,} {t.rows_out:>12,} "
            f"{t.rows_per_second:>10,.0f}"
        )
    if json_path:
        payload = [{**asdict(t), "rows_per_second": round(t.rows_per_second)} for t in timings]
        Path(json_path).write_text(json.dumps(payload, indent=2) + "\n")
    return "\n".join(lines)
