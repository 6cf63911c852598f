"""Screenshots of the insights report and the MLflow UI for the README (`make screenshots`).

Run after `make run`: opens .lakehouse/report/insights.html and `mlflow ui` on the local
store in headless Chromium, checks what they show, and writes docs/images/*.png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import mlflow

from retail_segmentation.common.config import TableConfig
from retail_segmentation.ml.tracking import MlflowConfig
from retail_segmentation.report.browser import running_mlflow_ui, view_mlflow, view_report
from retail_segmentation.report.build import default_report_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lakehouse-dir", default=".lakehouse", help="default: .lakehouse")
    parser.add_argument("--out", default="docs/images", help="default: docs/images")
    args = parser.parse_args(argv)
    out = Path(args.out)

    report = view_report(default_report_path(args.lakehouse_dir), out / "report.png")
    print(f"report: {len(report.rendered)} charts drawn, errors: {list(report.errors) or 'none'}")

    store = MlflowConfig.for_tables(TableConfig(lakehouse_dir=args.lakehouse_dir))
    experiment = mlflow.MlflowClient(store.tracking_uri).get_experiment_by_name(
        store.experiment_name
    )
    with running_mlflow_ui(args.lakehouse_dir) as url:
        ui = view_mlflow(
            url,
            experiment.experiment_id,
            store.model_name,
            runs_screenshot=out / "mlflow-runs.png",
            model_screenshot=out / "mlflow-model.png",
        )
    best = ui.runs[0] if ui.runs else None
    print(f"MLflow UI: {len(ui.runs)} runs, best {best}, aliases {list(ui.model_aliases)}")
    print(f"screenshots in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
