"""The segmentation sweep: KMeans and GaussianMixture for every k, one MLflow child run each
under one parent run per sweep; the winner's full model is logged on its child run.

A sweep is named by its input (the Delta versions of the gold tables) and its parameters
(the sweep key). A finished sweep with the same key is not repeated, so a second run on
unchanged data leaves the experiment, and the champion, as they were.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from retail_segmentation.common.config import TableConfig
from retail_segmentation.common.errors import ConfigError
from retail_segmentation.common.tables import GOLD_CUSTOMER_BEHAVIOR, GOLD_CUSTOMER_RFM, Lakehouse
from retail_segmentation.ml.clustering import (
    ALGORITHMS,
    FitResult,
    SweepParams,
    adjusted_rand_index,
    cluster_profile,
    contingency,
    fit_candidate,
    full_model,
    select_winner,
)
from retail_segmentation.ml.features import (
    FEATURES_COL,
    customer_features_input,
    feature_names,
    fit_features,
)
from retail_segmentation.ml.tracking import MlflowConfig, git_commit

log = logging.getLogger(__name__)

SWEEP_INPUTS = (GOLD_CUSTOMER_RFM, GOLD_CUSTOMER_BEHAVIOR)
ROLE_TAG = "retail_seg.role"
SWEEP_KEY_TAG = "retail_seg.sweep_key"
GOLD_VERSIONS_TAG = "retail_seg.gold_versions"
WINNER_TAG = "retail_seg.winner_run_id"
MODEL_URI_TAG = "retail_seg.model_uri"
MODEL_ARTIFACT = "model"


@dataclass(frozen=True)
class SweepConfig:
    """Parameters of the sweep task."""

    tables: TableConfig
    mlflow: MlflowConfig
    params: SweepParams
    truth_path: str | None = None  # CSV customer_id,profile: known profiles (generated data)
    git_commit: str = ""
    parallelism: int = 4  # candidates fitted at once; does not change any result

    def __post_init__(self) -> None:
        if not 1 <= self.parallelism <= 64:
            raise ConfigError(
                f"parameter parallelism={self.parallelism} is out of range: expected 1 to 64"
            )


@dataclass(frozen=True)
class SweepOutcome:
    """The parent run, every candidate's measures, and the winner."""

    parent_run_id: str
    sweep_key: str
    results: tuple[FitResult, ...]
    winner: FitResult
    seconds: float
    reused: bool = False


def gold_versions(lakehouse: Lakehouse) -> dict[str, int]:
    """Current Delta versions of the sweep's input tables."""
    for table in SWEEP_INPUTS:
        if not lakehouse.exists(table):
            raise ConfigError(
                f"table {lakehouse.name(table)} does not exist: run the gold task first"
            )
    return {table: lakehouse.version(table) for table in SWEEP_INPUTS}


def gold_versions_tag(versions: dict[str, int]) -> str:
    """e.g. gold_customer_rfm@v3,gold_customer_behavior@v3: the data a sweep saw."""
    return ",".join(f"{table}@v{v}" for table, v in versions.items())


def sweep_key(versions: dict[str, int], params: SweepParams) -> str:
    """Names a sweep by its input versions and its parameters."""
    digest = hashlib.sha256(
        json.dumps(asdict(params), sort_keys=True, default=str).encode()
    ).hexdigest()[:12]
    return f"sweep:{gold_versions_tag(versions)}:{digest}"


def read_truth(spark: SparkSession, path: str) -> DataFrame:
    """Known profiles per customer (customer_id, profile) from a CSV with a header."""
    truth_df = spark.read.option("header", True).csv(path)
    missing = {"customer_id", "profile"} - set(truth_df.columns)
    if missing:
        raise ConfigError(
            f"truth file {path} lacks column(s) {', '.join(sorted(missing))}: expected a CSV "
            "with header customer_id,profile"
        )
    return truth_df.select("customer_id", "profile")


def latest_finished_sweep(experiment_id: str, tag: str, value: str):  # -> mlflow Run | None
    """The latest finished sweep parent run whose `tag` equals `value` (the sweep key, or the
    gold versions), with its winner recorded; None if there is none."""
    import mlflow

    runs = mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string=(
            f"tags.`{ROLE_TAG}` = 'sweep' AND tags.`{tag}` = '{value}' "
            "AND attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time DESC"],
        output_format="list",
    )
    return next((run for run in runs if WINNER_TAG in run.data.tags), None)


