"""Register the sweep's winner and decide whether it becomes the champion.

The winner of the latest finished sweep on the current gold tables is registered as a new
version of the model (once: registering again finds the version made from the same run).
The `champion` alias moves to it only when its silhouette beats the current champion's,
both measured on the same customers today; otherwise the new version gets `challenger`.
Scoring always loads `models:/<name>@champion`, never "the latest version".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from retail_segmentation.common.config import TableConfig
from retail_segmentation.common.errors import ConfigError
from retail_segmentation.common.tables import GOLD_CUSTOMER_BEHAVIOR, GOLD_CUSTOMER_RFM, Lakehouse
from retail_segmentation.ml import measures
from retail_segmentation.ml.features import customer_features_input
from retail_segmentation.ml.retrain_policy import DECISION_ROLE, DECISION_TAG
from retail_segmentation.ml.sweep import (
    GOLD_VERSIONS_TAG,
    MODEL_URI_TAG,
    ROLE_TAG,
    WINNER_TAG,
    gold_commits,
    gold_versions_tag,
    latest_finished_run,
    latest_finished_sweep,
)
from retail_segmentation.ml.tracking import CHAMPION, MlflowConfig

log = logging.getLogger(__name__)

CHALLENGER = "challenger"


@dataclass(frozen=True)
class RegisterConfig:
    """Parameters of the register task."""

    tables: TableConfig
    mlflow: MlflowConfig
    min_improvement: float = 0.0  # silhouette the winner must gain over the champion

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_improvement < 1.0:
            raise ConfigError(
                f"parameter min_improvement={self.min_improvement} is out of range: expected a "
                "silhouette gain in [0, 1)"
            )


@dataclass(frozen=True)
class RegisterOutcome:
    """The version registered for the winner and the alias it holds."""

    model_name: str
    version: str
    alias: str
    winner_silhouette: float
    champion_version: str | None  # the champion before this run
    champion_silhouette: float | None  # measured on today's data
    kept: str | None = None  # why the retraining policy kept the champion (nothing registered)


def decide_alias(
    winner_silhouette: float, champion_silhouette: float | None, min_improvement: float
) -> str:
    """`champion` when there is no champion or the winner beats it by more than
    min_improvement on the same data; `challenger` otherwise (a tie keeps the champion)."""
    if champion_silhouette is None or winner_silhouette > champion_silhouette + min_improvement:
        return CHAMPION
    return CHALLENGER


def model_silhouette(model_uri: str, input_df: DataFrame) -> float | None:
    """Silhouette of a registered model's segments on the silhouette sample of `input_df`,
    in the model's own feature space (measured as the sweep measures a candidate); None for a
    model that is not a SegmentModel pyfunc (an earlier release's Spark ML model)."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    try:
        model = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    except MlflowException:
        return None
    if not all(hasattr(model, a) for a in ("features", "labels_of", "input_columns")):
        return None
    sample = measures.silhouette_sample(input_df, ["customer_id", *model.input_columns])
    features = model.features.transform(sample)
    return measures.euclidean_silhouette(features, model.labels_of(features))


def latest_sweep(experiment_id: str, versions_tag: str):  # -> mlflow Run
    """The latest finished sweep parent run on these gold versions."""
    sweep = latest_finished_sweep(experiment_id, GOLD_VERSIONS_TAG, versions_tag)
    if sweep is None:
        raise ConfigError(
            f"no finished sweep on {versions_tag} in the MLflow experiment: run the sweep task "
            "first"
        )
    return sweep


def _kept_by_policy(client, experiment_id: str, name: str, versions_tag: str):
    """The champion as it stands when the sweep's retraining policy kept it on these gold
    versions (the decision run's reasons), else None."""
    decision = latest_finished_run(
        experiment_id,
        f"tags.`{ROLE_TAG}` = '{DECISION_ROLE}' AND tags.`{GOLD_VERSIONS_TAG}` = '{versions_tag}'",
    )
    if decision is None or decision.data.tags.get(DECISION_TAG) != "keep":
        return None
    champion = client.get_model_version_by_alias(name, CHAMPION)
    silhouette = float((champion.tags or {}).get("silhouette", "nan"))
    reasons = decision.data.tags.get("mlflow.note.content", "")
    version = str(champion.version)
    return RegisterOutcome(name, version, CHAMPION, silhouette, version, None, kept=reasons)


def register_winner(
    spark: SparkSession, lakehouse: Lakehouse, config: RegisterConfig
) -> RegisterOutcome:
    """Register the latest sweep's winner and set its alias (champion or challenger)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    experiment_id = config.mlflow.activate()
    client = mlflow.MlflowClient()
    name = config.mlflow.model_name
    commits = gold_commits(lakehouse)
    versions = {table: commit.version for table, commit in commits.items()}
    versions_tag = gold_versions_tag(versions)
    if latest_finished_sweep(experiment_id, GOLD_VERSIONS_TAG, versions_tag) is None:
        kept = _kept_by_policy(client, experiment_id, name, versions_tag)
        if kept is not None:
            return kept
    sweep = latest_sweep(experiment_id, versions_tag)
    winner_run_id = sweep.data.tags[WINNER_TAG]
    winner_silhouette = float(client.get_run(winner_run_id).data.metrics["silhouette"])

    # Unity Catalog's registry takes one filter condition: the run is matched here
    existing = [
        v for v in client.search_model_versions(f"name = '{name}'") if v.run_id == winner_run_id
    ]
    if existing:
        registered = existing[0]
    else:
        registered = mlflow.register_model(
            sweep.data.tags[MODEL_URI_TAG],
            name,
            tags={
                "sweep_run_id": sweep.info.run_id,
                "gold_versions": sweep.data.tags[GOLD_VERSIONS_TAG],
            },
        )
        client.set_model_version_tag(
            name, str(registered.version), "silhouette", f"{winner_silhouette:.6f}"
        )
    version = str(registered.version)  # the sqlite store answers int, Unity Catalog str

    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        champion = None

    if champion is not None and str(champion.version) == version:
        return RegisterOutcome(
            name, version, CHAMPION, winner_silhouette, version, winner_silhouette
        )

    champion_silhouette = None
    if champion is not None:
        input_df = customer_features_input(
            lakehouse.read(GOLD_CUSTOMER_RFM, version=commits[GOLD_CUSTOMER_RFM].latest_version),
            lakehouse.read(
                GOLD_CUSTOMER_BEHAVIOR, version=commits[GOLD_CUSTOMER_BEHAVIOR].latest_version
            ),
        )
        champion_silhouette = model_silhouette(f"models:/{name}@{CHAMPION}", input_df)
        if champion_silhouette is None:
            log.warning(
                "%s v%s (@%s) is not a SegmentModel pyfunc: the new winner replaces it",
                name,
                champion.version,
                CHAMPION,
            )
    alias = decide_alias(winner_silhouette, champion_silhouette, config.min_improvement)
    client.set_registered_model_alias(name, alias, version)
    if alias == CHAMPION:
        try:  # the new champion is no longer anybody's challenger
            if str(client.get_model_version_by_alias(name, CHALLENGER).version) == version:
                client.delete_registered_model_alias(name, CHALLENGER)
        except MlflowException:
            pass
    log.info(
        "%s v%s: silhouette %.4f vs champion %s -> %s",
        name,
        version,
        winner_silhouette,
        champion_silhouette,
        alias,
    )
    return RegisterOutcome(
        name,
        version,
        alias,
        winner_silhouette,
        str(champion.version) if champion is not None else None,
        champion_silhouette,
    )
