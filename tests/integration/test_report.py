"""The insights report `retail-seg run` writes: its figures agree with the tables and MLflow,
and it renders in a real headless Chromium with every chart drawn and no error."""

from __future__ import annotations

import mlflow
from pyspark.sql import functions as F

from retail_segmentation.common.tables import (
    BRONZE_TRANSACTIONS,
    GOLD_CUSTOMER_RFM,
    GOLD_SEGMENT_PROFILES,
    GOLD_SEGMENTED_OFFERS,
    SILVER_TRANSACTIONS,
    Lakehouse,
)
from retail_segmentation.ml.tracking import MlflowConfig
from retail_segmentation.report.browser import view_report
from retail_segmentation.report.build import default_report_path, gather_report_data
from retail_segmentation.report.charts import CHART_IDS


def test_the_report_agrees_with_the_tables_and_mlflow(spark, pipeline_run):
    tables = pipeline_run.tables
    lakehouse = Lakehouse.attach(spark, tables)
    store = MlflowConfig.for_tables(tables)

    data = gather_report_data(lakehouse, store)

    customers = lakehouse.read(GOLD_CUSTOMER_RFM).count()
    assert data.summary["customers"] == customers
    assert sum(s["customers"] for s in data.segments) == customers
    assert len(data.segments) == lakehouse.read(GOLD_SEGMENT_PROFILES).count()
    assert sum(o["customers"] for o in data.offers) == (
        lakehouse.read(GOLD_SEGMENTED_OFFERS).count()
    )
    # the waterfall starts at every bronze line and ends at the silver table
    steps = {s["rule"]: s for s in data.quality_steps}
    assert data.quality_steps[0]["rows_in"] == lakehouse.read(BRONZE_TRANSACTIONS).count()
    assert steps["balance"]["rows_out"] == lakehouse.read(SILVER_TRANSACTIONS).count()
    # the sweep of the champion: 2 algorithms x k = 2..4, the winner is the champion's run
    client = mlflow.MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.registry_uri)
    champion = client.get_model_version_by_alias(store.model_name, "champion")
    run = client.get_run(champion.run_id)
    assert sorted((f.algorithm, f.k) for f in data.fits) == [
        (a, k) for a in ("gmm", "kmeans") for k in (2, 3, 4)
    ]
    assert data.winner == f"{run.data.params['algorithm']}-k{run.data.params['k']}"
    assert data.summary["silhouette"] == run.data.metrics["silhouette"]
    assert data.summary["model"] == f"{store.model_name} v{champion.version} (@champion)"
    # top products are each segment's, at most 5, ranked by net sales
    for segment in data.segments:
        ranked = [p for p in data.top_products if p["segment_id"] == segment["segment_id"]]
        assert 1 <= len(ranked) <= 5
        sales = [p["net_sales"] for p in sorted(ranked, key=lambda p: p["rank"])]
        assert sales == sorted(sales, reverse=True)
    revenue = lakehouse.read(GOLD_CUSTOMER_RFM).agg(F.round(F.sum("monetary"), 2)).first()[0]
    assert data.summary["net_sales"] == revenue


def test_the_run_writes_a_report_that_renders_every_chart_in_chromium(
    pipeline_run, chromium, tmp_path
):
    report = default_report_path(pipeline_run.tables.lakehouse_dir)
    assert f"report:    {report.absolute()}" in pipeline_run.output
    screenshot = tmp_path / "report.png"

    view = view_report(report, screenshot)

    assert view.errors == ()
    assert view.title == "Customer segments · retail-segmentation"
    assert list(view.rendered) == list(CHART_IDS)
    assert all(layers >= 1 for layers in view.rendered.values()), view.rendered
    assert len(view.sections) == len(CHART_IDS)
    assert screenshot.stat().st_size > 50_000  # a drawn page, not a blank one
