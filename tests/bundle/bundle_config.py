"""The bundle's configuration as its YAML files declare it, merged per target the way the
Databricks CLI merges it, so the CLI tests can expect whatever the YAML says.

Local paths are rewritten relative to the bundle root (`../dist/*.whl` in resources/ becomes
`dist/*.whl`), since the CLI resolves them from the file that declares them.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
# lists inside a job that the CLI merges element by element, by this key
_JOB_LISTS_BY_KEY = {
    "tasks": "task_key",
    "job_clusters": "job_cluster_key",
    "environments": "environment_key",
    "parameters": "name",
}


def load(path: Path) -> Any:
    """One YAML file."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def config_files() -> list[Path]:
    """databricks.yml, then the files its `include` globs match."""
    included = (load(ROOT / "databricks.yml") or {}).get("include") or []
    found = {path for pattern in included for path in ROOT.glob(pattern)}
    return [ROOT / "databricks.yml", *sorted(found)]


def merge(base: Any, override: Any) -> Any:
    """Mappings merge key by key, sequences are appended, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list):
        return base + override
    return override


def _merge_by_key(items: list[dict], key: str) -> list[dict]:
    merged: dict[Any, dict] = {}
    for item in items:
        merged[item.get(key)] = merge(merged.get(item.get(key), {}), item)
    return list(merged.values())


def _local_paths(value: Any, folder: str) -> Any:
    if isinstance(value, dict):
        return {k: _local_paths(v, folder) for k, v in value.items()}
    if isinstance(value, list):
        return [_local_paths(v, folder) for v in value]
    if isinstance(value, str) and value.startswith(("./", "../")):
        return posixpath.normpath(posixpath.join(folder, value))
    return value


def declared(target: str) -> dict:
    """The configuration of one target before variables resolve.

    Top-level settings and every included file, then the target's own `resources`,
    `permissions`, `variables` and the rest merged over them; job tasks, clusters,
    environments and parameters merged by their key.
    """
    config: dict = {}
    for path in config_files():
        folder = path.parent.relative_to(ROOT).as_posix()
        config = merge(config, _local_paths(load(path) or {}, folder))
    overrides = dict((config.pop("targets", None) or {}).get(target) or {})
    variables = config.pop("variables", None) or {}
    for name, value in (overrides.pop("variables", None) or {}).items():
        if not isinstance(value, dict):
            value = {"default": value}
        kept = {k: v for k, v in variables.get(name, {}).items() if k not in ("default", "lookup")}
        variables[name] = {**kept, **value}
    config = merge(config, overrides)
    config["variables"] = variables
    for job in (config.get("resources") or {}).get("jobs", {}).values():
        for field, key in _JOB_LISTS_BY_KEY.items():
            if field in job:
                job[field] = _merge_by_key(job[field], key)
    return config


def targets() -> list[str]:
    """The targets databricks.yml declares."""
    return list((load(ROOT / "databricks.yml") or {}).get("targets") or {})


def resources(config: dict) -> list[tuple[str, str, dict]]:
    """(kind, key, spec) of every resource in a configuration."""
    return [
        (kind, key, spec)
        for kind, items in (config.get("resources") or {}).items()
        for key, spec in (items or {}).items()
    ]
