"""Each chart of the report, built from a literal ReportData: the values it draws."""

from __future__ import annotations

import pytest

from retail_segmentation.report import charts


def test_segment_sizes_biggest_first_with_shares_and_persona_colours(report_data):
    bar = charts.segment_sizes(report_data).figure.data[0]
    assert list(bar.x) == ["Churned #0", "VIP #1"]
    assert list(bar.y) == [80, 20]
    assert list(bar.text) == ["80 (80.0%)", "20 (20.0%)"]
    assert list(bar.marker.color) == [
        charts.PERSONA_COLOURS["Churned"],
        charts.PERSONA_COLOURS["VIP"],
    ]


def test_rfm_boxes_come_from_the_quantiles_and_skip_missing_measures(report_data):
    figure = charts.rfm_distributions(report_data).figure
    boxes = [
        (t.name, t.xaxis, t.q1[0], t.median[0], t.q3[0], t.lowerfence[0], t.upperfence[0])
        for t in figure.data
    ]
    assert boxes == [
        ("Churned #0", "x", 201, 202, 203, 200, 204),  # recency
        ("VIP #1", "x", 6, 7, 8, 5, 9),  # recency
        ("VIP #1", "x3", 3001, 3002, 3003, 3000, 3004),  # monetary; no frequency rows given
    ]
    assert figure.layout.yaxis3.type == "log"


def test_persona_profiles_are_ratios_to_the_customer_weighted_average(report_data):
    figure = charts.persona_profiles(report_data).figure
    churned, vip = figure.data
    assert list(vip.y) == [
        "days since last purchase",
        "invoices",
        "spend",
        "basket value",
        "items per invoice",
        "cancellation rate",
    ]  # weekend share is unknown for both segments: not drawn
    # bars start at 1 (the average) and end at the ratio
    ratios = [vip.base + x for x in vip.x]
    average = {"recency": 242.0, "frequency": 5.6, "monetary": 880.0, "basket": 80.0}
    assert ratios == pytest.approx(
        [
            10 / average["recency"],
            20 / average["frequency"],
            4000 / average["monetary"],
            200 / average["basket"],
            1.0,
            0.01,
        ]  # no cancellation at all: shown at 1/100
    )
    assert churned.base + churned.x[5] == pytest.approx(0.1 / 0.08)
    assert figure.layout.xaxis.type == "log"


def test_sweep_charts_show_every_fit_by_algorithm_and_mark_the_winner(report_data):
    gmm, kmeans, winner = charts.sweep_silhouette(report_data).figure.data
    assert (gmm.name, list(gmm.x), list(gmm.y)) == ("GaussianMixture", [2], [0.40])
    assert (kmeans.name, list(kmeans.x), list(kmeans.y)) == ("KMeans", [2, 3], [0.61234, 0.55])
    assert (list(winner.x), list(winner.y), winner.text[0]) == ([2], [0.61234], "winner kmeans-k2")

    wcss, likelihood = charts.sweep_elbow(report_data).figure.data
    assert (list(wcss.x), list(wcss.y)) == ([2, 3], [80.0, 40.0])
    assert (list(likelihood.x), list(likelihood.y), likelihood.xaxis) == ([2], [-120.0], "x2")


def test_data_quality_waterfall_runs_from_bronze_to_silver(report_data):
    waterfall = charts.data_quality(report_data).figure.data[0]
    assert list(waterfall.x) == [
        "bronze lines",
        "remove exact duplicates",
        "parse types",
        "silver lines",
    ]
    assert list(waterfall.y) == [1000, -10, -40, 950]
    assert list(waterfall.measure) == ["absolute", "relative", "relative", "total"]
    assert waterfall.hovertext[2] == "40 quarantined; invalid_price: 15; malformed_record: 25"
    # the steps add up: nothing lost between the bars
    assert sum(waterfall.y[:-1]) == waterfall.y[-1]


def test_top_products_one_panel_per_segment_best_on_top(report_data):
    churned, vip = charts.top_products(report_data).figure.data
    assert list(vip.y) == ["P2", "RED MUG"]  # no description: the stock code; best drawn last
    assert list(vip.x) == [500.0, 900.0]
    assert list(churned.y) == ["A VERY LONG PRODUCT DESCRIP…"]


def test_offers_weekday_hour_and_countries(report_data):
    offers = charts.offers(report_data).figure.data[0]
    assert (list(offers.x), list(offers.y)) == (["Churned", "VIP"], [80, 20])
    assert list(offers.text) == ["WINBACK-30 · 30% off", "VIP-EARLY · 0% off"]

    heatmap = charts.sales_weekday_hour(report_data).figure.data[0]
    assert list(heatmap.y) == list(charts.WEEKDAYS)
    assert list(heatmap.x) == ["09:00", "12:00"]
    assert [list(row) for row in heatmap.z] == [
        [100.0, None],
        [None, None],
        [None, None],
        [None, None],
        [None, 300.0],
        [None, None],
        [None, None],
    ]

    countries = charts.sales_by_country(report_data).figure.data[0]
    assert (list(countries.y), list(countries.x)) == (["France", "United Kingdom"], [500.0, 9000.0])


def test_every_chart_has_its_own_id_title_and_caption(report_data):
    built = charts.build_charts(report_data)
    ids = [c.chart_id for c in built]
    assert tuple(ids) == charts.CHART_IDS  # the ids the page and the browser test look for
    assert len(set(ids)) == len(ids)
    assert all(c.title and c.caption.endswith(".") for c in built)
