"""`retail-seg`: run the pipeline locally, look at what it found, deploy it.

retail-seg run                      # embedded default data -> bronze -> ... -> offers + report
retail-seg run --landing-path DIR   # your own CSV files (a folder or one file)
retail-seg report                   # the insights report (HTML) of the local tables
retail-seg ui                       # the MLflow UI on the local store
retail-seg show gold_segmented_offers
retail-seg sql "SELECT * FROM retail.pipeline_ledger"
retail-seg generate --rows 1000000 --out DIR
retail-seg upload data/*.csv        # into the deployed landing volume (databricks-sdk)
retail-seg run-job --param as_of_date=2011-12-10   # trigger the deployed job, follow it
retail-seg setup                    # Delta jars and the JVM class archive, once (make install)

Add -v to any command for progress logs, Spark's warnings and full error traces.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from pathlib import Path

from retail_segmentation.bronze.columns import add_source_arguments
from retail_segmentation.common.config import (
    add_parallel_argument,
    add_table_arguments,
    table_config_from_args,
)
from retail_segmentation.common.errors import RetailSegError
from retail_segmentation.silver.options import add_cleaning_arguments, validate_date_format

DEFAULT_ROWS = 50_000
BENCHMARK_ROWS = 1_067_371  # lines of the public Online Retail II data set
DEFAULT_SEED = 42


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)
    if verbose:  # Spark's own warnings too (local sessions read it when they start)
        os.environ.setdefault("RETAIL_SEG_SPARK_LOG_LEVEL", "WARN")
    else:
        # MLflow's notices (store migrations, schema hints) are for developers, not users.
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
        logging.getLogger("mlflow").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module=r"mlflow\..*")
        # the Spark Connect client repeats, as a Python warning, a plan note the classic
        # session keeps in its log (a window over a few profile rows)
        warnings.filterwarnings("ignore", message=r"WARN WindowExpression")
    # PySpark logs a failed query's context itself; the CLI reports it in one sentence.
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        logging.getLogger(name).setLevel(logging.ERROR if verbose else logging.CRITICAL)


def _default_folder(lakehouse_dir: str, rows: int, seed: int) -> Path:
    return Path(lakehouse_dir) / "landing" / f"default-{rows}-{seed}"


def _default_landing(lakehouse_dir: str, rows: int, seed: int) -> str:
    """The default data set, put once into the lakehouse folder: the copy shipped in the
    package for the default rows and seed, else generated (seeded)."""
    from retail_segmentation.data import embedded

    out = _default_folder(lakehouse_dir, rows, seed)
    transactions = out / "transactions"
    if any(transactions.glob("*.csv*")) and (out / embedded.TRUTH_FILE).exists():
        return str(transactions)
    if embedded.available(rows, seed):
        print(f"using the embedded default data set ({rows:,} lines, seed {seed}) in {out}")
        return str(embedded.copy_to(out))

    from retail_segmentation.common.spark import get_spark
    from retail_segmentation.data.generator import GeneratorConfig, write_dataset

    start = time.perf_counter()
    print(f"generating the default data set ({rows:,} lines, seed {seed}) in {out} ...")
    spark = get_spark(warehouse_dir=f"{lakehouse_dir}/spark-warehouse")
    write_dataset(spark, GeneratorConfig(rows=rows, seed=seed), str(out))
    print(f"  done in {time.perf_counter() - start:.1f}s")
    return str(transactions)


def _run(args: argparse.Namespace) -> int:
    """The bundle's job graph (resources/*.job.yml), run locally by the runner, then the
    report and a summary; one run at a time per lakehouse folder."""
    from retail_segmentation import runner

    with runner.lakehouse_lock(args.lakehouse_dir):
        return _run_locked(args)


# Below this input a local run is faster with Spark's interpreted expressions than with code
# generated and compiled per query (the 50,000-line default: 98 s against 107-115 s), and
# without adaptive execution (55.8 s against 51.2 s).
SMALL_INPUT_ROWS = 200_000
SMALL_INPUT_BYTES = 16 * 1024 * 1024  # about 200,000 lines of Online Retail CSV


def small_input(landing_path: str | None, rows: int) -> bool:
    """True when the run's raw input (the generated default's rows, or the bytes of the local
    landing files) is small enough that per-query code generation and adaptive execution cost
    more than they save."""
    if not landing_path:
        return rows <= SMALL_INPUT_ROWS
    if "://" in landing_path and not landing_path.startswith("file:"):
        return False
    path = Path(landing_path.removeprefix("file:"))
    files = [path] if path.is_file() else list(path.rglob("*")) if path.is_dir() else []
    return 0 < sum(f.stat().st_size for f in files if f.is_file()) <= SMALL_INPUT_BYTES


def _run_locked(args: argparse.Namespace) -> int:
    from retail_segmentation import runner
    from retail_segmentation.common.spark import get_spark
    from retail_segmentation.common.tables import Lakehouse

    started = time.perf_counter()
    tables = table_config_from_args(args)  # names checked before Spark starts
    if small_input(args.landing_path, args.rows):  # read when the local session starts
        os.environ.setdefault("RETAIL_SEG_CODEGEN", "off")
        os.environ.setdefault("RETAIL_SEG_ADAPTIVE", "off")
    if args.date_format:
        validate_date_format(args.date_format)
    _mlflow_config(args)
    landing = args.landing_path or _default_landing(args.lakehouse_dir, args.rows, args.seed)
    root = runner.bundle_root()
    variables = runner.bundle_substitutions(root)
    variables.update(
        catalog=args.catalog,
        schema=args.schema,
        landing_path=landing,
        encoding=args.encoding,
        column_mapping=args.column_mapping,
        delimiter=args.delimiter,
        sheet=args.sheet,
        date_format=args.date_format,
        null_tokens=args.null_tokens,
        experiment_name=args.experiment_name,
        sweep_engine=args.sweep_engine,
    )
    graph = runner.load_job(root / "resources")
    parameters = {
        **graph.parameters,
        "as_of_date": args.as_of_date,
        "k_range": args.k_range,
        "full_refresh": str(args.full_refresh).lower(),
        "refit": str(args.refit).lower(),
    }
    task_args = {}
    if not args.landing_path:  # generated data: the true profiles are known
        from retail_segmentation.data.embedded import TRUTH_FILE

        truth = _default_folder(args.lakehouse_dir, args.rows, args.seed) / TRUTH_FILE
        task_args["sweep"] = ["--truth-path", str(truth)]
    spark = get_spark(warehouse_dir=f"{args.lakehouse_dir}/spark-warehouse")
    lakehouse = Lakehouse.attach(spark, tables)
    runner.run_job(
        graph,
        variables,
        parameters,
        ["--lakehouse-dir", args.lakehouse_dir],
        from_task=args.from_task,
        task_args=task_args,
        tables_dir=lakehouse.local_root,
        parallel=args.parallel_tasks,
    )
    lakehouse = Lakehouse.attach(spark, tables)  # registers the tables the tasks created
    report = None
    if not args.no_report:
        report = _write_report(
            lakehouse, args, Path(args.report_path) if args.report_path else None
        )
    _print_summary(lakehouse, args, report, time.perf_counter() - started)
    return 0


def _mlflow_config(args: argparse.Namespace):
    from retail_segmentation.ml.tracking import MlflowConfig

    return MlflowConfig.for_tables(table_config_from_args(args), args.experiment_name)


def _write_report(lakehouse, args: argparse.Namespace, path: Path | None):
    from retail_segmentation.report.build import default_report_path, write_report

    start = time.perf_counter()
    print("[report] writing the insights report ...")
    result = write_report(
        lakehouse, _mlflow_config(args), path or default_report_path(args.lakehouse_dir)
    )
    print(
        f"[report] done in {time.perf_counter() - start:.1f}s; {len(result.chart_ids)} charts in "
        f"{result.path}"
    )
    return result


def _print_summary(lakehouse, args: argparse.Namespace, report, seconds: float) -> None:
    print(f"\nfinished in {seconds:.0f}s. Tables (look at them with `retail-seg show TABLE`):")
    from retail_segmentation.common.delta_log import live_rows

    for table in sorted(p.name for p in lakehouse.local_root.iterdir() if p.is_dir()):
        # the checksum file beside the latest commit lists the files with their row counts:
        # 17 tables in a few milliseconds instead of 17 queries (2.7 s)
        rows = live_rows(lakehouse.local_root / table)
        if rows is None:
            rows = lakehouse.read(table).count()
        print(f"  {lakehouse.name(table):<38} {rows:>10,} rows")
    store = _mlflow_config(args)
    if report is not None:
        s = report.data.summary
        print(
            f"\nwinner:    {s['algorithm']} with k={s['k']} segments, silhouette "
            f"{s['silhouette']:.4f} (best of {len(report.data.fits)} fits)"
        )
        print(f"champion:  {s['model']}")
        personas = ", ".join(
            f"{o['persona']} {o['customers']:,}"
            for o in sorted(report.data.offers, key=lambda o: -o["customers"])
        )
        print(f"offers:    {s['offers']:,} customers got one ({personas})")
        print(f"report:    {report.path.absolute()}  (open it in a browser)")
    print(f"MLflow:    {store.tracking_uri}  (browse it with `retail-seg ui`)")


def _report(args: argparse.Namespace) -> int:
    from retail_segmentation.common.spark import get_spark
    from retail_segmentation.common.tables import Lakehouse

    tables = table_config_from_args(args)  # names checked before Spark starts
    spark = get_spark(warehouse_dir=f"{args.lakehouse_dir}/spark-warehouse")
    lakehouse = Lakehouse.attach(spark, tables)
    _write_report(lakehouse, args, Path(args.out) if args.out else None)
    return 0


def _ui(args: argparse.Namespace) -> int:
    import subprocess

    from retail_segmentation.ml.tracking import mlflow_ui_command

    config = _mlflow_config(args)
    command = mlflow_ui_command(args.lakehouse_dir, args.host, args.port)
    print(
        f"MLflow UI on http://{args.host}:{args.port} : experiment {config.experiment_name!r} "
        f"(sort its runs by silhouette), model {config.model_name!r} under Models. Ctrl+C stops it."
    )
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0


def _show(args: argparse.Namespace) -> int:
    from retail_segmentation.common.errors import ConfigError
    from retail_segmentation.common.spark import get_spark
    from retail_segmentation.common.tables import Lakehouse

    tables = table_config_from_args(args)  # names checked before Spark starts
    spark = get_spark(warehouse_dir=f"{args.lakehouse_dir}/spark-warehouse")
    lakehouse = Lakehouse.attach(spark, tables)
    table = args.table.split(".")[-1]
    if not lakehouse.exists(table):
        found = sorted(p.name for p in lakehouse.local_root.glob("*") if p.is_dir())
        raise ConfigError(
            f"table {lakehouse.name(table)} does not exist: expected one of "
            f"{', '.join(found) or 'none yet (run `retail-seg run` first)'}"
        )
    df = lakehouse.read(table)
    print(f"{lakehouse.name(table)}: {df.count():,} rows; the first {args.limit}:")
    df.show(args.limit, truncate=args.truncate, vertical=args.vertical)
    return 0


def _setup(args: argparse.Namespace) -> int:
    from retail_segmentation.common.errors import SparkSetupError
    from retail_segmentation.common.spark import prepare_local_jvm

    started = time.perf_counter()
    try:
        jars, archive = prepare_local_jvm()
    except SparkSetupError as exc:
        if "class archive" not in str(exc):
            raise
        print(f"warning: {exc}", file=sys.stderr)  # an optimisation: runs work without it
        return 0
    seconds = time.perf_counter() - started
    if args.quiet and seconds < 5:  # quiet: say something only when it did work
        return 0
    print(f"local Spark: {len(jars)} Delta jars in {Path(jars[0]).parent}")
    if archive is not None:
        size = archive.stat().st_size / 2**20
        print(f"JVM class archive: {archive} ({size:,.0f} MiB), ready in {seconds:.1f}s")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from retail_segmentation.data import generator

    argv = ["--rows", str(args.rows), "--seed", str(args.seed), "--out", args.out]
    argv += ["--files", str(args.files), "--header-variant", args.header_variant]
    generator.main(argv)
    return 0


def _sql(args: argparse.Namespace) -> int:
    from retail_segmentation.common.spark import get_spark
    from retail_segmentation.common.tables import Lakehouse

    tables = table_config_from_args(args)  # names checked before Spark starts
    spark = get_spark(warehouse_dir=f"{args.lakehouse_dir}/spark-warehouse")
    Lakehouse.attach(spark, tables)
    from pyspark.errors import AnalysisException, ParseException

    try:
        spark.sql(args.query).show(args.limit, truncate=args.truncate)
    except (AnalysisException, ParseException) as exc:
        if args.verbose:
            raise
        reason = str(exc).split("\n", 1)[0]
        print(f"error: the query failed: {reason}", file=sys.stderr)
        return 2
    return 0


def _benchmark(args: argparse.Namespace) -> int:
    if args.driver_memory:  # read when the local session starts
        os.environ["RETAIL_SEG_DRIVER_MEMORY"] = args.driver_memory
    if args.materialize:  # read by every task's Intermediates
        os.environ["RETAIL_SEG_MATERIALIZE"] = args.materialize
    from retail_segmentation.benchmark import (
        DAILY_SHARE,
        daily_report,
        report,
        run_benchmark,
        run_daily_benchmark,
    )

    # the same generated data and graph either way
    inputs = (args.rows, args.seed, args.files, args.work_dir, args.k_range, args.sweep_engine)
    if args.daily_share is not None:
        if not args.daily:
            raise RetailSegError("--daily-share times a day's increment: add --daily")
        if not 0 < args.daily_share <= 1:  # before minutes of generating
            raise RetailSegError(
                f"--daily-share must be a fraction in (0, 1], e.g. 0.01, got {args.daily_share:g}"
            )
    if args.daily:
        share = DAILY_SHARE if args.daily_share is None else args.daily_share
        daily = run_daily_benchmark(*inputs, share=share, parallel=args.parallel_tasks)
        print()
        print(daily_report(daily, args.json, args.rows))
    else:
        figures, setup, graph_seconds = run_benchmark(*inputs, parallel=args.parallel_tasks)
        print()
        print(report(figures, args.json, args.rows, setup, graph_seconds))
    if args.json:
        print(f"figures written to {args.json}")
    return 0


def _benchmark_silhouette(args: argparse.Namespace) -> int:
    from retail_segmentation.ml.silhouette_cost import (
        HEADER,
        parse_customers,
        run_benchmark,
        write_json,
    )

    customers = parse_customers(args.customers)
    print(HEADER)
    figures = run_benchmark(customers, echo=True)
    if args.json:
        write_json(figures, args.json)
        print(f"figures written to {args.json}")
    return 0


def _benchmark_sweep(args: argparse.Namespace) -> int:
    from retail_segmentation.ml.sweep_cost import (
        HEADER,
        parse_customers,
        parse_engines,
        run_benchmark,
        write_json,
    )

    customers = parse_customers(args.customers)
    engines = parse_engines(args.engines)
    print(HEADER)
    figures = run_benchmark(
        customers,
        engines,
        spark_customers=(
            parse_customers(args.spark_customers, "spark_customers")
            if args.spark_customers
            else None
        ),
        rows=args.rows,
        work_dir=args.work_dir,
        echo=True,
    )
    if args.json:
        write_json(figures, args.json, args.rows)
        print(f"figures written to {args.json}")
    return 0


def _benchmark_score(args: argparse.Namespace) -> int:
    from retail_segmentation.ml.score_cost import HEADER, run_benchmark, write_json
    from retail_segmentation.ml.sweep_cost import parse_customers

    customers = parse_customers(args.customers)
    print(HEADER)
    figures = run_benchmark(customers, rows=args.rows, work_dir=args.work_dir, echo=True)
    if args.json:
        write_json(figures, args.json, args.rows)
        print(f"figures written to {args.json}")
    return 0


def _benchmark_start(args: argparse.Namespace) -> int:
    from retail_segmentation.common.start_cost import HEADER, run_benchmark, write_json

    if args.repeat < 1:
        raise RetailSegError(f"--repeat must be at least 1, got {args.repeat}")
    print(HEADER)
    figures = run_benchmark(args.repeat, work_dir=args.work_dir, echo=True)
    if args.json:
        write_json(figures, args.json)
        print(f"figures written to {args.json}")
    return 0


def _upload(args: argparse.Namespace) -> int:
    from retail_segmentation.deploy.upload import resolve_target, upload_files
    from retail_segmentation.deploy.workspace import connect

    target = resolve_target(
        args.volume_path, catalog=args.catalog, schema=args.schema, volume=args.volume
    )
    upload_files(connect(args.profile), args.paths, target, overwrite=args.overwrite)
    return 0


def _run_job(args: argparse.Namespace) -> int:
    from retail_segmentation.deploy import defaults, follow
    from retail_segmentation.deploy.workspace import connect

    parameters = follow.parse_parameters(args.param)
    try:
        outcome = follow.run_job(
            connect(args.profile),
            job_id=args.job_id,
            job_name=args.job_name,
            parameters=parameters,
            poll_seconds=args.poll_seconds,
            timeout_minutes=args.timeout_minutes,
        )
    except follow.RunTimeoutError as exc:
        if args.verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return defaults.EXIT_TIMED_OUT
    return outcome.exit_code


def _add_deploy_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """`upload` and `run-job`: the deployed bundle, reached with the databricks-sdk."""
    from retail_segmentation.deploy import defaults

    auth = (
        "Authentication: --profile NAME from ~/.databrickscfg, else the DATABRICKS_HOST and "
        "DATABRICKS_TOKEN environment variables (or any other databricks-sdk unified auth)."
    )
    up = sub.add_parser(
        "upload",
        help="upload local CSV files into the landing volume of the deployed bundle",
        description="Upload local raw files into a Unity Catalog volume, where the bundle's "
        "bronze task ingests them. Files already there with the same size are skipped.",
        epilog=auth,
        parents=[common],
    )
    up.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help=f"files or folders (searched recursively) of {', '.join(defaults.LANDING_SUFFIXES)}",
    )
    up.add_argument(
        "--volume-path",
        metavar="PATH",
        help="/Volumes/<catalog>/<schema>/<volume>[/<folder>] to upload into "
        "(default: built from --catalog, --schema and --volume)",
    )
    up.add_argument(
        "--catalog", help=f"catalog of the volume (default: {defaults.DEFAULT_CATALOG})"
    )
    up.add_argument(
        "--schema",
        help=f"schema of the volume (default: {defaults.DEFAULT_SCHEMA}, the prod target's; a dev "
        "deploy names it dev_<you>_retail, as `databricks bundle summary -t dev` shows)",
    )
    up.add_argument("--volume", help=f"volume name (default: {defaults.DEFAULT_VOLUME})")
    up.add_argument(
        "--overwrite",
        action="store_true",
        help="replace files already in the volume (default: skip those of the same size, "
        "refuse those that differ)",
    )
    up.add_argument(
        "--profile", metavar="NAME", help="~/.databrickscfg profile (default: the environment)"
    )
    up.set_defaults(func=_upload)

    run = sub.add_parser(
        "run-job",
        help="trigger the deployed job and follow its run to the end",
        description="Trigger the job `databricks bundle deploy` created and print a line "
        "whenever one of its tasks changes state, then a summary.",
        epilog=f"Exit codes: {defaults.EXIT_SUCCESS} success, {defaults.EXIT_FAILED} failed, "
        f"2 bad input or workspace error, {defaults.EXIT_CANCELED} canceled, "
        f"{defaults.EXIT_TIMED_OUT} timed out (the run's own timeout or --timeout-minutes), "
        f"{defaults.EXIT_NOT_RUN} not run (skipped). {auth}",
        parents=[common],
    )
    which = run.add_mutually_exclusive_group()
    which.add_argument(
        "--job-id", type=int, metavar="ID", help="id of the job (default: found by --job-name)"
    )
    which.add_argument(
        "--job-name",
        metavar="NAME",
        default=defaults.DEFAULT_JOB_NAME,
        help=f"name of the job; '[dev <user>] NAME' from a development deploy is found too "
        f"(default: {defaults.DEFAULT_JOB_NAME})",
    )
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="job parameter for this run, repeatable, e.g. --param as_of_date=2011-12-10 "
        "--param k_range=2..6 (default: the job's own defaults)",
    )
    run.add_argument(
        "--poll-seconds",
        type=float,
        metavar="SECONDS",
        default=defaults.DEFAULT_POLL_SECONDS,
        help=f"seconds between two looks at the run (default: {defaults.DEFAULT_POLL_SECONDS:g})",
    )
    run.add_argument(
        "--timeout-minutes",
        type=float,
        metavar="MINUTES",
        help="stop following after this many minutes, leaving the run going (default: no limit)",
    )
    run.add_argument(
        "--profile", metavar="NAME", help="~/.databrickscfg profile (default: the environment)"
    )
    run.set_defaults(func=_run_job)


def _add_experiment_argument(parser: argparse.ArgumentParser, what: str) -> None:
    from retail_segmentation.ml.tracking import DEFAULT_EXPERIMENT

    parser.add_argument(
        "--experiment-name",
        default=DEFAULT_EXPERIMENT,
        help=f"{what} (default: {DEFAULT_EXPERIMENT})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The `retail-seg` argument parser."""
    parser = argparse.ArgumentParser(
        prog="retail-seg", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    verbose_help = "log progress, show Spark's warnings and full error traces (default: off)"
    parser.add_argument("-v", "--verbose", action="store_true", help=verbose_help)
    # -v after the subcommand too; SUPPRESS keeps a subcommand from resetting `retail-seg -v`
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose_help
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, tables: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        if tables:
            add_table_arguments(p)
        return p

    run = command(
        "run",
        "run the pipeline locally: raw CSV -> bronze -> silver -> gold -> "
        "ML segments -> offers, then write the insights report",
    )
    run.add_argument(
        "--landing-path",
        help="folder (searched recursively) or single CSV file of your own raw transactions "
        "(default: the embedded sample, copied once into the lakehouse folder; other --rows "
        "or --seed values are generated there)",
    )
    run.add_argument(
        "--rows",
        type=int,
        default=DEFAULT_ROWS,
        help=f"lines of the default data, without --landing-path; {DEFAULT_ROWS:,} with seed "
        f"{DEFAULT_SEED} is the embedded copy, other values are generated (default: "
        f"{DEFAULT_ROWS:,})",
    )
    run.add_argument("--seed", type=int, default=DEFAULT_SEED, help="generator seed (default: 42)")
    run.add_argument(
        "--as-of-date",
        default="",
        help="YYYY-MM-DD recency is counted back from (default: day after the last invoice)",
    )
    run.add_argument(
        "--k-range",
        default="2..8",
        help="LOW..HIGH numbers of segments the sweep tries (default: 2..8)",
    )
    _add_experiment_argument(run, "MLflow experiment in the local store")
    _add_engine_argument(run)
    run.add_argument(
        "--from-task",
        help="start again from this task of the job, e.g. sweep (default: the first, bronze)",
    )
    add_parallel_argument(run)
    add_source_arguments(run)
    add_cleaning_arguments(run)
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="silver cleans every bronze line again with the current rule version "
        "(default: only batches it has not cleaned)",
    )
    run.add_argument(
        "--refit",
        action="store_true",
        help="silver fits its IQR bounds and modal prices again on all of bronze first "
        "(default: when its policy says so)",
    )
    run.add_argument(
        "--report-path",
        help="where to write the HTML report (default: <lakehouse-dir>/report/insights.html)",
    )
    run.add_argument("--no-report", action="store_true", help="skip the report (default: write it)")
    run.set_defaults(func=_run)

    report = command(
        "report",
        "write the insights report (one HTML file, opens offline) of "
        "the local tables and MLflow store",
    )
    report.add_argument(
        "--out", help="HTML file to write (default: <lakehouse-dir>/report/insights.html)"
    )
    _add_experiment_argument(report, "MLflow experiment of the sweep")
    report.set_defaults(func=_report)

    ui = command("ui", "start the MLflow UI on the local tracking store and model registry")
    ui.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only)",
    )
    ui.add_argument("--port", type=int, default=5000, help="port (default: 5000)")
    _add_experiment_argument(ui, "experiment named in the hint printed")
    ui.set_defaults(func=_ui)

    show = command("show", "print the row count and first rows of a table")
    show.add_argument(
        "table", help="table name, e.g. gold_segmented_offers or retail.gold_segment_profiles"
    )
    show.add_argument("--limit", type=int, default=20, help="rows to show (default: 20)")
    show.add_argument("--truncate", type=int, default=40, help="column width (default: 40)")
    show.add_argument(
        "--vertical",
        action="store_true",
        help="one line per column, for wide tables (default: off)",
    )
    show.set_defaults(func=_show)

    sql = command("sql", "run a Spark SQL query on the local tables and print the result")
    sql.add_argument("query", help='e.g. "SELECT * FROM retail.silver_products"')
    sql.add_argument("--limit", type=int, default=20, help="rows to show (default: 20)")
    sql.add_argument("--truncate", type=int, default=40, help="column width (default: 40)")
    sql.set_defaults(func=_sql)

    setup = command(
        "setup",
        "fetch the Delta jars and build the JVM class archive local Spark starts from, once "
        "per machine (make install runs it; RETAIL_SEG_CLASS_ARCHIVE=off skips the archive)",
        tables=False,
    )
    setup.add_argument(
        "--quiet", action="store_true", help="print only when something was built (default: off)"
    )
    setup.set_defaults(func=_setup)

    gen = command("generate", "write synthetic Online Retail II-shaped CSV files", tables=False)
    gen.add_argument("--rows", type=int, default=1_000_000, help="lines (default: 1,000,000)")
    gen.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed (default: 42)")
    gen.add_argument("--files", type=int, default=4, help="CSV files to write (default: 4)")
    gen.add_argument(
        "--header-variant",
        choices=["ii", "classic"],
        default="ii",
        help="Online Retail II or classic Online Retail headers (default: ii)",
    )
    gen.add_argument("--out", required=True, help="output folder (required)")
    gen.set_defaults(func=_generate)

    bench = command(
        "benchmark",
        "generate N lines and time every task of the job graph on them: seconds, rows in and "
        "out, rows per second, peak memory of the Python driver and its JVM",
        tables=False,
    )
    bench.add_argument(
        "--rows",
        type=int,
        default=BENCHMARK_ROWS,
        help=f"lines to generate (default: {BENCHMARK_ROWS:,}, the size of the public Online "
        "Retail II data; 10,000,000 and more work too)",
    )
    bench.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed (default: 42)")
    bench.add_argument("--files", type=int, default=4, help="CSV files (default: 4)")
    bench.add_argument(
        "--k-range", default="2..8", help="LOW..HIGH k the sweep tries (default: 2..8)"
    )
    bench.add_argument(
        "--driver-memory",
        help="JVM heap of the local Spark driver, e.g. 8g (default: RETAIL_SEG_DRIVER_MEMORY "
        "or 4g)",
    )
    _add_engine_argument(bench)
    add_parallel_argument(
        bench,
        default=1,
        note=" (each task's seconds are its own only then; `retail-seg run` runs 2)",
    )
    bench.add_argument(
        "--materialize",
        choices=("auto", "persist", "delta", "recompute"),
        help="how tasks keep intermediates (RETAIL_SEG_MATERIALIZE; default: auto = persist on "
        "a classic session, a scratch Delta table under Spark Connect)",
    )
    bench.add_argument(
        "--work-dir", help="scratch folder, emptied first (default: a new temp folder)"
    )
    bench.add_argument(
        "--daily",
        action="store_true",
        help="time a day's increment instead: hold back the last days' lines (--daily-share), "
        "run the graph on the rest, land them as one more file and run it again; report both "
        "runs per task (no pandas peer; default: off, the whole graph once)",
    )
    bench.add_argument(
        "--daily-share",
        type=float,
        metavar="FRACTION",
        help="with --daily: the least share of the lines the held-back file holds, in whole "
        "days from the last one back; 0.001 holds back the last day alone (default: 0.01, "
        "on the default rows 8 days)",
    )
    bench.add_argument("--json", help="also write the figures to this JSON file (default: none)")
    bench.set_defaults(func=_benchmark)

    sil = command(
        "benchmark-silhouette",
        "time the exact Euclidean silhouette, the sampled one the sweep logs and Spark's "
        "squared-Euclidean one on generated customers: seconds, peak memory, sampled - exact",
        tables=False,
    )
    sil.add_argument(
        "--customers",
        default="5000,50000,200000",
        help="comma-separated customer counts (default: 5000,50000,200000; the exact "
        "silhouette is quadratic, 200,000 takes minutes)",
    )
    sil.add_argument("--json", help="also write the figures to this JSON file (default: none)")
    sil.set_defaults(func=_benchmark_silhouette)

    sweep = command(
        "benchmark-sweep",
        "time the sweep (14 fits, MLflow logging included) per engine at several customer "
        "counts, beside a plain scikit-learn loop over the same fits: where the engines cross",
        tables=False,
    )
    sweep.add_argument(
        "--customers",
        default="240,5000,55000,500000",
        help="comma-separated customer counts, scaled from generated gold tables (default: "
        "240,5000,55000,500000)",
    )
    sweep.add_argument(
        "--engines", default="sklearn,spark", help="engines to time (default: sklearn,spark)"
    )
    sweep.add_argument(
        "--spark-customers",
        default="",
        help="time Spark MLlib only at these of the counts, e.g. 5000,55000 (default: every "
        "count; its GaussianMixture can spin forever in LAPACK on a collapsed component)",
    )
    _add_scaled_benchmark_options(sweep)
    sweep.set_defaults(func=_benchmark_sweep)

    score = command(
        "benchmark-score",
        "time the score task (the champion's pyfunc in Spark) at several customer counts, each "
        "as one file and as eight: seconds, peak memory, customers scored differently",
        tables=False,
    )
    score.add_argument(
        "--customers",
        default="5000,55000,500000",
        help="comma-separated customer counts, scaled from generated gold tables (default: "
        "5000,55000,500000)",
    )
    _add_scaled_benchmark_options(score)
    score.set_defaults(func=_benchmark_score)

    start = command(
        "benchmark-start",
        "time local Spark starts (session, first Delta write and read) with and without the "
        "JVM class archive, each in a new process, alternated",
        tables=False,
    )
    start.add_argument("--repeat", type=int, default=3, help="starts per mode (default: 3)")
    start.add_argument(
        "--work-dir", help="scratch folder, emptied first (default: a new temp folder)"
    )
    start.add_argument("--json", help="also write the figures to this JSON file (default: none)")
    start.set_defaults(func=_benchmark_start)

    _add_deploy_parsers(sub, common)
    return parser


def _add_scaled_benchmark_options(parser: argparse.ArgumentParser) -> None:
    """The options benchmark-sweep and benchmark-score share: the generated lines their
    customers are scaled from, the scratch folder and the JSON output."""
    parser.add_argument(
        "--rows",
        type=int,
        default=50_000,
        help="generated lines gold is built from (default: 50,000)",
    )
    parser.add_argument(
        "--work-dir", help="scratch folder, emptied first (default: a new temp folder)"
    )
    parser.add_argument("--json", help="also write the figures to this JSON file (default: none)")


def _add_engine_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sweep-engine",
        default="auto",
        choices=("auto", "sklearn", "spark"),
        help="what fits the sweep: scikit-learn on the driver, Spark MLlib, or auto "
        "(scikit-learn up to 500,000 customers and under Spark Connect; default: auto)",
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Console entry point."""
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return args.func(args)
    except RetailSegError as exc:
        if args.verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.verbose:
            raise
        print(
            f"error: {args.command} failed with {type(exc).__name__}: {_first_line(exc)}; run "
            f"`retail-seg -v {args.command} ...` for the full trace",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
