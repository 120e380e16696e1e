"""The outbound portal transport against a real local HTTP server: answers, failures, proxies."""
from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from b24app.bitrix.transport import PortalHTTP, TransportFailure

SEEN: list[dict] = []


@Request.application
def _portal(request: Request) -> Response:
    SEEN.append({"path": request.path, "json": request.get_json(silent=True), "headers": dict(request.headers)})
    if request.path == "/slow":
        time.sleep(1.0)
    if request.path == "/moved":
        return Response(status=302, headers={"Location": "https://elsewhere.example/rest/"})
    if request.path == "/html":
        return Response("<html>maintenance</html>", status=502, mimetype="text/html")
    return Response(json.dumps({"result": {"echo": request.get_json()}}), mimetype="application/json")


@pytest.fixture(scope="module")
def portal_url() -> Iterator[str]:
    server = make_server("127.0.0.1", 0, _portal, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _post(http: PortalHTTP, url: str, payload: dict | None = None, read: float = 5.0):
    return http.post_json(url, payload or {"auth": "t"}, headers={"X-Request-ID": "rid-1"}, timeout=(1.0, read))


def test_json_round_trip_keeps_unicode_and_headers(portal_url: str) -> None:
    http = PortalHTTP(proxies={})
    reply = _post(http, f"{portal_url}/rest/profile", {"title": "Статус", "auth": "t"})
    assert reply.status == 200 and not reply.is_redirect
    assert reply.json_object() == {"result": {"echo": {"title": "Статус", "auth": "t"}}}
    assert SEEN[-1]["headers"]["Content-Type"] == "application/json"
    assert SEEN[-1]["headers"]["X-Request-Id"] == "rid-1"


def test_a_redirect_is_reported_not_followed(portal_url: str) -> None:
    before = len(SEEN)
    reply = _post(PortalHTTP(proxies={}), f"{portal_url}/moved")
    assert reply.is_redirect and reply.location == "https://elsewhere.example/rest/"
    assert len(SEEN) == before + 1


def test_a_non_json_answer_has_no_json_object(portal_url: str) -> None:
    reply = _post(PortalHTTP(proxies={}), f"{portal_url}/html")
    assert (reply.status, reply.json_object()) == (502, None)


def test_failures_are_named(portal_url: str) -> None:
    http = PortalHTTP(proxies={})
    with pytest.raises(TransportFailure) as slow:
        _post(http, f"{portal_url}/slow", read=0.2)
    assert slow.value.kind == "ReadTimeout"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with pytest.raises(TransportFailure) as refused:
        _post(http, f"http://127.0.0.1:{closed_port}/rest/profile")
    assert refused.value.kind == "ConnectionError"
    with pytest.raises(TransportFailure) as unencodable:
        _post(http, f"{portal_url}/rest/profile", {"value": float("nan")})
    assert unencodable.value.kind == "InvalidJSONError"


def test_a_configured_proxy_is_used_except_for_no_proxy_hosts(portal_url: str) -> None:
    # The "proxy" is the test server itself: a proxied request arrives with the absolute URL as its target.
    http = PortalHTTP(proxies={"http": portal_url, "no": "localhost,bypass.example"})
    reply = _post(http, "http://portal.example/rest/profile")
    assert reply.status == 200
    assert SEEN[-1]["headers"]["Host"] == "portal.example"
    direct = PortalHTTP(proxies={"http": "http://127.0.0.1:9", "no": "127.0.0.1"})
    assert _post(direct, f"{portal_url}/rest/profile").status == 200, "NO_PROXY host goes direct"
