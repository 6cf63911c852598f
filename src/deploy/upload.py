"""Upload local raw files into the landing volume (`/Volumes/<catalog>/<schema>/<volume>`).

The bronze task ingests every CSV under its landing path, so this is how a laptop's files
reach a deployed job: `retail-seg upload data/*.csv --catalog main --schema retail`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError, NotFound

from retail_segmentation.common.config import validate_identifier
from retail_segmentation.common.errors import ConfigError, RetailSegError
from retail_segmentation.deploy.defaults import (
    DEFAULT_CATALOG,
    DEFAULT_SCHEMA,
    DEFAULT_VOLUME,
    LANDING_SUFFIXES,
)
from retail_segmentation.deploy.workspace import explain

_VOLUME_PATH = re.compile(r"^/Volumes/([^/]+)/([^/]+)/([^/]+)(/.*)?$")
_MISSING_VOLUME_HINT = (
    "deploy the bundle first (databricks bundle deploy creates the landing volume), or pass "
    "the path of an existing volume"
)


class LocalPathError(ConfigError):
    """A local path given to upload does not exist or holds no landing file."""


class UploadConflictError(RetailSegError):
    """Files already in the volume differ from the local ones and --overwrite was not given."""


@dataclass(frozen=True)
class VolumePath:
    """A folder inside a Unity Catalog volume: /Volumes/<catalog>/<schema>/<volume>[/<folder>]."""

    catalog: str
    schema: str
    volume: str
    folder: str = ""

    def __post_init__(self) -> None:
        validate_identifier(self.catalog, "catalog")
        validate_identifier(self.schema, "schema")
        validate_identifier(self.volume, "volume")
        if self.folder and any(part in ("", ".", "..") for part in self.folder.split("/")):
            raise ConfigError(
                f"parameter volume_path: folder {self.folder!r} inside the volume must not hold "
                "empty, '.' or '..' parts"
            )

    @classmethod
    def parse(cls, value: str, parameter: str = "volume_path") -> VolumePath:
        """Parse `/Volumes/<catalog>/<schema>/<volume>[/<folder>]` (a trailing / is allowed)."""
        match = _VOLUME_PATH.match(value.rstrip("/")) if isinstance(value, str) else None
        if not match:
            raise ConfigError(
                f"parameter {parameter}={value!r} is not a volume path: expected "
                "/Volumes/<catalog>/<schema>/<volume>[/<folder>]"
            )
        catalog, schema, volume, folder = match.groups()
        for role, name in (("catalog", catalog), ("schema", schema), ("volume", volume)):
            validate_identifier(name, f"{parameter} ({role})")
        return cls(catalog, schema, volume, (folder or "").strip("/"))

    @property
    def volume_root(self) -> str:
        """/Volumes/<catalog>/<schema>/<volume>, without the folder."""
        return f"/Volumes/{self.catalog}/{self.schema}/{self.volume}"

    @property
    def path(self) -> str:
        """The full folder path, e.g. /Volumes/main/retail/landing/2024."""
        return f"{self.volume_root}/{self.folder}" if self.folder else self.volume_root

    def child(self, relative: str) -> str:
        """The volume path of a file `relative` (POSIX, no leading /) to this folder."""
        return f"{self.path}/{relative}"


def resolve_target(
    volume_path: str | None = None,
    *,
    catalog: str | None = None,
    schema: str | None = None,
    volume: str | None = None,
) -> VolumePath:
    """The upload target: `volume_path`, else built from catalog/schema/volume (defaults:
    the prod target's volume /Volumes/main/retail/landing).

    Raises:
        ConfigError: a malformed path or name, or `volume_path` given with a name part.
    """
    if volume_path is not None:
        parts = (("catalog", catalog), ("schema", schema), ("volume", volume))
        given = [f"--{name}" for name, value in parts if value is not None]
        if given:
            raise ConfigError(
                f"parameter volume_path={volume_path!r} cannot be combined with "
                f"{', '.join(given)}: give the whole path, or the names"
            )
        return VolumePath.parse(volume_path)
    return VolumePath(
        catalog if catalog is not None else DEFAULT_CATALOG,
        schema if schema is not None else DEFAULT_SCHEMA,
        volume if volume is not None else DEFAULT_VOLUME,
    )


@dataclass(frozen=True)
class LocalFile:
    """One local file to upload and its path relative to the target folder."""

    path: Path
    relative: str
    size: int


@dataclass(frozen=True)
class FileResult:
    """What happened to one file: uploaded, skipped (same size already there) or conflict."""

    file: LocalFile
    remote_path: str
    status: str
    remote_size: int | None = None


@dataclass
class UploadReport:
    """Every file's result, in upload order."""

    target: VolumePath
    results: list[FileResult] = field(default_factory=list)

    def with_status(self, status: str) -> list[FileResult]:
        """The results of one status (uploaded, skipped, conflict)."""
        return [r for r in self.results if r.status == status]

    def summary(self) -> str:
        """One line: counts and bytes per status."""
        parts = []
        for status in ("uploaded", "skipped", "conflict"):
            done = self.with_status(status)
            if done:
                size = sum(r.file.size for r in done)
                parts.append(f"{len(done)} {status} ({size:,} bytes)")
        files = len(self.results)
        return f"{files} file{'s' if files != 1 else ''} -> {self.target.path}: " + ", ".join(parts)


def is_landing_file(path: Path) -> bool:
    """True for a file the bronze task ingests; hidden and `_` files are skipped, as Spark does."""
    return not path.name.startswith((".", "_")) and path.name.lower().endswith(LANDING_SUFFIXES)


def collect_local_files(paths: Iterable[str | Path]) -> list[LocalFile]:
    """Every landing file under `paths` (files, or folders searched recursively).

    Raises:
        LocalPathError: a path does not exist, a folder holds no landing file, a file is not
            one, or two files would land on the same name.
    """
    files: list[LocalFile] = []
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise LocalPathError(f"local path {str(given)!r}: no such file or folder")
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and is_landing_file(p))
            if not found:
                raise LocalPathError(
                    f"local path {str(given)!r}: the folder holds no file ending in "
                    f"{', '.join(LANDING_SUFFIXES)}"
                )
            files += [LocalFile(p, p.relative_to(path).as_posix(), p.stat().st_size) for p in found]
        elif is_landing_file(path):
            files.append(LocalFile(path, path.name, path.stat().st_size))
        else:
            raise LocalPathError(
                f"local path {str(given)!r}: not a landing file (expected a name ending in "
                f"{', '.join(LANDING_SUFFIXES)})"
            )
    seen: dict[str, Path] = {}
    for f in files:
        if f.relative in seen and seen[f.relative] != f.path:
            raise LocalPathError(
                f"local paths {str(seen[f.relative])!r} and {str(f.path)!r} would both be "
                f"uploaded as {f.relative!r}: rename one or upload them separately"
            )
        seen[f.relative] = f.path
    return list({f.relative: f for f in files}.values())


