"""The report's charts: plotly figures built from ReportData (plain rows, no Spark).

Each chart has an id (the id of its element in the HTML, which the browser test looks for), a
title and one sentence saying how to read it. A persona keeps its colour on every chart.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from retail_segmentation.report.data import QUANTILES, ReportData, segment_label

PERSONA_COLOURS = {
    "VIP": "#6a3d9a",
    "Loyal": "#1f78b4",
    "New": "#33a02c",
    "Occasional": "#b2df8a",
    "Bargain Hunter": "#ff7f00",
    "Slipping Away": "#fb9a99",
    "Churned": "#e31a1c",
}
_OTHER_COLOUR = "#888888"
ALGORITHM_NAMES = {"kmeans": "KMeans", "gmm": "GaussianMixture"}
ALGORITHM_COLOURS = {"kmeans": "#1f78b4", "gmm": "#ff7f00"}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MEASURE_TITLES = {
    "recency_days": "Recency (days since last purchase)",
    "frequency": "Frequency (invoices)",
    "monetary": "Monetary (net spend)",
}
# The behaviour a persona profile compares with the whole population (1 = the average customer).
PROFILE_MEASURES = (
    ("mean_recency_days", "days since last purchase"),
    ("mean_frequency", "invoices"),
    ("mean_monetary", "spend"),
    ("mean_basket_value", "basket value"),
    ("mean_items_per_invoice", "items per invoice"),
    ("mean_cancellation_rate", "cancellation rate"),
    ("mean_weekend_share", "weekend share"),
)
_LAYOUT = {
    "template": "plotly_white",
    "margin": {"l": 60, "r": 30, "t": 40, "b": 50},
    "font": {"family": "Segoe UI, Helvetica, Arial, sans-serif", "size": 13},
}


@dataclass(frozen=True)
class Chart:
    """One chart of the report."""

    chart_id: str
    title: str
    caption: str
    figure: go.Figure


def persona_colour(persona: str) -> str:
    """The colour of a persona on every chart."""
    return PERSONA_COLOURS.get(persona, _OTHER_COLOUR)


def _segments_in_order(data: ReportData) -> list[dict]:
    """Segments biggest first: the order of every per-segment chart."""
    return sorted(data.segments, key=lambda s: (-s["customers"], s["segment_id"]))


def _label(row: dict) -> str:
    return segment_label(row["segment_id"], row["persona"])


def segment_sizes(data: ReportData) -> Chart:
    """Customers per segment, with their share."""
    segments = _segments_in_order(data)
    figure = go.Figure(
        go.Bar(
            x=[_label(s) for s in segments],
            y=[s["customers"] for s in segments],
            text=[f"{s['customers']:,} ({s['share']:.1%})" for s in segments],
            textposition="outside",
            marker_color=[persona_colour(s["persona"]) for s in segments],
            hovertemplate="%{x}: %{y:,} customers<extra></extra>",
        )
    )
    figure.update_layout(**_LAYOUT, yaxis_title="customers", height=380)
    return Chart(
        "segment-sizes",
        "Segments",
        "How many customers each segment holds; the persona comes from the segment's profile by "
        "the rules in src/gold/profiles.py.",
        figure,
    )


def rfm_distributions(data: ReportData) -> Chart:
    """Box plots of recency, frequency and monetary value per segment (5th to 95th percentile
    whiskers, quartile boxes, mean dashed)."""
    figure = make_subplots(
        rows=1, cols=3, subplot_titles=[MEASURE_TITLES[m] for m in MEASURE_TITLES]
    )
    quantiles = {(q["segment_id"], q["measure"]): q for q in data.rfm_quantiles}
    for segment in _segments_in_order(data):
        for column, measure in enumerate(MEASURE_TITLES, start=1):
            q = quantiles.get((segment["segment_id"], measure))
            if q is None or q["median"] is None:  # no customer of the segment has the measure
                continue
            figure.add_trace(
                go.Box(
                    name=_label(segment),
                    x=[_label(segment)],
                    q1=[q["q1"]],
                    median=[q["median"]],
                    q3=[q["q3"]],
                    lowerfence=[q["p05"]],
                    upperfence=[q["p95"]],
                    mean=[q["mean"]],
                    boxmean=True,
                    marker_color=persona_colour(segment["persona"]),
                    legendgroup=_label(segment),
                    showlegend=column == 1,
                ),
                row=1,
                col=column,
            )
    figure.update_yaxes(type="log", row=1, col=3)
    figure.update_xaxes(showticklabels=False)
    figure.update_layout(**_LAYOUT, height=420, legend={"orientation": "h", "y": -0.08})
    low, high = int(QUANTILES[0] * 100), int(QUANTILES[-1] * 100)
    return Chart(
        "rfm-distributions",
        "Recency, frequency and monetary value per segment",
        f"Boxes span the middle half of each segment's customers, whiskers the {low}th to "
        f"{high}th percentile, the dashed line is the mean; monetary value is on a log scale.",
        figure,
    )


def _fits_by_algorithm(data: ReportData) -> dict[str, list]:
    by_algorithm: dict[str, list] = {}
    for fit in sorted(data.fits, key=lambda f: (f.algorithm, f.k)):
        by_algorithm.setdefault(fit.algorithm, []).append(fit)
    return by_algorithm


def sweep_silhouette(data: ReportData) -> Chart:
    """Silhouette against k for each algorithm, the winner marked."""
    figure = go.Figure()
    for algorithm, fits in _fits_by_algorithm(data).items():
        figure.add_trace(
            go.Scatter(
                x=[f.k for f in fits],
                y=[f.silhouette for f in fits],
                mode="lines+markers",
                name=ALGORITHM_NAMES.get(algorithm, algorithm),
                line_color=ALGORITHM_COLOURS.get(algorithm, _OTHER_COLOUR),
                customdata=[[f.smallest_cluster_share] for f in fits],
                hovertemplate="k=%{x}: silhouette %{y:.4f}, smallest cluster "
                "%{customdata[0]:.1%}<extra>%{fullData.name}</extra>",
            )
        )
    winner = next((f for f in data.fits if f"{f.algorithm}-k{f.k}" == data.winner), None)
    if winner is not None:
        figure.add_trace(
            go.Scatter(
                x=[winner.k],
                y=[winner.silhouette],
                mode="markers+text",
                marker={"symbol": "star", "size": 18, "color": "#d4a017"},
                text=[f"winner {data.winner}"],
                textposition="top center",
                name="winner",
                hovertemplate="winner: silhouette %{y:.4f}<extra></extra>",
            )
        )
    figure.update_layout(
        **_LAYOUT, xaxis_title="k (segments)", yaxis_title="silhouette", height=380
    )
    figure.update_xaxes(dtick=1)
    return Chart(
        "sweep-silhouette",
        "Silhouette by number of segments",
        "Every fit of the sweep that produced the champion model (all are runs in MLflow). The "
        "winner is the best silhouette among fits whose smallest segment is not degenerate.",
        figure,
    )


def sweep_elbow(data: ReportData) -> Chart:
    """WCSS (KMeans) and log-likelihood (GaussianMixture) against k."""
    figure = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=[
            "KMeans: within-cluster sum of squares",
            "GaussianMixture: log-likelihood",
        ],
    )
    by_algorithm = _fits_by_algorithm(data)
    for column, (algorithm, measure) in enumerate(
        (("kmeans", "wcss"), ("gmm", "log_likelihood")), start=1
    ):
        fits = [f for f in by_algorithm.get(algorithm, []) if getattr(f, measure) is not None]
        figure.add_trace(
            go.Scatter(
                x=[f.k for f in fits],
                y=[getattr(f, measure) for f in fits],
                mode="lines+markers",
                name=ALGORITHM_NAMES[algorithm],
                line_color=ALGORITHM_COLOURS[algorithm],
            ),
            row=1,
            col=column,
        )
    figure.update_xaxes(title_text="k (segments)", dtick=1)
    figure.update_layout(**_LAYOUT, height=360, showlegend=False)
    return Chart(
        "sweep-elbow",
        "Elbow curves",
        "Where the curve bends, more segments stop paying off.",
        figure,
    )


def _population_mean(data: ReportData, column: str) -> float | None:
    weighted = [(s[column], s["customers"]) for s in data.segments if s.get(column) is not None]
    weight = sum(n for _, n in weighted)
    return sum(v * n for v, n in weighted) / weight if weight else None


def persona_profiles(data: ReportData) -> Chart:
    """One panel per segment: each behaviour measure as a ratio to the average customer."""
    segments = _segments_in_order(data)
    columns = min(4, max(1, len(segments)))
    rows = math.ceil(len(segments) / columns) if segments else 1
    figure = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[_label(s) for s in segments],
        shared_yaxes=True,
        horizontal_spacing=0.03,
        vertical_spacing=0.12,
    )
    population = {column: _population_mean(data, column) for column, _ in PROFILE_MEASURES}
    for index, segment in enumerate(segments):
        names, ratios, shown = [], [], []
        for column, name in PROFILE_MEASURES:
            value, mean = segment.get(column), population[column]
            if value is None or not mean:
                continue
            names.append(name)
            # a zero (no cancellation at all) cannot sit on a log axis: shown at 1/100
            ratios.append(max(value / mean, 0.01) - 1)  # bars grow from 1 (the average)
            shown.append(f"{value:,.2f} (average {mean:,.2f})")
        figure.add_trace(
            go.Bar(
                x=ratios,
                y=names,
                base=1,
                orientation="h",
                marker_color=persona_colour(segment["persona"]),
                customdata=shown,
                hovertemplate="%{y}: %{customdata}<extra></extra>",
                showlegend=False,
            ),
            row=index // columns + 1,
            col=index % columns + 1,
        )
    figure.update_xaxes(
        type="log", tickvals=[0.1, 0.5, 1, 2, 5, 10], ticktext=[".1", ".5", "1", "2", "5", "10"]
    )
    figure.add_vline(x=1, line_dash="dot", line_color="#444")
    figure.update_layout(**_LAYOUT, height=260 * rows + 40)
    return Chart(
        "persona-profiles",
        "Profile of each persona",
        "Each bar is the segment's mean divided by the mean of all customers: right of the dotted "
        "line is above average, left below (log scale).",
        figure,
    )


def data_quality(data: ReportData) -> Chart:
    """Waterfall from bronze lines to silver lines: what each silver rule removed or
    quarantined."""
    steps = [s for s in data.quality_steps if s["rule"] != "balance"]
    balance = next((s for s in data.quality_steps if s["rule"] == "balance"), None)
    if not steps:
        figure = go.Figure()
    else:
        names = ["bronze lines"]
        values = [steps[0]["rows_in"]]
        measures = ["absolute"]
        hover = [f"{steps[0]['rows_in']:,} lines landed"]
        for step in steps:
            dropped = step["rows_removed"] + step["rows_quarantined"]
            names.append(step["rule"].replace("_", " "))
            values.append(-dropped)
            measures.append("relative")
            hover.append(_step_hover(step))
        names.append("silver lines")
        values.append(balance["rows_out"] if balance else steps[-1]["rows_out"])
        measures.append("total")
        hover.append("kept in silver_transactions")
        figure = go.Figure(
            go.Waterfall(
                x=names,
                y=values,
                measure=measures,
                text=[f"{v:,}" for v in values],
                textposition="outside",
                hovertext=hover,
                hoverinfo="x+text",
                decreasing={"marker": {"color": "#e31a1c"}},
                totals={"marker": {"color": "#1f78b4"}},
                connector={"line": {"color": "#999"}},
            )
        )
    figure.update_layout(**_LAYOUT, height=420, yaxis_title="lines", showlegend=False)
    return Chart(
        "data-quality",
        "From raw lines to silver",
        "Lines removed (exact duplicates) or quarantined (with their reason, in silver_quarantine) "
        "by each silver rule; every landed line is accounted for in pipeline_ledger.",
        figure,
    )


def _step_hover(step: dict) -> str:
    parts = []
    if step["rows_removed"]:
        parts.append(f"{step['rows_removed']:,} removed")
    if step["rows_quarantined"]:
        parts.append(f"{step['rows_quarantined']:,} quarantined")
    detail = json.loads(step["detail"] or "{}")
    for reason, count in sorted((detail.get("by_reason") or {}).items()):
        parts.append(f"{reason}: {count:,}")
    return "; ".join(parts) or "nothing dropped"


def top_products(data: ReportData) -> Chart:
    """A panel per segment: its best-selling products."""
    segments = _segments_in_order(data)
    columns = min(2, max(1, len(segments)))
    rows = math.ceil(len(segments) / columns) if segments else 1
    figure = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[_label(s) for s in segments],
        horizontal_spacing=0.25,
        vertical_spacing=0.08,
    )
    for index, segment in enumerate(segments):
        products = sorted(
            (p for p in data.top_products if p["segment_id"] == segment["segment_id"]),
            key=lambda p: -p["rank"],
        )
        figure.add_trace(
            go.Bar(
                x=[p["net_sales"] for p in products],
                y=[_short(p["description"] or p["stock_code"]) for p in products],
                orientation="h",
                marker_color=persona_colour(segment["persona"]),
                customdata=[[p["stock_code"], p["customers"]] for p in products],
                hovertemplate="%{y} (%{customdata[0]}): %{x:,.2f} net sales from "
                "%{customdata[1]} customers<extra></extra>",
                showlegend=False,
            ),
            row=index // columns + 1,
            col=index % columns + 1,
        )
    figure.update_layout(**_LAYOUT, height=230 * rows + 40)
    return Chart(
        "top-products",
        "Top products per segment",
        "Net sales (less returns) of each segment's best sellers before the as-of date.",
        figure,
    )


def _short(text: str, width: int = 28) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def offers(data: ReportData) -> Chart:
    """Customers per persona and the offer they get."""
    rows = sorted(data.offers, key=lambda o: -o["customers"])
    figure = go.Figure(
        go.Bar(
            x=[o["persona"] for o in rows],
            y=[o["customers"] for o in rows],
            text=[f"{o['offer_code']} · {o['discount_pct']:g}% off" for o in rows],
            textposition="outside",
            marker_color=[persona_colour(o["persona"]) for o in rows],
            customdata=[o["offer_title"] for o in rows],
            hovertemplate="%{x}: %{y:,} customers get “%{customdata}”<extra></extra>",
        )
    )
    figure.update_layout(**_LAYOUT, yaxis_title="customers", height=380)
    return Chart(
        "offers",
        "Offers per persona",
        "Each persona's offer from the catalogue src/gold/offers.yml, and how many customers "
        "get it (gold_segmented_offers).",
        figure,
    )


def sales_weekday_hour(data: ReportData) -> Chart:
    """Heat map of net sales by weekday and hour of day."""
    hours = sorted({r["hour"] for r in data.weekday_hour})
    cells = {(r["weekday"], r["hour"]): r["net_sales"] for r in data.weekday_hour}
    z = [[cells.get((day, hour)) for hour in hours] for day in WEEKDAYS]
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"{h:02d}:00" for h in hours],
            y=list(WEEKDAYS),
            colorscale="Blues",
            hovertemplate="%{y} %{x}: %{z:,.0f} net sales<extra></extra>",
            colorbar={"title": {"text": "net sales"}},
        )
    )
    figure.update_yaxes(autorange="reversed")
    figure.update_layout(**_LAYOUT, height=380)
    return Chart(
        "sales-weekday-hour",
        "When customers buy",
        "Net sales by weekday and hour of the invoice (gold_sales_by_weekday_hour).",
        figure,
    )


def sales_by_country(data: ReportData) -> Chart:
    """Net sales of the top countries."""
    rows = sorted(data.countries, key=lambda c: c["net_sales"])
    figure = go.Figure(
        go.Bar(
            x=[c["net_sales"] for c in rows],
            y=[c["country"] for c in rows],
            orientation="h",
            marker_color="#1f78b4",
            customdata=[[c["customers"], c["invoices"]] for c in rows],
            hovertemplate="%{y}: %{x:,.0f} net sales, %{customdata[0]:,} customers, "
            "%{customdata[1]:,} invoices<extra></extra>",
        )
    )
    figure.update_layout(**_LAYOUT, height=max(300, 28 * len(rows) + 80), xaxis_title="net sales")
    return Chart(
        "sales-by-country",
        "Where customers buy",
        f"Net sales of the {len(rows)} biggest countries (gold_sales_by_country).",
        figure,
    )


CHARTS: tuple[Callable[[ReportData], Chart], ...] = (
    segment_sizes,
    rfm_distributions,
    persona_profiles,
    sweep_silhouette,
    sweep_elbow,
    data_quality,
    top_products,
    offers,
    sales_weekday_hour,
    sales_by_country,
)


# The id of each chart's element in the page, in page order.
CHART_IDS = (
    "segment-sizes",
    "rfm-distributions",
    "persona-profiles",
    "sweep-silhouette",
    "sweep-elbow",
    "data-quality",
    "top-products",
    "offers",
    "sales-weekday-hour",
    "sales-by-country",
)


def build_charts(data: ReportData) -> list[Chart]:
    """Every chart of the report, in page order."""
    return [chart(data) for chart in CHARTS]
