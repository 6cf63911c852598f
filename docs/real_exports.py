"""Export the generated data the way other tools do, run `retail-seg run` on each export
unchanged, and print where every line went.

    .venv/bin/python docs/real_exports.py [--rows 20000] [--out /tmp/retail-exports]

The exports (each in its own landing folder, each run in its own lakehouse):

| folder      | written like                          | dates              | options the run gets |
|-------------|---------------------------------------|--------------------|----------------------|
| r_csv       | R's write.csv: quoted text, `NA`      | yyyy-MM-dd HH:mm:ss | none                |
| pandas_gzip | pandas' to_csv(.gz): `NaN`, `13085.0`  | d/M/yyyy H:mm (UK) | none                 |
| classic_us  | the UCI classic CSV                   | M/d/yyyy H:mm      | none                 |
| excel       | a workbook, one sheet per year        | Excel dates        | none                 |
| parquet     | pandas' to_parquet, typed columns     | timestamps         | none                 |
| cdnow_log   | the CDNOW log: whitespace-aligned,    | yyyyMMdd           | --column-mapping by  |
|             | no header, one line per purchase      |                    | position             |

Figures in BENCHMARKS.md ("Real export shapes") come from this script.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import openpyxl
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RETAIL_SEG = Path(sys.executable).with_name("retail-seg")
CDNOW_MAPPING = {"customer_id": "_c0", "invoice_date": "_c1", "quantity": "_c2", "amount": "_c3"}


def _generated(rows: int, out: Path) -> pd.DataFrame:
    subprocess.run(
        [str(RETAIL_SEG), "generate", "--rows", str(rows), "--files", "1", "--out", str(out)],
        check=True,
        capture_output=True,
    )
    (part,) = sorted((out / "transactions").glob("*.csv"))
    # as text, as a tool reading the CSV would; short malformed lines are left out here
    return pd.read_csv(part, dtype=str, keep_default_na=False, on_bad_lines="skip")


def _timestamps(df: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(df["InvoiceDate"], format="%Y-%m-%d %H:%M:%S", errors="coerce")


def write_exports(df: pd.DataFrame, out: Path) -> dict[str, list[str]]:
    """Write each export into out/<name>/; returns the extra run options per export."""
    ts = _timestamps(df)
    good = df[ts.notna()].copy()
    good_ts = ts[ts.notna()]
    missing = good["Customer ID"].eq("")

    r_df = good.copy()
    r_df["Customer ID"] = r_df["Customer ID"].mask(missing, "NA")
    (out / "r_csv").mkdir(parents=True)
    with open(out / "r_csv" / "online_retail.csv", "w", encoding="utf-8") as f:
        f.write(",".join(f'"{c}"' for c in r_df.columns) + "\n")
        for row in r_df.itertuples(index=False):
            inv, code, desc, qty, date, price, customer, country = row
            customer = customer if customer == "NA" else f'"{customer}"'
            f.write(f'"{inv}","{code}","{desc}",{qty},"{date}",{price},{customer},"{country}"\n')

    pandas_df = good.copy()
    pandas_df["InvoiceDate"] = good_ts.map(lambda t: f"{t.day}/{t.month}/{t.year} {t:%H:%M}")
    pandas_df["Customer ID"] = pd.to_numeric(pandas_df["Customer ID"], errors="coerce")
    (out / "pandas_gzip").mkdir()
    pandas_df.to_csv(out / "pandas_gzip" / "online_retail.csv.gz", index=False)

    classic = good.rename(
        columns={"Invoice": "InvoiceNo", "Price": "UnitPrice", "Customer ID": "CustomerID"}
    )
    classic["InvoiceDate"] = good_ts.map(lambda t: f"{t.month}/{t.day}/{t.year} {t.hour}:{t:%M}")
    (out / "classic_us").mkdir()
    classic.to_csv(out / "classic_us" / "Online Retail.csv", index=False)

    (out / "excel").mkdir()
    workbook = openpyxl.Workbook(write_only=True)
    for year_label, part in good.groupby(good_ts.map(lambda t: t.year)):
        sheet = workbook.create_sheet(f"Year {year_label}")
        sheet.append(list(good.columns))
        for row, when in zip(part.itertuples(index=False), good_ts[part.index], strict=True):
            inv, code, desc, qty, _, price, customer, country = row
            sheet.append(
                [
                    inv,
                    code,
                    desc,
                    int(qty) if qty.lstrip("-").isdigit() else qty,
                    when.to_pydatetime(),
                    float(price) if _is_number(price) else price,
                    float(customer) if customer else None,
                    country,
                ]
            )
    workbook.save(out / "excel" / "online_retail_II.xlsx")

    typed = pd.DataFrame(
        {
            "Invoice": good["Invoice"],
            "StockCode": good["StockCode"],
            "Description": good["Description"],
            "Quantity": pd.to_numeric(good["Quantity"], errors="coerce"),
            "InvoiceDate": good_ts,
            "Price": pd.to_numeric(good["Price"], errors="coerce"),
            "Customer ID": pd.to_numeric(good["Customer ID"], errors="coerce"),
            "Country": good["Country"],
        }
    )
    (out / "parquet").mkdir()
    typed.to_parquet(out / "parquet" / "online_retail.parquet", index=False)

    # CDNOW: one line per purchase (customer, day), items and dollars, no invoice, no header
    sales = typed[(typed["Quantity"] > 0) & typed["Customer ID"].notna()].copy()
    sales["day"] = sales["InvoiceDate"].dt.strftime("%Y%m%d")
    sales["amount"] = sales["Quantity"] * sales["Price"]
    per_purchase = (
        sales.groupby(["Customer ID", "day", "Invoice"])
        .agg(items=("Quantity", "sum"), amount=("amount", "sum"))
        .reset_index()
    )
    (out / "cdnow_log").mkdir()
    with open(out / "cdnow_log" / "CDNOW_master.txt", "w") as f:
        for row in per_purchase.itertuples(index=False):
            f.write(f"{int(row[0]):>8} {row.day} {int(row.items):>3} {row.amount:>9.2f}\n")
    return {"cdnow_log": ["--column-mapping", json.dumps(CDNOW_MAPPING)]}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _lines(path: Path) -> int:
    if path.suffix == ".xlsx":
        workbook = openpyxl.load_workbook(path, read_only=True)
        return sum(sum(1 for _ in ws.iter_rows()) - 1 for ws in workbook.worksheets)
    if path.suffix == ".parquet":
        return len(pd.read_parquet(path))
    if path.name.endswith(".gz"):
        return len(pd.read_csv(path, dtype=str)) if path.stat().st_size else 0
    text = path.read_text(encoding="utf-8")
    return text.count("\n") - (0 if path.name.endswith(".txt") else 1)


def run_export(name: str, landing: Path, lakehouse: Path, options: list[str]) -> dict:
    """`retail-seg run` on one export, then where its lines went (from the ledger)."""
    started = time.perf_counter()
    process = subprocess.run(
        [
            str(RETAIL_SEG),
            "run",
            "--landing-path",
            str(landing),
            "--lakehouse-dir",
            str(lakehouse),
            "--no-report",
            *options,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        return {"export": name, "error": process.stderr.strip().splitlines()[-1]}
    query = (
        "SELECT rule, rows_in, rows_out, rows_quarantined, rows_removed, detail "
        "FROM retail.pipeline_ledger WHERE layer = 'silver' ORDER BY step"
    )
    ledger = subprocess.run(
        [
            str(RETAIL_SEG),
            "sql",
            "--lakehouse-dir",
            str(lakehouse),
            "--truncate",
            "0",
            "--limit",
            "50",
            query,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    summary = [
        line.strip()
        for line in process.stdout.splitlines()
        if line.startswith(("bronze:", "silver:", "sweep: winner", "winner:")) or "dates as" in line
    ]
    return {"export": name, "seconds": round(seconds, 1), "summary": summary, "ledger": ledger}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--out", default="/tmp/retail-exports")
    parser.add_argument("--only", help="comma-separated exports to run (default: all)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    df = _generated(args.rows, out / "generated")
    options = write_exports(df, out / "landing")
    names = sorted(p.name for p in (out / "landing").iterdir())
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    for name in names:
        landing = out / "landing" / name
        (file,) = list(landing.iterdir())
        print(f"== {name}: {file.name}, {_lines(file):,} lines", flush=True)
        result = run_export(name, landing, out / "lakehouse" / name, options.get(name, []))
        print(json.dumps({k: v for k, v in result.items() if k != "ledger"}, indent=1))
        print(result.get("ledger", ""), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
