"""How a task keeps an intermediate result that several of its actions read.

Tasks never call persist/cache/checkpoint themselves: they open `Intermediates` and `keep`
what they read more than once. The strategy depends on the compute kind:

- `persist` (local and Databricks classic sessions): costs executor memory, spilling to disk;
  the first reader computes the frame, later readers are served from the cache.
- `delta` (Spark Connect: serverless, and `SPARK_REMOTE` locally, which refuse persist): one
  extra Delta write of the frame when it is kept; readers scan the written files instead of
  recomputing its plan.
- `recompute` (only when asked for): nothing up front; every reader runs the whole plan again.

`RETAIL_SEG_MATERIALIZE=persist|delta|recompute` overrides the choice (to measure each; the
benchmark does), except that `persist` is refused where serverless rules apply. Everything
kept is released when the `with` block ends: unpersisted, or its scratch table dropped.
"""

from __future__ import annotations

import enum
import os
import uuid
from contextlib import AbstractContextManager

from pyspark import StorageLevel
from pyspark.sql import DataFrame

from retail_segmentation.common.config import validate_identifier
from retail_segmentation.common.errors import ConfigError
from retail_segmentation.common.spark import compute_kind
from retail_segmentation.common.tables import Lakehouse

ENV_VARIABLE = "RETAIL_SEG_MATERIALIZE"


class Strategy(str, enum.Enum):
    """How an intermediate result is kept."""

    PERSIST = "persist"
    DELTA = "delta"
    RECOMPUTE = "recompute"


def choose_strategy(spark, requested: str | None = None) -> Strategy:
    """The strategy for this session: `requested` (or RETAIL_SEG_MATERIALIZE) if given and
    allowed, else persist on classic sessions and a scratch Delta table over Spark Connect."""
    kind = compute_kind(spark)
    value = (requested if requested is not None else os.environ.get(ENV_VARIABLE, "")).strip()
    if not value or value == "auto":
        return Strategy.DELTA if kind.has_serverless_rules else Strategy.PERSIST
    try:
        strategy = Strategy(value)
    except ValueError:
        raise ConfigError(
            f"{ENV_VARIABLE}={value!r} is not a strategy: expected auto, "
            f"{', '.join(s.value for s in Strategy)}"
        ) from None
    if strategy is Strategy.PERSIST and kind.has_serverless_rules:
        raise ConfigError(
            f"{ENV_VARIABLE}=persist cannot run on {kind.value} compute, which refuses "
            "persist/cache: use delta or recompute (or unset it)"
        )
    return strategy


class Intermediates(AbstractContextManager):
    """The intermediate results of one task run, kept by one strategy and released together.

    Args:
        lakehouse: where scratch Delta tables go (the `delta` strategy).
        task: short name of the task, part of each scratch table's name.
        strategy: overrides `choose_strategy` (tests).
    """

    def __init__(self, lakehouse: Lakehouse, task: str, strategy: str | None = None) -> None:
        self.lakehouse = lakehouse
        self.task = validate_identifier(task, "task")
        self.strategy = choose_strategy(lakehouse.spark, strategy)
        self._run = uuid.uuid4().hex[:8]
        self._persisted: list[DataFrame] = []
        self._scratch: list[str] = []

    def keep(self, df: DataFrame, name: str) -> DataFrame:
        """`df` kept for several readers; read the returned frame, not `df`.

        Read the tables `df` comes from at a pinned version (`Lakehouse.read(t, version=v)`)
        when the task commits to them before its last reader: a persisted frame of a table's
        latest version no longer matches its cache entry once the table has a newer one, and
        Spark computes it again from that version."""
        if self.strategy is Strategy.PERSIST:
            kept = df.persist(StorageLevel.MEMORY_AND_DISK)
            self._persisted.append(kept)
            return kept
        if self.strategy is Strategy.DELTA:
            scratch = f"{self.task}_{validate_identifier(name, 'intermediate')}_{self._run}"
            kept = self.lakehouse.write_scratch(df, scratch)
            self._scratch.append(scratch)
            return kept
        return df

    def release(self) -> None:
        """Unpersist every persisted frame and drop every scratch table."""
        while self._persisted:
            self._persisted.pop().unpersist()
        while self._scratch:
            self.lakehouse.drop_scratch(self._scratch.pop())

    def __exit__(self, *exc_info) -> None:
        self.release()
