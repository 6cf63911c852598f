"""How source headers map to the canonical bronze columns.

Both public header variants are recognised without configuration:

| canonical      | Online Retail II | Online Retail (classic) | other accepted headers             |
|----------------|------------------|-------------------------|------------------------------------|
| invoice        | Invoice          | InvoiceNo               | invoice_no, order_id, order        |
| stock_code     | StockCode        | StockCode               | sku, product_id, product_code      |
| description    | Description      | Description             | product_name, item_description     |
| quantity       | Quantity         | Quantity                | qty                                |
| invoice_date   | InvoiceDate      | InvoiceDate             | order_date, transaction_date, date |
| price          | Price            | UnitPrice               | unit_price                         |
| customer_id    | Customer ID      | CustomerID              | customer, customer_no              |
| country        | Country          | Country                 |                                    |
| amount         | -                | -                       | amount, line_total, total, sales   |

Headers are compared case-, space- and punctuation-insensitively. Any other file is read
through a declared mapping {canonical: source header}; a text file without a header line
through a mapping by position, Spark's names `_c0`, `_c1`, ... (e.g. `{"customer_id": "_c0",
"invoice_date": "_c1", "quantity": "_c2", "amount": "_c3"}`). `customer_id`, `invoice_date` and
one of `price` / `amount` are required; what a file lacks is defaulted (see DEFAULTS) and
named in the row's `_defaulted_columns`. Unknown source columns are kept in `_extra_columns`.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from retail_segmentation.common.errors import ConfigError, IngestError

CANONICAL_COLUMNS: tuple[str, ...] = (
    "invoice",
    "stock_code",
    "description",
    "quantity",
    "invoice_date",
    "price",
    "customer_id",
    "country",
    "amount",
)

_ALIASES: dict[str, tuple[str, ...]] = {
    "invoice": (
        "invoice",
        "invoiceno",
        "invoicenumber",
        "invoiceid",
        "orderid",
        "order",
        "orderno",
    ),
    "stock_code": ("stockcode", "sku", "productid", "productcode", "itemcode"),
    "description": ("description", "productname", "itemdescription", "product"),
    "quantity": ("quantity", "qty"),
    "invoice_date": (
        "invoicedate",
        "orderdate",
        "transactiondate",
        "date",
        "datetime",
        "timestamp",
    ),
    "price": ("price", "unitprice"),
    "customer_id": ("customerid", "customer", "customerno", "customernumber"),
    "country": ("country",),
    "amount": ("amount", "linetotal", "total", "sales", "lineamount"),
}

REQUIRED_COLUMNS: tuple[str, ...] = ("customer_id", "invoice_date")

# What a file without the column gets. `invoice` is derived per customer and timestamp
# (one order per customer per moment) and `price` from `amount` / `quantity` in silver.
DEFAULTS: dict[str, str | None] = {
    "stock_code": "UNSPECIFIED",
    "description": None,
    "quantity": "1",
    "country": "Unspecified",
    "price": None,
    "amount": None,
}

_KNOWN_ENCODINGS = re.compile(r"^[A-Za-z0-9_.:-]{2,40}$")
_POSITIONAL = re.compile(r"^_c\d+$")
WHITESPACE = "whitespace"


def normalize_header(name: str) -> str:
    """`Customer ID`, `customer_id` and `CustomerID` all become `customerid`."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass(frozen=True)
