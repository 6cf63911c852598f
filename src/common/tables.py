"""Logical table names -> physical Delta tables.

On Databricks a logical name such as `silver_transactions` is the Unity Catalog table
`<catalog>.<schema>.silver_transactions`. Locally it is the Delta table in
`<lakehouse_dir>/tables/<schema>/silver_transactions`, registered in the session catalog
as `<schema>.silver_transactions`; every session built through `Lakehouse.attach` registers
the tables found on disk again, so a second process can query them by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from retail_segmentation.common.config import TableConfig, validate_identifier
from retail_segmentation.common.spark import is_databricks

BRONZE_TRANSACTIONS = "bronze_transactions"
SILVER_TRANSACTIONS = "silver_transactions"
SILVER_QUARANTINE = "silver_quarantine"
SILVER_PRODUCTS = "silver_products"
PIPELINE_LEDGER = "pipeline_ledger"
GOLD_CUSTOMER_RFM = "gold_customer_rfm"
GOLD_CUSTOMER_BEHAVIOR = "gold_customer_behavior"
GOLD_PRODUCT_PERFORMANCE = "gold_product_performance"
GOLD_SALES_BY_COUNTRY = "gold_sales_by_country"
GOLD_SALES_BY_DAY = "gold_sales_by_day"
GOLD_SALES_BY_WEEKDAY_HOUR = "gold_sales_by_weekday_hour"
GOLD_CUSTOMER_SEGMENTS = "gold_customer_segments"
GOLD_SEGMENT_PROFILES = "gold_segment_profiles"
GOLD_SEGMENT_HISTORY = "gold_segment_history"
GOLD_PRODUCT_RECOMMENDATIONS = "gold_product_recommendations"
GOLD_SEGMENTED_OFFERS = "gold_segmented_offers"


@dataclass(frozen=True)
class Lakehouse:
    """Reads, writes and names the project's Delta tables for one catalog/schema."""

    spark: SparkSession
    config: TableConfig
    databricks: bool = False

    @classmethod
    def attach(cls, spark: SparkSession, config: TableConfig) -> Lakehouse:
        """Bind to `config`; locally, (re)register the Delta tables already on disk."""
        lakehouse = cls(spark, config, databricks=is_databricks())
        if lakehouse.databricks:
            spark.sql(f"CREATE SCHEMA IF NOT EXISTS {config.catalog}.{config.schema}")
        else:
            lakehouse._register_local_tables()
        return lakehouse

    @property
    def local_root(self) -> Path:
        """Folder holding this schema's Delta tables on a laptop."""
        return Path(self.config.lakehouse_dir).absolute() / "tables" / self.config.schema

    def name(self, table: str) -> str:
        """Fully qualified name of a logical table."""
        validate_identifier(table, "table")
        if self.databricks:
            return f"{self.config.catalog}.{self.config.schema}.{table}"
        return f"{self.config.schema}.{table}"

    def three_level_name(self, table: str) -> str:
        """catalog.schema.table: the Unity Catalog name, or spark_catalog.schema.table locally
        (what lineage tools such as MLflow datasets expect)."""
        name = self.name(table)
        return name if self.databricks else f"spark_catalog.{name}"

    def location(self, table: str) -> str:
        """Local folder of a table's Delta log and files."""
        return str(self.local_root / validate_identifier(table, "table"))

    def exists(self, table: str) -> bool:
        """True when the table has been written at least once."""
        if self.databricks:
            return self.spark.catalog.tableExists(self.name(table))
        return (Path(self.location(table)) / "_delta_log").is_dir()

    def read(self, table: str, version: int | None = None) -> DataFrame:
        """The current version of a table, or the given Delta version (time travel)."""
        reader = self.spark.read
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.table(self.name(table))

    def version(self, table: str) -> int:
        """Latest Delta version of a table (for the ledger and MLflow lineage)."""
        from delta.tables import DeltaTable

        history = DeltaTable.forName(self.spark, self.name(table)).history(1)
        return int(history.select("version").first()[0])

    def last_commit_rows(self, table: str) -> int:
        """Rows written by the table's latest commit, from Delta's operation metrics."""
        from delta.tables import DeltaTable

        metrics = DeltaTable.forName(self.spark, self.name(table)).history(1).first()
        return int((metrics["operationMetrics"] or {}).get("numOutputRows", 0))

    def overwrite(self, df: DataFrame, table: str) -> None:
        """Replace a table's content in one Delta commit."""
        self._save(df, table, "overwrite")

    def append(self, df: DataFrame, table: str) -> None:
        """Append rows to a table in one Delta commit (creating it if needed)."""
        self._save(df, table, "append")

    def replace_where(self, df: DataFrame, table: str, column: str, value: str) -> None:
        """Replace the rows where `column` = `value` with `df` in one Delta commit (creating
        the table if needed): rewriting the same key twice leaves one copy."""
        if not self.exists(table):
            self._save(df, table, "append")
            return
        literal = value.replace("\\", "\\\\").replace("'", "\\'")
        self._save(
            df,
            table,
            "overwrite",
            replace_where=f"{validate_identifier(column, 'column')} = '{literal}'",
        )

    def _save(self, df: DataFrame, table: str, mode: str, replace_where: str | None = None) -> None:
        writer = df.write.format("delta").mode(mode)
        if replace_where is not None:
            writer = writer.option("replaceWhere", replace_where)
        elif mode == "overwrite":
            writer = writer.option("overwriteSchema", "true")
        if not self.databricks:
            self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {self.config.schema}")
            writer = writer.option("path", self.location(table))
        writer.saveAsTable(self.name(table))

    def _register_local_tables(self) -> None:
        self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {self.config.schema}")
        if not self.local_root.is_dir():
            return
        for table_dir in sorted(self.local_root.iterdir()):
            if (table_dir / "_delta_log").is_dir():
                name = self.name(table_dir.name)
                location = str(table_dir).replace("'", "\\'")
                self.spark.sql(
                    f"CREATE TABLE IF NOT EXISTS {name} USING DELTA LOCATION '{location}'"
                )
