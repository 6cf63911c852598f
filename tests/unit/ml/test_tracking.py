"""Where MLflow runs and models live, locally and on Databricks, and the recorded git commit."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import _model_registry, _tracking_service, fluent

from retail_segmentation.common.config import TableConfig
from retail_segmentation.common.errors import ConfigError
from retail_segmentation.ml import tracking
from retail_segmentation.ml.tracking import MlflowConfig

RUNTIME_ENV = "DATABRICKS_RUNTIME_VERSION"  # what common.spark.is_databricks looks for


@pytest.fixture
def local(monkeypatch):
    monkeypatch.delenv(RUNTIME_ENV, raising=False)


@pytest.fixture
def restore_mlflow(monkeypatch):
    """Undo activate(): the client's URIs, active experiment and the env vars it exports."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.setenv(name, "placeholder")  # records the old value (or its absence)...
        monkeypatch.delenv(name)  # ...and starts the test without it
    monkeypatch.setattr(
        _tracking_service.utils, "_tracking_uri", _tracking_service.utils._tracking_uri
    )
    monkeypatch.setattr(_model_registry.utils, "_registry_uri", _model_registry.utils._registry_uri)
    monkeypatch.setattr(fluent, "_active_experiment_id", fluent._active_experiment_id)


def test_local_store_lives_under_the_lakehouse(local, tmp_path):
    tables = TableConfig(catalog="dev", schema="retail", lakehouse_dir=str(tmp_path / "lake"))
    config = MlflowConfig.for_tables(tables)
    db = tmp_path / "lake" / "mlflow" / "mlflow.db"
    assert config == MlflowConfig(
        tracking_uri=f"sqlite:///{db}",
        registry_uri=f"sqlite:///{db}",
        experiment_name="retail_segmentation",
        model_name="customer_segmentation",  # no catalog or schema outside Unity Catalog
        artifact_location=f"file://{tmp_path}/lake/mlflow/artifacts",
    )
    assert config.tracking_uri.startswith("sqlite:////")  # four slashes: an absolute path


def test_a_relative_lakehouse_dir_is_made_absolute(local, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = MlflowConfig.for_tables(TableConfig(lakehouse_dir=".lakehouse"), "exp", "seg_model")
    assert (config.tracking_uri, config.artifact_location, config.model_name) == (
        f"sqlite:///{tmp_path}/.lakehouse/mlflow/mlflow.db",
        Path(tmp_path, ".lakehouse", "mlflow", "artifacts").as_uri(),
        "seg_model",
    )


def test_databricks_uses_the_workspace_and_unity_catalog(monkeypatch):
    monkeypatch.setenv(RUNTIME_ENV, "15.4")
    tables = TableConfig(catalog="dev", schema="retail_gold", lakehouse_dir="/ignored")
    config = MlflowConfig.for_tables(tables, experiment_name="/Shared/retail_segmentation")
    assert config == MlflowConfig(
        tracking_uri="databricks",
        registry_uri="databricks-uc",
        experiment_name="/Shared/retail_segmentation",
        model_name="dev.retail_gold.customer_segmentation",
        artifact_location=None,  # the workspace decides
    )


def test_databricks_needs_a_workspace_path_for_the_experiment(monkeypatch):
    monkeypatch.setenv(RUNTIME_ENV, "17.3")
    with pytest.raises(ConfigError, match=r"experiment_name='retail_segmentation'.*/Shared/"):
        MlflowConfig.for_tables(TableConfig(), experiment_name="retail_segmentation")


@pytest.mark.parametrize("name", ["", "bad*name", "x" * 201, "tab\tname"])
def test_an_invalid_experiment_name_is_rejected(local, tmp_path, name):
    with pytest.raises(ConfigError, match="parameter experiment_name="):
        MlflowConfig.for_tables(TableConfig(lakehouse_dir=str(tmp_path)), experiment_name=name)


@pytest.mark.parametrize("name", ["bad-name", "a..b", "1model", "main.retail.my model"])
def test_an_invalid_model_name_is_rejected(local, tmp_path, name):
    with pytest.raises(ConfigError, match="parameter model_name="):
        MlflowConfig("sqlite:///x.db", "sqlite:///x.db", "exp", name)


def test_an_invalid_model_name_is_rejected_on_databricks(monkeypatch):
    monkeypatch.setenv(RUNTIME_ENV, "15.4")
    with pytest.raises(ConfigError, match="parameter model_name='seg-model'"):
        MlflowConfig.for_tables(TableConfig(), "/Shared/retail", model_name="seg-model")


def test_a_development_deploy_experiment_path_is_accepted(monkeypatch):
    monkeypatch.setenv(RUNTIME_ENV, "17.3")
    name = "/Workspace/Users/jane.doe+ml@example.com/[dev jane_doe] retail_segmentation"
    assert MlflowConfig.for_tables(TableConfig(), experiment_name=name).experiment_name == name


def test_the_longest_experiment_name_is_accepted(local, tmp_path):
    name = "/Shared/" + "x" * 192  # 200 characters
    assert MlflowConfig.for_tables(TableConfig(lakehouse_dir=str(tmp_path)), name).experiment_name


def test_activate_creates_the_experiment_once(local, restore_mlflow, tmp_path):
    config = MlflowConfig.for_tables(
        TableConfig(lakehouse_dir=str(tmp_path / "lake")), experiment_name="unit test"
    )
    first_id = config.activate()
    second_id = config.activate()

    assert second_id == first_id
    assert (tmp_path / "lake" / "mlflow" / "mlflow.db").is_file()
    assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == (
        config.tracking_uri,
        config.registry_uri,
    )
    experiments = mlflow.search_experiments(filter_string="name = 'unit test'")
    assert [(e.experiment_id, e.name, e.artifact_location) for e in experiments] == [
        (first_id, "unit test", config.artifact_location)
    ]
    assert mlflow.get_experiment(first_id).lifecycle_stage == "active"
    assert fluent._active_experiment_id == first_id


def test_git_commit_prefers_the_explicit_value_then_the_env_var(monkeypatch):
    monkeypatch.setenv("RETAIL_SEG_GIT_COMMIT", "from-env")
    assert tracking.git_commit("abc1234") == "abc1234"
    assert tracking.git_commit("") == "from-env"
    assert tracking.git_commit() == "from-env"


def test_git_commit_falls_back_to_the_checkout(monkeypatch):
    monkeypatch.delenv("RETAIL_SEG_GIT_COMMIT", raising=False)
    src = Path(tracking.__file__).resolve().parent
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, check=False
    )
    expected = head.stdout.strip() or None
    assert tracking.git_commit() == expected
    assert expected is None or re.fullmatch(r"[0-9a-f]{40}", expected)


def test_git_commit_is_none_without_git(monkeypatch, tmp_path):
    monkeypatch.delenv("RETAIL_SEG_GIT_COMMIT", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable to find
    assert tracking.git_commit() is None
