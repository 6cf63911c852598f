"""Header mapping: both public variants, declared mappings, missing columns."""

from __future__ import annotations

import pytest

from retail_segmentation.bronze.columns import SourceFormat, map_header
from retail_segmentation.common.errors import ConfigError, IngestError

II = [
    "Invoice",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "Price",
    "Customer ID",
    "Country",
]
CLASSIC = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]


@pytest.mark.parametrize("header", [II, CLASSIC])
def test_public_variants_map_without_configuration(header):
    mapping = map_header(header, SourceFormat(), "f.csv")
    assert mapping == dict(
        zip(
            [
                "invoice",
                "stock_code",
                "description",
                "quantity",
                "invoice_date",
                "price",
                "customer_id",
                "country",
            ],
            header,
            strict=True,
        )
    )


def test_declared_mapping_for_a_minimal_file():
    header = ["cust", "order_ts", "total_gbp", "channel"]
    source = SourceFormat(
        column_mapping={"customer_id": "cust", "invoice_date": "order_ts", "amount": "total_gbp"}
    )
    assert map_header(header, source, "f.csv") == {
        "customer_id": "cust",
        "invoice_date": "order_ts",
        "amount": "total_gbp",
    }


def test_missing_required_column_names_file_and_column():
    with pytest.raises(IngestError, match=r"landing/x\.csv: missing required column.*customer_id"):
        map_header(["Invoice", "InvoiceDate", "Price"], SourceFormat(), "landing/x.csv")
    with pytest.raises(IngestError, match="price or amount"):
        map_header(["Customer ID", "InvoiceDate"], SourceFormat(), "y.csv")


def test_source_format_validation():
    with pytest.raises(ConfigError, match="unknown columns"):
        SourceFormat(column_mapping={"cost": "x"})
    with pytest.raises(ConfigError, match="not valid JSON"):
        SourceFormat.from_json("{customer_id: x}")
    with pytest.raises(ConfigError, match="delimiter"):
        SourceFormat(delimiter=";;")
