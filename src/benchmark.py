"""`retail-seg benchmark`: generate N lines, run the bundle's whole job graph on them with the
local runner, and report per task: wall time, rows in and out, rows per second, and the peak
resident memory of the driver's Python process and of its JVM.

With `--daily` it times a day's increment instead: the last 1% of the lines, by day, is held
back; the graph runs on the rest, then again once that day's file has landed.

Figures come from this command, never from timed tests. It writes into a scratch lakehouse
folder, so it never touches `.lakehouse/`. Memory is read from /proc (Linux); elsewhere it is
left out.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import platform
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from retail_segmentation import runner
from retail_segmentation.common import delta_log
from retail_segmentation.common.config import TableConfig
from retail_segmentation.common.errors import ConfigError, IngestError
from retail_segmentation.common.materialize import choose_strategy
from retail_segmentation.common.spark import compute_kind, get_spark
from retail_segmentation.common.tables import (
    BRONZE_TRANSACTIONS,
    GOLD_CUSTOMER_RFM,
    GOLD_CUSTOMER_SEGMENTS,
    SILVER_TRANSACTIONS,
    Lakehouse,
)
from retail_segmentation.data.generator import TRUTH_FILE, GeneratorConfig, write_dataset

BENCH_SCHEMA = "bench"
# Each task's input: the table whose rows it reads (bronze reads the landed lines).
TASK_INPUTS = {
    "silver": BRONZE_TRANSACTIONS,
    "gold": SILVER_TRANSACTIONS,
    "sweep": GOLD_CUSTOMER_RFM,
    "score": GOLD_CUSTOMER_RFM,
    "recommend": SILVER_TRANSACTIONS,
    "offers": GOLD_CUSTOMER_SEGMENTS,
}


@dataclass(frozen=True)
class TaskFigures:
    """One task's figures."""

    task: str
    seconds: float
    rows_in: int
    rows_out: int
    python_peak_mib: float | None = None
    jvm_peak_mib: float | None = None
    note: str = ""

    @property
    def rows_per_second(self) -> float:
        """Input rows per wall-clock second."""
        return self.rows_in / self.seconds if self.seconds else 0.0


