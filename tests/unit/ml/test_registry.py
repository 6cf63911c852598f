"""Registering sweep winners in a real MLflow registry (sqlite): champion moves only when the
winner beats it on the same data, else the winner becomes the challenger."""

from __future__ import annotations

import datetime as dt

import mlflow
import pytest
from pyspark.sql import functions as F

from retail_segmentation.common.errors import ConfigError
from retail_segmentation.common.tables import GOLD_CUSTOMER_BEHAVIOR, GOLD_CUSTOMER_RFM
from retail_segmentation.ml import registry
from retail_segmentation.ml.clustering import SweepParams
from retail_segmentation.ml.registry import RegisterConfig, decide_alias, register_winner
from retail_segmentation.ml.sweep import SweepConfig, run_sweep
from retail_segmentation.ml.tracking import MlflowConfig

RFM_DDL = (
    "customer_id string, recency_days int, frequency long, monetary double, "
    "first_purchase timestamp, as_of_date date"
)
AS_OF = dt.date(2011, 12, 10)
BEHAVIOR_DDL = (
    "customer_id string, avg_basket_value double, distinct_products long, cancellation_rate double"
)
# three well separated groups of customers: active big spenders, lapsed one-timers, in between
GROUPS = ((5, 20, 5000.0), (300, 1, 50.0), (100, 5, 500.0))


def test_decide_alias_moves_champion_only_on_a_strict_gain():
    assert decide_alias(0.5, None, 0.0) == registry.CHAMPION  # first model
    assert decide_alias(0.6, 0.5, 0.0) == registry.CHAMPION
    assert decide_alias(0.5, 0.5, 0.0) == registry.CHALLENGER  # a tie keeps the champion
    assert decide_alias(0.55, 0.5, 0.1) == registry.CHALLENGER  # gain below min_improvement
    assert decide_alias(0.7, 0.5, 0.1) == registry.CHAMPION


def test_register_config_rejects_a_negative_improvement(tmp_path):
    store = MlflowConfig("sqlite:///x.db", "sqlite:///x.db", "e", "m")
    with pytest.raises(ConfigError, match=r"min_improvement=-0\.1"):
        RegisterConfig(tables=None, mlflow=store, min_improvement=-0.1)  # type: ignore[arg-type]


@pytest.fixture
def gold_lakehouse(spark, lakehouse):
    rfm_rows, behavior_rows = [], []
    for g, (recency, frequency, monetary) in enumerate(GROUPS):
        for i in range(10):
            customer = f"{g}-{i}"
            wobble = 1 + (i - 5) / 100  # small, deterministic spread inside a group
            rfm_rows.append(
                (
                    customer,
                    int(recency * wobble),
                    max(1, int(frequency * wobble)),
                    monetary * wobble,
                    dt.datetime(2011, 1, 1),
                    AS_OF,
                )
            )
            behavior_rows.append((customer, monetary / frequency, 10 + g, 0.0))
    lakehouse.overwrite(spark.createDataFrame(rfm_rows, RFM_DDL), GOLD_CUSTOMER_RFM)
    lakehouse.overwrite(spark.createDataFrame(behavior_rows, BEHAVIOR_DDL), GOLD_CUSTOMER_BEHAVIOR)
    yield lakehouse
    mlflow.set_tracking_uri(None)


def _sweep(spark, lakehouse, store, algorithm, k, engine="auto", retrain=True):
    params = SweepParams(algorithms=(algorithm,), k_min=k, k_max=k, max_iter=20)
    config = SweepConfig(
        lakehouse.config, store, params, parallelism=1, engine=engine, retrain=retrain
    )
    return run_sweep(spark, lakehouse, config)


# The three sweeps alternate engines: the champion of one engine is measured against the
# winner of the other on the same data, in its own feature space.
@pytest.mark.parametrize(
    "engines", [("sklearn", "spark", "sklearn"), ("spark", "sklearn", "spark")]
)
def test_champion_moves_to_a_better_winner_and_a_worse_one_is_challenger(
    spark, gold_lakehouse, engines
):
    lakehouse = gold_lakehouse
    store = MlflowConfig.for_tables(lakehouse.config)
    config = RegisterConfig(lakehouse.config, store)

    weak = _sweep(spark, lakehouse, store, "gmm", 2, engines[0])
    assert weak.engine == engines[0]
    # after the sweep made the store (MLflow 2 opens it when the client is made)
    client = mlflow.MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.registry_uri)
    first = register_winner(spark, lakehouse, config)
    assert (first.version, first.alias, first.champion_version) == ("1", "champion", None)

    strong = _sweep(spark, lakehouse, store, "kmeans", 3, engines[1])
    assert strong.winner.silhouette > weak.winner.silhouette
    second = register_winner(spark, lakehouse, config)
    assert (second.version, second.alias, second.champion_version) == ("2", "champion", "1")
    # the old champion was measured again on today's data, in its own feature space
    assert second.champion_silhouette == pytest.approx(weak.winner.silhouette, abs=1e-6)

    _sweep(spark, lakehouse, store, "kmeans", 2, engines[2])
    third = register_winner(spark, lakehouse, config)
    assert (third.version, third.alias, third.champion_version) == ("3", "challenger", "2")
    assert third.champion_silhouette == pytest.approx(strong.winner.silhouette, abs=1e-6)
    assert str(client.get_model_version_by_alias(store.model_name, "champion").version) == "2"
    assert str(client.get_model_version_by_alias(store.model_name, "challenger").version) == "3"

    # registering the same sweep again finds its version: nothing new, aliases as they were
    again = register_winner(spark, lakehouse, config)
    assert (again.version, again.alias) == ("3", "challenger")
    versions = client.search_model_versions(f"name = '{store.model_name}'")
    assert sorted(str(v.version) for v in versions) == ["1", "2", "3"]
    champion = client.get_model_version_by_alias(store.model_name, "champion")
    assert champion.run_id == strong.winner.run_id


