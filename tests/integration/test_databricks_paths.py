"""The code paths taken on Databricks (DATABRICKS_RUNTIME_VERSION set), run here with the
session and the MLflow client faked at their boundary:

- the session is this machine's Spark with DATABRICKS_RUNTIME_VERSION set, so every table is
  a managed table under a three-level name (`spark_catalog.<schema>.<table>`, as
  `<catalog>.<schema>.<table>` in Unity Catalog), created without a path;
- MLflow is configured as on Databricks (tracking `databricks`, registry `databricks-uc`,
  a three-level model name, a workspace experiment path); only the store behind the client
  is this machine's sqlite, and the client refuses what Unity Catalog's registry refuses: a
  search with more than one condition, an `order_by`, a model name that is not three-level.

On serverless (`client.<n>`), intermediates go to scratch Delta tables (never persist) and the
sweep fits with scikit-learn; on a classic cluster they are persisted.
"""

from __future__ import annotations

import dataclasses
import re

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from pyspark.sql import functions as F

from retail_segmentation.bronze.columns import SourceFormat
from retail_segmentation.bronze.task import BronzeConfig, ingest_bronze
from retail_segmentation.common import materialize
from retail_segmentation.common.config import TableConfig
from retail_segmentation.common.materialize import Strategy, choose_strategy
from retail_segmentation.common.spark import ComputeKind, compute_kind
from retail_segmentation.common.tables import (
    GOLD_CUSTOMER_RFM,
    GOLD_CUSTOMER_SEGMENTS,
    GOLD_SEGMENTED_OFFERS,
    Lakehouse,
)
from retail_segmentation.data.generator import GeneratorConfig, write_dataset
from retail_segmentation.gold.task import GoldConfig, build_gold
from retail_segmentation.ml import tasks as ml
from retail_segmentation.ml.clustering import SweepParams
from retail_segmentation.ml.recommend import AlsParams
from retail_segmentation.ml.registry import RegisterConfig, register_winner
from retail_segmentation.ml.sweep import SweepConfig, run_sweep
from retail_segmentation.ml.tracking import MlflowConfig
from retail_segmentation.silver.task import SilverConfig, build_silver

pytestmark = pytest.mark.integration

RUNTIME_ENV = "DATABRICKS_RUNTIME_VERSION"
_THREE_LEVEL = re.compile(r"^[^.]+\.[^.]+\.[^.]+$")


@pytest.fixture(scope="module")
def landing(spark, tmp_path_factory):
    out = tmp_path_factory.mktemp("generated")
    write_dataset(spark, GeneratorConfig(rows=8_000, seed=3, files=1), str(out))
    return str(out / "transactions")


@pytest.fixture
def unity_catalog_rules(monkeypatch):
    """The registry calls this package makes, checked against Unity Catalog's rules."""
    searches: list[str] = []
    original_search = mlflow.MlflowClient.search_model_versions

    def search_model_versions(self, filter_string=None, max_results=None, order_by=None, **kw):
        searches.append(filter_string)
        if order_by:
            raise MlflowException(
                "Argument 'order_by' is unsupported for models in the Unity Catalog."
            )
        if re.search(r"\band\b", filter_string or "", re.IGNORECASE):
            raise MlflowException("Unity Catalog supports a single filter condition")
        kwargs = {"max_results": max_results} if max_results else {}
        return original_search(self, filter_string, **kwargs, **kw)

    original_create = mlflow.MlflowClient.create_model_version

    def create_model_version(self, name, *args, **kwargs):
        if not _THREE_LEVEL.match(name):
            raise MlflowException(f"model name {name!r} is not <catalog>.<schema>.<model>")
        return original_create(self, name, *args, **kwargs)

    monkeypatch.setattr(mlflow.MlflowClient, "search_model_versions", search_model_versions)
    monkeypatch.setattr(mlflow.MlflowClient, "create_model_version", create_model_version)
    yield searches
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


