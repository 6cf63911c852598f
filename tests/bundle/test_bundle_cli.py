"""The real Databricks CLI (the version in .ci/databricks-cli.version) validates and plans the
bundle for every target of databricks.yml against a loopback stand-in for the workspace, and
what it resolves is what the YAML declares.

Every expectation is read from databricks.yml and the files it includes (bundle_config.py),
so new resources, variables and targets are checked without changing this module.
`bundle plan` runs with the direct deployment engine, which needs no Terraform.
"""

from __future__ import annotations

import argparse
import configparser
import re
import zipfile
from collections.abc import Callable, Iterator
from graphlib import TopologicalSorter
from typing import Any

import pytest
from bundle_config import declared, resources, targets
from workspace_standin import TOKEN, WAREHOUSE_ID

DIRECT_ENGINE = {"DATABRICKS_BUNDLE_ENGINE": "direct"}
_REFERENCE = re.compile(r"\$\{([A-Za-z0-9_.\[\]-]+)\}")
_UNKNOWN = object()  # a reference resolved only at deploy time, or not at all
# lists of mappings whose elements are paired by this key when compared
_LIST_KEYS = ("task_key", "job_cluster_key", "environment_key", "name")
# the field development mode rewrites ([dev <user>] prefix), per resource kind
_NAME_FIELD = {"dashboards": "display_name"}
_TRIGGERS = ("schedule", "trigger", "continuous")
_JOB_LEVELS = ["CAN_VIEW", "CAN_MANAGE_RUN", "CAN_MANAGE", "IS_OWNER"]


@pytest.fixture(params=targets())
def target(request) -> str:
    return request.param


@pytest.fixture
def validated(run_cli, target) -> dict:
    """`databricks bundle validate -t <target> -o json`."""
    return run_cli("bundle", "validate", "-t", target, "-o", "json").output


@pytest.fixture
def planned(run_cli, target) -> dict:
    """The `plan` of `databricks bundle plan -t <target> -o json`."""
    return run_cli("bundle", "plan", "-t", target, "-o", "json", env=DIRECT_ENGINE).output["plan"]


def _walk(document: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(document, dict) or part not in document:
            return _UNKNOWN
        document = document[part]
    return document


def _validate_lookup(validated: dict) -> Callable[[str], Any]:
    """What `${...}` means after validate: variables, bundle.*, workspace.*; resources.* are
    left as references (validate prints them unresolved)."""

    def lookup(reference: str) -> Any:
        if reference.startswith("var."):
            return _walk(validated["variables"], reference[len("var.") :] + ".value")
        if reference.startswith("resources."):
            return _UNKNOWN
        return _walk(validated, reference)

    return lookup


def resolve(value: Any, lookup: Callable[[str], Any]) -> Any:
    """Substitute every `${...}` that `lookup` knows; a value that is one reference to a
    complex variable becomes that list or mapping."""
    if isinstance(value, dict):
        return {k: resolve(v, lookup) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, lookup) for v in value]
    if not isinstance(value, str):
        return value
    whole = _REFERENCE.fullmatch(value)
    if whole:
        found = lookup(whole[1])
        return value if found is _UNKNOWN else resolve(found, lookup)

    def substitute(match: re.Match) -> str:
        found = lookup(match[1])
        return match[0] if found is _UNKNOWN else str(resolve(found, lookup))

    return _REFERENCE.sub(substitute, value)