def _remote_size(w: WorkspaceClient, remote_path: str) -> int | None:
    """Size of the file at `remote_path`, or None when there is none."""
    try:
        return w.files.get_metadata(remote_path).content_length
    except NotFound:
        return None


def upload_files(
    w: WorkspaceClient,
    paths: Iterable[str | Path],
    target: VolumePath,
    *,
    overwrite: bool = False,
    echo: Callable[[str], None] = print,
) -> UploadReport:
    """Upload the landing files under `paths` into `target`, printing one line per file.

    A file already there with the same size is skipped unless `overwrite`; one there with a
    different size is left alone and reported as a conflict (UploadConflictError at the end).

    Raises:
        LocalPathError: see `collect_local_files` (raised before any request is sent).
        WorkspaceError: the volume is missing, not writable, or the credentials are refused.
        UploadConflictError: some files differ from those already in the volume.
    """
    files = collect_local_files(paths)
    report = UploadReport(target)
    subject = f"volume {target.volume_root}"
    try:
        # Idempotent (mkdir -p); on a missing volume it is the request that says so.
        folders = sorted({str(PurePosixPath(target.child(f.relative)).parent) for f in files})
        for folder in folders:
            w.files.create_directory(folder)
        for f in files:
            remote = target.child(f.relative)
            remote_size = None if overwrite else _remote_size(w, remote)
            if remote_size == f.size:
                status = "skipped"
            elif remote_size is not None:
                status = "conflict"
            else:
                with f.path.open("rb") as contents:
                    w.files.upload(remote, contents, overwrite=overwrite)
                status = "uploaded"
            report.results.append(FileResult(f, remote, status, remote_size))
            echo(_line(report.results[-1]))
    except DatabricksError as exc:
        raise explain(exc, subject, _MISSING_VOLUME_HINT) from None
    echo(report.summary())
    conflicts = report.with_status("conflict")
    if conflicts:
        names = ", ".join(r.remote_path for r in conflicts)
        raise UploadConflictError(
            f"{len(conflicts)} file(s) already in the volume differ in size from the local "
            f"ones and were left alone ({names}): rerun with --overwrite to replace them"
        )
    return report


def _line(result: FileResult) -> str:
    size = f"{result.file.size:,} bytes"
    if result.status == "conflict":
        size += f", {result.remote_size:,} in the volume"
    elif result.status == "skipped":
        size += ", same size already there"
    return f"{result.status:<9} {result.file.path}  ->  {result.remote_path}  ({size})"
