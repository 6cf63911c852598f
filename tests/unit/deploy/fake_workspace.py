"""A loopback HTTP stand-in for a Databricks workspace, for testing the deploy commands.

The real `databricks-sdk` talks HTTP to a `ThreadingHTTPServer` on 127.0.0.1, which records
every request (method, path, query, headers, body) and answers the endpoints the commands use
with the response shapes of the real REST API:

- `GET /.well-known/databricks-config`: the host metadata every SDK client reads first;
- Files API: `PUT|HEAD /api/2.0/fs/directories{path}`, `PUT|HEAD /api/2.0/fs/files{path}`
  (no body on success; HEAD answers carry the metadata in headers and a 404 has no body);
- Files API multipart upload, which the SDK uses from `files_ext_multipart_upload_min_stream_size`
  (50 MiB) up: `POST /api/2.0/fs/files{path}?action=initiate-upload`,
  `POST /api/2.0/fs/create-upload-part-urls`, a `PUT` of each part to its presigned URL,
  `POST /api/2.0/fs/files{path}?action=complete-upload`, and on failure
  `POST /api/2.0/fs/create-abort-upload-url` then a `DELETE` of the abort URL. The presigned URLs
  point back at this server under `/storage/...`, which plays the S3 bucket (the host metadata
  says AWS): it takes no Databricks token, answers a part with its quoted-MD5 `ETag` and errors
  as S3's XML `<Error>`; the Files API assembles the parts on complete.
- Jobs API 2.2: `GET jobs/list`, `GET jobs/get`, `POST jobs/run-now`, `GET jobs/runs/get`,
  `GET jobs/runs/get-output`.

Shapes follow recorded answers: a failed multi-task run reports `state.life_cycle_state`
INTERNAL_ERROR with result FAILED while its `status` is TERMINATED / RUN_EXECUTION_ERROR, and
its task says "Workload failed, see run output for details"; a missing job is a 400
INVALID_PARAMETER_VALUE "Job <id> does not exist." (the SDK maps it to ResourceDoesNotExist);
an unknown endpoint is a 404 ENDPOINT_NOT_FOUND. Where no recording was found (tasks skipped
after an upstream failure, canceled runs) the shape is inferred from the SDK's documented enums
and says so. A run's successive `runs/get` answers are scripted by the test.

No recorded answer of the multipart endpoints was found (they are not in the public REST
reference; the public code that serves them is other projects' mocks), so their request and
response fields are those databricks-sdk 0.156 sends and reads (`databricks/sdk/mixins/files.py`),
and everything else about them (status codes, error codes and messages, the session token, the
URL layout) is inferred and marked so below. The bucket side follows S3's documented behaviour.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

WORKSPACE_ID = "1234567890123456"
USER = "jane.doe@example.com"
START_MS = 1_754_820_000_000
FAILURE_MESSAGE = "Workload failed, see run output for details"
STORAGE = "/storage"
_SIGNING_KEY = b"stand-in presigning key"
# The SDK asks for URLs that expire an hour ahead, as RFC 3339 in UTC without fractions.
_EXPIRE_TIME = "%Y-%m-%dT%H:%M:%SZ"

# (life_cycle_state, result_state, state_message, status.state, termination code, type)
_TASK_PHASES: dict[str, tuple[str, str | None, str, str, str | None, str | None]] = {
    "BLOCKED": ("BLOCKED", None, "", "BLOCKED", None, None),
    "PENDING": ("PENDING", None, "", "PENDING", None, None),
    "QUEUED": ("QUEUED", None, "", "QUEUED", None, None),
    "RUNNING": ("RUNNING", None, "", "RUNNING", None, None),
    "SUCCESS": ("TERMINATED", "SUCCESS", "", "TERMINATED", "SUCCESS", "SUCCESS"),
    "FAILED": (
        "TERMINATED",
        "FAILED",
        FAILURE_MESSAGE,
        "TERMINATED",
        "RUN_EXECUTION_ERROR",
        "CLIENT_ERROR",
    ),
    # inferred: RunResultState UPSTREAM_FAILED / TerminationCodeCode SKIPPED ("never executed,
    # for example, if the upstream task run failed")
    "UPSTREAM_FAILED": (
        "SKIPPED",
        "UPSTREAM_FAILED",
        "Upstream task(s) failed.",
        "TERMINATED",
        "SKIPPED",
        "CLIENT_ERROR",
    ),
    # inferred: RunResultState CANCELED / TerminationCodeCode USER_CANCELED
    "CANCELED": (
        "TERMINATED",
        "CANCELED",
        "Run cancelled.",
        "TERMINATED",
        "USER_CANCELED",
        "SUCCESS",
    ),
}
_FINAL = {"SUCCESS", "FAILED", "UPSTREAM_FAILED", "CANCELED"}


@dataclass(frozen=True)
class Recorded:
    """One request as the stand-in received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class MultipartUpload:
    """One multipart upload session: its target, the parts the bucket holds, and its fate."""

    path: str
    session_token: str
    upload_id: str
    overwrite: str | None
    parts: dict[int, tuple[bytes, str]] = field(default_factory=dict)  # number -> (bytes, ETag)
    state: str = "open"  # open, completed or aborted


