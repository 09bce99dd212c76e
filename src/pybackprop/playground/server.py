"""The playground's web server: the page, its assets and a small JSON API, from the standard library.

:class:`PlaygroundServer` is a :class:`http.server.ThreadingHTTPServer` bound
to the loopback address by default. Each browser tab makes its own session
(one model); the sessions expire when idle. Routes:

==========================================  ====================================================
``GET /``                                   the page (``assets/playground.html``)
``GET /assets/<name>``                      a whitelisted asset: the page's script and style, and
                                            the network drawing (``network.js``, ``pybackprop.css``)
                                            of :mod:`pybackprop.visual`
``GET /api/datasets``                       the data sets (with preview points), the limits, the
                                            default config
``POST /api/sessions``                      ``{"config": {...}}`` -> 201, a new session's state
``GET /api/sessions/<id>``                  the state: config, points, history and a snapshot
``POST /api/sessions/<id>/config``          ``{"config": {fields to change}}``: start again
``POST /api/sessions/<id>/reset``           the same config, the initial weights again
``POST /api/sessions/<id>/step``            ``{"steps": k, "probe": [x1, x2]}`` -> a snapshot
                                            (``values``: every unit's output for ``probe``)
``POST /api/sessions/<id>/values``          ``{"x": [x1, x2]}`` -> ``{"values": ...}``
``POST /api/sessions/<id>/csv``             the CSV file as the body: train on it
``POST /api/sessions/<id>/explain``         ``{"split": "train", "index": i}`` -> ``{"html": ...}``,
                                            the step picture of that point
``GET /explain/<id>?split=train&index=i``   the same step picture as a page of its own
==========================================  ====================================================

Every bad request gets a 4xx status and ``{"error": message}`` (malformed
JSON, an unknown field, an absurd value, a bad CSV file, a body over the
limit, an unknown or expired session: 404); an unexpected failure is a 500
with its message. One request never stops the server serving the others.

>>> import json, threading, urllib.request
>>> server = PlaygroundServer(port=0)
>>> thread = server.serve_in_thread()
>>> body = json.dumps({"config": {"dataset": "xor"}}).encode()
>>> with urllib.request.urlopen(urllib.request.Request(server.url + "api/sessions", body)) as r:
...     r.status, json.load(r)["net"]["sizes"]
(201, [2, 4, 2, 1])
>>> server.shutdown(); server.server_close()
"""
from __future__ import annotations

import json
import socket
import sys
import threading
import traceback
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from . import datasets as _datasets
from .session import ACTIVATIONS, MAX_LAYERS, MAX_STEPS, MAX_UNITS, OPTIMIZERS, Config, Session, SessionStore

__all__ = ["ASSETS", "MAX_JSON_BYTES", "PlaygroundServer", "make_server"]

