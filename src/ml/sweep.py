"""The segmentation sweep: KMeans and GaussianMixture for every k, one MLflow child run each
under one parent run per sweep; the winner's model is logged on its child run.

Two engines fit the candidates, with one contract: scikit-learn on the driver (the customer
table is one row per customer) or Spark MLlib on the cluster. `auto` takes scikit-learn up to
SKLEARN_MAX_CUSTOMERS customers and on serverless compute (where Spark MLlib is limited),
Spark MLlib beyond. Both log the same parameters (with `engine`), measures, cluster sizes,
profile table, inputs and plots, and both log the winner as the same `SegmentModel` pyfunc.

A sweep is named by its input (the data versions of the gold tables: maintenance commits do
not count), its parameters and its engine (the sweep key). A finished sweep with the same key
is not repeated, so a second run on unchanged data leaves the experiment, and the champion,
as they were.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from retail_segmentation.common.config import TableConfig
from retail_segmentation.common.errors import ConfigError
from retail_segmentation.common.materialize import Intermediates
from retail_segmentation.common.spark import ComputeKind, compute_kind, default_parallelism
from retail_segmentation.common.tables import (
    GOLD_CUSTOMER_BEHAVIOR,
    GOLD_CUSTOMER_RFM,
    DataCommit,
    Lakehouse,
)
from retail_segmentation.ml import measures, sklearn_engine
from retail_segmentation.ml.clustering import (
    ALGORITHMS,
    ENGINES,
    SKLEARN,
    SPARK,
    FitResult,
    SweepParams,
    adjusted_rand_index,
    cluster_profile,
    contingency,
    fit_candidate,
    segment_model,
    select_winner,
)
from retail_segmentation.ml.features import (
    FEATURES_COL,
    customer_features_input,
    feature_names,
    fit_features,
)
from retail_segmentation.ml.retrain_policy import (
    DECISION_ROLE,
    DECISION_TAG,
    Decision,
    RetrainPolicy,
    TrainingProfile,
    decide,
    measure,
    training_profile,
    training_profile_on_driver,
)
from retail_segmentation.ml.segment_model import SegmentModel
from retail_segmentation.ml.tracking import CHAMPION, MlflowConfig, git_commit

log = logging.getLogger(__name__)

SWEEP_INPUTS = (GOLD_CUSTOMER_RFM, GOLD_CUSTOMER_BEHAVIOR)
ROLE_TAG = "retail_seg.role"
SWEEP_KEY_TAG = "retail_seg.sweep_key"
GOLD_VERSIONS_TAG = "retail_seg.gold_versions"
WINNER_TAG = "retail_seg.winner_run_id"
MODEL_URI_TAG = "retail_seg.model_uri"
MODEL_ARTIFACT = "model"
AUTO = "auto"
# `auto` fits with scikit-learn on the driver up to this many customers (500,000 customers x 6
# features is 24 MB of features; a few GB of driver memory hold the fits), with Spark MLlib
# beyond. Measured with `retail-seg benchmark-sweep` on 2 cores (BENCHMARKS.md): scikit-learn
# 7.9 s / 30 s / 77 s at 5k / 55k / 500k customers, Spark MLlib 36 s / 68 s / 237 s, so the
# engines do not cross below this bound on one machine; it is the largest count measured.
# Serverless always takes scikit-learn.
SKLEARN_MAX_CUSTOMERS = 500_000


@dataclass(frozen=True)
class SweepConfig:
    """Parameters of the sweep task."""

    tables: TableConfig
    mlflow: MlflowConfig
    params: SweepParams
    truth_path: str | None = None  # CSV customer_id,profile: known profiles (generated data)
    git_commit: str = ""
    parallelism: int = 4  # Spark engine: candidates fitted at once; does not change any result
    engine: str = AUTO
    policy: RetrainPolicy = field(default_factory=RetrainPolicy)
    retrain: bool = False  # fit even when the policy keeps the champion

    def __post_init__(self) -> None:
        if not 1 <= self.parallelism <= 64:
            raise ConfigError(
                f"parameter parallelism={self.parallelism} is out of range: expected 1 to 64"
            )
        if self.engine not in (AUTO, *ENGINES):
            raise ConfigError(
                f"parameter engine={self.engine!r} is not valid: expected one of "
                f"{', '.join((AUTO, *ENGINES))}"
            )


@dataclass(frozen=True)
class SweepOutcome:
    """The parent run, every candidate's measures, and the winner."""

    parent_run_id: str
    sweep_key: str
    results: tuple[FitResult, ...]
    winner: FitResult | None  # None when the policy kept the champion
    seconds: float
    reused: bool = False
    engine: str = ""
    decision: Decision | None = None  # None: no policy applied (a reused sweep)

    @property
    def kept(self) -> bool:
        """True when the policy kept the champion and nothing was fitted."""
        return self.winner is None


