"""Where MLflow runs and models live: a sqlite store under the lakehouse folder on a laptop,
the workspace and Unity Catalog on Databricks.

| | local | Databricks |
|---|---|---|
| tracking | `sqlite:///<lakehouse_dir>/mlflow/mlflow.db` | `databricks` |
| registry | the same sqlite store | `databricks-uc` |
| artifacts | `<lakehouse_dir>/mlflow/artifacts` | the workspace's artifact store |
| model name | `customer_segmentation` | `<catalog>.<schema>.customer_segmentation` |
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from retail_segmentation.common.config import TableConfig, validate_identifier
from retail_segmentation.common.errors import ConfigError
from retail_segmentation.common.spark import is_databricks

DEFAULT_EXPERIMENT = "retail_segmentation"
DEFAULT_MODEL = "customer_segmentation"
# The MLflow UI opens an experiment of this kind on its runs table (model training), not on
# the GenAI trace views it shows by default.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
# workspace paths: user folders carry e-mail addresses, development deploys a "[dev jane] " prefix
_EXPERIMENT = re.compile(r"^[A-Za-z0-9_./ @+\[\]-]{1,200}$")


# The registered model's alias that scores customers (set by the register task).
CHAMPION = "champion"


@dataclass(frozen=True)
class MlflowConfig:
    """Tracking and registry locations, the experiment and the registered model's name."""

    tracking_uri: str
    registry_uri: str
    experiment_name: str
    model_name: str
    artifact_location: str | None = None

    def __post_init__(self) -> None:
        if not _EXPERIMENT.match(self.experiment_name):
            raise ConfigError(
                f"parameter experiment_name={self.experiment_name!r} is not valid: expected "
                "letters, digits, spaces and _ . / - @ + [ ] (at most 200 characters)"
            )
        for part in self.model_name.split("."):
            validate_identifier(part, "model_name")

    @classmethod
    def for_tables(
        cls,
        tables: TableConfig,
        experiment_name: str = DEFAULT_EXPERIMENT,
        model_name: str = DEFAULT_MODEL,
    ) -> MlflowConfig:
        """The store for these tables: the lakehouse's sqlite file, or the workspace + UC."""
        if is_databricks():
            if not experiment_name.startswith("/"):
                raise ConfigError(
                    f"parameter experiment_name={experiment_name!r} is not a workspace path: on "
                    "Databricks it must be absolute, e.g. /Shared/retail_segmentation"
                )
            return cls(
                tracking_uri="databricks",
                registry_uri="databricks-uc",
                experiment_name=experiment_name,
                model_name=f"{tables.catalog}.{tables.schema}.{model_name}",
            )
        root = Path(tables.lakehouse_dir).absolute() / "mlflow"
        return cls(
            tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
            registry_uri=f"sqlite:///{root / 'mlflow.db'}",
            experiment_name=experiment_name,
            model_name=model_name,
            artifact_location=(root / "artifacts").as_uri(),
        )

    def activate(self) -> str:
        """Point the MLflow client at this store and experiment; returns the experiment id."""
        import mlflow

        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
                parents=True, exist_ok=True
            )
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.registry_uri)
        experiment = mlflow.get_experiment_by_name(self.experiment_name)
        if experiment is None:
            experiment_id = mlflow.create_experiment(
                self.experiment_name,
                artifact_location=self.artifact_location,
                tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
            )
        else:
            experiment_id = experiment.experiment_id
            if experiment.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
                mlflow.MlflowClient().set_experiment_tag(
                    experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND
                )
        mlflow.set_experiment(experiment_id=experiment_id)
        return experiment_id


def add_mlflow_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --experiment-name and --model-name (each ML task accepts both)."""
    parser.add_argument(
        "--experiment-name",
        default=DEFAULT_EXPERIMENT,
        help="MLflow experiment; on Databricks a workspace path such as "
        f"/Shared/retail_segmentation (default: {DEFAULT_EXPERIMENT})",
    )
    parser.add_argument(
        "--model-name",
        default=DEFAULT_MODEL,
        help="registered model; on Databricks it lives in <catalog>.<schema> "
        f"(default: {DEFAULT_MODEL})",
    )


def mlflow_config_from_args(args: argparse.Namespace, tables: TableConfig) -> MlflowConfig:
    """The MlflowConfig the parsed options name."""
    return MlflowConfig.for_tables(tables, args.experiment_name, args.model_name)


def mlflow_ui_command(lakehouse_dir: str, host: str = "127.0.0.1", port: int = 5000) -> list[str]:
    """The `mlflow ui` command line serving the local store of a lakehouse (loopback by
    default); a ConfigError when there is no store yet."""
    root = Path(lakehouse_dir).absolute() / "mlflow"
    if not (root / "mlflow.db").is_file():
        raise ConfigError(
            f"no MLflow store at {root / 'mlflow.db'}: run the pipeline first (`retail-seg run`)"
        )
    artifacts = (root / "artifacts").as_uri()
    return [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        # new experiments and proxied artifacts stay in the lakehouse, not in the current folder
        "--default-artifact-root",
        artifacts,
        "--artifacts-destination",
        artifacts,
        "--host",
        host,
        "--port",
        str(port),
    ]


def git_commit(explicit: str = "") -> str | None:
    """The commit the code came from: the given value (the bundle passes
    `${bundle.git.commit}`), else `git rev-parse HEAD` of the package's checkout, else None."""
    if explicit:
        return explicit
    if os.environ.get("RETAIL_SEG_GIT_COMMIT"):
        return os.environ["RETAIL_SEG_GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