#: the largest JSON request body accepted (a CSV upload may be up to ``datasets.MAX_CSV_BYTES``)
MAX_JSON_BYTES = 64 * 1024
#: a body over the limit but below this is read and dropped before the 413 (larger: the connection is closed)
DRAIN_BYTES = 16 * 1024 * 1024
#: the assets served, by name: (package holding ``assets/<name>``, content type)
ASSETS: Dict[str, Tuple[str, str]] = {
    "playground.html": ("pybackprop.playground", "text/html; charset=utf-8"),
    "playground.js": ("pybackprop.playground", "text/javascript; charset=utf-8"),
    "playground.css": ("pybackprop.playground", "text/css; charset=utf-8"),
    "network.js": ("pybackprop.visual", "text/javascript; charset=utf-8"),
    "pybackprop.css": ("pybackprop.visual", "text/css; charset=utf-8"),
}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class HTTPError(Exception):
    """A request answered with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _asset(name: str, folders: Sequence[Any]) -> Tuple[bytes, str]:
    """The bytes and content type of asset ``name`` (the extra ``folders`` are searched first)."""
    if name not in ASSETS:
        raise HTTPError(404, f"no asset {name!r} (the assets are {', '.join(sorted(ASSETS))})")
    package, ctype = ASSETS[name]
    for folder in folders:
        path = folder / name
        if path.is_file():
            return path.read_bytes(), ctype
    try:
        return (resources.files(package) / "assets" / name).read_bytes(), ctype
    except (FileNotFoundError, ModuleNotFoundError, OSError):
        raise HTTPError(404, f"asset {name!r} is not installed (it ships with {package})") from None


class Handler(BaseHTTPRequestHandler):
    """One request of the playground (see the module's table of routes)."""

    server: "PlaygroundServer"
    protocol_version = "HTTP/1.1"  # keep-alive: the page's training loop reuses its connection
    disable_nagle_algorithm = True  # else the body, written after the headers, waits ~40 ms for a delayed ACK
    server_version = "pybackprop-playground"

    # ...................................................................... plumbing
    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.request_timeout)  # a stalled client frees its thread and socket

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, body: bytes, ctype: str, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any, close: bool = False) -> None:
        body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("utf-8")
        self._send(status, body, "application/json", close)

    def _body(self, limit: int) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None:
            if self.headers.get("Transfer-Encoding"):
                raise HTTPError(411, "send the body with a Content-Length (chunked bodies are not accepted)")
            return b""
        try:
            size = int(length)
        except ValueError:
            raise HTTPError(400, f"Content-Length: expected a number of bytes, got {length!r}") from None
        if size < 0:
            raise HTTPError(400, f"Content-Length: expected a number of bytes, got {length!r}")
        if size > limit:
            if size <= DRAIN_BYTES:  # read it all, so that the client sees the answer rather than a reset
                remaining = size
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 1 << 16))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            raise HTTPError(413, f"the request body is {size:,} bytes; the limit is {limit:,} bytes")
        return self.rfile.read(size)

    def _json_body(self) -> Dict[str, Any]:
        raw = self._body(MAX_JSON_BYTES)
        if not raw.strip():
            return {}
        try:
            value = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise HTTPError(400, f"the request body is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise HTTPError(400, f"the request body: expected a JSON object, got {type(value).__name__}")
        return value

    def _check_origin(self) -> None:
        """Refuse requests another site's page makes (loopback servers only): Host and Origin must be ours."""
        if self.server.host not in _LOOPBACK:
            return
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
        if host and host not in _LOOPBACK:
            raise HTTPError(403, f"Host {host!r} is not this machine's loopback address")
        origin = self.headers.get("Origin")
        if origin:  # "null" too: a sandboxed frame or a file:// page of any site sends it
            origin_host = urllib.parse.urlsplit(origin).hostname or ""
            if origin_host not in _LOOPBACK:
                raise HTTPError(403, f"requests from {origin[:80]!r} are not accepted")

    def _dispatch(self, method: str) -> None:
        close = False
        try:
            self._check_origin()
            url = urllib.parse.urlsplit(self.path)
            parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
            route = self.server.route(method, parts)
            if route is None:
                raise HTTPError(404 if method == "GET" or not parts or parts[0] == "api" else 405,
                                f"no route {method} {url.path}")
            route(self, parts, urllib.parse.parse_qs(url.query))
        except HTTPError as exc:
            close = exc.status in (411, 413)  # the body was not read: the connection cannot be reused
            self._json(exc.status, {"error": str(exc)}, close)
        except (ValueError, TypeError) as exc:  # a config field, a CSV file, a step count: the message says
            self._json(400, {"error": str(exc)})
        except (BrokenPipeError, ConnectionResetError, TimeoutError):  # the client left, or stalled mid-body
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - one request's failure never stops the server
            traceback.print_exc(file=sys.stderr)
            self._json(500, {"error": f"internal error: {type(exc).__name__}: {exc}"}, close=True)

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._json(405, {"error": "use GET or POST"}, close=True)

    do_DELETE = do_PATCH = do_PUT  # noqa: N815

    # ...................................................................... the routes
    def _session(self, parts: Sequence[str]) -> Session:
        session = self.server.store.get(parts[2] if parts[0] == "api" else parts[1])
        if session is None:
            raise HTTPError(404, "unknown session (it may have expired after being idle): reload the page "
                                 "to start a new one")
        return session

    def page(self, parts: Sequence[str], query: Dict[str, Any]) -> None:
        body, ctype = _asset("playground.html", self.server.asset_folders)
        self._send(200, body, ctype)

    def asset(self, parts: Sequence[str], query: Dict[str, Any]) -> None:
        body, ctype = _asset(parts[1], self.server.asset_folders)
        self._send(200, body, ctype)

    def datasets(self, parts: Sequence[str], query: Dict[str, Any]) -> None:
        self._json(200, self.server.catalogue())

    def create(self, parts: Sequence[str], query: Dict[str, Any]) -> None:
        body = self._json_body()
        _only(body, ("config",))
        session = self.server.store.create(Config.from_dict(body.get("config", {})))
        self._json(201, session.snapshot(full=True))

    def state(self, parts: Sequence[str], query: Dict[str, Any]) -> None:
        self._json(200, self._session(parts).snapshot(full=True))

    def configure(self, parts: Sequence[str], query: Dict[str, Any]) -> None:
        body = self._json_body()
        _only(body, ("config",))
        session = self._session(parts)
        session.update(body.get("config", {}))
        self._json(200, session.snapshot(full=True))

    def reset(self, parts: Sequence[str], query: Dict[str, Any]) -> None:
        _only(self._json_body(), ())
        session = self._session(parts)
        session.reset()
        self._json(200, session.snapshot(full=True))

    def step(self, parts: Sequence[str], query: Dict[str, Any]) -> None:
        body = self._json_body()
        _only(body, ("steps", "probe"))
        probe = None if body.get("probe") is None else _numbers("probe", body["probe"])
        self._json(200, self._session(parts).step(body.get("steps", 1), probe))  # both checked before a step

    def values(self, parts: Sequence[str], query: Dict[str, Any]) -> None:
        body = self._json_body()
        _only(body, ("x",))
        self._json(200, {"values": self._session(parts).unit_values(_numbers("x", body.get("x")))})

    def csv(self, parts: Sequence[str], query: Dict[str, Any]) -> None:
        session = self._session(parts)
        session.upload_csv(self._body(_datasets.MAX_CSV_BYTES))
        self._json(200, session.snapshot(full=True))

    def explain(self, parts: Sequence[str], query: Dict[str, Any]) -> None:
        body = self._json_body()
        _only(body, ("split", "index"))
        html = self._session(parts).explain(body.get("split", "train"), body.get("index", 0))
        self._json(200, {"html": html})

    def explain_page(self, parts: Sequence[str], query: Dict[str, Any]) -> None:
        try:
            index = int(query.get("index", ["0"])[0])
        except ValueError:
            raise HTTPError(400, f"index: expected an integer, got {query.get('index')!r}") from None
        html = self._session(parts).explain(query.get("split", ["train"])[0], index)
        self._send(200, html.encode("utf-8"), "text/html; charset=utf-8")


def _only(body: Dict[str, Any], keys: Sequence[str]) -> None:
    for key in body:
        if key not in keys:
            raise HTTPError(400, f"{str(key)[:40]}: unknown field (expected {', '.join(keys) or 'an empty body'})")


def _numbers(name: str, value: Any) -> Sequence[float]:
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise HTTPError(400, f"{name}: expected a list of numbers, got {json.dumps(value)[:40]}")
    return value


Route = Callable[[Handler, Sequence[str], Dict[str, Any]], None]


class PlaygroundServer(ThreadingHTTPServer):
    """The playground's HTTP server (one thread per connection; sessions in a :class:`SessionStore`).

    Parameters
    ----------
    host : str
        ``"127.0.0.1"`` (default: this machine only), ``"::1"``, or e.g. ``"0.0.0.0"``.
    port : int
        0 picks a free port (see :attr:`url`).
    store : SessionStore, optional
        Sessions expire after 30 minutes idle by default.
    asset_folders : list of pathlib.Path, optional
        Searched for an asset before the package's own (for a development copy).
    verbose : bool
        Log every request to stderr.
    request_timeout : float
        Seconds a connection may stay silent (between requests, or in the middle of
        one) before the server closes it: a stalled client holds one thread that long.

    Examples
    --------
    >>> server = PlaygroundServer(port=0)
    >>> server.url.startswith("http://127.0.0.1:")
    True
    >>> server.server_close()
    """

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, host: str = "127.0.0.1", port: int = 8000, store: Optional[SessionStore] = None,
                 asset_folders: Optional[Sequence[Any]] = None, verbose: bool = False,
                 request_timeout: float = 60.0) -> None:
        self.host = host
        self.request_timeout = request_timeout
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.store = store if store is not None else SessionStore()
        self.asset_folders = list(asset_folders or [])
        self.verbose = verbose
        self._catalogue: Optional[Dict[str, Any]] = None
        super().__init__((host, port), Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        """The page's address, e.g. ``http://127.0.0.1:8000/``."""
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"http://[{host}]:{self.port}/" if ":" in host else f"http://{host}:{self.port}/"

    def route(self, method: str, parts: Sequence[str]) -> Optional[Route]:
        """The handler method of a request, or None."""
        n = len(parts)
        if method == "GET":
            if n == 0 or parts == ["index.html"]:
                return Handler.page
            if n == 2 and parts[0] == "assets":
                return Handler.asset
            if parts == ["api", "datasets"]:
                return Handler.datasets
            if n == 3 and parts[:2] == ["api", "sessions"]:
                return Handler.state
            if n == 2 and parts[0] == "explain":
                return Handler.explain_page
            return None
        if parts == ["api", "sessions"]:
            return Handler.create
        if n == 4 and parts[:2] == ["api", "sessions"]:
            return {"config": Handler.configure, "reset": Handler.reset, "step": Handler.step,
                    "values": Handler.values, "csv": Handler.csv, "explain": Handler.explain}.get(parts[3])
        return None

    def catalogue(self) -> Dict[str, Any]:
        """The data sets with their preview points, the limits and the defaults (``GET /api/datasets``)."""
        if self._catalogue is None:
            sets = {name: {**info, "preview": _datasets.preview(name)} for name, info in _datasets.DATASETS.items()}
            self._catalogue = {
                "datasets": sets, "defaults": Config().to_dict(), "fields": Config.fields(),
                "activations": list(ACTIVATIONS), "optimizers": list(OPTIMIZERS),
                "limits": {"layers": MAX_LAYERS, "units": MAX_UNITS, "steps": MAX_STEPS,
                           "csv_bytes": _datasets.MAX_CSV_BYTES, "csv_rows": _datasets.MAX_CSV_ROWS},
            }
        return self._catalogue

    def serve_in_thread(self, poll_interval: float = 0.1) -> threading.Thread:
        """Serve in a daemon thread (tests, benchmarks, notebooks); stop with :meth:`shutdown`."""
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": poll_interval},
                                  name="pybackprop-playground", daemon=True)
        thread.start()
        return thread


def make_server(host: str = "127.0.0.1", port: int = 8000, **kwargs: Any) -> PlaygroundServer:
    """A :class:`PlaygroundServer` on ``host:port`` (port 0: a free one), with a clear error when taken.

    >>> s = make_server(port=0); s.port > 0
    True
    >>> s.server_close()
    """
    try:
        return PlaygroundServer(host, port, **kwargs)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror} (try --port 0 for a free port)"
                      ) from None
