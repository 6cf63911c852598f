"""Logical table names resolve per environment; local tables are found again by name."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality

from retail_segmentation.common.config import TableConfig
from retail_segmentation.common.errors import ConfigError
from retail_segmentation.common.tables import Lakehouse


def test_names_per_environment(spark):
    config = TableConfig(catalog="prod", schema="retail")
    assert Lakehouse(spark, config, databricks=True).name("silver_x") == "prod.retail.silver_x"
    assert Lakehouse(spark, config, databricks=False).name("silver_x") == "retail.silver_x"
    with pytest.raises(ConfigError, match="parameter table="):
        Lakehouse(spark, config).name("x; DROP TABLE y")


def test_overwrite_append_version_and_reattach(spark, lakehouse):
    lakehouse.overwrite(spark.createDataFrame([(1,), (2,)], "id int"), "numbers")
    lakehouse.append(spark.createDataFrame([(3,)], "id int"), "numbers")
    assert lakehouse.version("numbers") == 1
    assert lakehouse.last_commit_rows("numbers") == 1
    first_version = spark.createDataFrame([(1,), (2,)], "id int")
    assert_df_equality(lakehouse.read("numbers", version=0), first_version, ignore_row_order=True)

    spark.sql(f"DROP TABLE {lakehouse.name('numbers')}")  # as in a new process
    again = Lakehouse.attach(spark, lakehouse.config)
    expected = spark.createDataFrame([(1,), (2,), (3,)], "id int")
    assert_df_equality(spark.table(again.name("numbers")), expected, ignore_row_order=True)
