"""`mlflow ui` on the local store, looked at in a real headless Chromium: the sweep's runs are
listed best silhouette first with the silhouette shown, and the model carries @champion."""

from __future__ import annotations

import mlflow
import pytest

from retail_segmentation.ml.tracking import MlflowConfig
from retail_segmentation.report.browser import running_mlflow_ui, view_mlflow

# The UI asks the server who is signed in; without authentication the server answers 404.
_EXPECTED_404 = "/ajax-api/2.0/mlflow/users/current"
# Chromium's report that a ResizeObserver callback could not deliver every notification in
# one frame: the layout settling on a busy machine (seen once, with four JVMs on 2 cores), not
# an error of the page.
_LAYOUT_NOTICE = "ResizeObserver loop completed with undelivered notifications."


def _is_expected(error: str) -> bool:
    return (error.startswith("HTTP 404 ") and error.endswith(_EXPECTED_404)) or error.endswith(
        _LAYOUT_NOTICE
    )


def test_the_mlflow_ui_lists_the_sweep_by_silhouette_and_the_champion(
    pipeline_run, chromium, tmp_path
):
    store = MlflowConfig.for_tables(pipeline_run.tables)
    client = mlflow.MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.registry_uri)
    experiment = client.get_experiment_by_name(store.experiment_name)
    candidates = client.search_runs(
        [experiment.experiment_id], "tags.`retail_seg.role` = 'candidate'"
    )
    best_first = sorted(candidates, key=lambda r: -r.data.metrics["silhouette"])

    with running_mlflow_ui(pipeline_run.tables.lakehouse_dir) as url:
        view = view_mlflow(
            url,
            experiment.experiment_id,
            store.model_name,
            runs_screenshot=tmp_path / "runs.png",
            model_screenshot=tmp_path / "model.png",
        )

    assert {"Run Name", "silhouette", "smallest_cluster_share", "algorithm", "k"} <= set(
        view.run_columns
    )
    assert [name for name, _ in view.runs] == [r.info.run_name for r in best_first]
    assert [float(shown) for _, shown in view.runs] == pytest.approx(
        [r.data.metrics["silhouette"] for r in best_first]
    )
    assert view.model_aliases == ("champion",)
    assert all(_is_expected(e) for e in view.errors), view.errors
    assert (tmp_path / "runs.png").stat().st_size > 20_000
    assert (tmp_path / "model.png").stat().st_size > 20_000
