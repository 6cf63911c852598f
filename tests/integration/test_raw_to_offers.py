"""The whole local path, as `retail-seg run` drives it: generated raw CSV -> bronze -> silver
-> gold -> sweep in MLflow -> champion -> segments -> recommendations -> offers; after
OPTIMIZE and VACUUM of every table (what predictive optimization does), a second run on
unchanged data changes nothing."""

from __future__ import annotations

import re

import mlflow
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from retail_segmentation import cli
from retail_segmentation.common.tables import (
    GOLD_CUSTOMER_RFM,
    GOLD_CUSTOMER_SEGMENTS,
    GOLD_PRODUCT_RECOMMENDATIONS,
    GOLD_SEGMENT_HISTORY,
    GOLD_SEGMENT_PROFILES,
    GOLD_SEGMENTED_OFFERS,
    Lakehouse,
)
from retail_segmentation.gold.profiles import PERSONAS
from retail_segmentation.ml.tracking import MlflowConfig

pytestmark = pytest.mark.integration

ML_TABLES = (
    GOLD_CUSTOMER_SEGMENTS,
    GOLD_SEGMENT_PROFILES,
    GOLD_SEGMENT_HISTORY,
    GOLD_PRODUCT_RECOMMENDATIONS,
    GOLD_SEGMENTED_OFFERS,
)


def test_raw_data_to_offers_then_a_rerun_changes_nothing(
    spark, pipeline_run, capsys, dashboard_queries
):
    tables, argv = pipeline_run.tables, pipeline_run.argv
    lakehouse = Lakehouse.attach(spark, tables)
    store = MlflowConfig.for_tables(tables)
    client = mlflow.MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.registry_uri)
    experiment = client.get_experiment_by_name(store.experiment_name)

    # the sweep: one parent, one child per algorithm and k, each with a silhouette
    parents = client.search_runs([experiment.experiment_id], "tags.`retail_seg.role` = 'sweep'")
    assert len(parents) == 1
    children = client.search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'"
    )
    fits = sorted((c.data.params["algorithm"], int(c.data.params["k"])) for c in children)
    assert fits == [(a, k) for a in ("gmm", "kmeans") for k in (2, 3, 4)]
    # 110 customers: `auto` fits them with scikit-learn
    assert {c.data.params["engine"] for c in children} == {parents[0].data.params["engine"]}
    assert parents[0].data.params["engine"] == "sklearn"
    for child in children:
        assert -1.0 <= child.data.metrics["silhouette"] <= 1.0
        assert 0.0 <= child.data.metrics["adjusted_rand_index"] <= 1.0  # generated: truth known
    inputs = {d.dataset.name for d in parents[0].inputs.dataset_inputs}
    assert inputs == {"gold_customer_rfm@v0", "gold_customer_behavior@v0"}
    assert parents[0].data.tags["mlflow.source.git.commit"]
    artifacts = {a.path for a in client.list_artifacts(parents[0].info.run_id, "plots")}
    assert artifacts == {"plots/elbow.png", "plots/silhouette_vs_k.png"}

    # the registered winner is the champion, and it is the sweep's best eligible fit
    champion = client.get_model_version_by_alias(store.model_name, "champion")
    assert champion.run_id == parents[0].data.tags["retail_seg.winner_run_id"]
    best = max(children, key=lambda c: c.data.metrics["silhouette"])
    winner = client.get_run(champion.run_id)
    assert winner.data.metrics["silhouette"] == best.data.metrics["silhouette"]

    # every gold customer has one segment and one offer, and history holds this run
    customers = lakehouse.read(GOLD_CUSTOMER_RFM).select("customer_id")
    segments = lakehouse.read(GOLD_CUSTOMER_SEGMENTS)
    offers = lakehouse.read(GOLD_SEGMENTED_OFFERS)
    assert_df_equality(
        segments.select("customer_id"), customers, ignore_row_order=True, ignore_nullable=True
    )
    assert_df_equality(
        offers.select("customer_id"), customers, ignore_row_order=True, ignore_nullable=True
    )
    assert set(segments.select("model_version").distinct().toPandas()["model_version"]) == {
        str(champion.version)
    }
    personas = {r.persona for r in offers.select("persona").distinct().collect()}
    assert personas <= set(PERSONAS)
    assert offers.where(F.col("offer_code").isNull() | (F.size("top_products") < 1)).isEmpty()
    assert lakehouse.read(GOLD_SEGMENT_HISTORY).count() == customers.count()
    profiles = lakehouse.read(GOLD_SEGMENT_PROFILES)
    assert profiles.agg(F.sum("customers")).first()[0] == customers.count()

    # the dashboard's widgets run on these tables (the bundle sets catalog and schema)
    spark.catalog.setCurrentDatabase(tables.schema)
    try:
        shown = {w: spark.sql(sql).collect() for w, sql in dashboard_queries.items()}
    finally:
        spark.catalog.setCurrentDatabase("default")
    assert all(shown.values()), [w for w, rows in shown.items() if not rows]
    assert shown["customers_counter"][0][0] == customers.count()
    assert shown["offers_counter"][0][0] == customers.count()

    # maintenance commits on every table, then a second run on unchanged data: no new sweep,
    # no new version, no table rewritten
    table_names = sorted(p.name for p in lakehouse.local_root.iterdir() if p.is_dir())
    for table in table_names:
        spark.sql(f"OPTIMIZE {lakehouse.name(table)}")
        spark.sql(f"VACUUM {lakehouse.name(table)}")
    versions = {t: lakehouse.version(t) for t in table_names}
    segments_before = segments.localCheckpoint()
    capsys.readouterr()
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "sweep: up to date" in out and "score: up to date" in out
    # each task announced itself, its time and the rows it wrote: the first run wrote them all,
    # the rerun none
    first = [
        line for line in pipeline_run.output.splitlines() if re.match(r"\[\d/8 .* done in ", line)
    ]
    assert [line.split("]")[0] for line in first] == [
        "[1/8 bronze   ",
        "[2/8 silver   ",
        "[3/8 gold     ",
        "[4/8 sweep    ",
        "[5/8 register ",
        "[6/8 score    ",
        "[7/8 recommend",
        "[8/8 offers   ",
    ]
    assert first[0].endswith("; wrote bronze_transactions 20,000 rows")
    assert first[7].endswith(f"; wrote gold_segmented_offers {customers.count():,} rows")
    again = [line for line in out.splitlines() if re.match(r"\[\d/8 .* done in ", line)]
    assert len(again) == 8 and all(line.endswith("; wrote no table") for line in again), again
    # the summary: tables, winner, champion, offers, report, store
    summary = out[out.index("finished in") :]
    assert f"  {tables.schema}.gold_segmented_offers" in summary
    assert f"champion:  {store.model_name} v{champion.version} (@champion)" in summary
    assert f"offers:    {customers.count():,} customers got one (" in summary
    assert f"MLflow:    {store.tracking_uri}" in summary
    assert {t: lakehouse.version(t) for t in table_names} == versions
    assert (
        len(client.search_runs([experiment.experiment_id], "tags.`retail_seg.role` = 'sweep'")) == 1
    )
    assert len(client.search_model_versions(f"name = '{store.model_name}'")) == 1
    again = client.get_model_version_by_alias(store.model_name, "champion")
    assert again.version == champion.version
    assert_df_equality(
        lakehouse.read(GOLD_CUSTOMER_SEGMENTS), segments_before, ignore_row_order=True
    )
    mlflow.set_tracking_uri(None)
