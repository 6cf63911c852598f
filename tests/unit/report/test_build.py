"""The report page: one self-contained HTML file with every chart, its summary and no
external resource."""

from __future__ import annotations

import re

from retail_segmentation.report.build import render_report
from retail_segmentation.report.charts import build_charts


def test_the_page_holds_every_chart_and_needs_nothing_from_the_network(report_data):
    charts = build_charts(report_data)
    page = render_report(report_data, charts)

    for chart in charts:
        assert f'<div id="{chart.chart_id}"' in page
        assert f'<section id="section-{chart.chart_id}"><h2>{chart.title}</h2>' in page
    # plotly.js is inlined: no script, style or image is fetched from anywhere
    assert "Plotly.newPlot" in page and "plotly.js v" in page
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|<img[^>]+src=", page)
    # the title is escaped, the cards carry the summary
    assert "<h1>Customer &lt;segments&gt;</h1>" in page
    cards = re.findall(r'<div class="value">([^<]*)</div><div class="label">([^<]*)</div>', page)
    assert cards == [
        ("100", "customers segmented"),
        ("12,346", "net sales"),
        ("950", "clean sale lines (silver)"),
        ("kmeans k=2", "winning model, silhouette 0.612"),
        ("customer_segmentation v2 (@champion)", "scored with"),
        ("100", "customers with an offer"),
    ]
