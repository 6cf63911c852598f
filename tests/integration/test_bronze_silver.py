"""Bronze -> silver on generated data: the ledger balances, reruns change nothing, and a
second process reads the tables by name."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
from dataclasses import replace

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from retail_segmentation.bronze.columns import SourceFormat
from retail_segmentation.bronze.task import BronzeConfig, ingest_bronze
from retail_segmentation.common.tables import (
    BRONZE_TRANSACTIONS,
    PIPELINE_LEDGER,
    SILVER_PRODUCTS,
    SILVER_QUARANTINE,
    SILVER_RULE_PARAMETERS,
    SILVER_TRANSACTIONS,
)
from retail_segmentation.data.generator import GeneratorConfig, write_dataset
from retail_segmentation.silver.task import (
    RULE_REASONS,
    SilverConfig,
    build_silver,
    is_up_to_date,
    silver_run_id,
)

pytestmark = pytest.mark.integration

ROWS = 12_000


@pytest.fixture(scope="module")
def generated(spark, tmp_path_factory):
    out = tmp_path_factory.mktemp("generated")
    write_dataset(spark, GeneratorConfig(rows=ROWS, seed=7, files=2), str(out))
    return out


def _snapshot(lakehouse, table):
    return lakehouse.read(table).localCheckpoint()


def test_bronze_to_silver_balances_and_reruns_change_nothing(spark, lakehouse, generated):
    bronze_config = BronzeConfig(str(generated / "transactions"), SourceFormat(), lakehouse.config)
    first_ingest = ingest_bronze(spark, lakehouse, bronze_config)
    assert first_ingest.rows_ingested == ROWS
    assert ingest_bronze(spark, lakehouse, bronze_config).rows_ingested == 0

    silver_config = SilverConfig(tables=lakehouse.config)
    first = build_silver(spark, lakehouse, silver_config)
    assert first.bronze_rows == ROWS
    assert first.silver_rows + first.quarantined_rows + first.duplicates_removed == ROWS
    # the generated dirt is found by the rules that are meant to find it
    assert first.duplicates_removed > 0
    for reason in ("missing_customer_id", "unmatched_cancellation", "malformed_record"):
        assert first.quarantine_by_rule.get(reason, 0) > 0, reason

    silver = lakehouse.read(SILVER_TRANSACTIONS)
    types = {r.line_type: r["count"] for r in silver.groupBy("line_type").count().collect()}
    assert set(types) == {"sale", "return", "non_product"}
    assert (
        silver.where(F.col("line_type") == "return").where("matched_invoice IS NULL").count() == 0
    )
    assert silver.where("customer_id IS NULL OR invoice_date IS NULL").count() == 0
    assert silver.where("line_type != 'non_product' AND price <= 0").count() == 0
    assert silver.where("is_customer_imputed").count() > 0
    assert silver.where("is_price_imputed").count() > 0
    bounds = json.loads(
        lakehouse.read(PIPELINE_LEDGER)
        .where(f"run_id = '{first.run_id}' AND rule = 'clip_iqr_outliers'")
        .first()["detail"]
    )
    assert silver.agg(F.max("quantity")).first()[0] <= bounds["quantity"]["upper"]
    assert (
        silver.where("line_type = 'sale'").agg(F.max("price")).first()[0]
        <= (bounds["price"]["upper"])
    )

    # every quarantined row is a bronze row, with its text intact
    quarantine = lakehouse.read(SILVER_QUARANTINE)
    bronze = lakehouse.read(BRONZE_TRANSACTIONS)
    assert quarantine.join(bronze, "_row_id", "left_anti").count() == 0
    same_values = quarantine.select(bronze.columns).exceptAll(bronze)
    assert same_values.count() == 0  # the bronze values, not just the ids

    # the ledger walks the rows from bronze to silver, rule by rule
    ledger = lakehouse.read(PIPELINE_LEDGER).where(f"run_id = '{first.run_id}'").orderBy("step")
    steps = ledger.collect()
    assert [s.rule for s in steps] == [
        "remove_exact_duplicates",
        *RULE_REASONS,
        "balance",
    ]
    for before, after in itertools.pairwise(steps[:-1]):
        assert after.rows_in == before.rows_out
    assert steps[-2].rows_out == first.silver_rows
    assert sum(s.rows_quarantined for s in steps[:-1]) == first.quarantined_rows

    tables = (SILVER_TRANSACTIONS, SILVER_QUARANTINE, SILVER_PRODUCTS, SILVER_RULE_PARAMETERS)
    snapshots = {t: _snapshot(lakehouse, t) for t in tables}
    # the ledger, but for what the totals' balance says of the run (full refresh or refit)
    ledger = lakehouse.read(PIPELINE_LEDGER).drop("detail").localCheckpoint()
    # a finished run on this bronze version and these parameters is recognised...
    assert is_up_to_date(lakehouse, first.run_id)
    other = SilverConfig(tables=lakehouse.config, iqr_multiplier=3.0)
    assert not is_up_to_date(lakehouse, silver_run_id(0, other))
    # ...and cleaning everything again gives the same tables
    second = build_silver(spark, lakehouse, replace(silver_config, full_refresh=True))
    assert (first.mode, second.mode) == ("refit", "full_refresh")
    assert replace(second, mode="refit", refit_reason=first.refit_reason, date_formats=()) == (
        replace(first, date_formats=())
    )
    for table, before in snapshots.items():
        assert_df_equality(lakehouse.read(table), before, ignore_row_order=True)
    assert_df_equality(
        lakehouse.read(PIPELINE_LEDGER).drop("detail"), ledger, ignore_row_order=True
    )


def test_second_process_reads_tables_by_name(spark, day_one_gold, tmp_path):
    lakehouse = day_one_gold.source  # silver written by this process; only read
    expected = lakehouse.read(SILVER_TRANSACTIONS).count()
    assert expected > 0
    code = textwrap.dedent(
        f"""
        from retail_segmentation.common.config import TableConfig
        from retail_segmentation.common.spark import local_spark
        from retail_segmentation.common.tables import Lakehouse
        spark = local_spark(warehouse_dir={str(tmp_path / "wh")!r},
                            driver_memory="1g")
        Lakehouse.attach(spark, TableConfig(schema={lakehouse.config.schema!r},
                                            lakehouse_dir={lakehouse.config.lakehouse_dir!r}))
        print("COUNT", spark.sql("SELECT count(*) FROM {lakehouse.name(SILVER_TRANSACTIONS)}")
              .first()[0])
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert f"COUNT {expected}" in out.stdout
