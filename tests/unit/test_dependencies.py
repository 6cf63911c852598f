"""The wheel's requirements: every third-party import is declared, and every requirement is
already met by what the Databricks runtimes the bundle targets ship, so installing the wheel
there upgrades nothing underneath them (the versions are in pyproject.toml's comment)."""

from __future__ import annotations

import ast
import sys
from importlib.metadata import packages_distributions, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
# pyproject.toml's requirements, as the installed package declares them
REQUIREMENTS = [Requirement(r) for r in requires("retail-segmentation") or []]
DEPENDENCIES = {canonicalize_name(r.name): r for r in REQUIREMENTS if not r.marker}
EXTRAS = {canonicalize_name(r.name) for r in REQUIREMENTS if r.marker}
# What each target runtime ships (its release notes), for every package the wheel requires.
RUNTIMES = {
    "DBR 17.3 LTS ML": {
        "mlflow-skinny": "3.0.1",
        "cloudpickle": "3.0.0",
        "numpy": "2.1.3",
        "pandas": "2.2.3",
        "pyarrow": "19.0.1",
        "scikit-learn": "1.6.1",
        "matplotlib": "3.10.0",
        "pyyaml": "6.0.2",
        "databricks-sdk": "0.49.0",
    },
    "serverless environment 4": {
        "mlflow-skinny": "2.22.0",
        "numpy": "2.1.3",
        "pandas": "2.2.3",
        "pyarrow": "19.0.1",
        "scikit-learn": "1.6.1",
        "matplotlib": "3.10.0",
    },
}
# Provided by every runtime the wheel runs on, and by the `local` extra on a laptop.
RUNTIME_PROVIDED = {"pyspark", "delta-spark", "py4j"}
# Modules only `retail-seg` commands on a laptop import (the report and its browser checks):
# their packages are in the `local` and `dev` extras.
LAPTOP_ONLY = {"report"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"retail_segmentation", "__future__"}


def test_every_third_party_import_is_declared():
    declared, extras = DEPENDENCIES, EXTRAS
    assert declared and extras
    distributions = packages_distributions()
    missing = []
    for path in sorted((ROOT / "src").rglob("*.py")):
        laptop_only = path.relative_to(ROOT / "src").parts[0] in LAPTOP_ONLY
        for module in sorted(_imports(path)):
            names = {canonicalize_name(d) for d in distributions.get(module, [module])}
            if names & RUNTIME_PROVIDED or names & declared.keys():
                continue
            if laptop_only and names & extras:
                continue
            missing.append(f"{path.relative_to(ROOT)}: {module} ({', '.join(sorted(names))})")
    assert not missing, "imports without a requirement:\n" + "\n".join(missing)


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_the_runtimes_already_meet_every_requirement(runtime):
    shipped = RUNTIMES[runtime]
    for name, requirement in DEPENDENCIES.items():
        if name not in shipped:
            continue  # installed from PyPI there (nothing to upgrade)
        assert requirement.specifier.contains(shipped[name]), (
            f"{requirement} would upgrade {runtime}'s {name} {shipped[name]}"
        )
    # the ML and data packages the tasks import on the cluster are all shipped
    assert {"mlflow-skinny", "numpy", "pandas", "scikit-learn", "matplotlib"} <= shipped.keys()
