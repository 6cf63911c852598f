"""Look at the report and the MLflow UI in a real headless browser (Chromium, driven by
Playwright), as a person would: for the browser tests and the screenshots in docs/.

Playwright is a development dependency (the `dev` extra) and drives the system's Chromium
(Debian's `chromium` package, or RETAIL_SEG_CHROMIUM); it never downloads a browser.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from retail_segmentation.common.errors import ConfigError

# Headless on a machine without a display, as root in CI, and with no network beyond loopback:
# Chromium's background services would otherwise keep trying to reach the internet.
CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# The MLflow UI opens its assistant panel on a first visit; a person closes it once.
_MLFLOW_FIRST_VISIT = (
    "localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');"
    "localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');"
)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_mlflow_ui(lakehouse_dir: str, timeout_seconds: float = 120) -> Iterator[str]:
    """`mlflow ui` on the lakehouse's store, on a free loopback port, for as long as the
    block runs; yields its base URL. Its output goes to <lakehouse>/mlflow/ui.log."""
    from retail_segmentation.ml.tracking import mlflow_ui_command

    port = free_port()
    log_path = Path(lakehouse_dir) / "mlflow" / "ui.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            mlflow_ui_command(lakehouse_dir, "127.0.0.1", port),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout_seconds
            while True:
                if server.poll() is not None:
                    raise ConfigError(
                        f"mlflow ui exited with code {server.returncode}: see {log_path}"
                    )
                try:
                    with urllib.request.urlopen(f"{base_url}/health", timeout=2) as reply:
                        if reply.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise ConfigError(
                        f"mlflow ui did not answer on {base_url} within {timeout_seconds:.0f}s: "
                        f"see {log_path}"
                    )
                time.sleep(0.5)
            yield base_url
        finally:
            os.killpg(server.pid, 15)
            server.wait(timeout=30)


def chromium_path() -> str | None:
    """The Chromium to drive: RETAIL_SEG_CHROMIUM, else `chromium` on PATH."""
    explicit = os.environ.get("RETAIL_SEG_CHROMIUM")
    if explicit:
        return explicit
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def browser_page(width: int = 1400, height: int = 900, init_script: str = "") -> Iterator[Any]:
    """A new page of a headless Chromium; console errors, uncaught page errors and failed
    requests (HTTP 4xx/5xx, with their URL) are collected in `page.errors` (strings)."""
    executable = chromium_path()
    if executable is None:
        raise ConfigError(
            "no Chromium found: install Debian's `chromium` package or set RETAIL_SEG_CHROMIUM "
            "to a Chromium binary"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise ConfigError(
            "playwright is not installed: install the dev extra (pip install -e '.[dev]')"
        ) from None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        try:
            context = browser.new_context(viewport={"width": width, "height": height})
            if init_script:
                context.add_init_script(init_script)
            page = context.new_page()
            errors: list[str] = []

            def console(message: Any) -> None:
                # a failed request is reported below, with its URL
                if message.type == "error" and not message.text.startswith("Failed to load"):
                    errors.append(message.text)

            def response(reply: Any) -> None:
                if reply.status >= 400:
                    errors.append(f"HTTP {reply.status} {reply.url}")

            page.on("console", console)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.on("response", response)
            page.errors = errors
            yield page
        finally:
            browser.close()


@dataclass(frozen=True)
class ReportView:
    """What the browser saw of the report."""

    title: str
    errors: tuple[str, ...]
    # chart id -> number of SVG layers plotly drew in it (0 = not rendered)
    rendered: dict[str, int]
    sections: tuple[str, ...]


def view_report(report: Path, screenshot: Path | None = None) -> ReportView:
    """Open the report file (file://, no server), let plotly draw, and say what is on the
    page; optionally save a full-page screenshot."""
    with browser_page() as page:
        page.goto(report.absolute().as_uri())
        page.wait_for_load_state("load")
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length > 0")
        page.wait_for_timeout(500)  # plotly finishes its layout after the first draw
        rendered = page.evaluate(
            "Object.fromEntries(Array.from(document.querySelectorAll('.js-plotly-plot'))"
            ".map(e => [e.id, e.querySelectorAll('svg.main-svg').length]))"
        )
        sections = page.evaluate(
            "Array.from(document.querySelectorAll('section h2')).map(e => e.innerText)"
        )
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        return ReportView(page.title(), tuple(page.errors), rendered, tuple(sections))


@dataclass(frozen=True)
class MlflowView:
    """What the browser saw in the MLflow UI."""

    run_columns: tuple[str, ...]
    # the sweep's child runs as the table lists them, best silhouette first:
    # (run name, silhouette shown)
    runs: tuple[tuple[str, str], ...]
    model_aliases: tuple[str, ...]
    errors: tuple[str, ...]


# the columns added to the runs table, by their group in the Columns menu
_SHOWN_COLUMNS = {
    "Metrics": ("silhouette", "smallest_cluster_share"),
    "Parameters": ("algorithm", "k"),
}


def view_mlflow(
    base_url: str,
    experiment_id: str,
    model_name: str,
    runs_screenshot: Path | None = None,
    model_screenshot: Path | None = None,
) -> MlflowView:
    """Open the experiment's runs sorted by silhouette, with the silhouette column added as a
    person adds it (Columns menu), then the registered model's page; read what is shown."""
    candidates = quote("tags.`retail_seg.role` = 'candidate'")
    runs_url = (
        f"{base_url}/#/experiments/{experiment_id}/runs?searchFilter={candidates}"
        f"&orderByKey={quote('metrics.`silhouette`')}&orderByAsc=false"
    )
    with browser_page(width=1800, height=900, init_script=_MLFLOW_FIRST_VISIT) as page:
        page.goto(runs_url)
        # the Columns menu lists the metrics of the runs loaded: wait for the table first
        page.get_by_text(re.compile(r"^[1-9][0-9]* matching runs")).wait_for()
        page.get_by_role("button", name="Columns", exact=True).click()
        menu = page.get_by_role("dialog")
        for group, columns in _SHOWN_COLUMNS.items():
            if not menu.get_by_text(columns[0], exact=True).is_visible():  # a folded group
                menu.get_by_text(re.compile(rf"^{group} \(\d+\)$")).click()
            for column in columns:
                menu.get_by_text(column, exact=True).click()
        page.keyboard.press("Escape")
        page.get_by_role("columnheader", name="silhouette").first.wait_for()
        page.wait_for_timeout(500)
        columns = page.evaluate(
            "[...new Set(Array.from(document.querySelectorAll('[role=columnheader]'))"
            ".map(e => e.innerText.trim()).filter(Boolean))]"
        )
        runs = page.evaluate(_RUN_ROWS_JS)
        if runs_screenshot is not None:
            runs_screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(runs_screenshot))

        page.goto(f"{base_url}/#/models/{quote(model_name)}")
        page.get_by_text("Version 1", exact=True).first.wait_for()
        page.wait_for_timeout(500)
        aliases = page.evaluate(
            "Array.from(document.querySelectorAll('span'))"
            ".map(e => e.innerText.replace(/\\u00a0/g, ' ').trim())"
            ".filter(t => /^@ ?[A-Za-z0-9_-]+$/.test(t)).map(t => t.replace(/^@ ?/, ''))"
        )
        if model_screenshot is not None:
            model_screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(model_screenshot))
        return MlflowView(
            tuple(columns),
            tuple((name, value) for name, value in runs),
            tuple(dict.fromkeys(aliases)),
            tuple(page.errors),
        )


# The runs table is a virtualised grid: the names and the metric cells are in separate
# pinned/scrolling row containers, matched by their row index.
_RUN_ROWS_JS = """
(() => {
  const headers = Array.from(document.querySelectorAll('[role=columnheader]'));
  const silhouette = headers.find(h => h.innerText.trim() === 'silhouette');
  const colId = silhouette && silhouette.getAttribute('col-id');
  const rows = {};
  document.querySelectorAll('[role=row][row-index]').forEach(row => {
    const index = row.getAttribute('row-index');
    rows[index] = rows[index] || ['', ''];
    const link = row.querySelector('a[href*="/runs/"]');
    if (link && link.innerText.trim()) rows[index][0] = link.innerText.trim();
    const cell = colId && row.querySelector(`[col-id="${colId}"]`);
    if (cell) rows[index][1] = cell.innerText.trim();
  });
  return Object.keys(rows).sort((a, b) => a - b).map(i => rows[i]);
})()
"""
