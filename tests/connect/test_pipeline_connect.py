"""The whole graph under Spark Connect with serverless's rules, as `SPARK_REMOTE=local[2]
retail-seg run` drives it: raw CSV -> ... -> offers and the report; every raw row accounted
for; the sweep fitted by scikit-learn; then OPTIMIZE and VACUUM on every table, and a rerun
that recomputes nothing."""

from __future__ import annotations

import contextlib
import io
import re

import mlflow
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from retail_segmentation import cli
from retail_segmentation.common.config import TableConfig
from retail_segmentation.common.tables import (
    BRONZE_TRANSACTIONS,
    GOLD_CUSTOMER_RFM,
    GOLD_CUSTOMER_SEGMENTS,
    GOLD_SEGMENTED_OFFERS,
    PIPELINE_LEDGER,
    SILVER_QUARANTINE,
    SILVER_TRANSACTIONS,
    Lakehouse,
)
from retail_segmentation.ml.tracking import MlflowConfig

ROWS = 20_000


def _run(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(argv)
    assert code == 0, out.getvalue()
    return out.getvalue()


@pytest.fixture(scope="module")
def connect_run(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("connect-pipeline")
    tables = TableConfig(schema="it_connect", lakehouse_dir=str(root / "lakehouse"))
    argv = ["run", "--rows", str(ROWS), "--seed", "7", "--k-range", "2..4"]
    argv += ["--schema", tables.schema, "--lakehouse-dir", tables.lakehouse_dir]
    return tables, argv, _run(argv)


def test_raw_data_to_offers_under_the_serverless_guard(spark, connect_run):
    tables, _, output = connect_run
    lakehouse = Lakehouse.attach(spark, tables)
    done = [line for line in output.splitlines() if re.match(r"\[\d/8 .* done in ", line)]
    assert len(done) == 8, output
    assert done[0].endswith(f"; wrote bronze_transactions {ROWS:,} rows")

    # every raw row is accounted for: bronze = silver + quarantine + removed duplicates
    balance = (
        lakehouse.read(PIPELINE_LEDGER)
        .where("layer = 'silver' AND rule = 'balance'")
        .select("rows_in", "rows_out", "rows_quarantined", "rows_removed")
        .first()
    )
    assert balance.rows_in == lakehouse.read(BRONZE_TRANSACTIONS).count() == ROWS
    assert balance.rows_out == lakehouse.read(SILVER_TRANSACTIONS).count()
    assert balance.rows_quarantined == lakehouse.read(SILVER_QUARANTINE).count()
    assert balance.rows_in == balance.rows_out + balance.rows_quarantined + balance.rows_removed

    # the sweep ran on scikit-learn (serverless's engine) and its winner is the champion
    store = MlflowConfig.for_tables(tables)
    client = mlflow.MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.registry_uri)
    experiment = client.get_experiment_by_name(store.experiment_name)
    parents = client.search_runs([experiment.experiment_id], "tags.`retail_seg.role` = 'sweep'")
    assert len(parents) == 1 and parents[0].data.params["engine"] == "sklearn"
    children = client.search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'"
    )
    assert sorted((c.data.params["algorithm"], int(c.data.params["k"])) for c in children) == [
        (a, k) for a in ("gmm", "kmeans") for k in (2, 3, 4)
    ]
    assert {c.data.params["engine"] for c in children} == {"sklearn"}
    for child in children:
        assert -1.0 <= child.data.metrics["silhouette"] <= 1.0
        assert -1.0 <= child.data.metrics["silhouette_sq_euclidean"] <= 1.0
    champion = client.get_model_version_by_alias(store.model_name, "champion")
    assert champion.run_id == parents[0].data.tags["retail_seg.winner_run_id"]

    # every gold customer has one segment, scored by the champion, and one offer
    customers = lakehouse.read(GOLD_CUSTOMER_RFM).select("customer_id")
    segments = lakehouse.read(GOLD_CUSTOMER_SEGMENTS)
    offers = lakehouse.read(GOLD_SEGMENTED_OFFERS)
    assert_df_equality(
        segments.select("customer_id"), customers, ignore_row_order=True, ignore_nullable=True
    )
    assert_df_equality(
        offers.select("customer_id"), customers, ignore_row_order=True, ignore_nullable=True
    )
    assert {r.model_version for r in segments.select("model_version").distinct().collect()} == {
        str(champion.version)
    }
    assert offers.where(F.col("offer_code").isNull() | (F.size("top_products") < 1)).isEmpty()
    assert "report:" in output and (tables.lakehouse_dir + "/report/insights.html") in output
    # no intermediate is left behind
    assert list(lakehouse.scratch_root.iterdir()) == []


def test_maintenance_between_two_runs_recomputes_nothing(spark, connect_run):
    tables, argv, _ = connect_run
    lakehouse = Lakehouse.attach(spark, tables)
    table_names = sorted(p.name for p in lakehouse.local_root.iterdir() if p.is_dir())
    for table in table_names:  # what predictive optimization does on Unity Catalog
        spark.sql(f"OPTIMIZE {lakehouse.name(table)}")
        spark.sql(f"VACUUM {lakehouse.name(table)}")
    versions = {t: lakehouse.version(t) for t in table_names}
    store = MlflowConfig.for_tables(tables)
    client = mlflow.MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.registry_uri)

    again = _run(argv)

    done = [line for line in again.splitlines() if re.match(r"\[\d/8 .* done in ", line)]
    assert len(done) == 8 and all(line.endswith("; wrote no table") for line in done), again
    assert "sweep: up to date" in again and "score: up to date" in again
    assert {t: lakehouse.version(t) for t in table_names} == versions
    experiment = client.get_experiment_by_name(store.experiment_name)
    sweeps = client.search_runs([experiment.experiment_id], "tags.`retail_seg.role` = 'sweep'")
    assert len(sweeps) == 1
    assert len(client.search_model_versions(f"name = '{store.model_name}'")) == 1
