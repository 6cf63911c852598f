"""One `retail-seg run` of the whole graph on generated data, shared by the integration tests
that look at its results (tables, MLflow, the report, the MLflow UI)."""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass

import pytest

from retail_segmentation import cli
from retail_segmentation.common.config import TableConfig
from retail_segmentation.report.browser import chromium_path


@dataclass(frozen=True)
class PipelineRun:
    """A finished local run: its tables, its command line and what it printed."""

    tables: TableConfig
    argv: list[str]
    output: str


@pytest.fixture(scope="session")
def pipeline_run(spark, tmp_path_factory) -> PipelineRun:
    """raw CSV (20,000 generated lines) -> ... -> offers and the report, once per session."""
    root = tmp_path_factory.mktemp("pipeline")
    tables = TableConfig(schema="it_offers", lakehouse_dir=str(root / "lakehouse"))
    argv = ["run", "--rows", "20000", "--seed", "7", "--k-range", "2..4"]
    argv += ["--schema", tables.schema, "--lakehouse-dir", tables.lakehouse_dir]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(argv)
    assert code == 0, out.getvalue()
    return PipelineRun(tables, argv, out.getvalue())


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium for the browser tests: skipped without it, except in CI (CI=true),
    where its absence fails them (.ci/run installs it)."""
    path = chromium_path()
    if path is None:
        reason = "no Chromium on PATH (apt-get install chromium, or set RETAIL_SEG_CHROMIUM)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path
