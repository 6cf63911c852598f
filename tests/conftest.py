"""One local Spark session (with Delta) shared by every test of a worker.

A process is either classic or Spark Connect (pyspark dispatches on it), so the Spark Connect
suite in tests/connect runs in its own pytest process with SPARK_REMOTE set
(tests/integration/test_connect_mode.py starts it); with SPARK_REMOTE set, only that suite is
collected.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from connect_suite import ConnectSuite
from daily_lines import DayOne, DayTwo

from retail_segmentation.common.config import TableConfig
from retail_segmentation.common.spark import local_spark
from retail_segmentation.common.tables import Lakehouse

# The suite's frames have a few thousand rows at most: interpreted expressions cost less than
# generating and compiling Java per query (tests/faults/test_bad_input.py: 100 s against 143 s).
# Set here, so the task processes and Spark Connect servers the tests start inherit it.
os.environ.setdefault("RETAIL_SEG_CODEGEN", "off")
# Likewise without adaptive execution, as retail-seg run does for small inputs (and as the
# suite's own session below is set).
os.environ.setdefault("RETAIL_SEG_ADAPTIVE", "off")

if os.environ.get("SPARK_REMOTE"):
    collect_ignore_glob = ["unit/*", "integration/*", "faults/*", "bundle/*"]
else:
    collect_ignore_glob = ["connect/*"]


CONNECT_SUITE_TEST = (
    "tests/integration/test_connect_mode.py::"
    "test_the_spark_connect_suite_passes_under_the_serverless_guard"
)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Starts the Spark Connect suite now, to run beside the tests before its own, when that
    test is among the ones to run (tests/connect_suite.py)."""
    if session.config.option.collectonly:
        return
    if any(item.nodeid == CONNECT_SUITE_TEST for item in session.items):
        ConnectSuite.start(session.config._tmp_path_factory.mktemp("connect-suite"))


def pytest_sessionfinish(session: pytest.Session) -> None:
    ConnectSuite.stop()


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """Session-scoped local SparkSession: few shuffle partitions, no UI."""
    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = local_spark(
        app_name="retail-segmentation-tests",
        warehouse_dir=str(warehouse),
        shuffle_partitions=2,
        driver_memory="2g",
        extra_conf={"spark.default.parallelism": "2", "spark.sql.adaptive.enabled": "false"},
    )
    yield session
    session.stop()


@pytest.fixture
def lakehouse(spark, tmp_path) -> Lakehouse:
    """A Lakehouse bound to a fresh folder and schema for one test."""
    schema = f"t_{tmp_path.name.replace('-', '_')}"[:60]
    return Lakehouse.attach(
        spark, TableConfig(schema=schema, lakehouse_dir=str(tmp_path / "lakehouse"))
    )


@pytest.fixture(scope="session")
def day_one_gold(spark, tmp_path_factory) -> DayOne:
    """Day 1 of tests/daily_lines.py landed, cleaned and built into gold, once per session:
    copy it with `day_one_gold.copy(spark, config)`, or read `day_one_gold.source`."""
    return DayOne.build(spark, tmp_path_factory.mktemp("day-one"))


@pytest.fixture(scope="session")
def day_two(spark, tmp_path_factory, day_one_gold) -> DayTwo:
    """Day 2 after `day_one_gold`: landed, cleaned and built, each a lakehouse to read or copy
    (tests/daily_lines.DayTwo)."""
    return DayTwo.build(spark, tmp_path_factory.mktemp("day-two"), day_one_gold)


DASHBOARD = Path(__file__).resolve().parents[1] / "resources" / "customer_segments.lvdash.json"


def _widget_sql(dataset_sql: str, query: dict) -> str:
    """The SQL the dashboard runs for one widget query: its fields over its dataset, grouped by
    the plain fields when the query aggregates."""
    fields = query["fields"]
    select = ", ".join(f"{f['expression']} AS `{f['name']}`" for f in fields)
    sql = f"SELECT {select} FROM ({dataset_sql}) AS dataset"
    plain = [f["expression"] for f in fields if "(" not in f["expression"]]
    if not query["disaggregated"] and len(plain) < len(fields) and plain:
        sql += " GROUP BY " + ", ".join(plain)
    return sql


@pytest.fixture(scope="session")
def dashboard() -> dict:
    """The AI/BI dashboard the bundle deploys (resources/customer_segments.lvdash.json)."""
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def dashboard_queries(dashboard) -> dict[str, str]:
    """widget name -> the Spark SQL of its query, for every widget that queries data."""
    datasets = {d["name"]: "".join(d["queryLines"]) for d in dashboard["datasets"]}
    return {
        item["widget"]["name"]: _widget_sql(datasets[q["query"]["datasetName"]], q["query"])
        for page in dashboard["pages"]
        for item in page["layout"]
        for q in item["widget"].get("queries", [])
    }
