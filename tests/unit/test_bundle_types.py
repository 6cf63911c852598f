"""The bundle's resources load into the `databricks-bundles` typed classes: every field is
one the Databricks CLI knows (unknown fields, wrong types and missing required fields are
rejected by `from_dict`), and nothing is lost on the way (`as_dict` gives the YAML back)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from databricks.bundles.jobs import Job
from databricks.bundles.schemas import Schema
from databricks.bundles.volumes import Volume

ROOT = Path(__file__).resolve().parents[2]
TYPES = {"jobs": Job, "schemas": Schema, "volumes": Volume}


def _resources() -> list[tuple[str, str, dict]]:
    found = []
    for path in sorted((ROOT / "resources").glob("*.yml")):
        for kind, items in (yaml.safe_load(path.read_text())["resources"]).items():
            for name, spec in items.items():
                found.append((kind, name, spec))
    return found


RESOURCES = _resources()


def test_every_resource_kind_is_known():
    kinds = {kind for kind, _, _ in RESOURCES}
    # experiments, registered models and dashboards have no typed class in databricks-bundles
    # yet; they are checked against the CLI's JSON schema instead
    assert kinds == {
        "jobs", "schemas", "volumes", "experiments", "registered_models", "dashboards"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "name", "spec"),
    [r for r in RESOURCES if r[0] in TYPES],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_resource_loads_into_its_typed_class_unchanged(kind, name, spec):
    typed = TYPES[kind].from_dict(spec)
    assert typed.as_dict() == spec


def test_an_unknown_field_would_be_rejected():
    job = next(spec for kind, _, spec in RESOURCES if kind == "jobs")
    broken = {**job, "tasks": [{**job["tasks"][0], "retries": 3}]}
    with pytest.raises(ValueError, match="Unexpected field 'retries'"):
        Job.from_dict(broken)


def _with_overrides(job: dict, override: dict) -> dict:
    """A job with a target's override merged the way the CLI merges it: tasks by task_key,
    an empty string unsetting a field."""
    tasks = {t["task_key"]: dict(t) for t in job["tasks"]}
    for task in override.get("tasks", []):
        tasks[task["task_key"]].update(task)
    merged = {**job, **{k: v for k, v in override.items() if k != "tasks"}}
    merged["tasks"] = [{k: v for k, v in t.items() if v != ""} for t in tasks.values()]
    return merged


@pytest.mark.parametrize("target", ["dev_classic", "prod_classic"])
def test_classic_targets_move_every_task_to_the_job_cluster(target):
    bundle = yaml.safe_load((ROOT / "databricks.yml").read_text())
    override = bundle["targets"][target]["resources"]["jobs"]["retail_segmentation"]
    job = next(spec for kind, name, spec in RESOURCES if kind == "jobs")
    merged = _with_overrides(job, override)

    typed = Job.from_dict(merged)
    assert typed.as_dict() == merged
    clusters = {c["job_cluster_key"] for c in merged["job_clusters"]}
    for task in merged["tasks"]:
        assert "environment_key" not in task
        assert task["job_cluster_key"] in clusters
        assert task["libraries"] == [{"whl": "./dist/*.whl"}]
    # every task of the job is overridden, none is left on serverless by mistake
    assert {t["task_key"] for t in override["tasks"]} == {t["task_key"] for t in job["tasks"]}
