"""A loopback stand-in for the few Databricks workspace endpoints that `databricks bundle
validate` and `databricks bundle plan` call, so the real CLI can check the bundle offline.

It answers with the response shapes of the workspace REST API (as the CLI's own test server
and SDK model them), records every request, and answers anything else with the API's
404 ENDPOINT_NOT_FOUND, so a call the CLI starts making shows up in `unrouted`.

    with WorkspaceStandIn() as workspace:
        env = {"DATABRICKS_HOST": workspace.host, "DATABRICKS_TOKEN": "dummy", ...}
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

USER_NAME = "dev@example.com"
TOKEN = "dummy"  # any token works; the tests check the CLI sends the one it was given
WORKSPACE_ID = "1234567890123456"
STARTER_WAREHOUSE = "Serverless Starter Warehouse"
WAREHOUSE_ID = "d1b2e3f4a5c6e7f8"  # the id of that warehouse

# GET /api/2.0/preview/scim/v2/Me
_USER = {
    "schemas": [
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:extension:workspace:2.0:User",
    ],
    "id": "7000000000000001",
    "userName": USER_NAME,
    "displayName": "Dev User",
    "name": {"givenName": "Dev", "familyName": "User"},
    "active": True,
    "emails": [{"value": USER_NAME, "type": "work", "primary": True}],
    "groups": [{"display": "users", "type": "direct", "value": "100", "$ref": "Groups/100"}],
}


def _warehouse(warehouse_id: str, name: str, host: str) -> dict:
    """One entry of GET /api/2.0/sql/warehouses: a running serverless warehouse."""
    http_path = f"/sql/1.0/warehouses/{warehouse_id}"
    return {
        "id": warehouse_id,
        "name": name,
        "cluster_size": "Small",
        "min_num_clusters": 1,
        "max_num_clusters": 1,
        "auto_stop_mins": 10,
        "creator_name": USER_NAME,
        "spot_instance_policy": "COST_OPTIMIZED",
        "enable_photon": True,
        "enable_serverless_compute": True,
        "warehouse_type": "PRO",
        "channel": {"name": "CHANNEL_NAME_CURRENT"},
        "state": "RUNNING",
        "num_clusters": 1,
        "num_active_sessions": 0,
        "health": {"status": "HEALTHY"},
        "tags": {},
        "jdbc_url": f"jdbc:databricks://{host}:443/default;transportMode=http;ssl=1;"
        f"AuthMech=3;httpPath={http_path};",
        "odbc_params": {"hostname": host, "path": http_path, "protocol": "https", "port": 443},
    }


@dataclass(frozen=True)
class Request:
    """One request the stand-in received, and the status it answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: bytes
    status: int
    routed: bool

    def json(self) -> dict:
        """The body as JSON ({} when empty)."""
        return json.loads(self.body) if self.body else {}


