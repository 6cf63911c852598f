"""The Spark Connect suite: run with SPARK_REMOTE set (tests/integration/test_connect_mode.py
runs it with SPARK_REMOTE=local[2]), so every fixture's session is a Spark Connect session on
a local server with Delta, guarded by serverless's rules."""

from __future__ import annotations

import os

import pytest

from retail_segmentation.common.spark import get_spark, stop_local_connect


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """The session every task gets from `get_spark` when SPARK_REMOTE is set."""
    if not os.environ.get("SPARK_REMOTE"):
        pytest.fail("the Spark Connect suite needs SPARK_REMOTE, e.g. SPARK_REMOTE=local[2]")
    session = get_spark(
        warehouse_dir=str(tmp_path_factory.mktemp("spark-warehouse")),
        shuffle_partitions=2,
        driver_memory="2g",
    )
    yield session
    stop_local_connect()
