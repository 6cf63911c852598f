"""The AI/BI dashboard over the gold tables: its widgets point at datasets and fields that
exist, its datasets read gold tables by unqualified name (the bundle supplies catalog and
schema), and every widget's query runs in Spark SQL on gold tables of the pipeline's shape."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from chispa import assert_df_equality

from retail_segmentation.common import tables

ROOT = Path(__file__).resolve().parents[2]
GOLD_TABLES = {v for k, v in vars(tables).items() if k.startswith("GOLD_")}


def test_the_bundle_deploys_this_file_with_catalog_and_schema():
    resource = yaml.safe_load((ROOT / "resources" / "customer_segments.dashboard.yml").read_text())
    spec = resource["resources"]["dashboards"]["customer_segments"]
    assert (
        ROOT / "resources" / spec["file_path"]
    ).resolve().name == "customer_segments.lvdash.json"
    assert spec["dataset_catalog"] == "${var.catalog}"
    assert spec["dataset_schema"] == "${resources.schemas.retail.name}"


def test_widgets_use_declared_datasets_and_fields(dashboard):
    datasets = {d["name"] for d in dashboard["datasets"]}
    names = [item["widget"]["name"] for p in dashboard["pages"] for item in p["layout"]]
    assert len(names) == len(set(names))
    for page in dashboard["pages"]:
        for item in page["layout"]:
            widget = item["widget"]
            fields = set()
            for q in widget.get("queries", []):
                assert q["query"]["datasetName"] in datasets, widget["name"]
                fields |= {f["name"] for f in q["query"]["fields"]}
            encodings = widget.get("spec", {}).get("encodings", {})
            used = {
                e["fieldName"]
                for e in encodings.values()
                if isinstance(e, dict) and "fieldName" in e
            }
            used |= {c["fieldName"] for c in encodings.get("columns", [])}
            assert used <= fields, (widget["name"], used - fields)


def test_datasets_read_gold_tables_by_unqualified_name(dashboard):
    for dataset in dashboard["datasets"]:
        sql = "".join(dataset["queryLines"])
        named = set(re.findall(r"\b(?:FROM|JOIN)\s+([\w.`]+)", sql, flags=re.IGNORECASE))
        assert named and named <= GOLD_TABLES, (dataset["name"], named)


def test_every_widget_query_runs_on_gold_tables(spark, dashboard_queries):
    spark.createDataFrame(
        [
            (0, 3, 0.75, 20.0, 5.0, 900.0, 4.5, 4.5, 4.0, "VIP", "m", "1", "2011-12-10"),
            (1, 1, 0.25, 400.0, 1.0, 50.0, 1.0, 1.0, 1.0, "Churned", "m", "1", "2011-12-10"),
        ],
        "segment_id int, customers long, share double, mean_recency_days double, "
        "mean_frequency double, mean_monetary double, mean_r_score double, mean_f_score double, "
        "mean_m_score double, persona string, model_name string, model_version string, "
        "as_of_date string",
    ).createOrReplaceTempView("gold_segment_profiles")
    spark.createDataFrame(
        [
            ("c1", 0, "VIP", 0.9, "2011-12-10"),
            ("c2", 0, "VIP", 1.0, "2011-12-10"),
            ("c3", 1, "Churned", None, "2011-12-10"),
        ],
        "customer_id string, segment_id int, persona string, membership_probability double, "
        "as_of_date string",
    ).createOrReplaceTempView("gold_customer_segments")
    spark.createDataFrame(
        [
            ("c1", 10, 4, 1000.0, 5, 4, 5),
            ("c2", 30, 6, 800.0, 4, 5, 4),
            ("c3", 400, 1, 50.0, 1, 1, 1),
        ],
        "customer_id string, recency_days int, frequency long, monetary double, r_score int, "
        "f_score int, m_score int",
    ).createOrReplaceTempView("gold_customer_rfm")
    spark.createDataFrame(
        [
            ("c1", "VIP", "VIP10", "Thank you", "email", 10.0, 30),
            ("c2", "VIP", "VIP10", "Thank you", "email", 10.0, 30),
            ("c3", "Churned", "BACK20", "Come back", "sms", 20.0, 14),
        ],
        "customer_id string, persona string, offer_code string, offer_title string, "
        "channel string, discount_pct double, valid_days int",
    ).createOrReplaceTempView("gold_segmented_offers")
    spark.table("gold_customer_segments").createOrReplaceTempView("gold_segment_history")

    def run(widget):
        return spark.sql(dashboard_queries[widget])

    assert run("customers_counter").first()[0] == 4
    assert run("offers_counter").first()[0] == 3
    expected = spark.createDataFrame([("VIP", 3), ("Churned", 1)], "persona string, c long")
    assert_df_equality(
        run("segment_sizes").toDF("persona", "c"),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )
    expected = spark.createDataFrame(
        [("VIP", 20.0), ("Churned", 400.0)], "persona string, r double"
    )
    assert_df_equality(
        run("mean_recency_days").toDF("persona", "r"),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )
    expected = spark.createDataFrame(
        [("Thank you", "email", 2), ("Come back", "sms", 1)], "t string, ch string, n long"
    )
    assert_df_equality(
        run("offers_by_title").toDF("t", "ch", "n"),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )
    for widget in dashboard_queries:  # the others run too, and return rows
        assert run(widget).count() > 0, widget
