"""Naming a sweep by its input and parameters; reading known profiles; task parameters."""

from __future__ import annotations

import pytest

from retail_segmentation.common.errors import ConfigError
from retail_segmentation.common.spark import ComputeKind
from retail_segmentation.ml import tasks
from retail_segmentation.ml.clustering import SweepParams
from retail_segmentation.ml.features import FeatureSpec
from retail_segmentation.ml.sweep import (
    SKLEARN_MAX_CUSTOMERS,
    SweepConfig,
    choose_engine,
    gold_versions_tag,
    read_truth,
    sweep_key,
)

VERSIONS = {"gold_customer_rfm": 3, "gold_customer_behavior": 2}


def test_gold_versions_tag_names_each_table_and_version():
    assert gold_versions_tag(VERSIONS) == "gold_customer_rfm@v3,gold_customer_behavior@v2"


def test_sweep_key_changes_with_the_data_the_parameters_and_the_engine_only():
    key = sweep_key(VERSIONS, SweepParams(), "sklearn")
    assert key.startswith("sweep:gold_customer_rfm@v3,gold_customer_behavior@v2:")
    assert key.endswith(":sklearn")
    assert sweep_key(dict(VERSIONS), SweepParams(), "sklearn") == key  # same input, same name
    assert sweep_key({**VERSIONS, "gold_customer_rfm": 4}, SweepParams(), "sklearn") != key
    assert sweep_key(VERSIONS, SweepParams(k_max=6), "sklearn") != key
    assert sweep_key(VERSIONS, SweepParams(features=FeatureSpec("rfm", 2)), "sklearn") != key
    assert sweep_key(VERSIONS, SweepParams(), "spark") != key


@pytest.mark.parametrize(
    ("requested", "kind", "customers", "engine"),
    [
        ("auto", ComputeKind.LOCAL, 240, "sklearn"),
        ("auto", ComputeKind.DATABRICKS_CLASSIC, SKLEARN_MAX_CUSTOMERS, "sklearn"),
        ("auto", ComputeKind.DATABRICKS_CLASSIC, SKLEARN_MAX_CUSTOMERS + 1, "spark"),
        ("auto", ComputeKind.DATABRICKS_SERVERLESS, 10 * SKLEARN_MAX_CUSTOMERS, "sklearn"),
        ("auto", ComputeKind.LOCAL_CONNECT, 10 * SKLEARN_MAX_CUSTOMERS, "sklearn"),
        ("spark", ComputeKind.LOCAL, 240, "spark"),
        ("sklearn", ComputeKind.DATABRICKS_CLASSIC, 10 * SKLEARN_MAX_CUSTOMERS, "sklearn"),
    ],
)
def test_auto_takes_sklearn_on_serverless_and_small_tables(requested, kind, customers, engine):
    assert choose_engine(requested, kind, customers) == engine


@pytest.mark.parametrize("kind", [ComputeKind.DATABRICKS_SERVERLESS, ComputeKind.LOCAL_CONNECT])
def test_the_spark_engine_is_refused_where_serverless_rules_apply(kind):
    with pytest.raises(ConfigError, match=rf"engine=spark cannot run on {kind.value} compute"):
        choose_engine("spark", kind, 240)


def test_read_truth_needs_customer_and_profile_columns(spark, tmp_path):
    good = tmp_path / "truth.csv"
    good.write_text("customer_id,profile,extra\n12346,VIP,x\n12347,churned,y\n")
    rows = sorted(tuple(r) for r in read_truth(spark, str(good)).collect())
    assert rows == [("12346", "VIP"), ("12347", "churned")]

    bad = tmp_path / "bad.csv"
    bad.write_text("customer,segment\n1,a\n")
    with pytest.raises(ConfigError, match=r"bad\.csv lacks column\(s\) customer_id, profile"):
        read_truth(spark, str(bad))


def test_sweep_parameters_flow_from_the_command_line_into_the_config(tmp_path):
    config = tasks.parse_sweep_args(
        [
            "--k-range",
            "3..5",
            "--algorithms",
            "gmm",
            "--feature-set",
            "rfm_behavior",
            "--pca-components",
            "2",
            "--seed",
            "7",
            "--min-cluster-share",
            "0.05",
            "--parallelism",
            "2",
            "--engine",
            "spark",
            "--lakehouse-dir",
            str(tmp_path),
        ]
    )
    assert config.params == SweepParams(
        algorithms=("gmm",),
        k_min=3,
        k_max=5,
        seed=7,
        min_cluster_share=0.05,
        features=FeatureSpec("rfm_behavior", 2),
    )
    assert (config.parallelism, config.engine) == (2, "spark")
    assert config.truth_path is None
    assert config.mlflow.tracking_uri == f"sqlite:///{tmp_path.absolute()}/mlflow/mlflow.db"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--k-range", "2-8"], r"k_range='2-8' is not a range: expected LOW\.\.HIGH"),
        (["--k-range", "5..3"], r"k_min=5, k_max=3 are not a valid range"),
        (["--algorithms", "dbscan"], r"algorithms='dbscan' is not valid"),
        (["--pca-components", "9"], r"pca_components=9 is out of range"),
        (["--parallelism", "0"], r"parallelism=0 is out of range"),
        (["--schema", "retail; DROP"], r"schema='retail; DROP' is not a valid name"),
    ],
)
def test_bad_sweep_parameters_are_named(argv, message):
    with pytest.raises(ConfigError, match=message):
        tasks.parse_sweep_args(argv)


def test_an_unknown_engine_is_named(tmp_path):
    config = tasks.parse_sweep_args(["--lakehouse-dir", str(tmp_path)])
    with pytest.raises(ConfigError, match=r"engine='torch' is not valid: expected one of auto"):
        SweepConfig(config.tables, config.mlflow, config.params, engine="torch")
