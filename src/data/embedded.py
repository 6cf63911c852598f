"""The default data set `retail-seg run` starts from, shipped in the package.

It is the generator's own output for 50,000 lines and seed 42 (one part file), gzipped: about
0.5 MB in the wheel instead of a Spark job of 12-15 s at the start of every new lakehouse (a
cold JVM's first queries). A unit test generates it again and compares the bytes, so the copy
cannot drift from the generator; `refresh` rewrites it from a generated folder.

Nothing here starts Spark: copying the files is all a run needs.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

ROWS = 50_000
SEED = 42
FOLDER = Path(__file__).with_name("default")
TRANSACTIONS = FOLDER / f"transactions-{ROWS}-{SEED}.csv.gz"
TRUTH = FOLDER / f"customer_profiles-{ROWS}-{SEED}.csv"

# Where a data set folder keeps its hidden profiles (the generator writes them there too).
TRUTH_DIR = "_truth"
TRUTH_FILE = f"{TRUTH_DIR}/customer_profiles.csv"


def available(rows: int, seed: int) -> bool:
    """True when (rows, seed) is the embedded data set and its files are installed."""
    return (rows, seed) == (ROWS, SEED) and TRANSACTIONS.is_file() and TRUTH.is_file()


def copy_to(out: Path) -> Path:
    """Put the embedded data set in `out` as the generator lays it out: `transactions/` (one
    gzipped CSV, which bronze reads as it is) and `_truth/customer_profiles.csv`. Returns the
    transactions folder."""
    transactions = out / "transactions"
    transactions.mkdir(parents=True, exist_ok=True)
    truth = out / TRUTH_FILE
    truth.parent.mkdir(parents=True, exist_ok=True)
    # the truth file last: a folder with it is complete (the caller's test for "already here")
    shutil.copyfile(TRANSACTIONS, transactions / TRANSACTIONS.name)
    shutil.copyfile(TRUTH, truth)
    return transactions


def refresh(generated: Path, folder: Path = FOLDER) -> None:
    """Rewrite the embedded files from `generated`, a folder written by
    `retail-seg generate --rows 50000 --seed 42 --out DIR` (one part file). The gzip stream
    carries no name or time, so the same CSV always gives the same bytes."""
    (part,) = sorted((generated / "transactions").glob("part-*.csv"))
    folder.mkdir(parents=True, exist_ok=True)
    data = gzip.compress(part.read_bytes(), compresslevel=9, mtime=0)
    (folder / TRANSACTIONS.name).write_bytes(data)
    shutil.copyfile(generated / TRUTH_FILE, folder / TRUTH.name)
