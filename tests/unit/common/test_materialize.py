"""How intermediates are kept per compute kind: persisted on a classic session, written to a
scratch Delta table where serverless rules apply, or recomputed; released at the end."""

from __future__ import annotations

from pathlib import Path

import pytest
from chispa import assert_df_equality

from retail_segmentation.common import materialize
from retail_segmentation.common.errors import ConfigError
from retail_segmentation.common.materialize import Intermediates, Strategy, choose_strategy
from retail_segmentation.common.spark import ComputeKind

ROWS_DDL = "id int, label string"


@pytest.fixture
def rows_df(spark):
    return spark.createDataFrame([(1, "a"), (2, None), (3, "c")], ROWS_DDL)


def _as(monkeypatch, kind: ComputeKind) -> None:
    monkeypatch.setattr(materialize, "compute_kind", lambda _spark: kind)


@pytest.mark.parametrize(
    ("kind", "strategy"),
    [
        (ComputeKind.LOCAL, Strategy.PERSIST),
        (ComputeKind.DATABRICKS_CLASSIC, Strategy.PERSIST),
        (ComputeKind.LOCAL_CONNECT, Strategy.DELTA),
        (ComputeKind.DATABRICKS_SERVERLESS, Strategy.DELTA),
    ],
)
def test_the_strategy_follows_the_compute_kind(spark, monkeypatch, kind, strategy):
    monkeypatch.delenv(materialize.ENV_VARIABLE, raising=False)
    _as(monkeypatch, kind)
    assert choose_strategy(spark) is strategy
    assert choose_strategy(spark, "auto") is strategy


def test_the_variable_overrides_it_but_never_persists_on_serverless(spark, monkeypatch):
    monkeypatch.setenv(materialize.ENV_VARIABLE, "recompute")
    assert choose_strategy(spark) is Strategy.RECOMPUTE
    _as(monkeypatch, ComputeKind.DATABRICKS_SERVERLESS)
    monkeypatch.setenv(materialize.ENV_VARIABLE, "delta")
    assert choose_strategy(spark) is Strategy.DELTA
    monkeypatch.setenv(materialize.ENV_VARIABLE, "persist")
    with pytest.raises(
        ConfigError,
        match=r"RETAIL_SEG_MATERIALIZE=persist cannot run on databricks-serverless compute",
    ):
        choose_strategy(spark)
    monkeypatch.setenv(materialize.ENV_VARIABLE, "cache")
    with pytest.raises(ConfigError, match=r"RETAIL_SEG_MATERIALIZE='cache' is not a strategy"):
        choose_strategy(spark)


def test_persisted_frames_are_released_at_the_end(lakehouse, rows_df):
    with Intermediates(lakehouse, "t", strategy="persist") as intermediates:
        kept = intermediates.keep(rows_df, "rows")
        assert kept.storageLevel.useMemory and kept.storageLevel.useDisk
        assert_df_equality(kept, rows_df, ignore_row_order=True)
    assert not kept.storageLevel.useMemory and not kept.storageLevel.useDisk


def test_a_scratch_delta_table_is_read_instead_and_dropped_at_the_end(lakehouse, rows_df):
    with Intermediates(lakehouse, "t", strategy="delta") as intermediates:
        kept = intermediates.keep(rows_df, "rows")
        scratch = list(lakehouse.scratch_root.iterdir())
        assert [p.name.rsplit("_", 1)[0] for p in scratch] == ["t_rows"]
        assert (scratch[0] / "_delta_log").is_dir()
        # the kept frame reads the written files, not the plan it came from
        files = kept.inputFiles()
        assert files and all(str(scratch[0]) in f for f in files)
        assert_df_equality(kept, rows_df, ignore_row_order=True)
    assert list(lakehouse.scratch_root.iterdir()) == []


def test_recompute_hands_the_frame_back(lakehouse, rows_df):
    with Intermediates(lakehouse, "t", strategy="recompute") as intermediates:
        assert intermediates.keep(rows_df, "rows") is rows_df


def test_names_reaching_the_scratch_table_are_checked(lakehouse, rows_df):
    with pytest.raises(ConfigError, match="parameter task="):
        Intermediates(lakehouse, "t; DROP", strategy="delta")
    with (
        Intermediates(lakehouse, "t", strategy="delta") as intermediates,
        pytest.raises(ConfigError, match="parameter intermediate="),
    ):
        intermediates.keep(rows_df, "a b")


def test_a_persisted_frame_of_a_tables_latest_version_is_computed_again_after_its_next_commit(
    lakehouse, rows_df
):
    """Why a task that commits to a table it kept a frame of reads it at a pinned version."""
    lakehouse.overwrite(rows_df, "source")
    with Intermediates(lakehouse, "t", strategy="persist") as intermediates:
        kept = intermediates.keep(lakehouse.read("source"), "source")
        assert kept.count() == 3
        lakehouse.append(rows_df.where("id = 1"), "source")
        assert kept.count() == 4


def test_a_persisted_frame_of_a_pinned_version_is_served_from_its_cache_after_the_next_commit(
    lakehouse, rows_df
):
    lakehouse.overwrite(rows_df, "source")
    with Intermediates(lakehouse, "t", strategy="persist") as intermediates:
        kept = intermediates.keep(lakehouse.read("source", lakehouse.version("source")), "source")
        assert kept.count() == 3
        lakehouse.append(rows_df.where("id = 1"), "source")
        # the pinned version's files gone: only the cache can still answer
        for data_file in Path(lakehouse.location("source")).glob("*.parquet"):
            data_file.unlink()
        assert_df_equality(kept, rows_df, ignore_row_order=True)
