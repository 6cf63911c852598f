"""The local runner: job YAML -> tasks in dependency order, substitutions, failures."""

from __future__ import annotations

import re
import threading
import time

import pytest

from retail_segmentation import runner
from retail_segmentation.common.errors import ConfigError

JOB_YAML = """
resources:
  jobs:
    demo:
      parameters:
        - name: day
          default: ${var.day}
      tasks:
        - task_key: c
          depends_on: [{task_key: a}, {task_key: b}]
          python_wheel_task:
            {package_name: pkg, entry_point: run-c, parameters: ["--x", "{{job.parameters.day}}"]}
        - task_key: a
          python_wheel_task:
            {package_name: pkg, entry_point: run-a, parameters: ["--where", "${var.place}"]}
        - task_key: b
          depends_on: [{task_key: a}]
          python_wheel_task: {package_name: pkg, entry_point: run-b}
"""


@pytest.fixture
def graph(tmp_path):
    (tmp_path / "demo.job.yml").write_text(JOB_YAML)
    return runner.load_job(tmp_path)


def test_tasks_come_in_dependency_order(graph):
    assert [t.key for t in graph.tasks] == ["a", "b", "c"]
    assert graph.parameters == {"day": "${var.day}"}


def test_substitutions_resolve_variables_job_parameters_and_nesting():
    variables = {"root": "/data", "landing": "${var.root}/landing"}
    assert runner.resolve("${var.landing}/x", variables, {}) == "/data/landing/x"
    assert runner.resolve("{{ job.parameters.day }}", {}, {"day": "2011-12-10"}) == "2011-12-10"
    assert runner.resolve("${bundle.git.commit}", {}, {}) == ""
    references = {**variables, "resources.volumes.landing.name": "landing"}
    assert runner.resolve("${var.root}/${resources.volumes.landing.name}", references, {}) == (
        "/data/landing"
    )
    with pytest.raises(ConfigError, match=r"resources.volumes.raw.name is not declared"):
        runner.resolve("${resources.volumes.raw.name}", references, {})
    with pytest.raises(ConfigError, match="variable 'nope' is not declared"):
        runner.resolve("${var.nope}", variables, {})


def test_bundle_variables_are_the_string_defaults(tmp_path):
    bundle = tmp_path / "databricks.yml"
    bundle.write_text(
        "variables:\n"
        "  schema: {default: retail}\n"
        "  as_of_date: {default: ''}\n"
        "  k: {default: 3}\n"
        "  emails: {type: complex, default: [a@example.com]}\n"
        "  warehouse_id: {lookup: {warehouse: Starter}}\n"
    )
    assert runner.bundle_variables(bundle) == {"schema": "retail", "as_of_date": "", "k": "3"}


def test_resource_references_are_the_declared_fields(tmp_path):
    (tmp_path / "catalog.yml").write_text(
        "resources:\n"
        "  schemas:\n"
        "    retail: {catalog_name: main, name: '${var.schema}', grants: []}\n"
        "  volumes:\n"
        "    landing: {schema_name: '${resources.schemas.retail.name}', name: landing}\n"
    )
    assert runner.resource_references(tmp_path) == {
        "resources.schemas.retail.catalog_name": "main",
        "resources.schemas.retail.name": "${var.schema}",
        "resources.volumes.landing.schema_name": "${resources.schemas.retail.name}",
        "resources.volumes.landing.name": "landing",
    }


def test_a_cycle_and_an_unknown_dependency_are_named(tmp_path):
    (tmp_path / "x.job.yml").write_text(
        JOB_YAML.replace("depends_on: [{task_key: a}]\n", "depends_on: [{task_key: c}]\n").replace(
            "- task_key: a\n", "- task_key: a\n          depends_on: [{task_key: b}]\n"
        )
    )
    with pytest.raises(ConfigError, match=r"in a cycle"):
        runner.load_job(tmp_path)


