"""The benchmark's peer: the same RFM as a pandas notebook would compute it, and the ratio."""

from __future__ import annotations

import pandas as pd

from retail_segmentation.benchmark import PEER_TASK, TaskFigures, peer_ratio, peer_rfm

CSV = """Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country
536365,85123A,HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom
536365,85123A,HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom
536366,22633,HAND WARMER,2,2010-12-03 09:00:00,1.85,17850,United Kingdom
C536367,22633,HAND WARMER,-2,2010-12-04 10:00:00,1.85,17850,United Kingdom
536368,22632,HAND WARMER RED,10,2010-12-09 12:00:00,2.00,13047,United Kingdom
536369,22632,HAND WARMER RED,10,2010-12-09 12:00:00,2.00,NA,United Kingdom
536370,22632,HAND WARMER RED,x,2010-12-09 12:00:00,2.00,13047,United Kingdom
536371,22632,HAND WARMER RED,1,not a date,2.00,13047,United Kingdom
"""


def test_the_peer_rfm_keeps_clean_sales_only(tmp_path):
    (tmp_path / "part-0.csv").write_text(CSV, encoding="utf-8")
    rfm = peer_rfm(tmp_path)
    expected = pd.DataFrame(
        {
            "customer_id": ["13047", "17850"],
            "recency_days": [1, 7],  # as of 2010-12-10, the day after the last sale
            "frequency": [1, 2],  # the duplicate line counts once, the cancellation not at all
            "monetary": [20.0, 6 * 2.55 + 2 * 1.85],
        }
    )
    pd.testing.assert_frame_equal(rfm, expected, check_dtype=False)


def test_the_ratio_is_raw_to_sweep_over_the_peer():
    figures = [
        TaskFigures(task, seconds, 1, 1)
        for task, seconds in (("bronze", 2), ("silver", 4), ("gold", 3), ("sweep", 1))
    ]
    assert peer_ratio(figures) is None
    figures.append(TaskFigures(PEER_TASK, 2.5, 1, 1))
    assert peer_ratio(figures) == 4.0