def _state(phase: str, message: str | None = None) -> tuple[dict, dict]:
    life, result, default_message, v2, code, kind = _TASK_PHASES[phase]
    text = default_message if message is None else message
    state: dict[str, Any] = {"life_cycle_state": life}
    if result:
        state["result_state"] = result
    state.update(state_message=text, user_cancelled_or_timedout=phase == "CANCELED")
    status: dict[str, Any] = {"state": v2}
    if code:
        status["termination_details"] = {"code": code, "type": kind, "message": text}
    return state, status


class FakeWorkspace:
    """The stand-in's state (volumes, files, jobs, scripted runs) and its request log."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.volumes: set[str] = set()
        self.directories: set[str] = set()
        self.files: dict[str, bytes] = {}
        self.jobs: list[dict] = []
        self.runs: dict[int, list[dict]] = {}
        self.run_outputs: dict[int, dict] = {}
        self.forced: dict[tuple[str, str], tuple[int, dict]] = {}
        self.uploads: dict[str, MultipartUpload] = {}
        self.refused_parts: dict[int, tuple[int, str, str]] = {}
        self._scripted: list[tuple[list[dict[str, str]], dict[str, str], bool]] = []
        self._next_run_id = 90_001
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>, the host to give WorkspaceClient."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeWorkspace:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- arranging the workspace -------------------------------------------------------

    def add_volume(self, catalog: str, schema: str, volume: str) -> str:
        """A managed volume, as `databricks bundle deploy` creates it; returns its path."""
        root = f"/Volumes/{catalog}/{schema}/{volume}"
        self.volumes.add(root)
        self.directories.add(root)
        return root

    def add_job(self, job_id: int, name: str, creator: str = USER) -> None:
        """A deployed job, as jobs/list returns it (BaseJob: no tasks unless expand_tasks)."""
        self.jobs.append(
            {
                "job_id": job_id,
                "creator_user_name": creator,
                "run_as_user_name": creator,
                "settings": {
                    "name": name,
                    "email_notifications": {},
                    "timeout_seconds": 0,
                    "max_concurrent_runs": 1,
                    "format": "MULTI_TASK",
                    "queue": {"enabled": True},
                    "parameters": [
                        {"name": "as_of_date", "default": ""},
                        {"name": "k_range", "default": "2..8"},
                    ],
                },
                "created_time": START_MS - 3_600_000,
            }
        )

    def script_run(
        self,
        polls: list[dict[str, str]],
        errors: dict[str, str] | None = None,
        with_status: bool = True,
    ) -> int:
        """The answers runs/get gives, poll after poll (the last repeats), for the next run
        triggered: each poll maps task key -> phase (BLOCKED, PENDING, QUEUED, RUNNING,
        SUCCESS, FAILED, UPSTREAM_FAILED, CANCELED). `errors` holds the exception a FAILED
        task's run output reports; `with_status=False` answers without the `status` fields
        (older API versions). Returns the run id run-now will answer."""
        self._scripted.append((polls, errors or {}, with_status))
        return self._next_run_id + len(self._scripted) - 1

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        error_code: str,
        message: str,
        details: list[dict] | None = None,
    ) -> None:
        """Answer `method path` with an API error instead (e.g. 403 PERMISSION_DENIED);
        `details` are its google.rpc details, such as an ErrorInfo with a `reason`."""
        body: dict[str, Any] = {"error_code": error_code, "message": message}
        if details:
            body["details"] = details
        self.forced[(method, path)] = (status, body)

    def refuse_part(self, part_number: int, status: int, code: str, message: str) -> None:
        """Have the bucket answer the upload of this part number with an S3 error."""
        self.refused_parts[part_number] = (status, code, message)

    def requests_to(self, method: str, prefix: str) -> list[Recorded]:
        """The recorded requests with this method whose path starts with `prefix`."""
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    # --- answers -------------------------------------------------------------------------

    def _volume_of(self, path: str) -> str | None:
        parts = path.split("/")
        root = "/".join(parts[:5])
        return root if len(parts) >= 5 and root in self.volumes else None

    def _run_json(
        self, run_id: int, job: dict, poll: dict[str, str], params: dict, with_status: bool
    ) -> dict:
        page = f"{self.url}/?o={WORKSPACE_ID}#job/{job['job_id']}/run/{run_id}"
        tasks = []
        for i, (key, phase) in enumerate(poll.items()):
            state, status = _state(phase)
            task_run = run_id * 100 + i + 1
            task = {
                "run_id": task_run,
                "task_key": key,
                "python_wheel_task": {
                    "package_name": "retail_segmentation",
                    "entry_point": f"retail-seg-{key}",
                },
                "environment_key": "default",
                "state": state,
                "run_page_url": f"{self.url}/?o={WORKSPACE_ID}#job/{job['job_id']}/run/{task_run}",
                "start_time": START_MS if phase not in ("BLOCKED", "PENDING") else 0,
                "setup_duration": 0,
                "execution_duration": 0,
                "cleanup_duration": 0,
                "end_time": START_MS + 60_000 if phase in _FINAL else 0,
                "attempt_number": 0,
                "effective_performance_target": "PERFORMANCE_OPTIMIZED",
            }
            if with_status:
                task["status"] = status
            tasks.append(task)
        phases = set(poll.values())
        if phases <= _FINAL:
            failed = [k for k, p in poll.items() if p == "FAILED"]
            if failed:
                message = f"Task {failed[0]} failed with message: {FAILURE_MESSAGE}."
                state, status = _state("FAILED", message)
                state["life_cycle_state"] = "INTERNAL_ERROR"
            else:
                state, status = _state("CANCELED" if "CANCELED" in phases else "SUCCESS")
        elif phases & (_FINAL | {"RUNNING"}):
            state, status = _state("RUNNING")
        else:
            state, status = _state("QUEUED" if "QUEUED" in phases else "PENDING")
        defaults = {p["name"]: p["default"] for p in job["settings"]["parameters"]}
        run = {
            "job_id": job["job_id"],
            "run_id": run_id,
            "creator_user_name": USER,
            "number_in_job": run_id,
            "original_attempt_run_id": run_id,
            "state": state,
            "start_time": START_MS,
            "setup_duration": 0,
            "execution_duration": 0,
            "cleanup_duration": 0,
            "end_time": START_MS + 60_000 if phases <= _FINAL else 0,
            "trigger": "ONE_TIME",
            "run_name": job["settings"]["name"],
            "run_page_url": page,
            "run_type": "JOB_RUN",
            "tasks": tasks,
            "format": "MULTI_TASK",
            "job_parameters": [
                {"name": name, "default": default, "value": params.get(name, default)}
                for name, default in defaults.items()
            ],
            "job_run_id": run_id,
            "effective_performance_target": "PERFORMANCE_OPTIMIZED",
        }
        if with_status:
            run["status"] = status
        return run

    def answer(self, req: Recorded) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body for one request."""
        if (req.method, req.path) in self.forced:
            status, body = self.forced[(req.method, req.path)]
            return _json(status, body)
        path = unquote(req.path)
        q = {k: v[-1] for k, v in req.query.items()}
        if req.method == "GET" and path == "/.well-known/databricks-config":
            return _json(
                200,
                {
                    "oidc_endpoint": f"{self.url}/oidc",
                    "workspace_id": WORKSPACE_ID,
                    "cloud": "AWS",
                    "host_type": "workspace",
                },
            )
        if path.startswith("/api/2.0/fs/directories/"):
            return self._directories(req.method, path.removeprefix("/api/2.0/fs/directories"))
        if path.startswith("/api/2.0/fs/files/"):
            return self._files(req, path.removeprefix("/api/2.0/fs/files"), q)
        if req.method == "POST" and path == "/api/2.0/fs/create-upload-part-urls":
            return self._upload_part_urls(req.json())
        if req.method == "POST" and path == "/api/2.0/fs/create-abort-upload-url":
            return self._abort_upload_url(req.json())
        if path.startswith(f"{STORAGE}/"):
            return self._bucket(req, path.removeprefix(STORAGE), q)
        if path.startswith("/api/2.2/jobs/"):
            return self._jobs(req, path.removeprefix("/api/2.2/jobs/"), q)
        return _json(
            404,
            {
                "error_code": "ENDPOINT_NOT_FOUND",
                "message": f"No API found for '{req.method} {path}'",
            },
        )

    def _directories(self, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
        path = path.rstrip("/")
        if method == "HEAD":
            return (200 if path in self.directories else 404), {}, b""
        if method == "PUT":
            if self._volume_of(path) is None:
                return _json(404, {"error_code": "NOT_FOUND", "message": "Not Found"})
            parts = path.split("/")
            for end in range(5, len(parts) + 1):
                self.directories.add("/".join(parts[:end]))
            return 204, {}, b""
        return _json(405, {"error_code": "BAD_REQUEST", "message": "method not allowed"})

    def _files(self, req: Recorded, path: str, q: dict) -> tuple[int, dict[str, str], bytes]:
        if req.method == "HEAD":
            if path not in self.files:
                return 404, {}, b""
            return (
                200,
                {
                    "Content-Length": str(len(self.files[path])),
                    "Content-Type": "application/octet-stream",
                    "Last-Modified": formatdate(START_MS / 1000, usegmt=True),
                },
                b"",
            )
        if req.method == "PUT":
            if self._volume_of(path) is None:
                return _json(404, {"error_code": "NOT_FOUND", "message": "Not Found"})
            if path in self.files and q.get("overwrite") == "false":
                return _json(
                    409,
                    {
                        "error_code": "ALREADY_EXISTS",
                        "message": "The file being created already exists.",
                    },
                )
            self.files[path] = req.body
            return 204, {}, b""
        if req.method == "POST" and q.get("action") == "initiate-upload":
            return self._initiate_upload(path, q)
        if req.method == "POST" and q.get("action") == "complete-upload":
            return self._complete_upload(path, q, req.json())
        return _json(405, {"error_code": "BAD_REQUEST", "message": "method not allowed"})

    # --- multipart upload ------------------------------------------------------------------

    def _initiate_upload(self, path: str, q: dict) -> tuple[int, dict[str, str], bytes]:
        if self._volume_of(path) is None:
            return _json(404, {"error_code": "NOT_FOUND", "message": "Not Found"})
        if path in self.files and q.get("overwrite") == "false":
            # inferred: the same answer as a single-shot PUT without overwrite
            return _json(
                409,
                {
                    "error_code": "ALREADY_EXISTS",
                    "message": "The file being created already exists.",
                },
            )
        number = len(self.uploads) + 1
        # inferred: the token is opaque to the SDK; the upload id is the bucket's (S3 UploadId)
        upload = MultipartUpload(
            path, f"stand-in-session-{number}", f"upload-{number}", q.get("overwrite")
        )
        self.uploads[upload.session_token] = upload
        # the SDK reads multipart_upload.session_token (resumable_upload is GCP's answer)
        return _json(200, {"multipart_upload": {"session_token": upload.session_token}})

    def _session(self, body: dict) -> MultipartUpload | None:
        upload = self.uploads.get(body.get("session_token"))
        if upload is None or upload.path != body.get("path") or upload.state != "open":
            return None
        return upload

    def _upload_part_urls(self, body: dict) -> tuple[int, dict[str, str], bytes]:
        # request: {path, session_token, start_part_number, count, expire_time}
        upload = self._session(body)
        if upload is None or not _is_future(body.get("expire_time")):
            # inferred: status, code and message of a bad session or expiry
            return _json(
                400,
                {"error_code": "INVALID_PARAMETER_VALUE", "message": "Invalid upload session."},
            )
        start, count = int(body["start_part_number"]), int(body["count"])
        urls = [
            # inferred: no `headers` entry, as proto3 JSON leaves out an empty repeated field
            # (the SDK adds any listed {name, value} to the PUT)
            {"part_number": number, "url": self._presign(upload, number)}
            for number in range(start, start + count)
        ]
        return _json(200, {"upload_part_urls": urls})

    def _abort_upload_url(self, body: dict) -> tuple[int, dict[str, str], bytes]:
        # request: {path, session_token, expire_time}
        upload = self._session(body)
        if upload is None or not _is_future(body.get("expire_time")):
            return _json(
                400,
                {"error_code": "INVALID_PARAMETER_VALUE", "message": "Invalid upload session."},
            )
        return _json(200, {"abort_upload_url": {"url": self._presign(upload, None)}})

    def _complete_upload(self, path: str, q: dict, body: dict) -> tuple[int, dict[str, str], bytes]:
        # query: action=complete-upload, upload_type=multipart, session_token; body: {parts}
        upload = self._session({"session_token": q.get("session_token"), "path": path})
        listed = [(p.get("part_number"), p.get("etag")) for p in body.get("parts", [])]
        numbers = [number for number, _ in listed]
        if (
            upload is None
            or q.get("upload_type") != "multipart"
            or not listed
            or numbers != sorted(set(numbers))
            or any(
                number not in upload.parts or upload.parts[number][1] != etag
                for number, etag in listed
            )
        ):
            # inferred: S3 refuses unknown parts, wrong ETags and unordered lists; how the Files
            # API words that is not known
            return _json(
                400,
                {"error_code": "INVALID_PARAMETER_VALUE", "message": "Invalid upload parts."},
            )
        self.files[path] = b"".join(upload.parts[number][0] for number in numbers)
        upload.state = "completed"
        return _json(200, {})  # inferred: an empty JSON object, as other Files API calls

    def _presign(self, upload: MultipartUpload, part_number: int | None) -> str:
        """An S3-style presigned URL on this server: UploadPart with a part number, else
        AbortMultipartUpload (a DELETE)."""
        query = {"uploadId": upload.upload_id}
        if part_number is not None:
            query["partNumber"] = str(part_number)
        query.update(
            {
                "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
                "X-Amz-Credential": "ASIASTANDIN/20250810/us-west-2/s3/aws4_request",
                "X-Amz-Date": "20250810T100000Z",
                "X-Amz-Expires": "3600",
                "X-Amz-SignedHeaders": "host",
            }
        )
        query["X-Amz-Signature"] = _signature(upload.path, query)
        return f"{self.url}{STORAGE}{quote(upload.path)}?{urlencode(query)}"

    def _bucket(self, req: Recorded, path: str, q: dict) -> tuple[int, dict[str, str], bytes]:
        if "authorization" in req.headers:
            # S3 refuses a presigned request that also carries an Authorization header
            return _s3_error(400, "InvalidArgument", "Only one auth mechanism allowed")
        signed = {k: v for k, v in q.items() if k != "X-Amz-Signature"}
        if not hmac.compare_digest(q.get("X-Amz-Signature", ""), _signature(path, signed)):
            return _s3_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        upload = next((u for u in self.uploads.values() if u.upload_id == q.get("uploadId")), None)
        if upload is None or upload.state != "open":
            return _s3_error(404, "NoSuchUpload", "The specified upload does not exist.")
        if req.method == "PUT" and "partNumber" in q:
            number = int(q["partNumber"])
            if number in self.refused_parts:
                return _s3_error(*self.refused_parts[number])
            etag = f'"{hashlib.md5(req.body).hexdigest()}"'  # S3: the part's MD5, quoted
            upload.parts[number] = (req.body, etag)
            return 200, {"ETag": etag}, b""
        if req.method == "DELETE" and "partNumber" not in q:
            upload.parts.clear()
            upload.state = "aborted"
            # inferred: the abort URL is S3's AbortMultipartUpload, which answers 204; the SDK
            # expects 200 or 201 and logs a warning that the abort failed (it is best effort)
            return 204, {}, b""
        return _s3_error(
            405, "MethodNotAllowed", "The specified method is not allowed against this resource."
        )

    def _job(self, job_id: int) -> dict | None:
        return next((j for j in self.jobs if j["job_id"] == job_id), None)

    def _jobs(self, req: Recorded, endpoint: str, q: dict) -> tuple[int, dict[str, str], bytes]:
        if req.method == "GET" and endpoint == "list":
            name = q.get("name")
            jobs = [
                j
                for j in self.jobs
                if name is None or j["settings"]["name"].lower() == name.lower()
            ]
            limit = int(q.get("limit", 20))
            offset = int(q.get("page_token", 0))
            page = jobs[offset : offset + limit]
            body: dict[str, Any] = {"has_more": offset + limit < len(jobs)}
            if page:  # proto3 JSON leaves out an empty repeated field
                body["jobs"] = page
            if body["has_more"]:
                body["next_page_token"] = str(offset + limit)
            return _json(200, body)
        if req.method == "GET" and endpoint == "get":
            job = self._job(int(q["job_id"]))
            if job is None:
                return _missing_job(q["job_id"])
            return _json(200, job)
        if req.method == "POST" and endpoint == "run-now":
            request = req.json()
            job = self._job(int(request["job_id"]))
            if job is None:
                return _missing_job(request["job_id"])
            if not self._scripted:
                raise AssertionError("run-now called but the test scripted no run")
            polls, errors, with_status = self._scripted.pop(0)
            run_id = self._next_run_id
            self._next_run_id += 1
            params = request.get("job_parameters", {})
            self.runs[run_id] = [
                self._run_json(run_id, job, poll, params, with_status) for poll in polls
            ]
            keys = list(polls[-1])
            for key, error in errors.items():
                self.run_outputs[run_id * 100 + keys.index(key) + 1] = {
                    "error": error,
                    "error_trace": f"Traceback (most recent call last):\n  ...\n{error}",
                    "metadata": next(
                        t for t in self.runs[run_id][-1]["tasks"] if t["task_key"] == key
                    ),
                }
            return _json(200, {"run_id": run_id, "number_in_job": run_id})
        if req.method == "GET" and endpoint == "runs/get":
            answers = self.runs.get(int(q["run_id"]))
            if not answers:
                return _json(
                    400,
                    {
                        "error_code": "INVALID_PARAMETER_VALUE",
                        "message": f"Run {q['run_id']} does not exist.",
                    },
                )
            return _json(200, answers.pop(0) if len(answers) > 1 else answers[0])
        if req.method == "GET" and endpoint == "runs/get-output":
            output = self.run_outputs.get(int(q["run_id"]))
            return _json(200, output if output is not None else {"metadata": {}})
        return _json(
            404,
            {
                "error_code": "ENDPOINT_NOT_FOUND",
                "message": f"No API found for '{req.method} /api/2.2/jobs/{endpoint}'",
            },
        )


def _missing_job(job_id: Any) -> tuple[int, dict[str, str], bytes]:
    return _json(
        400, {"error_code": "INVALID_PARAMETER_VALUE", "message": f"Job {job_id} does not exist."}
    )


def _json(status: int, body: dict) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


def _s3_error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<RequestId>STANDIN0000000001</RequestId></Error>"
    )
    return status, {"Content-Type": "application/xml"}, body.encode()


def _signature(path: str, query: dict[str, str]) -> str:
    text = path + "?" + "&".join(f"{k}={query[k]}" for k in sorted(query))
    return hmac.new(_SIGNING_KEY, text.encode(), hashlib.sha256).hexdigest()


def _is_future(expire_time: Any) -> bool:
    try:
        moment = datetime.strptime(expire_time, _EXPIRE_TIME).replace(tzinfo=timezone.utc)
    except (TypeError, ValueError):
        return False
    return moment > datetime.now(timezone.utc)


def _handler_for(workspace: FakeWorkspace) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = self._read_chunked()
            else:
                body = self.rfile.read(length) if length else b""
            split = urlsplit(self.path)
            req = Recorded(
                method=self.command,
                path=split.path,
                query=parse_qs(split.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            with workspace._lock:
                workspace.requests.append(req)
                status, headers, payload = workspace.answer(req)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD" and payload:
                self.wfile.write(payload)

        def _read_chunked(self) -> bytes:
            chunks = []
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests read `workspace.requests` instead."""

    return Handler


@contextmanager
def running() -> Iterator[FakeWorkspace]:
    """A started stand-in, stopped on exit."""
    workspace = FakeWorkspace().start()
    try:
        yield workspace
    finally:
        workspace.stop()