def test_a_failed_task_stops_its_dependents_and_names_the_restart(graph, monkeypatch):
    calls = []

    def fake(package, name):
        def run(argv):
            calls.append((name, argv))
            if name == "run-b":
                raise ValueError("boom")

        return run

    monkeypatch.setattr(runner, "entry_point_function", fake)
    variables = {"day": "2011-12-10", "place": "here"}
    with pytest.raises(
        runner.TaskFailedError, match=r"task 'b' \(run-b\) failed: boom; not run: c.*--from-task b"
    ):
        runner.run_job(graph, variables, graph.parameters, ["--local"], announce=lambda _: None)
    assert calls == [("run-a", ["--where", "here", "--local"]), ("run-b", ["--local"])]

    calls.clear()
    monkeypatch.setattr(
        runner, "entry_point_function", lambda p, n: lambda argv: calls.append((n, argv))
    )
    timings = runner.run_job(
        graph, variables, graph.parameters, from_task="b", announce=lambda _: None
    )
    assert list(timings) == ["b", "c"]
    assert calls == [("run-b", []), ("run-c", ["--x", "2011-12-10"])]
    with pytest.raises(ConfigError, match="--from-task 'z' is not a task of demo"):
        runner.run_job(graph, variables, graph.parameters, from_task="z")


def test_each_task_line_names_its_place_time_and_the_rows_it_wrote(
    spark, lakehouse, graph, monkeypatch
):
    def fake(package, name):
        def run(argv):
            if name == "run-a":
                lakehouse.overwrite(spark.createDataFrame([(1,), (2,)], "id int"), "first")
            elif name == "run-b":
                lakehouse.append(spark.createDataFrame([(3,)], "id int"), "first")
                lakehouse.overwrite(spark.createDataFrame([(1,)], "id int"), "second")

        return run

    monkeypatch.setattr(runner, "entry_point_function", fake)
    lines = []
    runner.run_job(
        graph,
        {"day": "2011-12-10", "place": "here"},
        graph.parameters,
        announce=lines.append,
        tables_dir=lakehouse.local_root,
    )
    done = [line.split(" done in ")[0] + " | " + line.split("; ", 1)[1] for line in lines[1::2]]
    assert lines[0::2] == ["[1/3 a] run-a ...", "[2/3 b] run-b ...", "[3/3 c] run-c ..."]
    assert done == [
        "[1/3 a] | wrote first 2 rows",
        "[2/3 b] | wrote first 1 rows, second 1 rows",
        "[3/3 c] | wrote no table",
    ]


def test_a_delta_write_conflict_is_named_as_such(graph, monkeypatch):
    def conflict(package, name):
        def run(argv):
            raise RuntimeError(
                "[DELTA_CONCURRENT_APPEND] ConcurrentAppendException: Files were added to the "
                "root of the table by a concurrent update.\n\tat org.apache.spark..."
            )

        return run

    monkeypatch.setattr(runner, "entry_point_function", conflict)
    with pytest.raises(runner.TaskFailedError) as failed:
        runner.run_job(graph, {"day": "d", "place": "p"}, graph.parameters, announce=print)
    assert str(failed.value) == (
        "task 'a' (run-a) failed: another run committed to the same table at the same time, so "
        "Delta refused this task's commit and nothing of it is visible ([DELTA_CONCURRENT_APPEND] "
        "ConcurrentAppendException: Files were added to the root of the table by a concurrent "
        "update.); not run: b, c. Fix it and run again with --from-task a"
    )


BRANCHES_YAML = """
resources:
  jobs:
    branches:
      tasks:
        - task_key: a
          python_wheel_task: {package_name: pkg, entry_point: run-a}
        - task_key: b
          depends_on: [{task_key: a}]
          python_wheel_task: {package_name: pkg, entry_point: run-b}
        - task_key: c
          depends_on: [{task_key: a}]
          python_wheel_task: {package_name: pkg, entry_point: run-c}
        - task_key: d
          depends_on: [{task_key: b}, {task_key: c}]
          python_wheel_task: {package_name: pkg, entry_point: run-d}
"""


@pytest.fixture
def branches(tmp_path):
    (tmp_path / "branches.job.yml").write_text(BRANCHES_YAML)
    return runner.load_job(tmp_path)


