"""databricks.yml and every file it includes against the bundle JSON schema of the Databricks
CLI, committed here (`databricks bundle schema` of the version in
databricks_bundle_schema.version), so a misspelled field or a wrong type fails without the CLI
or a workspace. Each file is one bundle configuration document: the schema's root allows every
top-level key (bundle, variables, resources, targets, ...).

Regenerate the schema after changing the pinned CLI (.ci/databricks-cli.version):
    databricks bundle schema > tests/bundle/databricks_bundle_schema.json
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections import defaultdict
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from bundle_config import ROOT, config_files, load
from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import best_match

HERE = Path(__file__).resolve().parent
SCHEMA_FILE = HERE / "databricks_bundle_schema.json"
SCHEMA_VERSION = (HERE / "databricks_bundle_schema.version").read_text().strip()
VALIDATOR = Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
CONFIG_FILES = config_files()


def schema_errors(name: str, document: Any) -> list[str]:
    """One line per way the document breaks the schema: file, JSON path, what is wrong."""
    lines = []
    for error in VALIDATOR.iter_errors(document):
        # a oneOf over the whole document reports at its root; the most relevant
        # alternative's own error names the field at fault
        worst = best_match([error])
        lines.append(f"{name}: {worst.json_path}: {_describe(worst)}")
    return sorted(lines)


def _describe(error: ValidationError) -> str:
    if error.validator not in ("oneOf", "anyOf"):
        return error.message
    # the schema lets most fields be either their type or a ${...} reference
    alternatives = error.validator_value
    types = sorted({a["type"] for a in alternatives if "type" in a and "pattern" not in a})
    if any("pattern" in a for a in alternatives):
        types.append("a ${...} reference")
    return f"{error.instance!r} is not {' or '.join(types)}" if types else error.message


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_config_file_matches_the_bundle_schema(path):
    errors = schema_errors(str(path.relative_to(ROOT)), load(path))
    assert not errors, "\n".join(errors)


def test_resource_keys_are_unique_across_files_and_kinds():
    # the CLI refuses a bundle where two resources share a key, even a job and an experiment
    owners = defaultdict(list)
    for path in CONFIG_FILES:
        for kind, items in ((load(path) or {}).get("resources") or {}).items():
            for key in items or {}:
                owners[key].append(f"resources.{kind}.{key} in {path.relative_to(ROOT)}")
    shared = [" and ".join(where) for where in owners.values() if len(where) > 1]
    assert not shared, "resource keys used twice: " + "; ".join(shared)


def _first_job_file() -> tuple[Path, str, dict]:
    for path in CONFIG_FILES:
        jobs = ((load(path) or {}).get("resources") or {}).get("jobs") or {}
        for key in jobs:
            return path, key, load(path)
    pytest.skip("no job in the bundle to break")


def test_a_misspelled_task_field_is_reported_with_file_and_path():
    path, job, document = _first_job_file()
    broken = copy.deepcopy(document)
    task = broken["resources"]["jobs"][job]["tasks"][0]
    kind = next(k for k in task if k.endswith("_task"))
    task[kind[: -len("task")] + "tsk"] = task.pop(kind)  # python_wheel_task -> python_wheel_tsk

    errors = schema_errors(path.name, broken)

    assert errors == [
        f"{path.name}: $.resources.jobs.{job}.tasks[0]: Additional properties are not allowed"
        f" ('{kind[: -len('task')]}tsk' was unexpected)"
    ]


def test_a_wrong_type_is_reported_with_file_path_and_expected_type():
    path, job, document = _first_job_file()
    broken = copy.deepcopy(document)
    broken["resources"]["jobs"][job]["tasks"][0]["max_retries"] = "once"

    errors = schema_errors(path.name, broken)

    assert errors == [
        f"{path.name}: $.resources.jobs.{job}.tasks[0].max_retries:"
        " 'once' is not integer or a ${...} reference"
    ]


def test_schema_typed_classes_and_cli_are_one_version():
    pinned = (ROOT / ".ci" / "databricks-cli.version").read_text().strip()
    assert pinned == SCHEMA_VERSION, (
        f"the committed schema is of CLI {SCHEMA_VERSION}, the pinned CLI is {pinned}: "
        "regenerate it (see this module's docstring)"
    )
    assert pinned == version("databricks-bundles")


def test_committed_schema_is_the_pinned_cli_output(databricks_cli, cli_env, tmp_path):
    printed = subprocess.run(
        [str(databricks_cli), "bundle", "schema"],
        cwd=tmp_path,
        env=cli_env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    same = json.loads(printed) == json.loads(SCHEMA_FILE.read_text())
    assert same, f"{SCHEMA_FILE.name} differs from `databricks bundle schema`: regenerate it"
