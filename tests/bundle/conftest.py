"""The real Databricks CLI for the bundle checks: where it is, a copy of the bundle to run it
in, and `bundle validate` / `bundle plan` runs against a loopback stand-in for the workspace.

The CLI is `$DATABRICKS_CLI`, else the one .ci/install-databricks-cli puts in
`${XDG_CACHE_HOME:-~/.cache}/retail-segmentation/bin`, else `databricks` on PATH, and must be
the version pinned in .ci/databricks-cli.version. Without it the CLI tests are skipped, except
in CI (CI=true), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from workspace_standin import TOKEN, WAREHOUSE_ID, Request, WorkspaceStandIn

ROOT = Path(__file__).resolve().parents[2]
PINNED_CLI_VERSION = (ROOT / ".ci" / "databricks-cli.version").read_text().strip()


def _cli_candidates() -> list[Path]:
    """Where to look for the CLI, in order of preference."""
    if os.environ.get("DATABRICKS_CLI"):
        return [Path(os.environ["DATABRICKS_CLI"])]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    found = [cache / "retail-segmentation" / "bin" / "databricks"]
    on_path = shutil.which("databricks")
    return [*found, Path(on_path)] if on_path else found


def _version(cli: Path) -> str | None:
    """`databricks --version` as "0.298.0", or None when it does not run."""
    try:
        out = subprocess.run(
            [str(cli), "--version"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().removeprefix("Databricks CLI v")


@pytest.fixture(scope="session")
def databricks_cli() -> Path:
    """The pinned Databricks CLI: skips the test without it, or fails it in CI."""
    seen = []
    for cli in _cli_candidates():
        version = _version(cli) if cli.is_file() else None
        if version == PINNED_CLI_VERSION:
            return cli
        seen.append(f"{cli} ({'version ' + version if version else 'missing'})")
    reason = (
        f"Databricks CLI {PINNED_CLI_VERSION} not found (looked at {', '.join(seen)}): "
        "run .ci/install-databricks-cli (needs Go), or set DATABRICKS_CLI to its path"
    )
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass(frozen=True)
class CliRun:
    """One CLI command: its exit code, JSON output, stderr and the requests it made."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    requests: tuple[Request, ...]
    unrouted: tuple[Request, ...]

    @property
    def output(self) -> Any:
        """stdout as JSON; fails the test with the CLI's stderr when the command failed."""
        if self.returncode != 0:
            pytest.fail(
                f"`databricks {' '.join(self.args)}` exited {self.returncode}:\n{self.stderr}"
            )
        return json.loads(self.stdout)


@dataclass(frozen=True)
class BundleCopy:
    """The bundle copied out of the repository and committed to its own git repository."""

    root: Path
    commit: str


@pytest.fixture(scope="session")
def bundle_copy(tmp_path_factory) -> BundleCopy:
    """What a clone of the repository holds (tracked and not ignored files), in a temp dir.

    The copy is a git repository of one commit, so `${bundle.git.commit}` resolves, and
    the artifact build writes its wheel into the copy's dist/, not into the repository.
    """
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    root = tmp_path_factory.mktemp("bundle")
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # listed but deleted in the working tree
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    git = ["git", "-c", "user.name=bundle-test", "-c", "user.email=bundle-test@example.com"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "--no-gpg-sign", "-m", "copy"]):
        subprocess.run([*git, *args], cwd=root, check=True, capture_output=True)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    return BundleCopy(root, commit)


def _pip_cache_dir() -> str | None:
    try:
        return subprocess.run(
            [sys.executable, "-m", "pip", "cache", "dir"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


@pytest.fixture(scope="session")
def cli_env(tmp_path_factory) -> dict[str, str]:
    """The environment every CLI command runs in, without the workspace's host.

    Nothing of the machine's Databricks setup gets in: no DATABRICKS_* variables, an empty
    config file, a fresh HOME and caches. `python3` is this interpreter (the artifact build
    runs `python3 -m pip wheel`) and pip keeps its usual cache.
    """
    home = tmp_path_factory.mktemp("cli-home")
    config = home / ".databrickscfg"
    config.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS")}
    pip_cache = os.environ.get("PIP_CACHE_DIR") or _pip_cache_dir()
    if pip_cache:
        env["PIP_CACHE_DIR"] = pip_cache
    python_bin = str(Path(sys.executable).parent)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        PATH=os.pathsep.join([python_bin, os.environ.get("PATH", "")]),
        DATABRICKS_CONFIG_FILE=str(config),
        DATABRICKS_TOKEN=TOKEN,
        DATABRICKS_CACHE_ENABLED="false",
        # the one variable without a default: every deploy names its SQL warehouse
        BUNDLE_VAR_warehouse_id=WAREHOUSE_ID,
    )
    return env


@pytest.fixture(scope="session")
def run_cli(databricks_cli, bundle_copy, cli_env) -> Callable[..., CliRun]:
    """Runs `databricks <args>` in the bundle copy against a fresh stand-in workspace.

    Each command is run once per session: later calls with the same arguments get the
    first run back. `env` adds variables (a value of None leaves one out).
    """
    runs: dict[tuple, CliRun] = {}

    def run(*args: str, env: dict[str, str] | None = None) -> CliRun:
        key = (args, tuple(sorted((env or {}).items())))
        if key not in runs:
            with WorkspaceStandIn() as workspace:
                done = subprocess.run(
                    [str(databricks_cli), *args],
                    cwd=bundle_copy.root,
                    env={
                        k: v
                        for k, v in {
                            **cli_env,
                            "DATABRICKS_HOST": workspace.host,
                            **(env or {}),
                        }.items()
                        if v is not None  # None: leave the variable out
                    },
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
            runs[key] = CliRun(
                args,
                done.returncode,
                done.stdout,
                done.stderr,
                tuple(workspace.requests),
                tuple(workspace.unrouted),
            )
        return runs[key]

    return run