def test_the_sweep_runs_only_when_the_retraining_policy_fires(spark, gold_lakehouse):
    lakehouse = gold_lakehouse
    store = MlflowConfig.for_tables(lakehouse.config)
    config = RegisterConfig(lakehouse.config, store)
    first = _sweep(spark, lakehouse, store, "kmeans", 3, retrain=False)
    assert first.decision.reasons == ("no champion yet",)
    assert register_winner(spark, lakehouse, config).alias == "champion"

    # new gold versions, the same customers: the champion stays, nothing is registered
    lakehouse.overwrite(lakehouse.read(GOLD_CUSTOMER_RFM).localCheckpoint(), GOLD_CUSTOMER_RFM)
    kept = _sweep(spark, lakehouse, store, "kmeans", 3, retrain=False)
    assert kept.kept and kept.results == ()
    assert kept.decision.reasons == (
        "the champion is 0 days old, 0.0% of the customers are new, largest PSI frequency 0.000",
    )
    stays = register_winner(spark, lakehouse, config)
    assert (stays.version, stays.alias, stays.kept) == ("1", "champion", kept.decision.reasons[0])
    client = mlflow.MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.registry_uri)
    logged = client.get_run(kept.parent_run_id).data
    assert logged.tags["retail_seg.decision"] == "keep"
    assert logged.metrics["psi_recency_days"] == 0.0
    assert logged.metrics["new_customer_share"] == 0.0
    # rerun on the same gold versions: the decision is read back, not logged again
    assert _sweep(spark, lakehouse, store, "kmeans", 3, retrain=False).parent_run_id == (
        kept.parent_run_id
    )

    # recency triples for everyone, 40 days later, and a third of the customers are new
    later = AS_OF + dt.timedelta(days=40)
    moved = lakehouse.read(GOLD_CUSTOMER_RFM).select(
        "customer_id",
        (F.col("recency_days") * 3).alias("recency_days"),
        "frequency",
        "monetary",
        F.when(F.col("customer_id").startswith("1-"), F.lit(dt.datetime(2012, 1, 1)))
        .otherwise(F.col("first_purchase"))
        .alias("first_purchase"),
        F.lit(later).alias("as_of_date"),
    )
    lakehouse.overwrite(moved.localCheckpoint(), GOLD_CUSTOMER_RFM)
    drifted = _sweep(spark, lakehouse, store, "kmeans", 3, retrain=False)
    assert not drifted.kept
    reasons = drifted.decision.reasons
    assert reasons[:2] == (
        "the champion is 40 days old (max_age_days=30)",
        "33.3% of the customers are new to the champion (max_new_customer_share=10%)",
    )
    assert reasons[2].startswith("feature drift: PSI recency_days ")
    assert register_winner(spark, lakehouse, config).version == "2"


def test_register_without_a_sweep_names_the_missing_step(spark, gold_lakehouse):
    store = MlflowConfig.for_tables(gold_lakehouse.config)
    with pytest.raises(ConfigError, match=r"no finished sweep on gold_customer_rfm@v0"):
        register_winner(spark, gold_lakehouse, RegisterConfig(gold_lakehouse.config, store))


def test_a_version_is_looked_up_with_one_filter_condition(spark, gold_lakehouse, monkeypatch):
    """Unity Catalog's registry refuses `name = ... AND run_id = ...`: register asks by name
    only, and finds the winner's version among the answers."""
    store = MlflowConfig.for_tables(gold_lakehouse.config)
    config = RegisterConfig(gold_lakehouse.config, store)
    _sweep(spark, gold_lakehouse, store, "kmeans", 3)
    filters = []
    original = mlflow.MlflowClient.search_model_versions

    def one_condition(self, filter_string=None, *args, **kwargs):
        filters.append(filter_string)
        if " and " in (filter_string or "").lower():
            raise mlflow.exceptions.MlflowException("only one filter condition is supported")
        return original(self, filter_string, *args, **kwargs)

    monkeypatch.setattr(mlflow.MlflowClient, "search_model_versions", one_condition)
    first = register_winner(spark, gold_lakehouse, config)
    again = register_winner(spark, gold_lakehouse, config)
    assert (first.version, again.version, again.alias) == ("1", "1", "champion")
    assert filters == [f"name = '{store.model_name}'"] * 2
