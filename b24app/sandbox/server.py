"""Sockets: every listening address of the sandbox served by ONE accept loop.

Up to ~1,000 portals each listen on their own address (a 127.0.0.1 port, or a loopback address of
their own on port 80), so there is no thread per listening socket. A single `selectors` loop accepts
connections and watches idle keep-alive connections; when one becomes readable a pooled worker
thread serves exactly one HTTP/1.1 request on it, then hands the connection back to the loop. WSGI
apps run through a request handler derived from werkzeug's (its environ building is reused; its run
loop is replaced because werkzeug's own always closes the connection, and we want keep-alive).
"""
from __future__ import annotations

import collections
import contextlib
import io
import json
import logging
import select
import selectors
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any, cast

from werkzeug.serving import WSGIRequestHandler
from werkzeug.wsgi import LimitedStream

log = logging.getLogger("b24app.sandbox.server")

WSGIApp = Callable[..., Any]
READ_TIMEOUT = 30.0
IDLE_TIMEOUT = 300.0
LINGER = 0.05  # how long a worker waits for the next keep-alive request before handing the connection back
# Set by an app in the WSGI environ to drop the connection without answering (the "timeout" fault).
DROP_KEY = "sandbox.drop_connection"

_INTERNAL_ERROR = json.dumps({"error": "INTERNAL_SERVER_ERROR",
                              "error_description": "Internal server error"}).encode()


class _ServerInfo:
    """The attributes werkzeug's `make_environ` reads from `self.server`."""

    ssl_context = None
    multithread = True
    multiprocess = False
    passthrough_errors = False
    _server_version = "Bitrix24-Sandbox/1.0"

    def __init__(self, host: str, port: int) -> None:
        self.server_address = (host, port)

    def log(self, *_args: Any) -> None:
        """werkzeug logging hook; the sandbox stays quiet."""


