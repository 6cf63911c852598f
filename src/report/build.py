"""The insights report: one self-contained HTML file (plotly.js inlined, opens offline) over the
tables and the MLflow store of one lakehouse.

`gather_report_data` is the I/O edge: it reads the tables and MLflow and reduces them in Spark
to the small summaries of `report.data`; `render_report` turns those into HTML with the
charts of `report.charts`; `write_report` does both and writes the file.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import functions as F

from retail_segmentation.common.errors import ConfigError
from retail_segmentation.common.tables import (
    GOLD_CUSTOMER_RFM,
    GOLD_CUSTOMER_SEGMENTS,
    GOLD_SALES_BY_COUNTRY,
    GOLD_SALES_BY_WEEKDAY_HOUR,
    GOLD_SEGMENT_PROFILES,
    GOLD_SEGMENTED_OFFERS,
    PIPELINE_LEDGER,
    SILVER_PRODUCTS,
    SILVER_TRANSACTIONS,
    Lakehouse,
)
from retail_segmentation.ml.tracking import MlflowConfig
from retail_segmentation.report import data as report_data
from retail_segmentation.report.charts import Chart, build_charts
from retail_segmentation.report.data import Fit, ReportData, rows

REPORT_TABLES = (
    SILVER_TRANSACTIONS,
    SILVER_PRODUCTS,
    PIPELINE_LEDGER,
    GOLD_CUSTOMER_RFM,
    GOLD_CUSTOMER_SEGMENTS,
    GOLD_SEGMENT_PROFILES,
    GOLD_SEGMENTED_OFFERS,
    GOLD_SALES_BY_WEEKDAY_HOUR,
    GOLD_SALES_BY_COUNTRY,
)


@dataclass(frozen=True)
class ReportResult:
    """The report written: its path, the ids of its charts and the data they show."""

    path: Path
    chart_ids: tuple[str, ...]
    data: ReportData


def _champion(mlflow_config: MlflowConfig, model_version: str) -> tuple[dict, list[Fit], str]:
    """The scored model version's run (algorithm, k, silhouette) and every fit of its sweep."""
    import mlflow

    from retail_segmentation.ml.sweep import sweep_results

    mlflow_config.activate()
    client = mlflow.MlflowClient()
    version = client.get_model_version(mlflow_config.model_name, model_version)
    run = client.get_run(version.run_id)
    aliases = ", ".join(f"@{a}" for a in version.aliases) or "no alias"
    champion = {
        "model": f"{mlflow_config.model_name} v{version.version} ({aliases})",
        "algorithm": run.data.params.get("algorithm"),
        "k": run.data.params.get("k"),
        "silhouette": run.data.metrics.get("silhouette"),
    }
    parent_id = run.data.tags.get("mlflow.parentRunId")
    fits = []
    if parent_id:
        for r in sweep_results(client.get_run(parent_id)):
            fits.append(
                Fit(
                    r.algorithm,
                    r.k,
                    r.silhouette,
                    r.wcss,
                    r.log_likelihood,
                    r.smallest_cluster_share,
                    r.adjusted_rand_index,
                )
            )
    return champion, fits, f"{champion['algorithm']}-k{champion['k']}"


def gather_report_data(lakehouse: Lakehouse, mlflow_config: MlflowConfig) -> ReportData:
    """Read the tables and MLflow, and reduce them to what the report draws."""
    missing = [t for t in REPORT_TABLES if not lakehouse.exists(t)]
    if missing:
        raise ConfigError(
            f"the report needs table(s) {', '.join(lakehouse.name(t) for t in missing)}, which "
            "do not exist: run the pipeline first (`retail-seg run`)"
        )
    segments_df = lakehouse.read(GOLD_CUSTOMER_SEGMENTS)
    stamp = segments_df.agg(
        F.count(F.lit(1)).alias("customers"),
        F.max("as_of_date").alias("as_of_date"),
        F.max("scored_at").alias("scored_at"),
        F.max("model_version").alias("model_version"),
    ).first()
    if not stamp["customers"]:
        raise ConfigError(f"{lakehouse.name(GOLD_CUSTOMER_SEGMENTS)} is empty: nothing to report")
    silver_df = lakehouse.read(SILVER_TRANSACTIONS)
    silver_rows = silver_df.count()
    rfm_df = lakehouse.read(GOLD_CUSTOMER_RFM)
    offers_df = lakehouse.read(GOLD_SEGMENTED_OFFERS)
    champion, fits, winner = _champion(mlflow_config, stamp["model_version"])
    revenue = rfm_df.agg(F.round(F.sum("monetary"), 2)).first()[0]
    summary = {
        "as_of_date": str(stamp["as_of_date"]),
        "scored_at": str(stamp["scored_at"]),
        "customers": stamp["customers"],
        "silver_lines": silver_rows,
        "net_sales": revenue,
        "offers": offers_df.count(),
        **champion,
    }
    return ReportData(
        title="Customer segments",
        summary=summary,
        segments=rows(lakehouse.read(GOLD_SEGMENT_PROFILES)),
        rfm_quantiles=rows(report_data.rfm_quantiles(segments_df, rfm_df)),
        fits=fits,
        winner=winner,
        quality_steps=rows(
            report_data.silver_quality_steps(lakehouse.read(PIPELINE_LEDGER), silver_rows)
        ),
        top_products=rows(
            report_data.top_products_per_segment(
                silver_df, segments_df, lakehouse.read(SILVER_PRODUCTS), stamp["as_of_date"]
            )
        ),
        offers=rows(report_data.offers_per_persona(offers_df)),
        weekday_hour=rows(lakehouse.read(GOLD_SALES_BY_WEEKDAY_HOUR)),
        countries=rows(report_data.top_countries(lakehouse.read(GOLD_SALES_BY_COUNTRY))),
    )


