"""Upload of files at or above the SDK's multipart threshold: the real SDK against the stand-in.

From `files_ext_multipart_upload_min_stream_size` (50 MiB) up, `files.upload` initiates a
multipart session, asks for one presigned URL per part, PUTs each part straight to the bucket
(10 at a time by default), and completes with the parts' ETags; when the first part cannot go
that way it aborts the session and sends the whole file in one PUT to the Files API. The tests
lower the threshold and the part size on the SDK's own Config, so a 221 KB CSV takes that path.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from databricks.sdk import WorkspaceClient
from fake_workspace import STORAGE

from retail_segmentation.deploy.upload import UploadConflictError, VolumePath, upload_files
from retail_segmentation.deploy.workspace import WorkspaceError

LANDING = "/Volumes/main/retail/landing"
FILES_API = "/api/2.0/fs/files"
PART_URLS_API = "/api/2.0/fs/create-upload-part-urls"
ABORT_URL_API = "/api/2.0/fs/create-abort-upload-url"
THRESHOLD = 128 * 1024
PART = 32 * 1024
SMALL_CSV = b"Invoice,StockCode,Quantity\n489434,85048,12\n"
BIG = f"{LANDING}/2011.csv"


def _sales_csv(rows: int) -> bytes:
    lines = ["Invoice,StockCode,Quantity"]
    lines += [f"{539993 + i // 7},{21499 + i % 911},{1 + i % 48}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


BIG_CSV = _sales_csv(14_000)  # 221,399 bytes: 6 parts of 32 KiB and one of 24,791


def _multipart_client(sdk_config, parallelism: int | None = None) -> WorkspaceClient:
    # These are plain attributes of Config, not constructor keywords; FilesExt copies the
    # config when the client is built, so they are set first.
    sdk_config.files_ext_multipart_upload_min_stream_size = THRESHOLD
    # the part size is the smallest option giving at most 100 parts
    sdk_config.files_ext_multipart_upload_part_size_options = [PART]
    if parallelism is not None:
        sdk_config.files_ext_multipart_upload_default_parallelism = parallelism
    return WorkspaceClient(config=sdk_config)


@pytest.fixture
def big_file(tmp_path):
    path = tmp_path / "2011.csv"
    path.write_bytes(BIG_CSV)
    return path


def _calls(workspace) -> list[tuple]:
    """(method, path, part number or action) of every Files API and bucket request."""
    calls = []
    for r in workspace.requests:
        if r.path.startswith(STORAGE):
            calls.append(
                (r.method, "bucket", r.path.removeprefix(STORAGE), _one(r.query, "partNumber"))
            )
        elif r.path == PART_URLS_API:
            calls.append((r.method, PART_URLS_API, r.json()["start_part_number"]))
        elif r.path.startswith("/api/"):
            calls.append((r.method, r.path, _one(r.query, "action")))
    return calls


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _parts(data: bytes) -> list[bytes]:
    return [data[i : i + PART] for i in range(0, len(data), PART)]


def _etag(part: bytes) -> str:
    return f'"{hashlib.md5(part).hexdigest()}"'


def test_a_file_over_the_threshold_goes_up_in_parts(sdk_config, workspace, tmp_path, big_file):
    small = tmp_path / "2010.csv"
    small.write_bytes(SMALL_CSV)
    client = _multipart_client(sdk_config, parallelism=1)  # one part at a time: a fixed order
    lines = []

    report = upload_files(client, [small, big_file], VolumePath.parse(LANDING), echo=lines.append)

    parts = _parts(BIG_CSV)
    assert [len(p) for p in parts] == [PART] * 6 + [24_791]
    per_part = []
    for number in range(1, 8):
        per_part += [
            ("POST", PART_URLS_API, number),
            ("PUT", "bucket", "/Volumes/main/retail/landing/2011.csv", str(number)),
        ]
    # the small file still goes in one PUT; the big one: initiate, (URL, PUT) per part, complete
    assert _calls(workspace) == [
        ("PUT", f"/api/2.0/fs/directories{LANDING}", None),
        ("HEAD", f"{FILES_API}{LANDING}/2010.csv", None),
        ("PUT", f"{FILES_API}{LANDING}/2010.csv", None),
        ("HEAD", f"{FILES_API}{BIG}", None),
        ("POST", f"{FILES_API}{BIG}", "initiate-upload"),
        *per_part,
        ("POST", f"{FILES_API}{BIG}", "complete-upload"),
    ]
    (session,) = workspace.uploads.values()
    initiate, complete = workspace.requests_to("POST", f"{FILES_API}{BIG}")
    assert initiate.query == {"action": ["initiate-upload"], "overwrite": ["false"]}
    assert initiate.body == b""
    assert complete.query == {
        "action": ["complete-upload"],
        "upload_type": ["multipart"],
        "session_token": [session.session_token],
    }
    assert complete.json() == {
        "parts": [{"part_number": n, "etag": _etag(p)} for n, p in enumerate(parts, start=1)]
    }

    url_requests = workspace.requests_to("POST", PART_URLS_API)
    bodies = [r.json() for r in url_requests]
    assert [{k: v for k, v in b.items() if k != "expire_time"} for b in bodies] == [
        {"path": BIG, "session_token": session.session_token, "start_part_number": n, "count": 1}
        for n in range(1, 8)
    ]
    now = datetime.now(timezone.utc)
    for body in bodies:  # an hour ahead (files_ext_multipart_upload_url_expiration_duration)
        expires = datetime.strptime(body["expire_time"], "%Y-%m-%dT%H:%M:%SZ")
        assert now < expires.replace(tzinfo=timezone.utc) <= now + timedelta(hours=1)
    # the workspace calls carry the token; the presigned bucket URLs must not
    assert {r.headers["authorization"] for r in [initiate, complete, *url_requests]} == {
        "Bearer dummy-token"
    }
    puts = [r for r in workspace.requests if r.path.startswith(STORAGE)]
    assert [r.body for r in puts] == parts
    assert all("authorization" not in r.headers for r in puts)
    assert {r.headers["content-type"] for r in puts} == {"application/octet-stream"}

    assert (session.state, sorted(session.parts)) == ("completed", list(range(1, 8)))
    assert workspace.files == {f"{LANDING}/2010.csv": SMALL_CSV, BIG: BIG_CSV}
    assert lines == [
        f"uploaded  {small}  ->  {LANDING}/2010.csv  (43 bytes)",
        f"uploaded  {big_file}  ->  {BIG}  (221,399 bytes)",
        f"2 files -> {LANDING}: 2 uploaded (221,442 bytes)",
    ]
    assert [r.status for r in report.results] == ["uploaded", "uploaded"]


def test_parts_go_up_in_parallel_by_default(sdk_config, workspace, big_file):
    client = _multipart_client(sdk_config)  # the SDK's default: 10 parts at a time

    upload_files(client, [big_file], VolumePath.parse(LANDING), echo=lambda line: None)

    calls = _calls(workspace)

    def put(number: int) -> tuple:
        return ("PUT", "bucket", "/Volumes/main/retail/landing/2011.csv", str(number))

    # part 1 goes alone (it decides whether presigned URLs work), then the rest in any order
    assert calls[:5] == [
        ("PUT", f"/api/2.0/fs/directories{LANDING}", None),
        ("HEAD", f"{FILES_API}{BIG}", None),
        ("POST", f"{FILES_API}{BIG}", "initiate-upload"),
        ("POST", PART_URLS_API, 1),
        put(1),
    ]
    assert calls[-1] == ("POST", f"{FILES_API}{BIG}", "complete-upload")
    rest = calls[5:-1]
    assert sorted(c[-1] for c in rest if c[1] == PART_URLS_API) == list(range(2, 8))
    for number in range(2, 8):  # each part's URL is asked for before the part is sent
        assert rest.index(put(number)) > rest.index(("POST", PART_URLS_API, number))
    (session,) = workspace.uploads.values()
    complete = workspace.requests_to("POST", f"{FILES_API}{BIG}")[-1]
    assert [p["part_number"] for p in complete.json()["parts"]] == list(range(1, 8))
    assert session.state == "completed"
    assert workspace.files[BIG] == BIG_CSV


def test_a_big_file_of_the_same_size_is_skipped_and_another_size_refused(
    sdk_config, workspace, big_file, tmp_path
):
    other = tmp_path / "2012.csv"
    other.write_bytes(BIG_CSV + b"540000,22386,1\n")
    workspace.files[BIG] = b"x" * len(BIG_CSV)
    workspace.files[f"{LANDING}/2012.csv"] = BIG_CSV
    client = _multipart_client(sdk_config)
    lines = []

    with pytest.raises(UploadConflictError):
        upload_files(client, [big_file, other], VolumePath.parse(LANDING), echo=lines.append)

    assert [r.method for r in workspace.requests if r.path.startswith(FILES_API)] == ["HEAD"] * 2
    assert workspace.uploads == {}
    assert workspace.files[BIG] == b"x" * len(BIG_CSV)
    assert lines == [
        f"skipped   {big_file}  ->  {BIG}  (221,399 bytes, same size already there)",
        f"conflict  {other}  ->  {LANDING}/2012.csv  (221,414 bytes, 221,399 in the volume)",
        f"2 files -> {LANDING}: 1 skipped (221,399 bytes), 1 conflict (221,414 bytes)",
    ]


def test_overwrite_replaces_a_big_file_through_a_multipart_upload(sdk_config, workspace, big_file):
    workspace.files[BIG] = b"Invoice\n"
    client = _multipart_client(sdk_config)

    upload_files(client, [big_file], VolumePath.parse(LANDING), overwrite=True, echo=print)

    assert workspace.requests_to("HEAD", FILES_API) == []
    initiate = workspace.requests_to("POST", f"{FILES_API}{BIG}")[0]
    assert initiate.query == {"action": ["initiate-upload"], "overwrite": ["true"]}
    assert workspace.files[BIG] == BIG_CSV


def _refuse_part_urls(workspace):
    # inferred: the shape an ErrorInfo takes in a Databricks error; the reason is the one the
    # SDK checks for "presigned URLs are not enabled for this workspace"
    workspace.fail(
        "POST",
        PART_URLS_API,
        403,
        "PERMISSION_DENIED",
        "Presigned URLs are not enabled for this workspace.",
        details=[
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "FILES_API_API_IS_NOT_ENABLED",
                "domain": "filesystem.databricks.com",
            }
        ],
    )


def _refuse_first_part(workspace):
    # the bucket refusing the presigned PUT, e.g. a bucket policy that only admits the VPC
    workspace.refuse_part(1, 403, "AccessDenied", "Access Denied")


@pytest.mark.parametrize(
    ("refuse", "part_1_sent"),
    [(_refuse_part_urls, False), (_refuse_first_part, True)],
    ids=["no-presigned-urls", "bucket-refuses-part-1"],
)
def test_when_part_1_cannot_go_to_the_bucket_the_file_goes_in_one_put(
    sdk_config, workspace, big_file, refuse, part_1_sent
):
    refuse(workspace)
    client = _multipart_client(sdk_config)
    lines = []

    upload_files(client, [big_file], VolumePath.parse(LANDING), echo=lines.append)

    bucket = "/Volumes/main/retail/landing/2011.csv"
    # the session is aborted (best effort) before the single-shot PUT to the Files API
    assert _calls(workspace) == [
        ("PUT", f"/api/2.0/fs/directories{LANDING}", None),
        ("HEAD", f"{FILES_API}{BIG}", None),
        ("POST", f"{FILES_API}{BIG}", "initiate-upload"),
        ("POST", PART_URLS_API, 1),
        *([("PUT", "bucket", bucket, "1")] if part_1_sent else []),
        ("POST", ABORT_URL_API, None),
        ("DELETE", "bucket", bucket, None),
        ("PUT", f"{FILES_API}{BIG}", None),
    ]
    (session,) = workspace.uploads.values()
    (abort_url,) = workspace.requests_to("POST", ABORT_URL_API)
    assert {k: v for k, v in abort_url.json().items() if k != "expire_time"} == {
        "path": BIG,
        "session_token": session.session_token,
    }
    (put,) = workspace.requests_to("PUT", FILES_API)
    assert put.query == {"overwrite": ["false"]}
    assert put.body == BIG_CSV
    assert session.state == "aborted"
    assert workspace.files[BIG] == BIG_CSV
    assert lines[0] == f"uploaded  {big_file}  ->  {BIG}  (221,399 bytes)"


def test_a_part_refused_after_the_first_aborts_and_names_the_volume(
    sdk_config, workspace, big_file
):
    workspace.refuse_part(3, 500, "InternalError", "We encountered an internal error.")
    client = _multipart_client(sdk_config, parallelism=1)

    with pytest.raises(WorkspaceError) as caught:
        upload_files(client, [big_file], VolumePath.parse(LANDING), echo=print)

    # past part 1 there is no fallback: the SDK maps the bare status to InternalError
    assert (
        str(caught.value) == f"the workspace answered an error for volume {LANDING}: InternalError"
    )
    calls = _calls(workspace)
    assert calls[-3:] == [
        ("PUT", "bucket", "/Volumes/main/retail/landing/2011.csv", "3"),
        ("POST", ABORT_URL_API, None),
        ("DELETE", "bucket", "/Volumes/main/retail/landing/2011.csv", None),
    ]
    assert [
        r for r in workspace.requests if r.method == "PUT" and r.path.startswith(FILES_API)
    ] == []
    assert workspace.uploads["stand-in-session-1"].state == "aborted"
    assert BIG not in workspace.files


def test_a_refused_initiate_fails_without_falling_back_to_one_put(sdk_config, workspace, big_file):
    workspace.fail(
        "POST",
        f"{FILES_API}{BIG}",
        403,
        "PERMISSION_DENIED",
        "User does not have WRITE VOLUME on Volume 'main.retail.landing'.",
    )
    client = _multipart_client(sdk_config)

    with pytest.raises(WorkspaceError) as caught:
        upload_files(client, [big_file], VolumePath.parse(LANDING), echo=print)

    assert str(caught.value) == (
        f"permission denied on volume {LANDING} (User does not have WRITE VOLUME on Volume "
        "'main.retail.landing'): ask its owner for access, or use another --profile"
    )
    assert _calls(workspace)[-1] == ("POST", f"{FILES_API}{BIG}", "initiate-upload")
    assert workspace.files == {}
