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
    # experiments and registered models have no typed class in databricks-bundles yet; they
    # are checked against the CLI's JSON schema instead
    assert kinds == {"jobs", "schemas", "volumes", "experiments", "registered_models"}


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