_STYLE = """
body { font-family: "Segoe UI", Helvetica, Arial, sans-serif; margin: 0; color: #222;
       background: #f5f6f8; }
header { background: #1f3b57; color: white; padding: 24px 40px; }
header h1 { margin: 0 0 6px 0; font-size: 26px; }
header p { margin: 0; opacity: .85; }
nav { padding: 10px 40px; background: #e8ebf0; font-size: 14px; }
nav a { margin-right: 16px; color: #1f3b57; text-decoration: none; }
main { padding: 20px 40px 40px; max-width: 1400px; }
.cards { display: flex; flex-wrap: wrap; gap: 14px; margin-bottom: 10px; }
.card { background: white; border-radius: 8px; padding: 14px 18px; min-width: 160px;
        box-shadow: 0 1px 3px rgba(0,0,0,.12); }
.card .value { font-size: 22px; font-weight: 600; }
.card .label { font-size: 13px; color: #555; }
section { background: white; border-radius: 8px; margin: 18px 0; padding: 16px 22px;
          box-shadow: 0 1px 3px rgba(0,0,0,.12); }
section h2 { margin: 4px 0; font-size: 19px; }
section p.caption { margin: 4px 0 8px 0; color: #555; font-size: 14px; }
footer { color: #666; font-size: 13px; padding: 0 40px 30px; }
"""


def _cards(summary: dict) -> str:
    silhouette = summary.get("silhouette")
    cards = [
        (f"{summary['customers']:,}", "customers segmented"),
        (f"{summary['net_sales']:,.0f}", "net sales"),
        (f"{summary['silver_lines']:,}", "clean sale lines (silver)"),
        (
            f"{summary.get('algorithm')} k={summary.get('k')}",
            "winning model" + (f", silhouette {silhouette:.3f}" if silhouette is not None else ""),
        ),
        (summary["model"], "scored with"),
        (f"{summary['offers']:,}", "customers with an offer"),
    ]
    return "".join(
        f'<div class="card"><div class="value">{html.escape(str(v))}</div>'
        f'<div class="label">{html.escape(label)}</div></div>'
        for v, label in cards
    )


def render_report(data: ReportData, charts: list[Chart]) -> str:
    """The whole HTML page: summary cards, then each chart with its title and caption."""
    import plotly.offline

    config = {"displaylogo": False, "responsive": True}
    sections = []
    for chart in charts:
        div = chart.figure.to_html(
            full_html=False, include_plotlyjs=False, div_id=chart.chart_id, config=config
        )
        sections.append(
            f'<section id="section-{chart.chart_id}"><h2>{html.escape(chart.title)}</h2>'
            f'<p class="caption">{html.escape(chart.caption)}</p>{div}</section>'
        )
    nav = "".join(f'<a href="#section-{c.chart_id}">{html.escape(c.title)}</a>' for c in charts)
    s = data.summary
    subtitle = (
        f"As of {s['as_of_date']} · scored at {s['scored_at']} · "
        f"{len(data.segments)} segments found by {s.get('algorithm')} (k={s.get('k')})"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(data.title)} · retail-segmentation</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_STYLE}</style>"
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>'
        "</head><body>"
        f"<header><h1>{html.escape(data.title)}</h1><p>{html.escape(subtitle)}</p></header>"
        f'<nav>{nav}</nav><main><div class="cards">{_cards(s)}</div>'
        + "".join(sections)
        + "</main><footer>Written by retail-segmentation from the Delta tables and the MLflow "
        "store of this lakehouse. Query any table with <code>retail-seg sql</code>; see every "
        "fit in the MLflow UI with <code>retail-seg ui</code>.</footer></body></html>\n"
    )


def write_report(lakehouse: Lakehouse, mlflow_config: MlflowConfig, path: Path) -> ReportResult:
    """Build the report of this lakehouse and write it to `path`."""
    data = gather_report_data(lakehouse, mlflow_config)
    charts = build_charts(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(data, charts), encoding="utf-8")
    return ReportResult(path, tuple(c.chart_id for c in charts), data)


def default_report_path(lakehouse_dir: str) -> Path:
    """Where `retail-seg run` and `retail-seg report` write the report by default."""
    return Path(lakehouse_dir) / "report" / "insights.html"