def test_independent_tasks_run_at_once_and_print_in_the_job_order(branches, monkeypatch, capsys):
    both_running = threading.Barrier(2, timeout=30)  # broken unless b and c overlap
    c_done = threading.Event()

    def fake(package, name):
        def run(argv):
            print(f"{name} starts")
            if name in ("run-b", "run-c"):
                both_running.wait()
            if name == "run-b":
                assert c_done.wait(30)  # b ends after c, yet its lines come first
            print(f"{name} ends")
            if name == "run-c":
                c_done.set()

        return run

    monkeypatch.setattr(runner, "entry_point_function", fake)
    runs = runner.run_job(branches, {}, {}, parallel=2)
    assert set(runs) == {"a", "b", "c", "d"}
    lines = [
        re.sub(r"done in [0-9.]+s", "done", line) for line in capsys.readouterr().out.split("\n")
    ]
    assert lines == [
        "[1/4 a] run-a ...", "run-a starts", "run-a ends", "[1/4 a] done",
        "[2/4 b] run-b ...", "run-b starts", "run-b ends", "[2/4 b] done",
        "[3/4 c] run-c ...", "run-c starts", "run-c ends", "[3/4 c] done",
        "[4/4 d] run-d ...", "run-d starts", "run-d ends", "[4/4 d] done",
        "",
    ]  # fmt: skip


def test_tasks_at_once_each_name_only_the_tables_they_wrote(
    spark, lakehouse, branches, monkeypatch
):
    both_running = threading.Barrier(2, timeout=60)

    def fake(package, name):
        def run(argv):
            if name == "run-b":
                both_running.wait()
                lakehouse.overwrite(spark.createDataFrame([(1,), (2,)], "id int"), "from_b")
                both_running.wait()
            elif name == "run-c":
                both_running.wait()
                lakehouse.overwrite(spark.createDataFrame([(3,)], "id int"), "from_c")
                both_running.wait()  # each commits inside the other's time

        return run

    monkeypatch.setattr(runner, "entry_point_function", fake)
    lines = []
    runs = runner.run_job(
        branches, {}, {}, announce=lines.append, tables_dir=lakehouse.local_root, parallel=2
    )
    assert {k: dict(r.rows_written) for k, r in runs.items()} == {
        "a": {},
        "b": {"from_b": 2},
        "c": {"from_c": 1},
        "d": {},
    }
    written = sorted(line.split("; ")[1] for line in lines if " done in " in line)
    assert written == [
        "wrote from_b 2 rows",
        "wrote from_c 1 rows",
        "wrote no table",
        "wrote no table",
    ]


def test_after_a_failure_running_tasks_finish_and_no_other_starts(branches, monkeypatch, capsys):
    c_failed = threading.Event()
    ran = []

    def fake(package, name):
        def run(argv):
            ran.append(name)
            if name == "run-c":
                c_failed.set()
                raise ValueError("boom")
            if name == "run-b":
                assert c_failed.wait(30)
                time.sleep(0.2)  # still running when c's failure arrives

        return run

    monkeypatch.setattr(runner, "entry_point_function", fake)
    with pytest.raises(
        runner.TaskFailedError, match=r"task 'c' \(run-c\) failed: boom; not run: d\. .*-task c"
    ):
        runner.run_job(branches, {}, {}, parallel=2)
    assert sorted(ran) == ["run-a", "run-b", "run-c"]
    out = capsys.readouterr().out
    assert "[2/4 b] done in" in out and "[3/4 c] done" not in out and "[4/4 d]" not in out
    with pytest.raises(ConfigError, match="parallel=0: expected a whole number of tasks >= 1"):
        runner.run_job(branches, {}, {}, parallel=0)


def test_the_lakehouse_lock_is_held_once(tmp_path):
    from retail_segmentation.common.errors import ConcurrentRunError

    refused = pytest.raises(ConcurrentRunError, match=r"another run is using .* \(pid \d+")
    with runner.lakehouse_lock(str(tmp_path)), refused, runner.lakehouse_lock(str(tmp_path)):
        pass
    with runner.lakehouse_lock(str(tmp_path)):  # released
        pass
