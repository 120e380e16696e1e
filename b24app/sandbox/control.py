"""The control API under `/_sandbox/` on the OAuth server's port: JSON in, JSON out.

It mirrors the `Sandbox` Python API so tests in other processes, the portal page and developers can
drive the sandbox (create portals, install, move the clock, inject faults, read counters...).
Misuse answers 400 `{"error": "SANDBOX_ERROR", "error_description": ...}`; an unknown portal 404.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, request

from .envelope import json_response
from .errors import SandboxError
from .models import User

if TYPE_CHECKING:
    from .sandbox import Sandbox


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


def _robot_options(b: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The property values and the options of a robot run or an automation rule, as `Sandbox.run_robot` and
    `Sandbox.add_automation` take them."""
    properties = b.get("properties") or {}
    if not isinstance(properties, dict):
        raise SandboxError("properties must be a JSON object")
    return properties, {"use_subscription": b.get("use_subscription"),
                        "auth_user_id": None if b.get("auth_user_id") is None else int(b["auth_user_id"]),
                        "timeout_duration": int(b.get("timeout_duration", 0)), "client_id": b.get("client_id")}


def _rate(value: Any) -> tuple[float, float] | None:
    if value is None or value is False:
        return None
    if isinstance(value, dict):
        return float(value["rps"]), float(value["burst"])
    return float(value[0]), float(value[1])