def missing(expected: Any, actual: Any, path: str = "$") -> list[str]:
    """Where `actual` lacks what `expected` declares; extra keys and list items are fine.

    Lists of mappings pair their elements by task_key, job_cluster_key, ... when they have
    one, else each expected element must be in some actual one; lists of scalars must be
    equal. Empty values match absent ones, and `./x` matches `x`.
    """
    if expected in ("", [], {}, None) and actual in ("", [], {}, None, _UNKNOWN):
        return []
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected a mapping, got {actual!r}"]
        return [
            m
            for k, v in expected.items()
            for m in missing(v, actual.get(k, _UNKNOWN), f"{path}.{k}")
        ]
    if isinstance(expected, list) and all(isinstance(e, dict) for e in expected):
        if not isinstance(actual, list):
            return [f"{path}: expected a list, got {actual!r}"]
        key = next((k for k in _LIST_KEYS if all(k in e for e in expected)), None)
        if key:
            by_key = {a.get(key): a for a in actual if isinstance(a, dict)}
            return [
                m
                for e in expected
                for m in missing(e, by_key.get(e[key], _UNKNOWN), f"{path}[{key}={e[key]}]")
            ]
        return [
            f"{path}: {e!r} not in {actual!r}"
            for e in expected
            if all(missing(e, a) for a in actual)
        ]
    if isinstance(actual, str) and actual.startswith("./"):
        actual = actual[2:]
    if isinstance(expected, list) and isinstance(actual, list):
        actual = [a[2:] if isinstance(a, str) and a.startswith("./") else a for a in actual]
    return [] if expected == actual else [f"{path}: expected {expected!r}, got {actual!r}"]


def _strings(value: Any, path: str = "$") -> Iterator[tuple[str, str]]:
    """(JSON path, string) of every string in a JSON document."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value


def _planned_jobs(planned: dict) -> dict[str, dict]:
    """Each job's new state in the plan, by resource key."""
    jobs = {k: v for k, v in planned.items() if k.startswith("resources.jobs.")}
    return {k.split(".")[2]: v["new_state"]["value"] for k, v in jobs.items() if k.count(".") == 2}


