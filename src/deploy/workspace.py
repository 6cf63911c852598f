"""The workspace connection and the errors it can end in, each said in one sentence."""

from __future__ import annotations

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError, NotFound, PermissionDenied, Unauthenticated

from retail_segmentation.common.errors import RetailSegError


class WorkspaceError(RetailSegError):
    """The workspace refused or could not answer a request (auth, permission, missing object)."""


def _reason(exc: Exception) -> str:
    # An error the SDK maps from a bare status (e.g. cloud storage refusing an upload part) has
    # no message, and str() of it would say "None".
    if not exc.args or exc.args[0] is None:
        return ""
    # The SDK appends the config and environment it used (to auth errors); the cause is first.
    return str(exc).split(". Config:")[0].strip().rstrip(".")


def connect(profile: str | None = None) -> WorkspaceClient:
    """A client authenticated the usual way: `profile` from ~/.databrickscfg, else the
    DATABRICKS_HOST / DATABRICKS_TOKEN (or other unified-auth) environment variables."""
    try:
        return WorkspaceClient(profile=profile) if profile else WorkspaceClient()
    except ValueError as exc:
        reason = _reason(exc).removeprefix("default auth: ")
        if reason.startswith("cannot configure default credentials"):
            reason = "no credentials found"
        where = f"profile {profile!r}" if profile else "DATABRICKS_HOST / DATABRICKS_TOKEN"
        raise WorkspaceError(
            f"cannot connect to a Databricks workspace with {where}: {reason}; set "
            "DATABRICKS_HOST and DATABRICKS_TOKEN, or pass --profile NAME from ~/.databrickscfg"
        ) from None


def explain(exc: DatabricksError, subject: str, missing_hint: str) -> WorkspaceError:
    """Turn an SDK error about `subject` (e.g. "volume /Volumes/main/retail/landing") into
    one sentence saying what went wrong and what to do; `missing_hint` is the advice for 404."""
    said = _reason(exc) or type(exc).__name__
    if isinstance(exc, NotFound):
        return WorkspaceError(f"{subject} was not found ({said}): {missing_hint}")
    if isinstance(exc, PermissionDenied):
        return WorkspaceError(
            f"permission denied on {subject} ({said}): ask its owner for access, or use "
            "another --profile"
        )
    if isinstance(exc, Unauthenticated):
        return WorkspaceError(
            f"the workspace refused the credentials while reaching {subject} ({said}): check "
            "DATABRICKS_HOST / DATABRICKS_TOKEN or --profile"
        )
    return WorkspaceError(f"the workspace answered an error for {subject}: {said}")
