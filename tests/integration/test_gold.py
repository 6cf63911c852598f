"""Silver -> gold on generated data: one row per customer, reproducible for an as-of date."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from retail_segmentation.bronze.columns import SourceFormat
from retail_segmentation.bronze.task import BronzeConfig, ingest_bronze
from retail_segmentation.common.tables import (
    GOLD_CUSTOMER_BEHAVIOR,
    GOLD_CUSTOMER_RFM,
    GOLD_PRODUCT_PERFORMANCE,
    SILVER_TRANSACTIONS,
)
from retail_segmentation.data.generator import GeneratorConfig, write_dataset
from retail_segmentation.gold.rfm import RFM_SEGMENTS
from retail_segmentation.gold.task import GoldConfig, build_gold
from retail_segmentation.gold.task import main as gold_main
from retail_segmentation.silver.task import SilverConfig, build_silver

pytestmark = pytest.mark.integration


def test_gold_tables_cover_every_customer_and_rebuild_identically(spark, lakehouse, tmp_path):
    write_dataset(spark, GeneratorConfig(rows=8_000, seed=3), str(tmp_path / "data"))
    ingest_bronze(
        spark,
        lakehouse,
        BronzeConfig(str(tmp_path / "data" / "transactions"), SourceFormat(), lakehouse.config),
    )
    build_silver(spark, lakehouse, SilverConfig(tables=lakehouse.config))

    first = build_gold(spark, lakehouse, GoldConfig(tables=lakehouse.config))
    assert first.as_of_date == dt.date(2011, 12, 10)  # the day after the generator's end date

    buyers = (
        lakehouse.read(SILVER_TRANSACTIONS)
        .where("line_type = 'sale'")
        .select("customer_id")
        .distinct()
    )
    rfm = lakehouse.read(GOLD_CUSTOMER_RFM)
    behavior = lakehouse.read(GOLD_CUSTOMER_BEHAVIOR)
    for table in (rfm, behavior):
        assert table.count() == table.select("customer_id").distinct().count() == buyers.count()
        assert table.join(buyers, "customer_id", "left_anti").isEmpty()
    scores = rfm.agg(
        *[F.min(c).alias(f"min_{c}") for c in ("r_score", "f_score", "m_score")],
        *[F.max(c).alias(f"max_{c}") for c in ("r_score", "f_score", "m_score")],
        F.min("recency_days").alias("min_recency"),
    ).first()
    assert [scores[f"min_{c}"] for c in ("r_score", "f_score", "m_score")] == [1, 1, 1]
    assert [scores[f"max_{c}"] for c in ("r_score", "f_score", "m_score")] == [5, 5, 5]
    assert scores["min_recency"] >= 1
    segments = {r.rfm_segment for r in rfm.select("rfm_segment").distinct().collect()}
    assert segments <= {name for name, *_ in RFM_SEGMENTS} and len(segments) >= 5
    assert first.rows[GOLD_PRODUCT_PERFORMANCE] > 0

    before = rfm.localCheckpoint()
    again = build_gold(spark, lakehouse, GoldConfig(tables=lakehouse.config))
    assert (again.run_id, again.rows, again.mode) == (first.run_id, first.rows, "incremental")
    assert_df_equality(lakehouse.read(GOLD_CUSTOMER_RFM), before, ignore_row_order=True)

    later = build_gold(
        spark, lakehouse, GoldConfig(tables=lakehouse.config, as_of_date=dt.date(2011, 12, 20))
    )
    assert later.as_of_date == dt.date(2011, 12, 20)
    shifted = lakehouse.read(GOLD_CUSTOMER_RFM).select(
        "customer_id", (F.col("recency_days") - 10).alias("recency_days")
    )
    assert_df_equality(shifted, before.select("customer_id", "recency_days"), ignore_row_order=True)

    # the task's entry point recognises a finished run for this silver version and date
    version = lakehouse.version(GOLD_CUSTOMER_RFM)
    tables = [
        "--schema",
        lakehouse.config.schema,
        "--lakehouse-dir",
        lakehouse.config.lakehouse_dir,
    ]
    gold_main([*tables, "--as-of-date", "2011-12-20"])
    assert lakehouse.version(GOLD_CUSTOMER_RFM) == version
    gold_main([*tables, "--as-of-date", "2011-12-20", "--force"])
    assert lakehouse.version(GOLD_CUSTOMER_RFM) == version + 1
    # another date replaces the tables; going back to the first is a rebuild, not "up to
    # date" because a run with that input once finished
    gold_main([*tables, "--as-of-date", "2011-12-21"])
    gold_main([*tables, "--as-of-date", "2011-12-20"])
    assert lakehouse.version(GOLD_CUSTOMER_RFM) == version + 3
    assert_df_equality(
        lakehouse.read(GOLD_CUSTOMER_RFM).select(
            "customer_id", (F.col("recency_days") - 10).alias("recency_days")
        ),
        before.select("customer_id", "recency_days"),
        ignore_row_order=True,
    )