class _Handler(WSGIRequestHandler):
    """One connection. `turn()` serves a single request and says whether to keep the connection."""

    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT
    disable_nagle_algorithm = True

    def __init__(self, conn: socket.socket, addr: Any, info: _ServerInfo, app: WSGIApp) -> None:
        # Deliberately not calling super().__init__: socketserver would serve the whole connection.
        self.request = conn
        self.client_address = addr
        self.server = info  # type: ignore[assignment]
        self.app = app
        self.setup()

    def turn(self) -> bool:
        self.close_connection = True
        try:
            self.handle_one_request()
        except (OSError, ValueError):
            return False
        return not self.close_connection

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        environ = self.make_environ()
        if not environ.get("wsgi.input_terminated"):
            try:
                length = max(0, int(self.headers.get("Content-Length") or 0))
            except ValueError:
                self._write(400, [("Content-Type", "text/plain")], b"bad Content-Length", close=True)
                return
            environ["wsgi.input"] = LimitedStream(cast(IO[bytes], self.rfile), length)
        status, headers, body = self._call_app(environ)
        try:
            while environ["wsgi.input"].read(65536):
                pass
        except Exception:  # a client that lies about its body: answer, then close
            log.debug("could not drain request body", exc_info=True)
            self.close_connection = True
        if environ.get(DROP_KEY):
            self.close_connection = True
            return
        self._write(status, headers, body, close=self.close_connection,
                    head=environ["REQUEST_METHOD"] == "HEAD")

    def _call_app(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            captured["status"] = int(status.split(None, 1)[0])
            captured["headers"] = headers
            return lambda _data: None

        try:
            iterable = self.app(environ, start_response)
            try:
                body = b"".join(iterable)
            finally:
                close = getattr(iterable, "close", None)
                if close is not None:
                    close()
            return captured["status"], captured["headers"], body
        except Exception:
            log.exception("unhandled error in sandbox WSGI app")
            return 500, [("Content-Type", "application/json; charset=utf-8")], _INTERNAL_ERROR

    def _write(self, status: int, headers: list[tuple[str, str]], body: bytes, *, close: bool,
               head: bool = False) -> None:
        reason = self.responses.get(status, ("",))[0]
        lines = [f"HTTP/1.1 {status} {reason}", f"Date: {self.date_time_string()}",
                 f"Server: {self.server._server_version}"]
        lines += [f"{k}: {v}" for k, v in headers if k.lower() not in ("content-length", "connection",
                                                                       "transfer-encoding")]
        lines.append(f"Content-Length: {len(body)}")
        if close:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(data if head else data + body)
        self.close_connection = close

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Access logging is off: tests make thousands of requests."""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


class _Listener:
    def __init__(self, sock: socket.socket, port: int, app: WSGIApp, host: str) -> None:
        self.sock = sock
        self.port = port
        self.address = (host, port)
        self.app = app
        self.info = _ServerInfo(host, port)


class _Conn:
    def __init__(self, sock: socket.socket, addr: Any, listener: _Listener) -> None:
        self.sock = sock
        self.address = listener.address
        self.handler = _Handler(sock, addr, listener.info, listener.app)
        self.idle_since = time.monotonic()

    def next_request_ready(self, linger: float) -> bool:
        """True if the next request's bytes are here, or arrive within `linger` seconds.

        Keep-alive clients usually send their next request right away; serving it on the same worker
        saves two thread hand-offs. Idle connections go back to the accept loop after `linger`.
        """
        try:
            self.sock.settimeout(0)
            try:
                if cast(io.BufferedReader, self.handler.rfile).peek(1):
                    return True
            finally:
                self.sock.settimeout(READ_TIMEOUT)
            return bool(select.select([self.sock], [], [], linger)[0])
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.handler.finish()
        with contextlib.suppress(OSError):
            self.sock.close()


class HttpServer:
    """All listening sockets of the sandbox, one accept/readiness loop, a pool of workers."""

    def __init__(self, host: str = "127.0.0.1", max_workers: int = 512) -> None:
        self.host = host
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._ops: collections.deque[Callable[[], None]] = collections.deque()
        self._listeners: dict[tuple[str, int], _Listener] = {}
        self._idle: dict[int, _Conn] = {}
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="sandbox-http")
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sandbox-accept", daemon=True)
        self._thread.start()

    # -- public -----------------------------------------------------------------------------------
    def listen(self, app: WSGIApp, port: int = 0, host: str | None = None) -> int:
        """Open a listening socket on `host` (default 127.0.0.1), ephemeral port by default; return its port."""
        address = host or self.host
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
            sock.listen(1024)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        bound = sock.getsockname()[1]
        listener = _Listener(sock, bound, app, address)
        self._in_loop(lambda: self._add_listener(listener))
        return bound

    def close_port(self, port: int, host: str | None = None) -> None:
        """Stop listening on an address and close its idle connections."""
        address = (host or self.host, port)
        self._in_loop(lambda: self._remove_listener(address))

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._wake()
        self._thread.join(timeout=5)
        while self._ops:  # connections handed back after the loop ended: close them
            self._ops.popleft()()
        for listener in list(self._listeners.values()):
            listener.sock.close()
        for conn in list(self._idle.values()):
            conn.close()
        self._listeners.clear()
        self._idle.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()

    @property
    def stopping(self) -> threading.Event:
        return self._stopping

    # -- loop thread ------------------------------------------------------------------------------
    def _in_loop(self, op: Callable[[], None]) -> None:
        self._ops.append(op)
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _add_listener(self, listener: _Listener) -> None:
        self._listeners[listener.address] = listener
        self._sel.register(listener.sock, selectors.EVENT_READ, listener)

    def _remove_listener(self, address: tuple[str, int]) -> None:
        listener = self._listeners.pop(address, None)
        if listener is not None:
            self._sel.unregister(listener.sock)
            listener.sock.close()
        for fd, conn in list(self._idle.items()):
            if conn.address == address:
                self._sel.unregister(conn.sock)
                del self._idle[fd]
                conn.close()

    def _watch(self, conn: _Conn) -> None:
        if self._stopping.is_set():
            conn.close()
            return
        conn.idle_since = time.monotonic()
        try:
            self._sel.register(conn.sock, selectors.EVENT_READ, conn)
        except (ValueError, KeyError, OSError):
            conn.close()
            return
        self._idle[conn.sock.fileno()] = conn

    def _loop(self) -> None:
        last_sweep = time.monotonic()
        while not self._stopping.is_set():
            try:
                events = self._sel.select(timeout=1.0)
            except OSError:
                continue
            for key, _mask in events:
                if key.data is None:
                    self._drain_wake()
                elif isinstance(key.data, _Listener):
                    self._accept(key.data)
                else:
                    conn: _Conn = key.data
                    self._sel.unregister(conn.sock)
                    self._idle.pop(conn.sock.fileno(), None)
                    self._submit(conn)
            while self._ops:
                self._ops.popleft()()
            now = time.monotonic()
            if now - last_sweep > 5:
                last_sweep = now
                self._sweep(now)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _accept(self, listener: _Listener) -> None:
        while True:
            try:
                sock, addr = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                log.warning("accept failed on port %s", listener.port, exc_info=True)
                return
            sock.setblocking(True)
            self._watch(_Conn(sock, addr, listener))

    def _sweep(self, now: float) -> None:
        for fd, conn in list(self._idle.items()):
            if now - conn.idle_since > IDLE_TIMEOUT:
                self._sel.unregister(conn.sock)
                del self._idle[fd]
                conn.close()

    def _submit(self, conn: _Conn) -> None:
        try:
            self._pool.submit(self._serve, conn)
        except RuntimeError:
            conn.close()

    # -- worker threads ---------------------------------------------------------------------------
    def _serve(self, conn: _Conn) -> None:
        try:
            while conn.handler.turn() and not self._stopping.is_set():
                if conn.next_request_ready(LINGER):
                    continue
                self._in_loop(lambda: self._watch(conn))
                return
        except Exception:
            log.exception("sandbox connection failed")
        conn.close()
