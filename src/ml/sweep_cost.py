"""`retail-seg benchmark-sweep`: what the sweep costs per engine as the customers grow, and
what the same 14 fits cost in a plain scikit-learn loop.

The command builds the gold tables once from generated lines (bronze -> silver -> gold with
the local runner), then for each customer count writes a scaled copy of the two tables the
sweep reads (`scaled_customers`) and times `run_sweep` with each engine asked for, MLflow
logging included, and a plain scikit-learn loop over the same candidates on the same
features (`plain_sklearn_seconds`): what a data scientist would write in a notebook, with
the standard silhouette on the same sample of customers. Figures come from this command,
never from timed tests.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from retail_segmentation.common.config import TableConfig
from retail_segmentation.common.errors import ConfigError
from retail_segmentation.common.tables import GOLD_CUSTOMER_BEHAVIOR, GOLD_CUSTOMER_RFM, Lakehouse
from retail_segmentation.ml import measures
from retail_segmentation.ml.clustering import ENGINES, GMM, KMEANS, SweepParams
from retail_segmentation.ml.silhouette_cost import parse_counts

DEFAULT_CUSTOMERS = (240, 5_000, 55_000, 500_000)
DEFAULT_ROWS = 50_000  # generated lines the gold tables are built from (240 customers)
# Each copy of a customer moves its measures by at most this share, so copies are near, not on,
# each other (identical points would flatter every silhouette).
JITTER = 0.05


@dataclass(frozen=True)
class SweepCost:
    """One customer count: seconds per engine (None when not run) and the plain loop."""

    customers: int
    engine_seconds: dict[str, float | None]
    plain_seconds: float
    winners: dict[str, str]

    def ratio(self, engine: str) -> float | None:
        """The engine's sweep time over the plain loop's."""
        seconds = self.engine_seconds.get(engine)
        return None if seconds is None else seconds / self.plain_seconds


def scaled_customers(df: DataFrame, customers: int, seed: int = 42) -> DataFrame:
    """`customers` rows drawn from the one-row-per-customer `df`: copy i of customer c is
    `c` (i = 0, values unchanged) or `c~i`, its numeric columns scaled by a seeded factor in
    [1 - JITTER, 1 + JITTER] (integers rounded back); the rows kept are the first
    `customers` by (copy, hash of the id), so every count below the source's is a sample of
    it and every count above holds all of it."""
    source_rows = df.count()
    if source_rows == 0:
        raise ConfigError("the source customer table is empty: nothing to scale")
    copies = math.ceil(customers / source_rows)
    copy = F.col("_copy")
    numeric = {
        f.name: f.dataType.simpleString()
        for f in df.schema.fields
        if f.dataType.typeName() in ("integer", "long", "double", "float", "decimal")
    }

    def jittered(name: str, kind: str):
        u = F.abs(F.xxhash64(F.col("customer_id"), copy, F.lit(name), F.lit(seed))) % 1_000_001
        factor = 1 - JITTER + 2 * JITTER * u / 1_000_000
        value = F.col(name) * F.when(copy == 0, F.lit(1.0)).otherwise(factor)
        if kind in ("int", "bigint"):
            value = F.round(value)
        return value.cast(kind).alias(name)

    expanded = df.withColumn("_copy", F.explode(F.sequence(F.lit(0), F.lit(copies - 1))))
    ranked = expanded.withColumn("_order", F.xxhash64(F.col("customer_id"), F.lit(seed)))
    kept = ranked.orderBy("_copy", "_order", "customer_id").limit(customers)
    return kept.select(
        *[
            F.when(copy == 0, F.col(f.name))
            .otherwise(F.concat(F.col(f.name), F.lit("~"), copy.cast("string")))
            .alias(f.name)
            if f.name == "customer_id"
            else jittered(f.name, numeric[f.name])
            if f.name in numeric
            else F.col(f.name)
            for f in df.schema.fields
        ]
    )


def plain_sklearn_seconds(input_pdf: pd.DataFrame, params: SweepParams) -> tuple[float, str]:
    """A notebook's sweep: the same features, the same candidates, scikit-learn's own
    silhouette_score on the same sample of customers; (seconds, best candidate)."""
    from sklearn.metrics import silhouette_score

    from retail_segmentation.ml.sklearn_engine import estimator, fit_features

    start = time.perf_counter()
    features = fit_features(input_pdf, params).transform(input_pdf)
    sample = measures.sample_positions(input_pdf["customer_id"].tolist())
    best = ("", -2.0)
    for algorithm in params.algorithms:
        for k in params.ks:
            labels = estimator(algorithm, k, params).fit(features).predict(features)
            if len(set(labels[sample].tolist())) > 1:
                score = float(silhouette_score(features[sample], labels[sample]))
                if score > best[1]:
                    best = (f"{algorithm}-k{k}", score)
    return time.perf_counter() - start, f"{best[0]} ({best[1]:.4f})"


def parse_customers(text: str, parameter: str = "customers") -> list[int]:
    """`240,5000` -> [240, 5000], sorted; raises ConfigError naming the parameter otherwise."""
    return sorted(parse_counts(text, 30, "240,5000,55000,500000", parameter))


def parse_engines(text: str) -> list[str]:
    """`sklearn,spark` -> the engines; raises ConfigError naming the parameter otherwise."""
    engines = [part.strip() for part in text.split(",") if part.strip()]
    if not engines or any(e not in ENGINES for e in engines):
        raise ConfigError(
            f"parameter engines={text!r} is not valid: expected a comma-separated subset of "
            f"{', '.join(ENGINES)}"
        )
    return engines


HEADER = (
    f"{'customers':>10} {'sklearn s':>10} {'spark s':>9} {'plain s':>8} {'sklearn/plain':>14} "
    f"{'spark/plain':>12}  winners"
)


def row(cost: SweepCost) -> str:
    """One line of the printed table (see HEADER)."""

    def seconds(engine: str) -> str:
        value = cost.engine_seconds.get(engine)
        return "-" if value is None else f"{value:.1f}"

    def ratio(engine: str) -> str:
        value = cost.ratio(engine)
        return "-" if value is None else f"{value:.1f}x"

    winners = "; ".join(f"{engine}: {w}" for engine, w in cost.winners.items())
    return (
        f"{cost.customers:>10,} {seconds('sklearn'):>10} {seconds('spark'):>9} "
        f"{cost.plain_seconds:>8.1f} {ratio('sklearn'):>14} {ratio('spark'):>12}  {winners}"
    )


def generated_gold(root: Path, rows: int, schema: str) -> Lakehouse:
    """`root` emptied, `rows` generated lines landed in it and built to gold in `schema`
    (bronze -> silver -> gold): the customers the benchmarks scale."""
    from retail_segmentation.bronze.columns import SourceFormat
    from retail_segmentation.bronze.task import BronzeConfig, ingest_bronze
    from retail_segmentation.common.spark import get_spark
    from retail_segmentation.data.generator import GeneratorConfig, write_dataset
    from retail_segmentation.gold.task import GoldConfig, build_gold
    from retail_segmentation.silver.task import SilverConfig, build_silver

    shutil.rmtree(root, ignore_errors=True)
    spark = get_spark(warehouse_dir=str(root / "spark-warehouse"))
    write_dataset(spark, GeneratorConfig(rows=rows), str(root / "landing"))
    tables = TableConfig(schema=schema, lakehouse_dir=str(root / "lakehouse"))
    lakehouse = Lakehouse.attach(spark, tables)
    landing = str(root / "landing" / "transactions")
    ingest_bronze(spark, lakehouse, BronzeConfig(landing, SourceFormat(), tables))
    build_silver(spark, lakehouse, SilverConfig(tables=tables))
    build_gold(spark, lakehouse, GoldConfig(tables=tables))
    return lakehouse


def run_benchmark(
    customers: Sequence[int] = DEFAULT_CUSTOMERS,
    engines: Sequence[str] = ENGINES,
    spark_customers: Sequence[int] | None = None,
    rows: int = DEFAULT_ROWS,
    work_dir: str | None = None,
    echo: bool = False,
) -> list[SweepCost]:
    """Build gold from `rows` generated lines, then time each engine (Spark MLlib only at the
    counts of `spark_customers`, when given) and the plain loop at each customer count."""
    from retail_segmentation.ml.features import customer_features_input
    from retail_segmentation.ml.sweep import SweepConfig, run_sweep
    from retail_segmentation.ml.tracking import MlflowConfig

    root = Path(work_dir or tempfile.mkdtemp(prefix="retail-seg-sweep-bench-")).absolute()
    source_lakehouse = generated_gold(root, rows, "sweep_bench_source")
    spark = source_lakehouse.spark
    params = SweepParams()
    figures = []
    for n in customers:
        tables = TableConfig(schema=f"sweep_bench_{n}", lakehouse_dir=str(root / "lakehouse"))
        lakehouse = Lakehouse.attach(spark, tables)
        for table in (GOLD_CUSTOMER_RFM, GOLD_CUSTOMER_BEHAVIOR):
            lakehouse.overwrite(scaled_customers(source_lakehouse.read(table), n), table)
        mlflow_config = MlflowConfig.for_tables(tables, f"sweep_bench_{n}")
        seconds: dict[str, float | None] = {}
        winners: dict[str, str] = {}
        for engine in engines:
            if engine == "spark" and spark_customers is not None and n not in spark_customers:
                seconds[engine] = None
                continue
            # retrain: it times the fits, so the retraining policy never skips them
            config = SweepConfig(tables, mlflow_config, params, engine=engine, retrain=True)
            start = time.perf_counter()
            outcome = run_sweep(spark, lakehouse, config)
            seconds[engine] = time.perf_counter() - start
            winners[engine] = f"{outcome.winner.name} ({outcome.winner.silhouette:.4f})"
        input_pdf = (
            customer_features_input(
                lakehouse.read(GOLD_CUSTOMER_RFM), lakehouse.read(GOLD_CUSTOMER_BEHAVIOR)
            )
            .select("customer_id", *params.features.input_columns)
            .orderBy("customer_id")
            .toPandas()
        )
        plain, winners["plain"] = plain_sklearn_seconds(input_pdf, params)
        figures.append(SweepCost(n, seconds, plain, winners))
        if echo:
            print(row(figures[-1]), flush=True)
    return figures


def write_json(figures: Sequence[SweepCost], json_path: str, rows: int = DEFAULT_ROWS) -> None:
    """The figures and how they were made, as JSON (docs/benchmarks/sweep-cost.json)."""
    import sklearn

    payload = {
        "generated_rows": rows,
        "jitter": JITTER,
        "candidates": f"{', '.join((KMEANS, GMM))} x k 2..8",
        "silhouette_sample_size": measures.SILHOUETTE_SAMPLE_SIZE,
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
        },
        "figures": [
            {**asdict(f), "ratios": {e: f.ratio(e) for e in f.engine_seconds}} for f in figures
        ],
    }
    Path(json_path).parent.mkdir(parents=True, exist_ok=True)
    Path(json_path).write_text(json.dumps(payload, indent=2) + "\n")
