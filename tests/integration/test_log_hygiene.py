"""No token, refresh token, application_token, AUTH_ID or client secret in any log line."""
from __future__ import annotations

import io
import json
import logging

from b24app.observability.logs import configure_logging
from tests.integration.helpers import sandbox_secrets


def test_full_lifecycle_at_debug_logs_no_secret(b24) -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", secrets=[b24.config.client_secret], stream=stream)
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        portal = b24.installed_portal()
        client = b24.services.portal_services.clients.portal(portal.member_id)
        client.call("crm.activity.badge.add", {"code": "logCheck", "title": "t", "value": "v", "type": "success"})
        b24.sandbox.expire_tokens(portal)
        client.call("crm.activity.badge.list")  # reactive refresh
        b24.sandbox.open_app(portal, user_id=1)
        b24.sandbox.update(portal, version=2)
        b24.services.portal_services.binder.wait()
        secrets = sandbox_secrets(b24.sandbox, portal.member_id)  # the sandbox forgets them on uninstall
        b24.sandbox.uninstall(portal)
    finally:
        configure_logging("INFO")
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    app_lines = [line for line in lines if not line["logger"].startswith("b24app.sandbox")]
    assert len(app_lines) > 10, "the flow was logged"
    assert any(line["logger"] == "urllib3.connectionpool" for line in app_lines), "DEBUG output was captured"
    text = "\n".join(json.dumps(line) for line in app_lines)
    secrets.append(b24.config.client_secret)
    assert len(secrets) > 6
    for secret in secrets:
        assert secret not in text