class SourceFormat:
    """How landed files are read: declared encoding, delimiter and column mapping.

    Args:
        encoding: character set of the text files (the public data is not all UTF-8).
        delimiter: field separator of text files, `whitespace` for whitespace-aligned text, or
            None to detect it from the first line.
        column_mapping: {canonical column: source header} for files the aliases miss; source
            names `_c0`, `_c1`, ... (by position) mean the text files have no header line.
        sheet: the one Excel sheet to read, or None for every sheet.
    """

    encoding: str = "UTF-8"
    delimiter: str | None = None
    column_mapping: Mapping[str, str] = field(default_factory=dict)
    sheet: str | None = None

    def __post_init__(self) -> None:
        if not _KNOWN_ENCODINGS.match(self.encoding):
            raise ConfigError(f"parameter encoding={self.encoding!r} is not a character set name")
        if self.delimiter is not None and len(self.delimiter) != 1 and self.delimiter != WHITESPACE:
            raise ConfigError(
                f"parameter delimiter={self.delimiter!r}: expected one character (',', ';', "
                f"'|', a tab), '{WHITESPACE}' for whitespace-aligned text, or empty to detect it"
            )
        unknown = sorted(set(self.column_mapping) - set(CANONICAL_COLUMNS))
        if unknown:
            raise ConfigError(
                f"parameter column_mapping names unknown columns {unknown}: "
                f"expected keys among {list(CANONICAL_COLUMNS)}"
            )

    @classmethod
    def from_json(
        cls,
        text: str | None,
        encoding: str = "UTF-8",
        delimiter: str | None = None,
        sheet: str | None = None,
    ):
        """Parse `--column-mapping` (a JSON object, or empty for none)."""
        if not text:
            return cls(encoding=encoding, delimiter=delimiter or None, sheet=sheet or None)
        try:
            mapping = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"parameter column_mapping is not valid JSON: {exc}") from None
        if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
            raise ConfigError(
                'parameter column_mapping must be a JSON object like {"customer_id": "Cust No"}'
            )
        return cls(
            encoding=encoding,
            delimiter=delimiter or None,
            column_mapping=mapping,
            sheet=sheet or None,
        )

    @property
    def is_positional(self) -> bool:
        """True when the mapping names columns by position: text files without a header."""
        return any(_POSITIONAL.match(v) for v in self.column_mapping.values())


def map_header(header: list[str], source_format: SourceFormat, file: str) -> dict[str, str]:
    """Map a file's header to canonical columns: {canonical: source header}.

    Raises:
        IngestError: naming the file when a required column is missing.
    """
    by_normal = {normalize_header(h): h for h in header}
    declared = {normalize_header(v): k for k, v in source_format.column_mapping.items()}
    mapping: dict[str, str] = {}
    for canonical, source in source_format.column_mapping.items():
        if normalize_header(source) in by_normal:
            mapping[canonical] = by_normal[normalize_header(source)]
    for canonical, aliases in _ALIASES.items():
        if canonical in mapping:
            continue
        for alias in aliases:
            if (
                alias in by_normal
                and alias not in declared
                and by_normal[alias] not in mapping.values()
            ):
                mapping[canonical] = by_normal[alias]
                break
    missing = [c for c in REQUIRED_COLUMNS if c not in mapping]
    if "price" not in mapping and "amount" not in mapping:
        missing.append("price or amount")
    if missing:
        raise IngestError(
            f"{file}: missing required column(s) {missing}; found header {header}. Expected the "
            "Online Retail / Online Retail II headers or a --column-mapping naming them, e.g. "
            '{"customer_id": "<header>", "invoice_date": "<header>", "amount": "<header>"}'
        )
    return mapping


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """--encoding, --column-mapping, --delimiter and --sheet (how landed files are read),
    shared by the bronze task and `retail-seg run`."""
    parser.add_argument(
        "--encoding",
        default="UTF-8",
        help="character set of the text files, e.g. ISO-8859-1 (default: UTF-8)",
    )
    parser.add_argument(
        "--column-mapping",
        default="",
        help='JSON {canonical: source header} for other headers, e.g. {"amount": "Total"}; '
        '{"customer_id": "_c0", ...} for text files without a header line (default: detect '
        "the Online Retail headers)",
    )
    parser.add_argument(
        "--delimiter",
        default="",
        help="field separator of text files: one character, or 'whitespace' for "
        "whitespace-aligned text (default: detected from each file's first line)",
    )
    parser.add_argument(
        "--sheet", default="", help="the Excel sheet to read (default: every sheet)"
    )


def source_format_from_args(args: argparse.Namespace) -> SourceFormat:
    """The parsed `add_source_arguments` options -> SourceFormat."""
    return SourceFormat.from_json(args.column_mapping, args.encoding, args.delimiter, args.sheet)