def run_sweep(spark: SparkSession, lakehouse: Lakehouse, config: SweepConfig) -> SweepOutcome:
    """Fit every candidate, log each as a child run, pick and log the winner's model."""
    import mlflow

    start = time.perf_counter()
    params = config.params
    experiment_id = config.mlflow.activate()
    client = mlflow.MlflowClient()
    versions = gold_versions(lakehouse)
    key = sweep_key(versions, params)
    previous = latest_finished_sweep(experiment_id, SWEEP_KEY_TAG, key)
    if previous is not None:
        return _reused(previous, key, start)

    input_columns = list(params.features.input_columns)
    input_df = customer_features_input(
        lakehouse.read(GOLD_CUSTOMER_RFM, version=versions[GOLD_CUSTOMER_RFM]),
        lakehouse.read(GOLD_CUSTOMER_BEHAVIOR, version=versions[GOLD_CUSTOMER_BEHAVIOR]),
    ).persist(StorageLevel.MEMORY_AND_DISK)
    cached = [input_df]
    try:
        feature_model = fit_features(input_df, params.features)
        # Every candidate reads the same prepared features: compute them once.
        # Iterative fits launch a job per iteration: a few partitions (one per core) keep the
        # per-task overhead from dominating on small data without limiting large data.
        features_df = (
            feature_model.transform(input_df)
            .select("customer_id", FEATURES_COL, *input_columns)
            .repartition(spark.sparkContext.defaultParallelism, "customer_id")
            .sortWithinPartitions("customer_id")  # same rows, same order: seeded fits repeat
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        cached.append(features_df)
        customers = features_df.count()
        if customers < max(10, 3 * params.k_max):
            raise ConfigError(
                f"{lakehouse.name(GOLD_CUSTOMER_RFM)} holds {customers} customers: too few for "
                f"k_max={params.k_max} (expected at least {max(10, 3 * params.k_max)}); lower "
                "k_max or load more data"
            )
        truth_df = read_truth(spark, config.truth_path).cache() if config.truth_path else None
        if truth_df is not None:
            cached.append(truth_df)
        commit = git_commit(config.git_commit)
        tags = {
            ROLE_TAG: "sweep",
            SWEEP_KEY_TAG: key,
            GOLD_VERSIONS_TAG: gold_versions_tag(versions),
        }
        if commit:
            tags["mlflow.source.git.commit"] = commit
        run_name = f"sweep {gold_versions_tag(versions)}"
        with mlflow.start_run(run_name=run_name, tags=tags) as parent:
            _log_sweep_params(params, customers)
            inputs = training_inputs(lakehouse, versions)
            client.log_inputs(parent.info.run_id, datasets=inputs)
            # Small fits are bound by Spark's per-job latency, not by cores: fitting several
            # at once (each seeded, on the same cached features) shortens the sweep and gives
            # the same models. MLflow logging stays on this thread, in a fixed order.
            candidates = [(a, k) for a in params.algorithms for k in params.ks]
            with ThreadPoolExecutor(max_workers=config.parallelism) as pool:
                fitted = list(
                    pool.map(
                        lambda c: _fit_and_measure(
                            features_df, *c, params, input_columns, truth_df
                        ),
                        candidates,
                    )
                )
            results, models = [], {}
            for model, result, profile, seconds in fitted:
                result = _log_candidate(result, profile, seconds, params, tags, inputs)
                results.append(result)
                models[result.name] = model
                log.info("%s: silhouette %.4f", result.name, result.silhouette)
            winner = select_winner(results, params.min_cluster_share)
            model_uri = _log_winner_model(
                spark, feature_model, models[winner.name], winner, features_df, input_columns
            )
            mlflow.set_tags(
                {WINNER_TAG: winner.run_id, MODEL_URI_TAG: model_uri, "winner": winner.name}
            )
            mlflow.log_metrics(
                {
                    "best_silhouette": winner.silhouette,
                    "winner_k": winner.k,
                    "winner_smallest_cluster_share": winner.smallest_cluster_share,
                }
            )
            if winner.adjusted_rand_index is not None:
                mlflow.log_metric("winner_adjusted_rand_index", winner.adjusted_rand_index)
            _log_sweep_artifacts(results, winner)
    finally:
        for df in cached:
            df.unpersist()
    return SweepOutcome(
        parent.info.run_id, key, tuple(results), winner, time.perf_counter() - start
    )


def sweep_results(parent) -> tuple[FitResult, ...]:
    """The fits of a sweep (its parent run), ordered by algorithm and k, read back from its
    child runs."""
    import mlflow

    children = mlflow.search_runs(
        experiment_ids=[parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        output_format="list",
    )
    return tuple(sorted((_result_of(run) for run in children), key=lambda r: (r.algorithm, r.k)))


def _reused(previous, key: str, start: float) -> SweepOutcome:
    results = sweep_results(previous)
    winner = next(r for r in results if r.run_id == previous.data.tags[WINNER_TAG])
    return SweepOutcome(
        previous.info.run_id, key, results, winner, time.perf_counter() - start, reused=True
    )


def _result_of(run) -> FitResult:
    p, m = run.data.params, run.data.metrics
    k = int(p["k"])
    return FitResult(
        algorithm=p["algorithm"],
        k=k,
        silhouette=m["silhouette"],
        cluster_sizes=tuple(int(m[f"cluster_size_{i}"]) for i in range(k)),
        wcss=m.get("wcss"),
        log_likelihood=m.get("log_likelihood"),
        adjusted_rand_index=m.get("adjusted_rand_index"),
        run_id=run.info.run_id,
    )


def _log_sweep_params(params: SweepParams, customers: int) -> None:
    import mlflow

    mlflow.log_params(
        {
            "algorithms": ",".join(params.algorithms),
            "k_min": params.k_min,
            "k_max": params.k_max,
            "seed": params.seed,
            "max_iter": params.max_iter,
            "min_cluster_share": params.min_cluster_share,
            "feature_set": params.features.feature_set,
            "features": ",".join(feature_names(params.features)),
            "pca_components": params.features.pca_components,
            "customers": customers,
        }
    )


def training_inputs(lakehouse: Lakehouse, versions: dict[str, int]) -> list:
    """MLflow dataset inputs naming each input table and its Delta version.

    MLflow's own dataset profile counts rows by streaming the table through Python workers;
    the row count comes from the Delta log instead (each gold table is one overwrite commit).
    """
    import mlflow
    from mlflow.data.dataset import Dataset as DatasetBase
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    inputs = []
    for table, version in versions.items():
        dataset = mlflow.data.load_delta(
            table_name=lakehouse.three_level_name(table),
            version=version,
            name=f"{table}@v{version}",
        )
        entity = Dataset(
            **DatasetBase.to_dict(dataset),
            schema=json.dumps({"mlflow_colspec": dataset.schema.to_dict()}),
            profile=json.dumps({"num_rows": lakehouse.last_commit_rows(table)}),
        )
        inputs.append(DatasetInput(entity, tags=[InputTag(MLFLOW_DATASET_CONTEXT, "training")]))
    return inputs


def _fit_and_measure(
    features_df: DataFrame,
    algorithm: str,
    k: int,
    params: SweepParams,
    input_columns: list[str],
    truth_df: DataFrame | None,
):
    """Fit one candidate and measure it: (model, result, cluster profile, seconds)."""
    start = time.perf_counter()
    model, clustered_df, result = fit_candidate(features_df, algorithm, k, params)
    if truth_df is not None:
        ari = adjusted_rand_index(contingency(clustered_df, truth_df))
        result = replace(result, adjusted_rand_index=ari)
    profile = cluster_profile(clustered_df, input_columns).toPandas()
    return model, result, profile, time.perf_counter() - start


def _log_candidate(
    result: FitResult,
    profile,
    seconds: float,
    params: SweepParams,
    tags: dict[str, str],
    inputs: list,
) -> FitResult:
    """One child run: parameters, measures, the cluster profile table; returns the result with
    its run id."""
    import mlflow

    child_tags = {**tags, ROLE_TAG: "candidate"}
    with mlflow.start_run(run_name=result.name, nested=True, tags=child_tags) as child:
        mlflow.MlflowClient().log_inputs(child.info.run_id, datasets=inputs)
        mlflow.log_params(
            {
                "algorithm": result.algorithm,
                "k": result.k,
                "seed": params.seed,
                "max_iter": params.max_iter,
                "feature_set": params.features.feature_set,
                "features": ",".join(feature_names(params.features)),
                "pca_components": params.features.pca_components,
            }
        )
        metrics = {
            "silhouette": result.silhouette,
            "smallest_cluster_share": result.smallest_cluster_share,
            "fit_seconds": seconds,
            **{f"cluster_size_{i}": n for i, n in enumerate(result.cluster_sizes)},
        }
        if result.wcss is not None:
            metrics["wcss"] = result.wcss
        if result.log_likelihood is not None:
            metrics["log_likelihood"] = result.log_likelihood
        if result.adjusted_rand_index is not None:
            metrics["adjusted_rand_index"] = result.adjusted_rand_index
        mlflow.log_metrics(metrics)
        mlflow.log_table(profile, artifact_file="cluster_profile.json")
    return replace(result, run_id=child.info.run_id)


def _log_winner_model(
    spark: SparkSession,
    feature_model,
    cluster_model,
    winner: FitResult,
    features_df: DataFrame,
    input_columns: list[str],
) -> str:
    """Log the full model (feature stages + clusterer) on the winner's run with a signature;
    the input example is the per-segment means, not any customer's row."""
    import mlflow
    import mlflow.spark
    import pyspark
    from mlflow.models import infer_signature
    from pyspark.sql import functions as F

    model = full_model(feature_model, cluster_model)
    means = (
        model.transform(features_df.drop(FEATURES_COL))
        .groupBy("prediction")
        .agg(*[F.avg(c).alias(c) for c in input_columns])
        .orderBy("prediction")
    )
    # Doubles, so a caller may pass counts with gaps (MLflow cannot hold nulls in integers).
    example_df = means.select(*[F.round(c, 2).alias(c) for c in input_columns])
    example = example_df.toPandas()
    predicted = model.transform(example_df).select("prediction").toPandas()
    signature = infer_signature(example, predicted)
    with mlflow.start_run(run_id=winner.run_id, nested=True):
        # Naming the requirements spares MLflow from importing the model in a subprocess
        # to infer them (about half a minute).
        info = mlflow.spark.log_model(
            model,
            MODEL_ARTIFACT,
            signature=signature,
            input_example=example,
            pip_requirements=[f"pyspark=={pyspark.__version__}"],
        )
        mlflow.set_tag("retail_seg.winner", "true")
    return info.model_uri


def _log_sweep_artifacts(results: list[FitResult], winner: FitResult) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow

    table = {
        "candidate": [r.name for r in results],
        "algorithm": [r.algorithm for r in results],
        "k": [r.k for r in results],
        "silhouette": [round(r.silhouette, 4) for r in results],
        "smallest_cluster_share": [round(r.smallest_cluster_share, 4) for r in results],
        "wcss": [r.wcss for r in results],
        "log_likelihood": [r.log_likelihood for r in results],
        "adjusted_rand_index": [r.adjusted_rand_index for r in results],
        "winner": [r.name == winner.name for r in results],
    }
    mlflow.log_table(table, artifact_file="sweep_results.json")

    fig, ax = plt.subplots(figsize=(7, 4))
    for algorithm in ALGORITHMS:
        points = [(r.k, r.silhouette) for r in results if r.algorithm == algorithm]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=algorithm)
    ax.scatter(
        [winner.k],
        [winner.silhouette],
        s=160,
        facecolors="none",
        edgecolors="red",
        label=f"winner {winner.name}",
    )
    ax.set(xlabel="k", ylabel="silhouette", title="Silhouette vs k")
    ax.legend()
    mlflow.log_figure(fig, "plots/silhouette_vs_k.png")
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, algorithm, value, label in (
        (axes[0], "kmeans", "wcss", "within-cluster sum of squares"),
        (axes[1], "gmm", "log_likelihood", "log-likelihood"),
    ):
        points = [(r.k, getattr(r, value)) for r in results if r.algorithm == algorithm]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o")
        ax.set(xlabel="k", ylabel=label, title=f"Elbow: {algorithm}")
    mlflow.log_figure(fig, "plots/elbow.png")
    plt.close(fig)