def _databricks_store(tables: TableConfig, tmp_path) -> MlflowConfig:
    """MLflow as the task configures it on Databricks, with this machine's store behind it."""
    config = MlflowConfig.for_tables(
        tables, experiment_name="/Workspace/Users/dev@example.com/retail_segmentation"
    )
    assert (config.tracking_uri, config.registry_uri, config.artifact_location) == (
        "databricks",
        "databricks-uc",
        None,
    )
    assert config.model_name == f"spark_catalog.{tables.schema}.customer_segmentation"
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return dataclasses.replace(
        config,
        tracking_uri=store,
        registry_uri=store,
        artifact_location=(tmp_path / "artifacts").as_uri(),
    )


@pytest.mark.parametrize(
    ("runtime", "kind", "strategy"),
    [
        ("client.4.9", ComputeKind.DATABRICKS_SERVERLESS, Strategy.DELTA),
        ("17.3", ComputeKind.DATABRICKS_CLASSIC, Strategy.PERSIST),
    ],
    ids=["serverless", "classic"],
)
def test_the_graph_on_databricks_code_paths(
    spark, tmp_path, monkeypatch, landing, unity_catalog_rules, runtime, kind, strategy
):
    monkeypatch.setenv(RUNTIME_ENV, runtime)
    monkeypatch.delenv(materialize.ENV_VARIABLE, raising=False)
    schema = "dbx_" + kind.value.replace("-", "_")
    tables = TableConfig(catalog="spark_catalog", schema=schema, lakehouse_dir=str(tmp_path))
    lakehouse = Lakehouse.attach(spark, tables)
    assert lakehouse.databricks and compute_kind(spark) is kind
    assert choose_strategy(spark) is strategy

    ingest_bronze(spark, lakehouse, BronzeConfig(landing, SourceFormat(), tables))
    build_silver(spark, lakehouse, SilverConfig(tables=tables))
    build_gold(spark, lakehouse, GoldConfig(tables=tables))
    store = _databricks_store(tables, tmp_path)
    params = SweepParams(k_min=2, k_max=3, max_iter=20)
    # the Spark engine where a cluster has MLlib, scikit-learn on serverless
    engine = "auto" if kind.has_serverless_rules else "spark"
    sweep = run_sweep(spark, lakehouse, SweepConfig(tables, store, params, engine=engine))
    assert sweep.engine == ("sklearn" if kind.has_serverless_rules else "spark")
    registered = register_winner(spark, lakehouse, RegisterConfig(tables, store))
    assert (registered.version, registered.alias) == ("1", "champion")
    rows = ml.score_customers(spark, lakehouse, store)
    ml.build_recommendations(lakehouse, AlsParams(max_iter=5))
    ml.build_offers(lakehouse)

    # every table is a managed table of the three-level schema, made without a path
    listed = {r.tableName for r in spark.sql(f"SHOW TABLES IN spark_catalog.{schema}").collect()}
    assert {GOLD_CUSTOMER_RFM, GOLD_CUSTOMER_SEGMENTS, GOLD_SEGMENTED_OFFERS} <= listed
    assert not [t for t in listed if t.startswith("_scratch_")]  # intermediates dropped
    detail = spark.sql(f"DESCRIBE DETAIL {lakehouse.name(GOLD_SEGMENTED_OFFERS)}").first()
    assert str(tmp_path) not in detail.location  # not under the local lakehouse folder
    assert not (tmp_path / "tables").exists() and not (tmp_path / "scratch").exists()

    customers = lakehouse.read(GOLD_CUSTOMER_RFM).count()
    assert rows[GOLD_CUSTOMER_SEGMENTS] == customers
    offers = lakehouse.read(GOLD_SEGMENTED_OFFERS)
    assert offers.count() == customers
    assert offers.where(F.col("offer_code").isNull()).isEmpty()
    # the registry was only ever asked one condition at a time
    assert unity_catalog_rules and all(" AND " not in f for f in unity_catalog_rules)

    for table in listed:
        spark.sql(f"DROP TABLE {lakehouse.name(table)}")