def _rss_mib(pid: int) -> float:
    """Resident memory of one process, from /proc/<pid>/status (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _children(pid: int) -> list[int]:
    """Every process below `pid` (the JVM PySpark starts, and anything it starts)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class MemorySampler:
    """Samples, every `interval` seconds in a thread, the resident memory of this process
    (the Python driver) and of its descendants (the JVM); `measure()` gives each block's peaks."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.available = Path(f"/proc/{os.getpid()}/status").is_file()
        self._lock = threading.Lock()
        # the peaks of every block being measured (tasks may run at the same time)
        self._open: list[list[float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def __enter__(self) -> MemorySampler:
        if self.available:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _sample(self) -> None:
        python = _rss_mib(os.getpid())
        jvm = sum(_rss_mib(child) for child in _children(os.getpid()))
        with self._lock:
            for peaks in self._open:
                peaks[0], peaks[1] = max(peaks[0], python), max(peaks[1], jvm)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    @contextmanager
    def measure(self) -> Iterator[dict[str, float | None]]:
        """Peaks of the block, in MiB, filled in when it ends: {"python": ..., "jvm": ...}."""
        peaks: dict[str, float | None] = {"python": None, "jvm": None}
        block = [0.0, 0.0]
        if self.available:
            with self._lock:
                self._open.append(block)
            self._sample()
        try:
            yield peaks
        finally:
            if self.available:
                self._sample()
                with self._lock:  # by identity: two blocks may hold equal peaks
                    self._open = [b for b in self._open if b is not block]
                peaks["python"], peaks["jvm"] = block


def _k_count(k_range: str) -> int:
    low, high = (int(part) for part in k_range.split("..", 1))
    return high - low + 1


def _scratch_lakehouse(
    work_dir: str | None, sweep_engine: str, echo: Callable[[str], None]
) -> tuple[Path, SparkSession, Lakehouse, dict[str, str]]:
    """The scratch folder (emptied of an earlier run), the session, the benchmark's lakehouse
    in it, and the set-up the figures are measured with (printed)."""
    root = Path(work_dir or tempfile.mkdtemp(prefix="retail-seg-bench-")).absolute()
    for stale in ("tables", "mlflow", "data", "spark-warehouse"):
        shutil.rmtree(root / stale, ignore_errors=True)
    spark = get_spark(warehouse_dir=str(root / "spark-warehouse"))
    lakehouse = Lakehouse.attach(spark, TableConfig(schema=BENCH_SCHEMA, lakehouse_dir=str(root)))
    setup = {
        "compute": compute_kind(spark).value,
        "materialize": choose_strategy(spark).value,
        "sweep_engine": sweep_engine,
    }
    echo(", ".join(f"{k}: {v}" for k, v in setup.items()))
    return root, spark, lakehouse, setup


def _run_graph(
    root: Path,
    lakehouse: Lakehouse,
    k_range: str,
    sweep_engine: str,
    echo: Callable[[str], None],
    monitor: Callable[[runner.Task], AbstractContextManager] | None = None,
    parallel: int = 1,
) -> tuple[dict[str, runner.TaskRun], float]:
    """Run the job graph of resources/*.job.yml once on the landing folder root/data/transactions
    with the local runner (`parallel` tasks at once; 1, the default, gives each task's seconds
    alone, `retail-seg run` runs 2); the same call
    gives the same variables and parameters. Returns each task's run and the graph's wall
    seconds (less than the tasks' sum when they overlapped)."""
    bundle = runner.bundle_root()
    variables = runner.bundle_substitutions(bundle)
    variables.update(
        catalog="main",
        schema=BENCH_SCHEMA,
        landing_path=str(root / "data" / "transactions"),
        encoding="UTF-8",
        column_mapping="",
        experiment_name="retail_segmentation",
        sweep_engine=sweep_engine,
    )
    graph = runner.load_job(bundle / "resources")
    parameters = {**graph.parameters, "as_of_date": "", "k_range": k_range}
    start = time.perf_counter()
    runs = runner.run_job(
        graph,
        variables,
        parameters,
        ["--lakehouse-dir", str(root)],
        task_args={"sweep": ["--truth-path", str(root / "data" / TRUTH_FILE)]},
        announce=echo,
        tables_dir=lakehouse.local_root,
        monitor=monitor,
        parallel=parallel,
    )
    return runs, time.perf_counter() - start


def run_benchmark(
    rows: int,
    seed: int = 42,
    files: int = 4,
    work_dir: str | None = None,
    k_range: str = "2..8",
    sweep_engine: str = "auto",
    echo=print,
    parallel: int = 1,
) -> tuple[list[TaskFigures], dict[str, str], float]:
    """Generate `rows` lines into a scratch folder, then run the job graph of
    resources/*.job.yml on them (`parallel` tasks at once), measuring every task; returns the
    figures, the set-up they were measured with (compute kind, materialisation, sweep engine,
    tasks at once) and the graph's wall seconds."""
    figures: list[TaskFigures] = []
    with MemorySampler() as sampler:
        root, spark, lakehouse, setup = _scratch_lakehouse(work_dir, sweep_engine, echo)

        echo(f"[generate] {rows:,} lines into {root / 'data'} ...")
        start = time.perf_counter()
        with sampler.measure() as peaks:
            write_dataset(
                spark, GeneratorConfig(rows=rows, seed=seed, files=files), str(root / "data")
            )
        figures.append(
            TaskFigures(
                "generate", time.perf_counter() - start, rows, rows, peaks["python"], peaks["jvm"]
            )
        )

        task_peaks: dict[str, dict[str, float | None]] = {}

        @contextmanager
        def monitor(task: runner.Task) -> Iterator[None]:
            with sampler.measure() as peaks:
                yield
            task_peaks[task.key] = peaks

        setup["parallel_tasks"] = str(parallel)
        runs, graph_seconds = _run_graph(
            root, lakehouse, k_range, sweep_engine, echo, monitor, parallel
        )

        echo("[peer] pandas + scikit-learn on the same files ...")
        with sampler.measure() as peaks:
            rfm_seconds, sweep_seconds, peer_customers, best = pandas_peer(
                root / "data" / "transactions", k_range
            )
        peer = TaskFigures(
            PEER_TASK,
            rfm_seconds + sweep_seconds,
            rows,
            peer_customers,
            peaks["python"],
            None,
            f"pandas RFM {rfm_seconds:.1f} s + scikit-learn {2 * _k_count(k_range)} fits "
            f"{sweep_seconds:.1f} s, best {best}",
        )

    written = {table: n for run in runs.values() for table, n in run.rows_written.items()}
    fits = 2 * _k_count(k_range)
    for key, run in runs.items():
        rows_in = rows if key == "bronze" else written.get(TASK_INPUTS.get(key, ""), 0)
        rows_out = sum(run.rows_written.values())
        note = (
            ", ".join(f"{t} {n:,}" for t, n in run.rows_written.items())
            if len(run.rows_written) > 1
            else ""
        )
        if key == "sweep":
            rows_out, note = fits, f"{fits} fits (MLflow runs), {_sweep_note(root)}"
        elif key == "register":
            rows_in, rows_out, note = fits, 1, "1 model version"
        peaks = task_peaks.get(key, {})
        figures.append(
            TaskFigures(
                key, run.seconds, rows_in, rows_out, peaks.get("python"), peaks.get("jvm"), note
            )
        )
    figures.append(peer)
    return figures, setup, graph_seconds


PEER_TASK = "peer"
# The project's tasks the peer does the work of: raw lines -> customers -> 14 fits.
PEER_COVERS = ("bronze", "silver", "gold", "sweep")


def peer_rfm(transactions_dir: Path):
    """RFM per customer as a notebook would compute it with pandas from the landed CSV files:
    lines with a customer, a parsable date, quantity and price; exact duplicates and
    cancellations dropped; recency counted from the day after the last sale. None of
    silver's rules (cancellation matching, IQR clipping, price imputation)."""
    import pandas as pd

    files = sorted(transactions_dir.glob("*.csv"))
    lines = pd.concat(
        [pd.read_csv(f, dtype=str, on_bad_lines="skip") for f in files], ignore_index=True
    )
    # Online Retail's column order, whatever the header's spelling
    invoice, quantity, date, price, customer = (lines.columns[i] for i in (0, 3, 4, 5, 6))
    frame = pd.DataFrame(
        {
            "invoice": lines[invoice].str.strip(),
            "quantity": pd.to_numeric(lines[quantity], errors="coerce"),
            "date": pd.to_datetime(lines[date], errors="coerce", format="mixed"),
            "price": pd.to_numeric(lines[price], errors="coerce"),
            "customer_id": lines[customer].str.strip().str.replace(r"\.0+$", "", regex=True),
        }
    ).dropna()
    frame = frame.drop_duplicates()
    sales = frame[~frame["invoice"].str.startswith("C") & (frame["quantity"] > 0)]
    as_of = sales["date"].max().normalize() + pd.Timedelta(days=1)
    rfm = (
        sales.assign(amount=sales["quantity"] * sales["price"])
        .groupby("customer_id")
        .agg(last=("date", "max"), frequency=("invoice", "nunique"), monetary=("amount", "sum"))
        .reset_index()
    )
    rfm["recency_days"] = (as_of - rfm["last"].dt.normalize()).dt.days  # whole days, as gold
    return rfm[["customer_id", "recency_days", "frequency", "monetary"]].sort_values(
        "customer_id", ignore_index=True
    )


def pandas_peer(transactions_dir: Path, k_range: str = "2..8") -> tuple[float, float, int, str]:
    """The peer of bronze -> silver -> gold -> sweep on the same files: `peer_rfm`, then the
    fits of `sweep_cost.plain_sklearn_seconds` (KMeans and GaussianMixture over `k_range`).
    No Delta, no MLflow, no quality rules: a floor, not a like-for-like. Returns (RFM
    seconds, sweep seconds, customers, best candidate)."""
    from retail_segmentation.ml.clustering import SweepParams
    from retail_segmentation.ml.sweep_cost import plain_sklearn_seconds

    start = time.perf_counter()
    rfm = peer_rfm(transactions_dir)
    rfm_seconds = time.perf_counter() - start
    k_min, k_max = (int(part) for part in k_range.split("..", 1))
    sweep_seconds, best = plain_sklearn_seconds(rfm, SweepParams(k_min=k_min, k_max=k_max))
    return rfm_seconds, sweep_seconds, len(rfm), best


def _sweep_note(root: Path) -> str:
    """The engine the benchmark's sweep ran on and its winner (silhouette, and the adjusted
    Rand index against the generator's true profiles), from its MLflow parent run."""
    import mlflow

    from retail_segmentation.ml.tracking import MlflowConfig

    store = MlflowConfig.for_tables(TableConfig(schema=BENCH_SCHEMA, lakehouse_dir=str(root)))
    client = mlflow.MlflowClient(store.tracking_uri, store.registry_uri)
    experiment = client.get_experiment_by_name(store.experiment_name)
    runs = client.search_runs([experiment.experiment_id], "tags.`retail_seg.role` = 'sweep'")
    if not runs:
        return "engine ?"
    run = runs[0]
    text = f"engine {run.data.params.get('engine', '?')}"
    metrics, winner = run.data.metrics, run.data.tags.get("winner")
    if winner and "best_silhouette" in metrics:
        text += f", winner {winner} silhouette {metrics['best_silhouette']:.4f}"
        if "winner_adjusted_rand_index" in metrics:
            text += f" ARI {metrics['winner_adjusted_rand_index']:.3f}"
    return text


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def report(
    figures: list[TaskFigures],
    json_path: str | None = None,
    rows: int | None = None,
    setup: dict[str, str] | None = None,
    graph_seconds: float | None = None,
) -> str:
    """A printable table; also written as JSON when `json_path` is given. The total is the
    generator's seconds plus `graph_seconds`, the job graph's wall time, when given (tasks
    that ran at the same time overlap), else the tasks' sum."""
    lines = [", ".join(f"{k}: {v}" for k, v in setup.items())] if setup else []
    lines += [
        f"{'task':<10} {'seconds':>9} {'rows in':>12} {'rows out':>12} {'rows/s':>10} "
        f"{'python MiB':>10} {'JVM MiB':>8}  note",
    ]
    for f in figures:
        lines.append(
            f"{f.task:<10} {f.seconds:>9.1f} {f.rows_in:>12,} {f.rows_out:>12,} "
            f"{f.rows_per_second:>10,.0f} {_mib(f.python_peak_mib):>10} "
            f"{_mib(f.jvm_peak_mib):>8}  {f.note}"
        )
    total = sum(f.seconds for f in figures if f.task != PEER_TASK)
    if graph_seconds is not None:
        total = sum(f.seconds for f in figures if f.task == "generate") + graph_seconds
        lines.append(f"{'graph':<10} {graph_seconds:>9.1f}  wall time of the job graph")
    lines.append(
        f"{'total':<10} {total:>9.1f}  (the peer row is not counted; tasks that ran at the "
        "same time count once)"
    )
    ratio = peer_ratio(figures)
    if ratio is not None:
        lines.append(
            f"peer ratio: {' + '.join(PEER_COVERS)} took {ratio:.1f}x the pandas + "
            "scikit-learn peer on the same files"
        )
    if json_path:
        payload = {
            "rows": rows,
            **(setup or {}),
            "total_seconds": round(total, 1),
            "graph_seconds": None if graph_seconds is None else round(graph_seconds, 1),
            "peer_ratio": None if ratio is None else round(ratio, 2),
            "machine": _machine(),
            "tasks": [{**asdict(f), "rows_per_second": round(f.rows_per_second)} for f in figures],
        }
        Path(json_path).write_text(json.dumps(payload, indent=2) + "\n")
    return "\n".join(lines)


def peer_ratio(figures: list[TaskFigures]) -> float | None:
    """Seconds of the tasks the peer covers (raw lines to the sweep) over the peer's."""
    by_task = {f.task: f.seconds for f in figures}
    if PEER_TASK not in by_task or not all(t in by_task for t in PEER_COVERS):
        return None
    return sum(by_task[t] for t in PEER_COVERS) / by_task[PEER_TASK]


def _machine() -> dict[str, object]:
    """What the figures were measured on."""
    return {
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "driver_memory": os.environ.get("RETAIL_SEG_DRIVER_MEMORY", "4g"),
    }


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


# --- daily mode: one day's increment after the history ----------------------------------------

DAILY_SHARE = 0.01
INVOICE_DATE_COLUMN = "InvoiceDate"
INVOICE_DATE_FORMAT = "yyyy-MM-dd HH:mm:ss"  # the generator's default ("ii") header variant
# How the generator writes its files (see `write_dataset`): each line is one verbatim column
# and the header is its name, so lines are copied byte for byte, short malformed ones included.
_VERBATIM_CSV = {
    "header": True,
    "sep": "\u0001",
    "quote": "",
    "ignoreLeadingWhiteSpace": False,
    "ignoreTrailingWhiteSpace": False,
    "encoding": "UTF-8",
}


@dataclass(frozen=True)
class DaySplit:
    """Lines cut at `cut_day`: `day_df` holds those dated `cut_day` or later, `history_df` the
    others (undated ones included)."""

    cut_day: dt.date
    history_lines: int
    day_lines: int
    history_df: DataFrame
    day_df: DataFrame


def split_last_days(
    lines_df: DataFrame,
    share: float = DAILY_SHARE,
    date_column: str = INVOICE_DATE_COLUMN,
    date_format: str = INVOICE_DATE_FORMAT,
) -> DaySplit:
    """Split off the lines of the last days: the cut day is the latest day D such that the
    lines dated D or later make at least `share` of all lines. Lines whose date does not parse
    stay in the history. Only the per-day counts reach the driver.

    Args:
        lines_df: lines with a string date column.
        share: the least fraction of all lines to split off, in (0, 1].
        date_column: the column holding the date and time.
        date_format: its Spark datetime pattern.

    Returns:
        The cut day, the count of lines on each side and the two DataFrames.
    """
    if not 0 < share <= 1:
        raise ConfigError(f"parameter share={share!r} is invalid: expected a fraction in (0, 1]")
    day = F.to_date(F.try_to_timestamp(F.col(date_column), F.lit(date_format)))
    counts = lines_df.groupBy(day.alias("day")).count().collect()  # one row per day
    total = sum(row["count"] for row in counts)
    latest_first = sorted(
        ((r["day"], r["count"]) for r in counts if r["day"] is not None), reverse=True
    )
    tail = 0
    for candidate, lines in latest_first:
        tail += lines
        if tail >= share * total:
            cut_day = candidate
            break
    else:
        raise IngestError(
            f"column {date_column!r}: no value parses as {date_format!r}, so there is no last "
            "day to split off"
        )
    is_late = F.coalesce(day >= F.lit(cut_day), F.lit(False))
    return DaySplit(
        cut_day, total - tail, tail, lines_df.filter(~is_late), lines_df.filter(is_late)
    )


def _write_verbatim(lines_df: DataFrame, staging: Path, files: int) -> list[Path]:
    """Write the one-column lines as at most `files` CSV files into `staging`; their paths."""
    lines_df.coalesce(files).write.mode("overwrite").options(**_VERBATIM_CSV).csv(str(staging))
    return sorted(staging.glob("part-*.csv"))


def split_landing(
    spark: SparkSession, landing: Path, day_dir: Path, share: float = DAILY_SHARE
) -> tuple[DaySplit, Path]:
    """Hold back the last days of the generated files in `landing`: the landing files keep the
    lines before the cut day (as many files as before), and the lines from it on go to one
    file in `day_dir`, named after the day; returns the split and that file."""
    sources = sorted(landing.glob("*.csv"))
    # One read per file: a single scan packs small files into fewer partitions than files, and
    # coalesce cannot add partitions. Coalesce merges neighbouring partitions of the union, so
    # the lines keep the generator's order.
    verbatim_df = functools.reduce(
        DataFrame.union, [spark.read.options(**_VERBATIM_CSV).csv(str(f)) for f in sources]
    )
    (header,) = verbatim_df.columns
    schema = ", ".join(f"`{name}` STRING" for name in header.split(","))
    lines_df = verbatim_df.withColumn(
        INVOICE_DATE_COLUMN,
        F.from_csv(verbatim_df[header], schema, {"escape": '"'})[INVOICE_DATE_COLUMN],
    )
    split = split_last_days(lines_df, share)
    staging = landing.parent / "_split"
    history = _write_verbatim(split.history_df.select(header), staging / "history", len(sources))
    (day,) = _write_verbatim(split.day_df.select(header), staging / "day", 1)
    for source in sources:
        source.unlink()
    for number, part in enumerate(history):
        part.replace(landing / f"history-{number:02d}.csv")
    day_dir.mkdir(parents=True, exist_ok=True)
    day_file = day.replace(day_dir / f"day-{split.cut_day.isoformat()}.csv")
    shutil.rmtree(staging)
    return split, day_file


@dataclass(frozen=True)
class DailyFigures:
    """What `run_daily_benchmark` measured: the split, then each task of both runs."""

    setup: Mapping[str, str]
    cut_day: dt.date
    history_lines: int
    day_lines: int
    first: Mapping[str, runner.TaskRun]
    second: Mapping[str, runner.TaskRun]
    # wall seconds of each run's graph (tasks that ran at the same time overlap)
    first_seconds: float
    second_seconds: float
    # each table's Delta version before the second run: its later commits are the second run's
    versions_before_second: Mapping[str, int]

    def idle_tasks(self) -> list[str]:
        """Tasks that wrote rows in the first run and none in the second (up to date)."""
        return [
            key
            for key, run in self.second.items()
            if not sum(run.rows_written.values()) and sum(self.first[key].rows_written.values())
        ]


def run_daily_benchmark(
    rows: int,
    seed: int = 42,
    files: int = 4,
    work_dir: str | None = None,
    k_range: str = "2..8",
    sweep_engine: str = "auto",
    share: float = DAILY_SHARE,
    echo=print,
    parallel: int = 1,
) -> DailyFigures:
    """Generate `rows` lines, hold back the last `share` of them by day, run the job graph on
    the rest (`parallel` tasks at once), land the held-back day as one more file and run the
    graph again."""
    root, spark, lakehouse, setup = _scratch_lakehouse(work_dir, sweep_engine, echo)
    setup["parallel_tasks"] = str(parallel)
    data = root / "data"
    echo(f"[generate] {rows:,} lines into {data} ...")
    write_dataset(spark, GeneratorConfig(rows=rows, seed=seed, files=files), str(data))
    landing = data / "transactions"
    split, day_file = split_landing(spark, landing, data / "daily", share)
    echo(
        f"[split] {split.history_lines:,} lines before {split.cut_day} stay in {landing}; "
        f"{split.day_lines:,} from it on wait in {day_file}"
    )
    echo("[first run] the history")
    first, first_seconds = _run_graph(
        root, lakehouse, k_range, sweep_engine, echo, parallel=parallel
    )
    shutil.copy(day_file, landing / day_file.name)
    versions_before_second = delta_log.table_versions(lakehouse.local_root)
    echo(f"[second run] after landing {day_file.name}")
    second, second_seconds = _run_graph(
        root, lakehouse, k_range, sweep_engine, echo, parallel=parallel
    )
    return DailyFigures(
        setup,
        split.cut_day,
        split.history_lines,
        split.day_lines,
        first,
        second,
        first_seconds,
        second_seconds,
        versions_before_second,
    )


def _run_json(runs: Mapping[str, runner.TaskRun]) -> list[dict[str, object]]:
    return [
        {"task": key, "seconds": round(run.seconds, 2), "rows_written": dict(run.rows_written)}
        for key, run in runs.items()
    ]


def _ratio(second: float, first: float) -> float | None:
    return second / first if first else None


def daily_report(
    figures: DailyFigures, json_path: str | None = None, rows: int | None = None
) -> str:
    """A printable table of both runs, task by task; also written as JSON when `json_path` is
    given."""
    lines = [
        ", ".join(f"{k}: {v}" for k, v in figures.setup.items()),
        f"first run: {figures.history_lines:,} lines before {figures.cut_day}; second run: "
        f"{figures.day_lines:,} more lines dated {figures.cut_day} or later",
        f"{'task':<10} {'1st s':>8} {'2nd s':>8} {'2nd/1st':>8} {'1st rows':>12} "
        f"{'2nd rows':>12}  note",
    ]
    idle = figures.idle_tasks()
    for key, first in figures.first.items():
        second = figures.second[key]
        ratio = _ratio(second.seconds, first.seconds)
        rows_first, rows_second = (
            sum(first.rows_written.values()),
            sum(second.rows_written.values()),
        )
        note = "up to date: wrote nothing" if key in idle else ""
        if not rows_first and not rows_second:
            note = "writes no table: rows say nothing"
        lines.append(
            f"{key:<10} {first.seconds:>8.1f} {second.seconds:>8.1f} "
            f"{'-' if ratio is None else f'{ratio:.2f}':>8} {rows_first:>12,} "
            f"{rows_second:>12,}  {note}"
        )
    # the graphs' wall times: tasks that ran at the same time count once
    total_first, total_second = figures.first_seconds, figures.second_seconds
    total_ratio = _ratio(total_second, total_first)
    lines.append(
        f"{'total':<10} {total_first:>8.1f} {total_second:>8.1f} "
        f"{'-' if total_ratio is None else f'{total_ratio:.2f}':>8}"
    )
    lines.append(f"nothing to do in the second run: {', '.join(idle) or 'none'}")
    if json_path:
        payload = {
            "mode": "daily",
            "rows": rows,
            **figures.setup,
            "cut_day": figures.cut_day.isoformat(),
            "history_lines": figures.history_lines,
            "day_lines": figures.day_lines,
            "first": _run_json(figures.first),
            "second": _run_json(figures.second),
            "totals": {
                "first_seconds": round(total_first, 1),
                "second_seconds": round(total_second, 1),
                "ratio": None if total_ratio is None else round(total_ratio, 3),
            },
            "up_to_date_in_second_run": idle,
            "versions_before_second_run": dict(figures.versions_before_second),
            "machine": _machine(),
        }
        Path(json_path).write_text(json.dumps(payload, indent=2) + "\n")
    return "\n".join(lines)
