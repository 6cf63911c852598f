"""A small ReportData, as gather_report_data would return it for a two-segment run."""

from __future__ import annotations

import json

import pytest

from retail_segmentation.report.data import Fit, ReportData


def _segment(segment_id, persona, customers, share, recency, frequency, monetary):
    return {
        "segment_id": segment_id,
        "persona": persona,
        "customers": customers,
        "share": share,
        "mean_recency_days": recency,
        "mean_frequency": frequency,
        "mean_monetary": monetary,
        "mean_basket_value": monetary / frequency,
        "mean_items_per_invoice": 10.0,
        "mean_cancellation_rate": 0.0 if persona == "VIP" else 0.1,
        "mean_weekend_share": None,  # no behaviour measured: left out of the profile
    }


def _box(segment_id, persona, measure, low):
    return {
        "segment_id": segment_id,
        "persona": persona,
        "measure": measure,
        "p05": low,
        "q1": low + 1,
        "median": low + 2,
        "q3": low + 3,
        "p95": low + 4,
        "mean": low + 2.5,
        "customers": 5,
    }


@pytest.fixture
def report_data() -> ReportData:
    return ReportData(
        title="Customer <segments>",
        summary={
            "as_of_date": "2011-12-10",
            "scored_at": "2011-12-10 06:00:00",
            "customers": 100,
            "silver_lines": 950,
            "net_sales": 12345.5,
            "offers": 100,
            "model": "customer_segmentation v2 (@champion)",
            "algorithm": "kmeans",
            "k": "2",
            "silhouette": 0.61234,
        },
        segments=[
            _segment(0, "Churned", 80, 0.8, 300.0, 2.0, 100.0),
            _segment(1, "VIP", 20, 0.2, 10.0, 20.0, 4000.0),
        ],
        rfm_quantiles=[
            _box(0, "Churned", "recency_days", 200),
            _box(1, "VIP", "recency_days", 5),
            _box(1, "VIP", "monetary", 3000),
        ],
        fits=[
            Fit("gmm", 2, 0.40, None, -120.0, 0.3),
            Fit("kmeans", 3, 0.55, 40.0, None, 0.1),
            Fit("kmeans", 2, 0.61234, 80.0, None, 0.2),
        ],
        winner="kmeans-k2",
        quality_steps=[
            {
                "step": 1,
                "rule": "remove_exact_duplicates",
                "rows_in": 1000,
                "rows_out": 990,
                "rows_quarantined": 0,
                "rows_removed": 10,
                "detail": "{}",
            },
            {
                "step": 2,
                "rule": "parse_types",
                "rows_in": 990,
                "rows_out": 950,
                "rows_quarantined": 40,
                "rows_removed": 0,
                "detail": json.dumps({"by_reason": {"invalid_price": 15, "malformed_record": 25}}),
            },
            {
                "step": 3,
                "rule": "balance",
                "rows_in": 1000,
                "rows_out": 950,
                "rows_quarantined": 40,
                "rows_removed": 10,
                "detail": "{}",
            },
        ],
        top_products=[
            {
                "segment_id": 1,
                "persona": "VIP",
                "rank": 1,
                "stock_code": "P1",
                "description": "RED MUG",
                "net_sales": 900.0,
                "customers": 12,
            },
            {
                "segment_id": 1,
                "persona": "VIP",
                "rank": 2,
                "stock_code": "P2",
                "description": None,
                "net_sales": 500.0,
                "customers": 3,
            },
            {
                "segment_id": 0,
                "persona": "Churned",
                "rank": 1,
                "stock_code": "P3",
                "description": "A VERY LONG PRODUCT DESCRIPTION INDEED",
                "net_sales": 50.0,
                "customers": 30,
            },
        ],
        offers=[
            {
                "persona": "VIP",
                "offer_code": "VIP-EARLY",
                "offer_title": "Early access",
                "discount_pct": 0.0,
                "customers": 20,
            },
            {
                "persona": "Churned",
                "offer_code": "WINBACK-30",
                "offer_title": "We miss you",
                "discount_pct": 30.0,
                "customers": 80,
            },
        ],
        weekday_hour=[
            {"weekday_number": 2, "weekday": "Monday", "hour": 9, "net_sales": 100.0},
            {"weekday_number": 6, "weekday": "Friday", "hour": 12, "net_sales": 300.0},
        ],
        countries=[
            {"country": "France", "net_sales": 500.0, "customers": 5, "invoices": 9},
            {"country": "United Kingdom", "net_sales": 9000.0, "customers": 90, "invoices": 400},
        ],
    )