def choose_engine(requested: str, kind: ComputeKind, customers: int) -> str:
    """The engine that fits: `requested` unless it is `auto`; `auto` is scikit-learn on
    serverless compute and up to SKLEARN_MAX_CUSTOMERS customers, else Spark MLlib."""
    if requested == SPARK and kind.has_serverless_rules:
        raise ConfigError(
            f"parameter engine=spark cannot run on {kind.value} compute (Spark MLlib on "
            "serverless is limited, and the Spark engine keeps its features between fits): use "
            "engine=auto or sklearn, or a *_classic target"
        )
    if requested != AUTO:
        return requested
    if kind.has_serverless_rules or customers <= SKLEARN_MAX_CUSTOMERS:
        return SKLEARN
    return SPARK


def gold_commits(lakehouse: Lakehouse) -> dict[str, DataCommit]:
    """The latest data-changing commit of each sweep input table."""
    for table in SWEEP_INPUTS:
        if not lakehouse.exists(table):
            raise ConfigError(
                f"table {lakehouse.name(table)} does not exist: run the gold task first"
            )
    return {table: lakehouse.data_commit(table) for table in SWEEP_INPUTS}


def gold_versions(lakehouse: Lakehouse) -> dict[str, int]:
    """Data versions of the sweep's input tables (maintenance commits do not count)."""
    return {table: commit.version for table, commit in gold_commits(lakehouse).items()}


def gold_versions_tag(versions: dict[str, int]) -> str:
    """e.g. gold_customer_rfm@v3,gold_customer_behavior@v3: the data a sweep saw."""
    return ",".join(f"{table}@v{v}" for table, v in versions.items())


def sweep_key(versions: dict[str, int], params: SweepParams, engine: str = SPARK) -> str:
    """Names a sweep by its input versions, its parameters and its engine."""
    digest = hashlib.sha256(
        json.dumps(asdict(params), sort_keys=True, default=str).encode()
    ).hexdigest()[:12]
    return f"sweep:{gold_versions_tag(versions)}:{digest}:{engine}"


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
    return latest_finished_run(
        experiment_id,
        f"tags.`{ROLE_TAG}` = 'sweep' AND tags.`{tag}` = '{value}' "
        f"AND tags.`{WINNER_TAG}` LIKE '%'",
    )


