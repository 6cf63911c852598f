"""The bundle's job graph against the package: every task names an installed entry point
of the wheel, and that entry point accepts exactly the parameters the YAML passes."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from retail_segmentation import runner

ROOT = Path(__file__).resolve().parents[2]
GRAPH = runner.load_job(ROOT / "resources")
VARIABLES = runner.bundle_substitutions(ROOT)


class _ParsedError(Exception):
    """Raised instead of running a task once its arguments have parsed."""


def test_the_job_is_the_pipeline_graph():
    assert [t.key for t in GRAPH.tasks] == [
        "bronze", "silver", "gold", "sweep", "register", "score", "recommend", "offers"
    ]  # fmt: skip
    depends = {t.key: set(t.depends_on) for t in GRAPH.tasks}
    assert depends["offers"] == {"score", "recommend"}
    assert depends["recommend"] == {"gold"}
    assert {t.package for t in GRAPH.tasks} == {"retail_segmentation"}


@pytest.mark.parametrize("task", GRAPH.tasks, ids=lambda t: t.key)
def test_each_task_entry_point_accepts_the_yaml_parameters(task, monkeypatch):
    function = runner.entry_point_function(task.package, task.entry_point)
    parameters = {k: runner.resolve(v, VARIABLES, {}) for k, v in GRAPH.parameters.items()}
    argv = runner.task_argv(task, VARIABLES, parameters)
    assert not any("${" in a or "{{" in a for a in argv), argv  # everything resolved

    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        # a real parse: unknown or malformed parameters exit with argparse's error
        raise _ParsedError(original(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    with pytest.raises(_ParsedError) as parsed:
        function(argv)
    namespace = vars(parsed.value.args[0])
    assert namespace["catalog"] == VARIABLES["catalog"]
    assert namespace["schema"] == VARIABLES["schema"]
