"""A loopback stand-in workspace per test and an SDK client pointed at it."""

from __future__ import annotations

import os

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config
from fake_workspace import FakeWorkspace, running

TOKEN = "dummy-token"


@pytest.fixture(autouse=True)
def isolated_sdk_config(monkeypatch, tmp_path):
    """No DATABRICKS_* variable or ~/.databrickscfg of the machine reaches the SDK."""
    for name in list(os.environ):
        if name.startswith(("DATABRICKS_", "ARM_", "AZURE_", "GOOGLE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))


@pytest.fixture
def workspace() -> FakeWorkspace:
    """A started stand-in with the bundle's landing volume (main.retail.landing)."""
    with running() as ws:
        ws.add_volume("main", "retail", "landing")
        yield ws


@pytest.fixture
def client(workspace) -> WorkspaceClient:
    """The real SDK client, talking HTTP to the stand-in."""
    return WorkspaceClient(host=workspace.url, token=TOKEN)


@pytest.fixture
def sdk_config(workspace) -> Config:
    """The SDK's own Config for the stand-in, for a test to tune (e.g. the multipart threshold)
    before building `WorkspaceClient(config=...)` from it."""
    return Config(host=workspace.url, token=TOKEN)


@pytest.fixture
def cli_env(monkeypatch, workspace):
    """The environment the CLI authenticates with (DATABRICKS_HOST / DATABRICKS_TOKEN)."""
    monkeypatch.setenv("DATABRICKS_HOST", workspace.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    return workspace
