"""The console command: bad input ends in one clear sentence and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from retail_segmentation import cli


def test_missing_landing_folder_is_one_sentence(spark, tmp_path, capsys):
    code = cli.main(
        [
            "run",
            "--landing-path",
            str(tmp_path / "nowhere"),
            "--lakehouse-dir",
            str(tmp_path / "lh"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    # one sentence naming the task, the parameter, what was not run and how to restart
    assert err.strip() == (
        "error: task 'bronze' (retail-seg-bronze) failed: parameter "
        f"landing_path='{tmp_path / 'nowhere'}': no such folder or file; not run: silver, gold, "
        "sweep, register, score, recommend, offers. Fix it and run again with --from-task bronze"
    )


def test_unknown_table_in_sql_is_one_sentence(spark, tmp_path, capsys):
    code = cli.main(["sql", "SELECT * FROM retail.nope", "--lakehouse-dir", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the query failed: [TABLE_OR_VIEW_NOT_FOUND] The table or view")
    assert "Traceback" not in err


def test_bad_schema_name_is_refused_before_any_sql(spark, tmp_path, capsys):
    code = cli.main(
        ["sql", "SELECT 1", "--schema", "retail;drop", "--lakehouse-dir", str(tmp_path)]
    )
    assert code == 2
    assert "parameter schema='retail;drop' is not a valid name" in capsys.readouterr().err


def test_run_defaults():
    args = cli.build_parser().parse_args(["run"])
    assert (args.rows, args.seed, args.schema, args.lakehouse_dir) == (
        50_000,
        42,
        "retail",
        ".lakehouse",
    )


def _subcommands() -> dict:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return dict(action.choices)


def test_every_option_of_every_command_says_its_default():
    commands = _subcommands()
    assert set(commands) == {
        "run",
        "report",
        "ui",
        "show",
        "sql",
        "generate",
        "benchmark",
        "benchmark-silhouette",
        "benchmark-sweep",
        "benchmark-score",
        "benchmark-start",
        "setup",
        "upload",
        "run-job",
    }
    for name, parser in commands.items():
        for action in parser._actions:
            if not action.option_strings or action.dest == "help":
                continue
            assert action.help and ("default" in action.help or "required" in action.help), (
                f"retail-seg {name} {action.option_strings[0]}: {action.help!r}"
            )


def test_benchmark_start_refuses_no_starts(capsys):
    assert cli.main(["benchmark-start", "--repeat", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --repeat must be at least 1, got 0"


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            ["--daily", "--daily-share", "0"],
            "--daily-share must be a fraction in (0, 1], e.g. 0.01, got 0",
        ),
        (
            ["--daily", "--daily-share", "1.5"],
            "--daily-share must be a fraction in (0, 1], e.g. 0.01, got 1.5",
        ),
        (["--daily-share", "0.001"], "--daily-share times a day's increment: add --daily"),
    ],
)
def test_benchmark_refuses_a_daily_share_before_generating(argv, error, tmp_path, capsys):
    assert cli.main(["benchmark", "--work-dir", str(tmp_path), *argv]) == 2
    assert capsys.readouterr().err.strip() == f"error: {error}"
    assert list(tmp_path.iterdir()) == []  # nothing generated


def test_verbose_goes_before_or_after_the_command():
    parser = cli.build_parser()
    assert parser.parse_args(["-v", "show", "t"]).verbose is True
    assert parser.parse_args(["show", "t", "-v"]).verbose is True
    assert parser.parse_args(["show", "t"]).verbose is False


def test_ui_without_a_store_is_one_sentence(tmp_path, capsys):
    assert cli.main(["ui", "--lakehouse-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: no MLflow store at {tmp_path / 'mlflow' / 'mlflow.db'}: run the pipeline first "
        "(`retail-seg run`)"
    )


def test_report_before_any_run_names_the_missing_tables(spark, tmp_path, capsys):
    assert cli.main(["report", "--lakehouse-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the report needs table(s) retail.silver_transactions, ")
    assert err.endswith("which do not exist: run the pipeline first (`retail-seg run`)")


def test_show_prints_a_table_and_names_the_tables_there_are(spark, tmp_path, capsys):
    from retail_segmentation.common.config import TableConfig
    from retail_segmentation.common.tables import Lakehouse

    tables = TableConfig(schema="cli_show", lakehouse_dir=str(tmp_path))
    lakehouse = Lakehouse.attach(spark, tables)
    rows_df = spark.createDataFrame([(1, "a"), (2, "b")], "id int, name string")
    lakehouse.overwrite(rows_df.coalesce(1), "t")  # one file: the first row is always id 1
    argv = ["--schema", "cli_show", "--lakehouse-dir", str(tmp_path)]

    assert cli.main(["show", "cli_show.t", "--limit", "1", *argv]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:5] == [
        "cli_show.t: 2 rows; the first 1:",
        "+---+----+",
        "| id|name|",
        "+---+----+",
        "|  1|   a|",
    ]
    assert cli.main(["show", "nope", *argv]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: table cli_show.nope does not exist: expected one of t"
    )


def test_an_unexpected_failure_is_one_sentence_and_points_at_verbose(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("disk full\nJava stack trace ...")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["show"].set_defaults(func=broken)
    assert cli.main(["show", "t"]) == 1
    assert capsys.readouterr().err.strip() == (
        "error: show failed with RuntimeError: disk full; run `retail-seg -v show ...` for the "
        "full trace"
    )


def test_small_inputs_run_without_code_generation(tmp_path):
    # the generated default and small local files: interpreted expressions are cheaper
    assert cli.small_input(None, 50_000)
    assert not cli.small_input(None, 1_067_371)
    small = tmp_path / "small"
    small.mkdir()
    (small / "day.csv").write_bytes(b"x" * 1_000)
    assert cli.small_input(str(small), 50_000)
    assert cli.small_input(f"file:{small / 'day.csv'}", 50_000)
    big = tmp_path / "big"
    (big / "nested").mkdir(parents=True)
    (big / "nested" / "year.csv").write_bytes(b"x" * (cli.SMALL_INPUT_BYTES + 1))
    assert not cli.small_input(str(big), 50_000)
    # nothing there yet, or files elsewhere: Spark's default
    assert not cli.small_input(str(tmp_path / "missing"), 50_000)
    assert not cli.small_input("s3://bucket/landing", 50_000)


def test_the_default_data_set_is_copied_from_the_package_without_spark(tmp_path, monkeypatch):
    """The default rows and seed use the embedded copy; nothing is generated, and a second
    run finds the folder already complete."""
    from retail_segmentation.data import embedded

    def no_generation(*args, **kwargs):
        raise AssertionError("the default data set was generated, not copied")

    monkeypatch.setattr("retail_segmentation.data.generator.write_dataset", no_generation)
    landing = Path(cli._default_landing(str(tmp_path), cli.DEFAULT_ROWS, cli.DEFAULT_SEED))
    folder = tmp_path / "landing" / "default-50000-42"
    assert landing == folder / "transactions"
    assert [p.name for p in landing.iterdir()] == ["transactions-50000-42.csv.gz"]
    assert (landing / embedded.TRANSACTIONS.name).read_bytes() == embedded.TRANSACTIONS.read_bytes()
    assert (folder / "_truth" / "customer_profiles.csv").read_bytes() == embedded.TRUTH.read_bytes()

    (landing / embedded.TRANSACTIONS.name).write_bytes(b"kept")  # found again, not copied again
    assert cli._default_landing(str(tmp_path), cli.DEFAULT_ROWS, cli.DEFAULT_SEED) == str(landing)
    assert (landing / embedded.TRANSACTIONS.name).read_bytes() == b"kept"


def test_other_rows_or_seeds_are_generated(spark, tmp_path, monkeypatch):
    """Rows or a seed other than the embedded set's are generated, once: the generator's
    files, its truth, and the same folder found again on the next run."""
    from retail_segmentation.data.generator import GeneratorConfig, write_dataset

    monkeypatch.setattr("retail_segmentation.common.spark.get_spark", lambda **kwargs: spark)
    landing = Path(cli._default_landing(str(tmp_path), 1_000, 7))
    folder = tmp_path / "landing" / "default-1000-7"
    assert landing == folder / "transactions"
    (part,) = landing.glob("part-*.csv")
    expected = tmp_path / "expected"
    write_dataset(spark, GeneratorConfig(rows=1_000, seed=7), str(expected))
    (expected_part,) = (expected / "transactions").glob("part-*.csv")
    assert part.read_bytes() == expected_part.read_bytes()
    truth = "_truth/customer_profiles.csv"
    assert (folder / truth).read_bytes() == (expected / truth).read_bytes()

    def no_generation(*args, **kwargs):
        raise AssertionError("generated again")

    monkeypatch.setattr("retail_segmentation.data.generator.write_dataset", no_generation)
    assert cli._default_landing(str(tmp_path), 1_000, 7) == str(landing)
