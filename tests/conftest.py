"""One local Spark session (with Delta) shared by every test."""

from __future__ import annotations

import pytest

from retail_segmentation.common.config import TableConfig
from retail_segmentation.common.spark import local_spark
from retail_segmentation.common.tables import Lakehouse


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