@dataclass
class WorkspaceStandIn:
    """A workspace on 127.0.0.1 (a free port) with one user and one SQL warehouse.

    Workspace folders start as the user's home only: `get-status` of anything else is 404
    until `mkdirs` creates it, as on a workspace the bundle was never deployed to.
    """

    # id -> name of the SQL warehouses the workspace lists
    warehouses: dict[str, str] = field(default_factory=lambda: {WAREHOUSE_ID: STARTER_WAREHOUSE})
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._folders: dict[str, int] = {}  # path -> object id
        for root in ("", "/Workspace"):
            self._add_folder(f"{root}/Users/{USER_NAME}")
        self._server: ThreadingHTTPServer | None = None
        routes: dict[tuple[str, str], Callable[[Request, re.Match], tuple[int, dict]]] = {
            ("GET", "/.well-known/databricks-config"): self._host_metadata,
            ("GET", "/api/2.0/preview/scim/v2/Me"): lambda *_: (200, _USER),
            ("GET", "/api/2.0/workspace/get-status"): self._get_status,
            ("POST", "/api/2.0/workspace/mkdirs"): self._mkdirs,
            ("GET", "/api/2.0/permissions/directories/(?P<id>[0-9]+)"): self._folder_permissions,
            ("GET", "/api/2.0/sql/warehouses"): self._list_warehouses,
        }
        self._routes = [(m, re.compile(path), answer) for (m, path), answer in routes.items()]

    @property
    def host(self) -> str:
        """The URL to give the CLI as DATABRICKS_HOST."""
        if self._server is None:
            raise RuntimeError("the stand-in is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def unrouted(self) -> list[Request]:
        """Requests for an endpoint the stand-in does not know."""
        return [r for r in self.requests if not r.routed]

    def start(self) -> WorkspaceStandIn:
        """Serve on a free loopback port in a daemon thread."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> WorkspaceStandIn:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def answer(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict]:
        """Route one request (header names in lower case), record it, return status and body."""
        parsed = urlparse(url)
        request = Request(method, parsed.path, parse_qs(parsed.query), headers, body, 0, False)
        status, payload = _error(
            404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {parsed.path}'"
        )
        for route_method, path, route in self._routes:
            match = path.fullmatch(parsed.path)
            if route_method == method and match:
                request = replace(request, routed=True)
                status, payload = route(request, match)
                break
        with self._lock:
            self.requests.append(replace(request, status=status))
        return status, payload

    def _add_folder(self, path: str) -> None:
        parts = path.strip("/").split("/")
        for depth in range(len(parts) + 1):
            folder = "/" + "/".join(parts[:depth])
            self._folders.setdefault(folder, 4_000_000_000_000_000 + len(self._folders))

    def _host_metadata(self, request: Request, _: re.Match) -> tuple[int, dict]:
        host = f"http://{request.headers.get('host', '127.0.0.1')}"
        return 200, {"oidc_endpoint": f"{host}/oidc", "workspace_id": WORKSPACE_ID}

    def _get_status(self, request: Request, _: re.Match) -> tuple[int, dict]:
        path = request.query.get("path", [""])[0]
        with self._lock:
            if path in self._folders:
                return 200, {
                    "object_type": "DIRECTORY",
                    "path": path,
                    "object_id": self._folders[path],
                }
        return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({path}) doesn't exist.")

    def _mkdirs(self, request: Request, _: re.Match) -> tuple[int, dict]:
        with self._lock:
            self._add_folder(request.json().get("path", ""))
        return 200, {}

    def _folder_permissions(self, request: Request, match: re.Match) -> tuple[int, dict]:
        """What a folder inside the user's home inherits: the user and admins manage it."""
        object_id = int(match["id"])
        with self._lock:
            if object_id not in self._folders.values():
                return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Object {object_id} doesn't exist.")
        home = f"/directories/{self._folders[f'/Users/{USER_NAME}']}"
        root = f"/directories/{self._folders['/']}"
        return 200, {
            "object_id": f"/directories/{object_id}",
            "object_type": "directory",
            "access_control_list": [
                {
                    "user_name": USER_NAME,
                    "display_name": _USER["displayName"],
                    "all_permissions": [
                        {
                            "permission_level": "CAN_MANAGE",
                            "inherited": True,
                            "inherited_from_object": [home],
                        }
                    ],
                },
                {
                    "group_name": "admins",
                    "all_permissions": [
                        {
                            "permission_level": "CAN_MANAGE",
                            "inherited": True,
                            "inherited_from_object": [root],
                        }
                    ],
                },
            ],
        }

    def _list_warehouses(self, request: Request, _: re.Match) -> tuple[int, dict]:
        host = request.headers.get("host", "127.0.0.1").split(":")[0]
        listed = [_warehouse(wid, name, host) for wid, name in self.warehouses.items()]
        return 200, {"warehouses": listed}


def _error(status: int, error_code: str, message: str) -> tuple[int, dict]:
    return status, {"error_code": error_code, "message": message}


def _handler(workspace: WorkspaceStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the requests are recorded instead."""

        def serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, payload = workspace.answer(self.command, self.path, headers, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    # http.server dispatches each method to do_<METHOD>
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        setattr(Handler, f"do_{method}", Handler.serve)
    return Handler
