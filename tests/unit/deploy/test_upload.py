"""Upload to the landing volume: the real SDK against the loopback stand-in."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from retail_segmentation.common.errors import ConfigError
from retail_segmentation.deploy.defaults import LANDING_SUFFIXES
from retail_segmentation.deploy.upload import (
    LocalPathError,
    UploadConflictError,
    VolumePath,
    is_landing_file,
    resolve_target,
    upload_files,
)
from retail_segmentation.deploy.workspace import WorkspaceError

LANDING = "/Volumes/main/retail/landing"
FILES_API = "/api/2.0/fs/files"
DIRS_API = "/api/2.0/fs/directories"
CSV_2010 = b"Invoice,StockCode,Quantity\n489434,85048,12\n"
CSV_2011 = b"Invoice,StockCode,Quantity\n539993,22386,10\n539993,21499,25\n"


@pytest.fixture
def landing_folder(tmp_path):
    """A folder as a user has it: two CSV (one gzipped, in a subfolder) and files to ignore."""
    folder = tmp_path / "raw"
    (folder / "2011").mkdir(parents=True)
    (folder / "2010.csv").write_bytes(CSV_2010)
    (folder / "2011" / "2011.csv.gz").write_bytes(gzip.compress(CSV_2011, mtime=0))
    (folder / "README.md").write_text("not data")
    (folder / ".~lock.2010.csv#").write_text("editor lock")
    (folder / "_SUCCESS").write_text("")
    return folder


def test_upload_sends_each_file_as_its_bytes(client, workspace, landing_folder):
    lines = []
    report = upload_files(client, [landing_folder], VolumePath.parse(LANDING), echo=lines.append)

    gz = gzip.compress(CSV_2011, mtime=0)
    # the folder first (mkdir -p, also for the subfolder), then per file: look, then put
    assert [(r.method, r.path) for r in workspace.requests if r.path.startswith("/api/")] == [
        ("PUT", f"{DIRS_API}{LANDING}"),
        ("PUT", f"{DIRS_API}{LANDING}/2011"),
        ("HEAD", f"{FILES_API}{LANDING}/2010.csv"),
        ("PUT", f"{FILES_API}{LANDING}/2010.csv"),
        ("HEAD", f"{FILES_API}{LANDING}/2011/2011.csv.gz"),
        ("PUT", f"{FILES_API}{LANDING}/2011/2011.csv.gz"),
    ]
    puts = workspace.requests_to("PUT", FILES_API)
    assert [r.body for r in puts] == [CSV_2010, gz]
    assert [r.query for r in puts] == [{"overwrite": ["false"]}] * 2
    assert {r.headers["content-type"] for r in puts} == {"application/octet-stream"}
    api = [r for r in workspace.requests if r.path.startswith("/api/")]
    assert {r.headers["authorization"] for r in api} == {"Bearer dummy-token"}
    # the workspace id comes from the host metadata the SDK reads first
    assert {r.headers["x-databricks-workspace-id"] for r in api} == {"1234567890123456"}
    assert workspace.files == {f"{LANDING}/2010.csv": CSV_2010, f"{LANDING}/2011/2011.csv.gz": gz}

    assert lines == [
        f"uploaded  {landing_folder / '2010.csv'}  ->  {LANDING}/2010.csv  (43 bytes)",
        f"uploaded  {landing_folder / '2011' / '2011.csv.gz'}  ->  {LANDING}/2011/2011.csv.gz"
        f"  ({len(gz)} bytes)",
        f"2 files -> {LANDING}: 2 uploaded ({43 + len(gz)} bytes)",
    ]
    assert [r.status for r in report.results] == ["uploaded", "uploaded"]


def test_a_file_already_there_with_the_same_size_is_skipped(client, workspace, tmp_path):
    same = tmp_path / "2010.csv"
    same.write_bytes(CSV_2010)
    new = tmp_path / "2011.csv"
    new.write_bytes(CSV_2011)
    workspace.files[f"{LANDING}/2010.csv"] = b"x" * len(CSV_2010)  # same size, other bytes
    lines = []

    upload_files(client, [same, new], VolumePath.parse(LANDING), echo=lines.append)

    assert [r.path for r in workspace.requests_to("PUT", FILES_API)] == [
        f"{FILES_API}{LANDING}/2011.csv"
    ]
    assert workspace.files[f"{LANDING}/2010.csv"] == b"x" * len(CSV_2010)  # left alone
    assert lines == [
        f"skipped   {same}  ->  {LANDING}/2010.csv  (43 bytes, same size already there)",
        f"uploaded  {new}  ->  {LANDING}/2011.csv  (59 bytes)",
        f"2 files -> {LANDING}: 1 uploaded (59 bytes), 1 skipped (43 bytes)",
    ]


def test_a_file_there_with_another_size_is_refused_without_overwrite(client, workspace, tmp_path):
    local = tmp_path / "2010.csv"
    local.write_bytes(CSV_2010)
    workspace.files[f"{LANDING}/2010.csv"] = b"Invoice\n"
    lines = []

    with pytest.raises(UploadConflictError) as caught:
        upload_files(client, [local], VolumePath.parse(LANDING), echo=lines.append)

    assert str(caught.value) == (
        "1 file(s) already in the volume differ in size from the local ones and were left "
        f"alone ({LANDING}/2010.csv): rerun with --overwrite to replace them"
    )
    assert workspace.requests_to("PUT", FILES_API) == []
    assert workspace.files[f"{LANDING}/2010.csv"] == b"Invoice\n"
    assert lines[0] == (f"conflict  {local}  ->  {LANDING}/2010.csv  (43 bytes, 8 in the volume)")


def test_overwrite_replaces_without_looking_first(client, workspace, tmp_path):
    local = tmp_path / "2010.csv"
    local.write_bytes(CSV_2010)
    workspace.files[f"{LANDING}/2010.csv"] = b"Invoice\n"

    upload_files(client, [local], VolumePath.parse(LANDING), overwrite=True, echo=print)

    assert workspace.requests_to("HEAD", FILES_API) == []
    (put,) = workspace.requests_to("PUT", FILES_API)
    assert put.query == {"overwrite": ["true"]}
    assert workspace.files[f"{LANDING}/2010.csv"] == CSV_2010


def test_a_missing_local_path_is_named_before_any_request(client, workspace, tmp_path):
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(LocalPathError) as caught:
        upload_files(client, [missing], VolumePath.parse(LANDING))
    assert str(caught.value) == f"local path '{missing}': no such file or folder"
    assert [r for r in workspace.requests if r.path.startswith("/api/")] == []


def test_a_folder_without_landing_files_is_named(client, tmp_path):
    (tmp_path / "notes.md").write_text("no data here")
    with pytest.raises(LocalPathError) as caught:
        upload_files(client, [tmp_path], VolumePath.parse(LANDING))
    assert str(caught.value) == (
        f"local path '{tmp_path}': the folder holds no file ending in "
        ".csv, .tsv, .txt, .dat, .csv.gz, .tsv.gz, .txt.gz, .dat.gz, .xlsx, .xlsm, .parquet"
    )


def test_a_file_bronze_cannot_read_is_named(client, tmp_path):
    (tmp_path / "data.xls").write_bytes(b"\xd0\xcf")
    with pytest.raises(LocalPathError, match=r"data\.xls'\: not a landing file"):
        upload_files(client, [tmp_path / "data.xls"], VolumePath.parse(LANDING))


def test_two_files_landing_on_one_name_are_refused(client, tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "sales.csv").write_bytes(CSV_2010)
    with pytest.raises(LocalPathError) as caught:
        upload_files(client, [tmp_path / "a", tmp_path / "b"], VolumePath.parse(LANDING))
    assert str(caught.value) == (
        f"local paths '{tmp_path / 'a' / 'sales.csv'}' and '{tmp_path / 'b' / 'sales.csv'}' "
        "would both be uploaded as 'sales.csv': rename one or upload them separately"
    )


def test_a_missing_volume_says_to_deploy_the_bundle(client, workspace, tmp_path):
    local = tmp_path / "2010.csv"
    local.write_bytes(CSV_2010)
    with pytest.raises(WorkspaceError) as caught:
        upload_files(client, [local], VolumePath.parse("/Volumes/main/retail_prod/landing"))
    assert str(caught.value) == (
        "volume /Volumes/main/retail_prod/landing was not found (Not Found): deploy the bundle "
        "first (databricks bundle deploy creates the landing volume), or pass the path of an "
        "existing volume"
    )
    assert workspace.requests_to("PUT", FILES_API) == []


def test_permission_denied_names_the_volume(client, workspace, tmp_path):
    local = tmp_path / "2010.csv"
    local.write_bytes(CSV_2010)
    workspace.fail(
        "PUT",
        f"{DIRS_API}{LANDING}",
        403,
        "PERMISSION_DENIED",
        "User does not have WRITE VOLUME on Volume 'main.retail.landing'.",
    )
    with pytest.raises(WorkspaceError) as caught:
        upload_files(client, [local], VolumePath.parse(LANDING))
    assert str(caught.value) == (
        f"permission denied on volume {LANDING} (User does not have WRITE VOLUME on Volume "
        "'main.retail.landing'): ask its owner for access, or use another --profile"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "/Volumes/main/retail",
            "parameter volume_path='/Volumes/main/retail' is not a volume path: expected "
            "/Volumes/<catalog>/<schema>/<volume>[/<folder>]",
        ),
        (
            "dbfs:/Volumes/main/retail/landing",
            "parameter volume_path='dbfs:/Volumes/main/retail/landing' is not a volume path: "
            "expected /Volumes/<catalog>/<schema>/<volume>[/<folder>]",
        ),
        (
            "/Volumes/main/retail-dev/landing",
            "parameter volume_path (schema)='retail-dev' is not a valid name: expected letters, "
            "digits and underscores, starting with a letter or underscore (at most 255 characters)",
        ),
        (
            "/Volumes/main/retail/landing/../x",
            "parameter volume_path: folder '../x' inside the volume must not hold empty, '.' or "
            "'..' parts",
        ),
    ],
)
def test_a_bad_volume_path_names_the_parameter(value, expected):
    with pytest.raises(ConfigError) as caught:
        VolumePath.parse(value)
    assert str(caught.value) == expected


def test_volume_paths_parse_into_their_parts():
    assert VolumePath.parse("/Volumes/main/retail/landing/") == VolumePath(
        "main", "retail", "landing"
    )
    nested = VolumePath.parse("/Volumes/main/retail/landing/2011/dec")
    assert (nested.volume_root, nested.path, nested.child("a.csv")) == (
        LANDING,
        f"{LANDING}/2011/dec",
        f"{LANDING}/2011/dec/a.csv",
    )


def test_the_target_defaults_to_the_dev_volume_or_takes_names():
    assert resolve_target().path == LANDING
    assert resolve_target(catalog="dev", schema="retail").path == "/Volumes/dev/retail/landing"
    with pytest.raises(ConfigError, match=r"parameter catalog='my cat' is not a valid name"):
        resolve_target(catalog="my cat")
    with pytest.raises(ConfigError) as caught:
        resolve_target(LANDING, schema="retail")
    assert str(caught.value) == (
        f"parameter volume_path='{LANDING}' cannot be combined with --schema: give the whole "
        "path, or the names"
    )


def test_uploaded_suffixes_are_those_bronze_ingests():
    from retail_segmentation.bronze.readers import READABLE_SUFFIXES, file_kind

    assert sorted(READABLE_SUFFIXES.split(", ")) == sorted(LANDING_SUFFIXES)
    for name in ("a.CSV", "b.csv.gz", "c.xlsx", "d.snappy.parquet", "e.txt", "f.xls", "g.pdf"):
        assert is_landing_file(Path(name)) == (file_kind(name) is not None), name
