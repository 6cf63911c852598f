"""Catalog, schema, experiment and model names that carry SQL metacharacters are refused,
naming the parameter, before any Spark session (and so any SQL) exists: for every task of the
bundle's job, with the parameters the YAML passes."""

from __future__ import annotations

import pytest

from retail_segmentation import cli, runner
from retail_segmentation.common import spark as spark_module
from retail_segmentation.common.errors import ConfigError

pytestmark = pytest.mark.faults

GRAPH = runner.load_job(runner.bundle_root() / "resources")
VARIABLES = runner.bundle_substitutions(runner.bundle_root())
UNSAFE = [
    ("--catalog", "main; DROP SCHEMA main.retail CASCADE", "catalog"),
    ("--schema", "retail`; --", "schema"),
    ("--schema", "x' OR '1'='1", "schema"),
    ("--experiment-name", "exp'); DELETE FROM runs; --", "experiment_name"),
    ("--model-name", "model; DROP TABLE x", "model_name"),
]


def _argv(task: runner.Task, option: str, value: str) -> list[str] | None:
    defaults = {k: runner.resolve(v, VARIABLES, {}) for k, v in GRAPH.parameters.items()}
    argv = runner.task_argv(task, VARIABLES, defaults)
    argv = [*argv, "--lakehouse-dir", "/nonexistent-lakehouse"]
    if option not in argv:
        return None
    argv[argv.index(option) + 1] = value
    return argv


CASES = [
    pytest.param(task, option, value, parameter, id=f"{task.key}{option}={value[:12]}")
    for task in GRAPH.tasks
    for option, value, parameter in UNSAFE
    if _argv(task, option, value) is not None
]


@pytest.fixture
def no_spark(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a Spark session was started before the names were checked")

    monkeypatch.setattr(spark_module, "local_spark", refuse)


def test_every_task_takes_the_unsafe_options():
    # the catalog and schema reach every task; experiment and model the three ML tasks
    by_option = {o: {c.values[0].key for c in CASES if c.values[1] == o} for o, _, _ in UNSAFE}
    every = {t.key for t in GRAPH.tasks}
    assert by_option["--catalog"] == by_option["--schema"] == every
    assert (
        by_option["--experiment-name"]
        == by_option["--model-name"]
        == {"sweep", "register", "score"}
    )


@pytest.mark.parametrize(("task", "option", "value", "parameter"), CASES)
def test_an_unsafe_name_is_refused_before_spark_starts(no_spark, task, option, value, parameter):
    function = runner.entry_point_function(task.package, task.entry_point)
    with pytest.raises(ConfigError, match=rf"^parameter {parameter}=") as refused:
        function(_argv(task, option, value))
    assert repr(value) in str(refused.value)


@pytest.mark.parametrize(
    "command", [["run"], ["show", "t"], ["sql", "SELECT 1"], ["report"]], ids=lambda c: c[0]
)
def test_the_cli_refuses_them_too(no_spark, command, tmp_path, capsys):
    argv = [*command, "--schema", "retail;DROP", "--lakehouse-dir", str(tmp_path)]
    assert cli.main(argv) == 2
    assert "parameter schema='retail;DROP' is not a valid name" in capsys.readouterr().err