def run_sweep(spark: SparkSession, lakehouse: Lakehouse, config: SweepConfig) -> SweepOutcome:
    """Fit every candidate, log each as a child run, pick and log the winner's model."""
    import mlflow

    start = time.perf_counter()
    params = config.params
    experiment_id = config.mlflow.activate()
    client = mlflow.MlflowClient()
    commits = gold_commits(lakehouse)
    versions = {table: commit.version for table, commit in commits.items()}
    rfm_df = lakehouse.read(GOLD_CUSTOMER_RFM, version=commits[GOLD_CUSTOMER_RFM].latest_version)
    customers = rfm_df.count()  # one row per customer; Delta answers it from its log
    engine = choose_engine(config.engine, compute_kind(spark), customers)
    key = sweep_key(versions, params, engine)
    previous = latest_finished_sweep(experiment_id, SWEEP_KEY_TAG, key)
    if previous is not None:
        return _reused(previous, key, start, engine)
    if customers < max(10, 3 * params.k_max):
        raise ConfigError(
            f"{lakehouse.name(GOLD_CUSTOMER_RFM)} holds {customers} customers: too few for "
            f"k_max={params.k_max} (expected at least {max(10, 3 * params.k_max)}); lower "
            "k_max or load more data"
        )

    input_df = customer_features_input(
        rfm_df,
        lakehouse.read(
            GOLD_CUSTOMER_BEHAVIOR, version=commits[GOLD_CUSTOMER_BEHAVIOR].latest_version
        ),
    )
    as_of = rfm_df.agg(F.max("as_of_date")).first()[0]
    decision, decision_run_id = _retrain_decision(
        client, experiment_id, config, key, versions, rfm_df, input_df, as_of
    )
    if not decision.retrain:
        return SweepOutcome(
            decision_run_id,
            key,
            (),
            None,
            time.perf_counter() - start,
            engine=engine,
            decision=decision,
        )
    commit = git_commit(config.git_commit)
    tags = {ROLE_TAG: "sweep", SWEEP_KEY_TAG: key, GOLD_VERSIONS_TAG: gold_versions_tag(versions)}
    input_pdf = None
    if engine == SKLEARN:
        # the customers come to the driver once: the profile and every fit read them there
        columns = ["customer_id", *params.features.input_columns]
        input_pdf = input_df.select(*columns).orderBy("customer_id").toPandas()
        profile = training_profile_on_driver(input_pdf, params.features.input_columns, as_of)
    else:
        profile = training_profile(input_df, params.features.input_columns, as_of)
    if commit:
        tags["mlflow.source.git.commit"] = commit
    run_name = f"sweep {gold_versions_tag(versions)}"
    with mlflow.start_run(run_name=run_name, tags={**tags, **profile.tags()}) as parent:
        _log_sweep_params(params, customers, engine)
        inputs = training_inputs(lakehouse, commits)
        client.log_inputs(parent.info.run_id, datasets=inputs)
        if input_pdf is not None:
            fitted = _sklearn_candidates(spark, input_pdf, params, config.truth_path)
        else:
            fitted = _spark_candidates(spark, lakehouse, input_df, config)
        # MLflow logging stays on this thread, in a fixed order.
        results, models, profiles = [], {}, {}
        for model, result, profile, seconds in fitted:
            result = _log_candidate(result, profile, seconds, params, tags, inputs)
            results.append(result)
            models[result.name] = model
            profiles[result.name] = profile
            log.info("%s: silhouette %.4f", result.name, result.silhouette)
        winner = select_winner(results, params.min_cluster_share)
        model_uri = _log_winner_model(models[winner.name], winner, profiles[winner.name])
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
    return SweepOutcome(
        parent.info.run_id,
        key,
        tuple(results),
        winner,
        time.perf_counter() - start,
        False,
        engine,
        decision,
    )


def champion_profile(client, model_name: str):  # -> (version, TrainingProfile | None) | None
    """The champion's version and the training profile its sweep recorded; None when the
    model has no champion."""
    from mlflow.exceptions import MlflowException

    try:
        champion = client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return None
    sweep_run_id = (champion.tags or {}).get("sweep_run_id")
    tags = client.get_run(sweep_run_id).data.tags if sweep_run_id else {}
    return str(champion.version), TrainingProfile.from_tags(tags)


