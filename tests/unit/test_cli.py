"""The console command: bad input ends in one clear sentence and exit code 2."""

from __future__ import annotations

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
