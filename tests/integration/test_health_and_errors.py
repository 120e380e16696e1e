"""Operations probes and the error contract."""
from __future__ import annotations

import pytest
from flask import Flask

from b24app import create_app
from b24app.web.common import services
from tests.conftest import make_config
from tests.support.processes import free_port


def test_healthz_is_always_ok(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_ok_when_redis_answers_and_config_complete(client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready"}


def test_readyz_names_a_dead_redis() -> None:
    app = create_app(make_config(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"), configure_logs=False)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["error"] == "REDIS_UNAVAILABLE"
    assert "Redis" in response.json["error_description"]


def test_readyz_names_missing_configuration(redis_client) -> None:
    config = make_config(B24_CLIENT_SECRET="", B24_APP_URL="")
    response = create_app(config, configure_logs=False).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["error"] == "CONFIG_INCOMPLETE"
    assert "B24_CLIENT_SECRET" in response.json["error_description"]
    assert "B24_APP_URL" in response.json["error_description"]


def test_unknown_route_is_json_404(client) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.is_json
    assert response.json["error"] == "NOT_FOUND"
    assert response.json["error_description"]


def test_wrong_method_is_json_405_with_allow(client) -> None:
    response = client.delete("/healthz")
    assert response.status_code == 405
    assert response.json["error"] == "METHOD_NOT_ALLOWED"
    assert "GET" in response.headers["Allow"]


@pytest.fixture
def exploding_app(redis_client) -> Flask:
    app = create_app(make_config(), configure_logs=False)

    def boom() -> str:
        raise RuntimeError("secret internals: access_token=abc123 /srv/app/module.py line 7")

    app.add_url_rule("/boom", "boom", boom)
    app.add_url_rule("/app-boom", "frame.boom", boom)
    return app


def test_unhandled_exception_is_500_json_with_request_id_and_no_traceback(exploding_app: Flask) -> None:
    response = exploding_app.test_client().get("/boom", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 500
    assert response.json["error"] == "INTERNAL_ERROR"
    assert response.json["request_id"] == "req-42"
    assert "req-42" in response.json["error_description"]
    body = response.get_data(as_text=True)
    for leak in ("Traceback", "RuntimeError", "secret internals", "abc123", "module.py"):
        assert leak not in body


def test_framed_routes_answer_errors_as_html(exploding_app: Flask) -> None:
    response = exploding_app.test_client().get("/app-boom")
    assert response.status_code == 500
    assert response.mimetype == "text/html"
    body = response.get_data(as_text=True)
    assert "INTERNAL_ERROR" in body
    assert "Traceback" not in body
    assert "abc123" not in body


def test_request_id_is_honoured_or_generated(client) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id <script>"}).headers["X-Request-ID"]
    assert generated != "bad id <script>"
    assert len(generated) == 32


def test_every_caller_of_a_dead_redis_gets_503_and_a_spread_retry_after() -> None:
    """During an outage every request fails alike; telling all of them the same second brings them back at once."""
    app = create_app(make_config(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"), configure_logs=False)
    app.add_url_rule("/touch", "touch", lambda: services(app).redis.get("anything") or "")
    answers = [app.test_client().get("/touch") for _ in range(12)]
    assert {(a.status_code, a.json["error"]) for a in answers} == {(503, "SERVICE_UNAVAILABLE")}
    told = {int(a.headers["Retry-After"]) for a in answers}
    assert told <= {5, 6, 7} and len(told) > 1