def _retrain_decision(
    client,
    experiment_id: str,
    config: SweepConfig,
    key: str,
    versions: dict[str, int],
    rfm_df: DataFrame,
    input_df: DataFrame,
    as_of: dt.date,
) -> tuple[Decision, str]:
    """Apply the retraining policy to today's customers and log the decision, its reasons
    and its measures (PSI per feature, new customers, the champion's age) as an MLflow run;
    a rerun on the same gold versions reads the decision back instead."""
    import mlflow

    previous = latest_finished_run(
        experiment_id, f"tags.`{ROLE_TAG}` = '{DECISION_ROLE}' AND tags.`{SWEEP_KEY_TAG}` = '{key}'"
    )
    kept = previous is not None and previous.data.tags.get(DECISION_TAG) == "keep"
    if kept and not config.retrain:
        reasons = tuple(json.loads(previous.data.tags.get("retail_seg.reasons", "[]")))
        return Decision(False, reasons), previous.info.run_id
    champion = champion_profile(client, config.mlflow.model_name)
    metrics: dict[str, float] = {}
    if champion is None:
        decision = decide(config.policy, as_of, None, forced=config.retrain)
    elif champion[1] is None:
        decision = Decision(
            True, (f"the champion v{champion[0]} has no recorded training profile",)
        )
    else:
        measured = measure(champion[1], rfm_df, input_df, as_of)
        decision = decide(
            config.policy,
            as_of,
            champion[1].as_of,
            measured.new_customer_share,
            measured.psi,
            forced=config.retrain,
        )
        metrics = {
            "champion_age_days": measured.age_days,
            "new_customer_share": measured.new_customer_share,
            **{f"psi_{feature}": value for feature, value in measured.psi.items()},
        }
    tags = {
        ROLE_TAG: DECISION_ROLE,
        SWEEP_KEY_TAG: key,
        GOLD_VERSIONS_TAG: gold_versions_tag(versions),
        DECISION_TAG: "retrain" if decision.retrain else "keep",
        "retail_seg.reasons": json.dumps(list(decision.reasons)),
        "mlflow.note.content": "; ".join(decision.reasons),
    }
    run_name = f"retrain decision {gold_versions_tag(versions)}"
    with mlflow.start_run(run_name=run_name, tags=tags) as run:
        mlflow.log_params(
            {
                "max_age_days": config.policy.max_age_days,
                "max_new_customer_share": config.policy.max_new_customer_share,
                "max_psi": config.policy.max_psi,
                "forced": config.retrain,
                "as_of_date": as_of,
            }
        )
        if metrics:
            mlflow.log_metrics(metrics)
    log.info("retrain policy: %s (%s)", "retrain" if decision.retrain else "keep", decision.reasons)
    return decision, run.info.run_id


def latest_finished_run(experiment_id: str, filter_string: str):  # -> mlflow Run | None
    """The latest finished run of the experiment that matches `filter_string`."""
    import mlflow

    runs = mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string=f"{filter_string} AND attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0] if runs else None


def _sklearn_candidates(
    spark: SparkSession, input_pdf: pd.DataFrame, params: SweepParams, truth_path: str | None
):
    """scikit-learn: every candidate fits on the driver, on the customers' input columns
    (`input_pdf`: one row per customer, at most SKLEARN_MAX_CUSTOMERS under `auto`)."""
    truth_pdf = read_truth(spark, truth_path).toPandas() if truth_path else None
    return sklearn_engine.sweep(input_pdf, params, truth_pdf)


def _spark_candidates(
    spark: SparkSession, lakehouse: Lakehouse, input_df: DataFrame, config: SweepConfig
):
    """Spark MLlib: the features are computed once and kept; small fits are bound by Spark's
    per-job latency, not by cores, so several are fitted at once (each seeded, on the same
    kept features: the same models)."""
    params = config.params
    input_columns = list(params.features.input_columns)
    with Intermediates(lakehouse, "sweep") as intermediates:
        kept_input_df = intermediates.keep(input_df, "input")
        feature_model = fit_features(kept_input_df, params.features)
        # Iterative fits launch a job per iteration: a few partitions (one per core) keep the
        # per-task overhead from dominating on small data without limiting large data.
        features_df = intermediates.keep(
            feature_model.transform(kept_input_df)
            .select("customer_id", FEATURES_COL, *input_columns)
            .repartition(default_parallelism(spark), "customer_id")
            .sortWithinPartitions("customer_id"),  # same rows, same order: seeded fits repeat
            "features",
        )
        truth_df = (
            intermediates.keep(read_truth(spark, config.truth_path), "truth")
            if config.truth_path
            else None
        )
        candidates = [(a, k) for a in params.algorithms for k in params.ks]
        with ThreadPoolExecutor(max_workers=config.parallelism) as pool:
            fitted = list(
                pool.map(
                    lambda c: _fit_and_measure(features_df, *c, params, input_columns, truth_df),
                    candidates,
                )
            )
    return [
        (segment_model(feature_model, cluster_model, params.features), result, profile, seconds)
        for cluster_model, result, profile, seconds in fitted
    ]


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


def _reused(previous, key: str, start: float, engine: str) -> SweepOutcome:
    results = sweep_results(previous)
    winner = next(r for r in results if r.run_id == previous.data.tags[WINNER_TAG])
    return SweepOutcome(
        previous.info.run_id,
        key,
        results,
        winner,
        time.perf_counter() - start,
        reused=True,
        engine=engine,
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
        engine=p.get("engine", SPARK),
        silhouette_sq_euclidean=m.get("silhouette_sq_euclidean"),
    )