def _settings_body(value: Any) -> dict[str, Any] | None:
    """Portal settings arrive as a JSON object of PortalSettings fields (misuse -> 400)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise SandboxError("settings must be a JSON object")
    return value


def create_control_blueprint(sb: Sandbox) -> Blueprint:
    bp = Blueprint("sandbox_control", __name__)

    @bp.errorhandler(SandboxError)
    def misuse(exc: SandboxError) -> Response:
        status = 404 if str(exc).startswith("unknown portal") else 400
        return json_response({"error": "SANDBOX_ERROR", "error_description": str(exc)}, status)

    @bp.errorhandler(KeyError)
    @bp.errorhandler(TypeError)
    @bp.errorhandler(ValueError)
    def bad_input(exc: Exception) -> Response:
        return json_response({"error": "SANDBOX_ERROR", "error_description": f"bad request: {exc}"}, 400)

    @bp.get("/")
    def index() -> Response:
        return json_response({"oauth_url": sb.oauth_url, "server_endpoint": sb.server_endpoint,
                              "clock": {"now": sb.clock.now(), "offset": sb.clock.offset},
                              "apps": [a.public() for a in sb.apps.values()],
                              "portals": [p.summary() for p in list(sb.portals.values())]})

    # -- apps -------------------------------------------------------------------------------------
    @bp.post("/apps")
    def register_app() -> Response:
        b = _body()
        card = sb.register_app(b.get("client_id"), b.get("client_secret"), app_url=b["app_url"],
                               **{k: b[k] for k in ("install_path", "handler_path", "redirect_path", "scope",
                                                    "version", "status", "name") if k in b})
        return json_response(card.public(), 201)

    @bp.get("/apps")
    def list_apps() -> Response:
        return json_response([a.public() for a in sb.apps.values()])

    # -- portals ----------------------------------------------------------------------------------
    @bp.post("/portals")
    def create_portal() -> Response:
        b = _body()
        users = None
        if isinstance(b.get("users"), list):
            users = {int(u["id"]): User(int(u["id"]), u.get("name", ""), u.get("last_name", ""),
                                        bool(u.get("admin")), bool(u.get("active", True)), u.get("email", ""))
                     for u in b["users"]}
        portal = sb.create_portal(b.get("name"), b.get("language", "en"),
                                  _rate(b["rate"]) if "rate" in b else (2, 50), users, int(b.get("deals", 20)),
                                  b.get("license_type"), settings=_settings_body(b.get("settings")))
        return json_response(portal.summary(), 201)

    @bp.get("/portals/<ref>/settings")
    def portal_settings(ref: str) -> Response:
        return json_response(sb.portal(ref).settings.public())

    @bp.post("/portals/<ref>/settings")
    def configure_portal(ref: str) -> Response:
        return json_response(sb.configure_portal(ref, **(_settings_body(_body()) or {})).public())

    @bp.get("/portals")
    def list_portals() -> Response:
        return json_response([p.summary() for p in list(sb.portals.values())])

    @bp.get("/portals/<ref>")
    def portal_state(ref: str) -> Response:
        return json_response(sb.state(ref))

    @bp.delete("/portals/<ref>")
    def remove_portal(ref: str) -> Response:
        sb.remove_portal(ref)
        return json_response({"removed": True})

    @bp.post("/portals/<ref>/rename")
    def rename(ref: str) -> Response:
        return json_response(sb.rename_portal(ref, _body().get("name")).summary())

    @bp.post("/portals/<ref>/rate")
    def rate(ref: str) -> Response:
        b = _body()
        sb.set_rate(ref, None if b.get("disabled") else _rate(b.get("rate", [b.get("rps"), b.get("burst")])))
        return json_response(sb.portal(ref).summary())

    @bp.post("/portals/<ref>/users")
    def add_user(ref: str) -> Response:
        b = _body()
        user = sb.add_user(ref, b["name"], b.get("last_name", ""), bool(b.get("admin")), b.get("email", ""))
        return json_response(user.public(), 201)

    @bp.post("/portals/<ref>/users/<int:user_id>/fire")
    def fire(ref: str, user_id: int) -> Response:
        sb.fire_user(ref, user_id)
        return json_response({"fired": user_id})

    @bp.post("/portals/<ref>/users/<int:user_id>/admin")
    def set_admin(ref: str, user_id: int) -> Response:
        sb.set_admin(ref, user_id, bool(_body().get("admin", True)))
        return json_response({"user_id": user_id})

    @bp.post("/portals/<ref>/deals")
    def add_deal(ref: str) -> Response:
        b = _body()
        deal = sb.add_deal(ref, b.get("title", "New deal"), b.get("stage", "NEW"))
        return json_response(deal.public(), 201)

    @bp.get("/portals/<ref>/deals/<int:deal_id>")
    def deal(ref: str, deal_id: int) -> Response:
        portal = sb.portal(ref)
        found = sb.automation.deal(portal, deal_id)
        badge = sb.deal_badge(portal, deal_id)
        return json_response({**found.public(), "badge": badge.public() if badge else None,
                              "timeline": sb.deal_timeline(portal, deal_id)})

    @bp.post("/portals/<ref>/deals/<int:deal_id>/stage")
    def move_deal(ref: str, deal_id: int) -> Response:
        b = _body()
        runs = sb.move_deal(ref, deal_id, b["stage"], int(b.get("user_id", 1)))
        return json_response([r.public() for r in runs])

    # -- robots and automation rules (docs/bitrix24-protocol.md §11) -----------------------------------
    @bp.get("/portals/<ref>/robots")
    def robots(ref: str) -> Response:
        return json_response([r.public() for r in sb.robots(ref, request.args.get("client_id"))])

    @bp.get("/portals/<ref>/automation")
    def automation(ref: str) -> Response:
        return json_response({stage: [r.public() for r in rules]
                              for stage, rules in sb.automation_rules(ref).items()})

    @bp.post("/portals/<ref>/automation")
    def add_automation(ref: str) -> Response:
        b = _body()
        properties, options = _robot_options(b)
        rule = sb.add_automation(ref, b["stage"], b["robot"], properties, **options)
        return json_response(rule.public(), 201)

    @bp.delete("/portals/<ref>/automation")
    def remove_automation(ref: str) -> Response:
        b = {**request.args.to_dict(), **_body()}
        rule_id = int(b["rule_id"]) if b.get("rule_id") not in (None, "") else None
        return json_response({"removed": sb.remove_automation(ref, rule_id, b.get("stage") or None)})

    @bp.delete("/portals/<ref>/automation/<int:rule_id>")
    def remove_rule(ref: str, rule_id: int) -> Response:
        return json_response({"removed": sb.remove_automation(ref, rule_id)})

    @bp.post("/portals/<ref>/robot-runs")
    def run_robot(ref: str) -> Response:
        b = _body()
        properties, options = _robot_options(b)
        run = sb.run_robot(ref, int(b["deal_id"]), b["robot"], properties, **options)
        return json_response(run.public(), 201)

    @bp.get("/portals/<ref>/robot-runs")
    def robot_runs(ref: str) -> Response:
        args = request.args
        deal_id = int(args["deal_id"]) if args.get("deal_id") else None
        runs = sb.robot_runs(ref, deal_id, args.get("status") or None, args.get("robot") or None)
        return json_response([r.public() for r in runs])

    @bp.get("/portals/<ref>/robot-runs/<int:run_id>")
    def robot_run(ref: str, run_id: int) -> Response:
        return json_response(sb.robot_run(ref, run_id).public())

    @bp.post("/portals/<ref>/robot-runs/<int:run_id>/redeliver")
    def redeliver(ref: str, run_id: int) -> Response:
        return json_response(sb.redeliver_run(ref, run_id).public())

    @bp.get("/portals/<ref>/deals/<int:deal_id>/badge")
    def deal_badge(ref: str, deal_id: int) -> Response:
        badge = sb.deal_badge(ref, deal_id)
        return json_response({"badge": badge.public() if badge else None})

    @bp.post("/portals/<ref>/webhooks")
    def webhook(ref: str) -> Response:
        b = _body()
        return json_response(sb.create_webhook(ref, int(b.get("user_id", 1)), b.get("scope", "crm,user,placement")),
                             201)

    # -- lifecycle --------------------------------------------------------------------------------
    @bp.post("/portals/<ref>/install")
    def install(ref: str) -> Response:
        b = _body()
        result = sb.install(ref, int(b.get("user_id", 1)), bool(b.get("send_application_token", True)),
                            bool(b.get("rest_only", False)), b.get("client_id"), b.get("lang"))
        return json_response(result.public())

    @bp.post("/portals/<ref>/install-finish")
    def install_finish(ref: str) -> Response:
        return json_response([d.public() for d in sb.install_finish(ref, _body().get("client_id"))])

    @bp.post("/portals/<ref>/update")
    def update(ref: str) -> Response:
        b = _body()
        deliveries = sb.update(ref, int(b["version"]), bool(b.get("rotate_application_token", True)),
                               b.get("client_id"))
        return json_response([d.public() for d in deliveries])

    @bp.post("/portals/<ref>/uninstall")
    def uninstall(ref: str) -> Response:
        b = _body()
        return json_response([d.public() for d in sb.uninstall(ref, bool(b.get("clean", True)), b.get("client_id"))])

    @bp.post("/portals/<ref>/open-app")
    def open_app(ref: str) -> Response:
        b = _body()
        result = sb.open_app(ref, int(b.get("user_id", 1)), b.get("placement", "DEFAULT"), b.get("options"),
                             b.get("client_id"), bool(b.get("send_application_token", True)), b.get("lang"))
        return json_response(result.public())

    @bp.post("/portals/<ref>/frame-auth")
    def frame_auth(ref: str) -> Response:
        b = _body()
        return json_response(sb.frame_auth(ref, int(b.get("user_id", 1)), b.get("client_id"), b.get("lang")))

    @bp.post("/portals/<ref>/tokens")
    def tokens(ref: str) -> Response:
        b = _body()
        return json_response(sb.issue_tokens(ref, int(b.get("user_id", 1)), b.get("client_id")))

    @bp.get("/portals/<ref>/application-token")
    def application_token(ref: str) -> Response:
        return json_response({"application_token": sb.application_token(ref, request.args.get("client_id"))})

    @bp.post("/portals/<ref>/expire-tokens")
    def expire(ref: str) -> Response:
        return json_response({"count": sb.expire_tokens(ref, _body().get("user_id"))})

    @bp.post("/portals/<ref>/revoke-tokens")
    def revoke(ref: str) -> Response:
        return json_response({"count": sb.revoke_tokens(ref, _body().get("user_id"))})

    @bp.post("/portals/<ref>/revoke-refresh")
    def revoke_refresh(ref: str) -> Response:
        return json_response({"count": sb.revoke_refresh(ref, _body().get("user_id"))})

    @bp.get("/portals/<ref>/frame-log")
    def frame_log(ref: str) -> Response:
        return json_response(sb.frame_log.items(sb.portal(ref).member_id, request.args.get("command")))

    @bp.delete("/frame-log")
    def clear_frame_log() -> Response:
        sb.frame_log.clear()
        return json_response({"cleared": True})

    # -- clock, limits, faults, counters, deliveries ----------------------------------------------
    @bp.get("/clock")
    def clock() -> Response:
        return json_response({"now": sb.clock.now(), "offset": sb.clock.offset})

    @bp.post("/clock/advance")
    def advance() -> Response:
        now = sb.clock.advance(float(_body().get("seconds", 0)))
        return json_response({"now": now, "offset": sb.clock.offset})

    @bp.post("/limits")
    def limits() -> Response:
        b = _body()
        if "operating_limit" in b:
            sb.set_operating_limit(float(b["operating_limit"]))
        for method, seconds in (b.get("method_costs") or {}).items():
            sb.set_method_cost(method, float(seconds), b.get("portal"))
        if b.get("reset"):
            sb.reset_limits(b.get("portal"))
        return json_response({"operating_limit": sb.operating.limit})

    @bp.get("/faults")
    def faults() -> Response:
        return json_response([f.public() for f in sb.faults.pending()])

    @bp.post("/faults")
    def add_fault() -> Response:
        b = _body()
        member = sb.portal(b["portal"]).member_id if b.get("portal") else None
        fault = sb.faults.add(member, b["method"], str(b["mode"]), int(b.get("count", 1)),
                              seconds=float(b.get("seconds", 5.0)), error=b.get("error"),
                              status=b.get("status"), description=b.get("description"))
        return json_response(fault.public(), 201)

    @bp.delete("/faults")
    def clear_faults() -> Response:
        sb.faults.clear()
        return json_response({"cleared": True})

    @bp.get("/counters")
    def counters() -> Response:
        return json_response(sb.counters.snapshot())

    @bp.post("/counters/reset")
    def reset_counters() -> Response:
        sb.counters.reset()
        return json_response({"reset": True})

    @bp.get("/deliveries")
    def deliveries() -> Response:
        ref = request.args.get("portal")
        return json_response([d.public() for d in sb.deliveries(ref, request.args.get("event"))])

    @bp.delete("/deliveries")
    def clear_deliveries() -> Response:
        sb.outbox.clear()
        return json_response({"cleared": True})

    return bp
