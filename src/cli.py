"""`retail-seg`: run the pipeline locally, generate data, query tables.

retail-seg run                      # embedded default data -> bronze -> silver -> gold
retail-seg run --landing-path DIR   # your own CSV files
retail-seg generate --rows 1000000 --out DIR
retail-seg sql "SELECT * FROM retail.pipeline_ledger"
retail-seg upload data/*.csv        # into the deployed landing volume (databricks-sdk)
retail-seg run-job --param as_of_date=2011-12-10   # trigger the deployed job, follow it
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from pathlib import Path

from retail_segmentation.common.config import add_table_arguments, table_config_from_args
from retail_segmentation.common.errors import RetailSegError

DEFAULT_ROWS = 50_000
DEFAULT_SEED = 42


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)
    if not verbose:
        # MLflow's notices (store migrations, schema hints) are for developers, not users.
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
        logging.getLogger("mlflow").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module=r"mlflow\..*")
    # PySpark logs a failed query's context itself; the CLI reports it in one sentence.
    logging.getLogger("SQLQueryContextLogger").setLevel(
        logging.ERROR if verbose else logging.CRITICAL
    )


def _default_folder(lakehouse_dir: str, rows: int, seed: int) -> Path:
    return Path(lakehouse_dir) / "landing" / f"default-{rows}-{seed}"


def _default_landing(lakehouse_dir: str, rows: int, seed: int) -> str:
    """The embedded default: generated once (seeded) into the lakehouse folder."""
    from retail_segmentation.common.spark import get_spark
    from retail_segmentation.data.generator import GeneratorConfig, write_dataset

    out = _default_folder(lakehouse_dir, rows, seed)
    transactions = out / "transactions"
    if not any(transactions.glob("*.csv")):
        start = time.perf_counter()
        print(f"generating the default data set ({rows:,} lines, seed {seed}) in {out} ...")
        spark = get_spark(warehouse_dir=f"{lakehouse_dir}/spark-warehouse")
        write_dataset(spark, GeneratorConfig(rows=rows, seed=seed), str(out))
        print(f"  done in {time.perf_counter() - start:.1f}s")
    return str(transactions)


def _run(args: argparse.Namespace) -> int:
    """The bundle's job graph (resources/*.job.yml), run locally by the runner."""
    from retail_segmentation import runner
    from retail_segmentation.common.spark import get_spark
    from retail_segmentation.common.tables import Lakehouse

    landing = args.landing_path or _default_landing(args.lakehouse_dir, args.rows, args.seed)
    root = runner.bundle_root()
    variables = runner.bundle_substitutions(root)
    variables.update(
        catalog=args.catalog,
        schema=args.schema,
        landing_path=landing,
        encoding=args.encoding,
        column_mapping=args.column_mapping,
        experiment_name=args.experiment_name,
    )
    graph = runner.load_job(root / "resources")
    parameters = {**graph.parameters, "as_of_date": args.as_of_date, "k_range": args.k_range}
    task_args = {}
    if not args.landing_path:  # generated data: the true profiles are known
        truth = _default_folder(args.lakehouse_dir, args.rows, args.seed) / "truth"
        task_args["sweep"] = ["--truth-path", str(truth / "customer_profiles.csv")]
    runner.run_job(
        graph,
        variables,
        parameters,
        ["--lakehouse-dir", args.lakehouse_dir],
        from_task=args.from_task,
        task_args=task_args,
    )

    spark = get_spark(warehouse_dir=f"{args.lakehouse_dir}/spark-warehouse")
    lakehouse = Lakehouse.attach(spark, table_config_from_args(args))
    print("\ntables (query them with `retail-seg sql`):")
    for table in sorted(p.name for p in lakehouse.local_root.iterdir() if p.is_dir()):
        rows = lakehouse.read(table).count()
        print(f"  {lakehouse.name(table):<36} {rows:>10,} rows   {lakehouse.location(table)}")
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

    spark = get_spark(warehouse_dir=f"{args.lakehouse_dir}/spark-warehouse")
    Lakehouse.attach(spark, table_config_from_args(args))
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
    from retail_segmentation.benchmark import report, run_benchmark

    timings = run_benchmark(args.rows, args.seed, args.files, args.work_dir)
    print(report(timings, args.json))
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


def _add_deploy_parsers(sub: argparse._SubParsersAction) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    """The `retail-seg` argument parser."""
    parser = argparse.ArgumentParser(
        prog="retail-seg", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and full traces")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_tables(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        add_table_arguments(p)
        return p

    run = with_tables(
        sub.add_parser(
            "run", help="run the pipeline locally (bronze -> silver -> gold -> ML -> offers)"
        )
    )
    run.add_argument("--landing-path", help="folder of CSV files (default: the embedded sample)")
    run.add_argument(
        "--rows",
        type=int,
        default=DEFAULT_ROWS,
        help=f"lines of the generated default data (default: {DEFAULT_ROWS:,})",
    )
    run.add_argument("--seed", type=int, default=DEFAULT_SEED, help="generator seed (default: 42)")
    run.add_argument(
        "--as-of-date",
        default="",
        help="YYYY-MM-DD recency is counted back from (default: day after the last invoice)",
    )
    run.add_argument(
        "--k-range", default="2..8", help="LOW..HIGH k the sweep tries (default: 2..8)"
    )
    run.add_argument(
        "--experiment-name",
        default="retail_segmentation",
        help="MLflow experiment in the local store (default: retail_segmentation)",
    )
    run.add_argument("--from-task", help="start again from this task of the job (e.g. sweep)")
    run.add_argument(
        "--encoding", default="UTF-8", help="encoding of the CSV files (default: UTF-8)"
    )
    run.add_argument(
        "--column-mapping",
        default="",
        help='JSON {canonical: header} for other files, e.g. {"amount": "Total"}',
    )
    run.set_defaults(func=_run)

    gen = sub.add_parser("generate", help="write synthetic Online Retail II-shaped CSV")
    gen.add_argument("--rows", type=int, default=1_000_000, help="lines (default: 1,000,000)")
    gen.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed (default: 42)")
    gen.add_argument("--files", type=int, default=4, help="CSV files to write (default: 4)")
    gen.add_argument(
        "--header-variant",
        choices=["ii", "classic"],
        default="ii",
        help="Online Retail II or classic Online Retail headers (default: ii)",
    )
    gen.add_argument("--out", required=True, help="output folder")
    gen.set_defaults(func=_generate)

    bench = sub.add_parser("benchmark", help="time each task on generated data")
    bench.add_argument("--rows", type=int, default=1_000_000, help="lines (default: 1,000,000)")
    bench.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed (default: 42)")
    bench.add_argument("--files", type=int, default=4, help="CSV files (default: 4)")
    bench.add_argument("--work-dir", help="scratch folder (default: a new temp folder)")
    bench.add_argument("--json", help="also write the figures to this JSON file")
    bench.set_defaults(func=_benchmark)

    sql = with_tables(sub.add_parser("sql", help="query the local tables by name"))
    sql.add_argument("query", help='e.g. "SELECT * FROM retail.silver_products"')
    sql.add_argument("--limit", type=int, default=20, help="rows to show (default: 20)")
    sql.add_argument("--truncate", type=int, default=40, help="column width (default: 40)")
    sql.set_defaults(func=_sql)

    _add_deploy_parsers(sub)
    return parser


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


if __name__ == "__main__":
    sys.exit(main())