def _canonical(distribution: str) -> str:
    """A package name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _principal(permission: dict) -> str:
    return next(f"{k}={v}" for k, v in permission.items() if k != "level")


def _development(target: str) -> bool:
    return declared(target).get("mode") == "development"


# ---------------------------------------------------------------- bundle validate


def test_without_a_warehouse_id_validate_names_the_variable_and_how_to_set_it(run_cli, cli_env):
    run = run_cli("bundle", "validate", "-t", "dev", env={"BUNDLE_VAR_warehouse_id": None})
    assert run.returncode != 0
    assert "no value assigned to required variable warehouse_id" in run.stderr + run.stdout
    assert "--var" in run.stderr + run.stdout


def test_validate_reports_no_warning(run_cli, target):
    run = run_cli("bundle", "validate", "-t", target, "-o", "json")
    assert run.output
    assert "Warning:" not in run.stderr and "Error:" not in run.stderr, run.stderr


def test_variables_resolve_to_the_target_values(validated, target, cli_env):
    lookup = _validate_lookup(validated)
    for name, spec in declared(target)["variables"].items():
        value = validated["variables"][name].get("value")
        assert "lookup" not in spec, f"{name}: a lookup fails validate where the name differs"
        if "default" in spec:
            assert value == resolve(spec.get("default"), lookup), name
        else:  # required: the tests give it as BUNDLE_VAR_<name>, as a user would
            assert value == cli_env[f"BUNDLE_VAR_{name}"], name
    assert validated["variables"]["warehouse_id"]["value"] == WAREHOUSE_ID
    # resources.* references are left for deploy time
    unresolved = [
        f"{path}: {text}"
        for path, text in _strings(validated["resources"], "resources")
        if any(not ref.startswith("resources.") for ref in _REFERENCE.findall(text))
    ]
    assert not unresolved, unresolved


def test_resources_are_the_yaml_with_variables_resolved(validated, target):
    lookup = _validate_lookup(validated)
    gaps = []
    for kind, key, spec in resources(declared(target)):
        expected = resolve(spec, lookup)
        if _development(target):
            expected.pop(_NAME_FIELD.get(kind, "name"), None)  # prefixed, checked below
        actual = validated["resources"].get(kind, {}).get(key, _UNKNOWN)
        gaps += missing(expected, actual, f"resources.{kind}.{key}")
    assert not gaps, "\n".join(gaps)


def test_job_task_graph_is_the_yaml_and_runs(validated, target):
    for kind, key, job in resources(declared(target)):
        if kind != "jobs":
            continue
        graph = _task_graph(validated["resources"]["jobs"][key].get("tasks", []))
        assert graph == _task_graph(job.get("tasks", []))
        # the CLI leaves this to the Jobs API at deploy time
        unknown = {d for needs in graph.values() for d in needs} - graph.keys()
        assert not unknown, f"jobs.{key}: tasks depend on unknown tasks {sorted(unknown)}"
        tuple(TopologicalSorter(graph).static_order())  # raises CycleError on a cycle


def _task_graph(tasks: list[dict]) -> dict[str, list[str]]:
    return {t["task_key"]: sorted(d["task_key"] for d in t.get("depends_on", [])) for t in tasks}


def test_development_mode_prefixes_names_and_pauses_triggers(validated, target):
    config = declared(target)
    prefix = f"[dev {validated['workspace']['current_user']['short_name']}] "
    for kind, key, spec in resources(config):
        resolved = validated["resources"][kind][key]
        name_field = _NAME_FIELD.get(kind, "name")
        if kind in ("jobs", "dashboards") and name_field in spec:
            name = resolve(spec[name_field], _validate_lookup(validated))
            assert resolved[name_field] == (prefix + name if _development(target) else name)
        for trigger in _TRIGGERS:
            if trigger in spec and "pause_status" not in spec[trigger]:
                paused = resolved[trigger].get("pause_status") == "PAUSED"
                assert paused == _development(target), f"{kind}.{key}.{trigger} in {target}"


def test_top_level_permissions_reach_every_job(validated, target):
    permissions = resolve(declared(target).get("permissions") or [], _validate_lookup(validated))
    assert validated.get("permissions", []) == permissions
    for key, job in validated["resources"].get("jobs", {}).items():
        # the deploying user's CAN_MANAGE becomes IS_OWNER
        granted = {_principal(p): _JOB_LEVELS.index(p["level"]) for p in job.get("permissions", [])}
        for permission in permissions:
            level = granted.get(_principal(permission), -1)
            assert level >= _JOB_LEVELS.index(permission["level"]), f"jobs.{key}: {permission}"


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_cli_talks_to_the_stand_in_with_the_token_and_writes_nothing(
    run_cli, validated, target, command
):
    env = DIRECT_ENGINE if command == "plan" else None
    run = run_cli("bundle", command, "-t", target, "-o", "json", env=env)
    assert run.output
    assert not run.unrouted, [f"{r.method} {r.path}" for r in run.unrouted]

    me = [r for r in run.requests if r.path == "/api/2.0/preview/scim/v2/Me"]
    assert me and me[0].headers.get("authorization") == f"Bearer {TOKEN}"
    api = [r for r in run.requests if r.path.startswith("/api/")]
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in api)
    # validate and plan only look, apart from creating the bundle's own folders
    root = validated["workspace"]["root_path"]
    writes = [r for r in run.requests if r.method != "GET"]
    assert all(
        r.path == "/api/2.0/workspace/mkdirs" and r.json()["path"].startswith(root) for r in writes
    )
    statuses = {
        r.query["path"][0] for r in run.requests if r.path == "/api/2.0/workspace/get-status"
    }
    if command == "validate":  # it checks the folder the bundle's files sync to
        assert validated["workspace"]["file_path"] in statuses
    else:  # it finds no deployment state, so every resource is new
        assert f"{validated['workspace']['state_path']}/resources.json" in statuses
    lookups = [
        s for s in declared(target)["variables"].values() if "warehouse" in s.get("lookup", {})
    ]
    assert bool(lookups) == any(r.path == "/api/2.0/sql/warehouses" for r in run.requests)


# ---------------------------------------------------------------- bundle plan


def test_plan_creates_every_declared_resource(planned, target):
    top_level = {key for key in planned if key.count(".") == 2}
    assert top_level == {f"resources.{kind}.{key}" for kind, key, _ in resources(declared(target))}
    assert {entry["action"] for entry in planned.values()} == {"create"}


def test_plan_installs_the_wheel_the_artifact_build_made(planned, validated, bundle_copy, target):
    wheels = sorted((bundle_copy.root / "dist").glob("*.whl"))
    assert len(wheels) == 1, wheels
    # dynamic_version: the CLI gives each deploy's wheel its own version (<version>+<digits>),
    # so serverless installs the new code rather than a cached environment's
    patched = sorted(
        (bundle_copy.root / ".databricks" / "bundle" / target / "patched_wheels").glob("*/*.whl")
    )
    assert len(patched) == 1, patched
    built_version = wheels[0].name.split("-")[1]
    assert re.fullmatch(rf"{re.escape(built_version)}\+\d+", patched[0].name.split("-")[1])
    uploaded = f"{validated['workspace']['artifact_path']}/.internal/{patched[0].name}"
    jobs = _planned_jobs(planned)
    referenced = {
        text for job in jobs.values() for _, text in _strings(job) if text.endswith(".whl")
    }
    assert referenced == {uploaded}

    # it is the package every python_wheel_task runs, with the task's entry point
    with zipfile.ZipFile(patched[0]) as wheel:
        name = next(n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt"))
        entry_points = configparser.ConfigParser(delimiters=("=",))
        entry_points.optionxform = str  # keep the names' case
        entry_points.read_string(wheel.read(name).decode())
    distribution = _canonical(wheels[0].name.split("-")[0])
    for job in jobs.values():
        for task in job["tasks"]:
            if "python_wheel_task" in task:
                wheel_task = task["python_wheel_task"]
                assert _canonical(wheel_task["package_name"]) == distribution
                assert wheel_task["entry_point"] in entry_points["console_scripts"], task


def test_the_bundle_knows_its_git_commit(validated, bundle_copy):
    # tasks given ${bundle.git.commit} record the code they ran
    assert validated["bundle"]["git"]["commit"] == bundle_copy.commit


def test_tasks_are_given_the_names_the_bundle_deploys(planned, validated, target):
    # Development mode renames what the bundle creates (schema dev_<user>_retail,
    # experiment [dev <user>] ...); a task given the variable instead of
    # ${resources.<kind>.<key>.name} would use the unrenamed name, which nothing creates.
    lookup = _validate_lookup(validated)
    renamed = {}
    for kind, key, spec in resources(declared(target)):
        field = _NAME_FIELD.get(kind, "name")
        deployed = planned[f"resources.{kind}.{key}"]["new_state"]["value"].get(field)
        named = resolve(spec.get(field), lookup)
        if kind != "jobs" and isinstance(named, str) and "${" not in named and named != deployed:
            renamed[named] = (
                f"{kind}.{key} ({deployed!r}): pass ${{resources.{kind}.{key}.{field}}}"
            )
    wrong = []
    for job in _planned_jobs(planned).values():
        for task in job.get("tasks", []):
            wheel = task.get("python_wheel_task", {})
            arguments = [*wheel.get("parameters", []), *wheel.get("named_parameters", {}).values()]
            for argument in arguments:
                parts = {argument, *argument.split("/")}
                wrong += [
                    f"{task['task_key']} gets {argument!r}, the bundle deploys {r}"
                    for n, r in renamed.items()
                    if n in parts
                ]
    assert not wrong, "\n".join(wrong)


class _ParsedError(Exception):
    """Raised instead of running a task once its arguments have parsed."""


def test_tasks_accept_the_parameters_the_workspace_will_pass(planned, monkeypatch):
    # what the deployed job passes (dev-renamed schema, model and experiment included)
    # parses in each entry point and passes the checks the task makes on Databricks
    from retail_segmentation import runner
    from retail_segmentation.common.config import TableConfig
    from retail_segmentation.ml.tracking import MlflowConfig

    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        raise _ParsedError(original(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    for job in _planned_jobs(planned).values():
        defaults = {p["name"]: p["default"] for p in job.get("parameters", [])}
        for task in job["tasks"]:
            wheel = task["python_wheel_task"]
            argv = [runner.resolve(p, {}, defaults) for p in wheel["parameters"]]
            with pytest.raises(_ParsedError) as parsed:
                runner.entry_point_function(wheel["package_name"], wheel["entry_point"])(argv)
            args = parsed.value.args[0]
            tables = TableConfig(catalog=args.catalog, schema=args.schema)
            if hasattr(args, "experiment_name"):
                MlflowConfig(
                    tracking_uri="databricks",
                    registry_uri="databricks-uc",
                    experiment_name=args.experiment_name,
                    model_name=f"{tables.catalog}.{tables.schema}.{args.model_name}",
                )