def _log_sweep_params(params: SweepParams, customers: int, engine: str) -> None:
    import mlflow

    mlflow.log_params(
        {
            "engine": engine,
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
            "silhouette_sample_size": min(customers, measures.SILHOUETTE_SAMPLE_SIZE),
        }
    )


def training_inputs(lakehouse: Lakehouse, commits: dict[str, DataCommit]) -> list:
    """MLflow dataset inputs naming each input table and its data version.

    MLflow's own dataset profile counts rows by streaming the table through Python workers;
    the row count comes from the Delta log instead (each gold table is one overwrite commit).
    """
    import mlflow
    from mlflow.data.dataset import Dataset as DatasetBase
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    inputs = []
    for table, commit in commits.items():
        dataset = mlflow.data.load_delta(
            table_name=lakehouse.three_level_name(table),
            version=commit.version,
            name=f"{table}@v{commit.version}",
        )
        entity = Dataset(
            **DatasetBase.to_dict(dataset),
            schema=json.dumps({"mlflow_colspec": dataset.schema.to_dict()}),
            profile=json.dumps({"num_rows": commit.rows}),
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
    """Fit one candidate with Spark MLlib and measure it: (model, result, profile, seconds)."""
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
                "engine": result.engine,
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
        optional = {
            "silhouette_sq_euclidean": result.silhouette_sq_euclidean,
            "wcss": result.wcss,
            "log_likelihood": result.log_likelihood,
            "adjusted_rand_index": result.adjusted_rand_index,
        }
        metrics.update({name: value for name, value in optional.items() if value is not None})
        mlflow.log_metrics(metrics)
        mlflow.log_table(profile, artifact_file="cluster_profile.json")
    return replace(result, run_id=child.info.run_id)


def model_requirements() -> list[str]:
    """What loading the logged model needs: numpy and pandas (the versions it was fitted
    with); MLflow itself is there wherever the model is loaded."""
    import numpy
    import pandas

    return [f"numpy=={numpy.__version__}", f"pandas=={pandas.__version__}"]


def _log_winner_model(model: SegmentModel, winner: FitResult, profile) -> str:
    """Log the winner's SegmentModel as an MLflow pyfunc on its child run, with a signature;
    the input example is the per-segment means, not any customer's row. The model's module
    is pickled by value, so loading it needs numpy, pandas and MLflow, not this package."""
    import cloudpickle
    import mlflow
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    from retail_segmentation.ml import segment_model as model_module

    columns = list(model.input_columns)
    # Doubles, so a caller may pass counts with gaps (MLflow cannot hold nulls in integers).
    example = (
        profile[[f"mean_{c}" for c in columns]]
        .set_axis(columns, axis=1)
        .astype("float64")
        .reset_index(drop=True)
    )
    signature = infer_signature(example, model.predict(None, example))
    # MLflow 3 names the model's artifact path `name`, MLflow 2 `artifact_path`
    path = "name" if "name" in inspect.signature(mlflow.pyfunc.log_model).parameters else None
    cloudpickle.register_pickle_by_value(model_module)
    try:
        with mlflow.start_run(run_id=winner.run_id, nested=True):
            info = mlflow.pyfunc.log_model(
                **{path or "artifact_path": MODEL_ARTIFACT},
                python_model=model,
                signature=signature,
                input_example=example,
                # naming them spares MLflow from loading the model in a subprocess to infer them
                pip_requirements=model_requirements(),
            )
            mlflow.set_tag("retail_seg.winner", "true")
    finally:
        cloudpickle.unregister_pickle_by_value(model_module)
    return info.model_uri


def _log_sweep_artifacts(results: list[FitResult], winner: FitResult) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow

    table = {
        "candidate": [r.name for r in results],
        "engine": [r.engine for r in results],
        "algorithm": [r.algorithm for r in results],
        "k": [r.k for r in results],
        "silhouette": [round(r.silhouette, 4) for r in results],
        "silhouette_sq_euclidean": [r.silhouette_sq_euclidean for r in results],
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
