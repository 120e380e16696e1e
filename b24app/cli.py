"""`flask --app app b24 …`: operate the installations from a shell."""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Sequence

import click
from flask import Flask
from flask.cli import with_appcontext

from .config import Config
from .container import PortalServices
from .errors import AppError, ConfigIncomplete
from .portals.frames import unflatten
from .storage.installations import PortalState
from .storage.purge import purge_portal_data
from .web.common import portal_services, services

AppFactory = Callable[[Config], Flask]


def _portal_services() -> PortalServices:
    try:
        return portal_services()
    except ConfigIncomplete:
        raise click.ClickException("B24_CLIENT_ID and B24_CLIENT_SECRET are not set") from None


def _age(seconds_since: float) -> str:
    if not seconds_since:
        return "-"
    delta = max(0, time.time() - seconds_since)
    if delta < 3600:
        return f"{int(delta // 60)}m"
    if delta < 86400 * 2:
        return f"{delta / 3600:.1f}h"
    return f"{delta / 86400:.1f}d"


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def make_group(app_factory: AppFactory) -> click.Group:
    """The `b24` command group; `app_factory` builds the app the `sandbox` command serves."""
    group = click.Group("b24", help="Activity Badges operations: portals, tokens, manifest, sandbox.")
    for command in (portals, show, refresh, forget, manifest, keepalive, call):
        group.add_command(command)
    group.add_command(_sandbox_command(app_factory))
    return group


@click.command("portals")
@with_appcontext
def portals() -> None:
    """List installed portals with state, token age and last error."""
    records = list(services().store.iter_all())
    if not records:
        click.echo("No portals have installed the app yet.")
        return
    click.echo(_table(
        ("MEMBER_ID", "DOMAIN", "STATE", "PLAN", "OWNER", "TOKEN AGE", "LAST ERROR"),
        ((r.member_id, r.domain, r.state.value, r.plan or "-", r.owner_user_id or "-", _age(r.token_issued_at),
          (r.last_error or "")[:60]) for r in records)))


@click.command("show")
@click.argument("member_id")
@with_appcontext
def show(member_id: str) -> None:
    """Show one portal (secrets are never printed)."""
    record = services().store.get(member_id)
    if record is None:
        raise click.ClickException(f"no portal with member_id {member_id}")
    expires = record.expires_at - time.time()
    rows = [
        ("member_id", record.member_id), ("domain", record.domain), ("client_endpoint", record.client_endpoint),
        ("state", record.state.value), ("plan", record.plan or "-"), ("scope", record.scope or "-"),
        ("app version", record.app_version), ("token owner (user id)", record.owner_user_id or "-"),
        ("tokens", "present" if record.has_tokens else "absent"),
        ("access token", f"expires in {int(expires)} s" if expires > 0 else "expired"),
        ("application_token", "present" if record.application_token else "absent"),
        ("installed", time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(record.installed_at))),
        ("token age", _age(record.token_issued_at)), ("last error", record.last_error or "-"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key.ljust(width)}  {value}")


@click.command("refresh")
@click.argument("member_id")
@with_appcontext
def refresh(member_id: str) -> None:
    """Refresh a portal's token chain now (single-flight with every running worker)."""
    tokens = _portal_services().tokens
    try:
        current = tokens.require(member_id)
        record = tokens.refresh(member_id, current.access_token)
    except AppError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{member_id}: refreshed, access token valid for {int(record.expires_at - time.time())} s")


@click.command("forget")
@click.argument("member_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def forget(member_id: str, yes: bool) -> None:
    """Delete everything stored for a portal (record, tokens, caches)."""
    found = services()
    if found.store.get(member_id) is None:
        raise click.ClickException(f"no portal with member_id {member_id}")
    if not yes:
        click.confirm(f"Delete everything stored for {member_id}?", abort=True)
    purge_portal_data(found.redis, member_id)
    found.store.delete(member_id)
    click.echo(f"{member_id}: forgotten")


@click.command("manifest")
@with_appcontext
def manifest() -> None:
    """What to enter in the Bitrix24 developer console, from install.json and B24_APP_URL."""
    found = services()
    app_url = found.config.app_url
    if not app_url:
        raise click.ClickException("B24_APP_URL is not set: it is the public https base URL of this backend")
    m = found.manifest
    click.echo(f"{m.name} (version {m.version}) — Bitrix24 developer console settings\n")
    click.echo(_table(("FIELD", "VALUE"), [
        ("Application URL (handler path)", m.url(app_url, "app")),
        ("Initial installation path / installer URL", m.url(app_url, "install")),
        ("Redirect URI (OAuth callback)", m.url(app_url, "oauth_callback")),
        ("Access permissions (scopes)", ", ".join(m.scopes)),
        ("Option", "'Add custom page and menu item' on (the app has a UI with an installer)"),
    ]))
    click.echo("\nBound automatically on install and update (not entered in the console):")
    for event in m.events:
        click.echo(f"  event     {event:<22} -> {m.url(app_url, 'events')}")
    for placement in m.placements:
        click.echo(f"  placement {placement.placement:<22} -> {m.url(app_url, placement.handler)}"
                   f"  ({placement.title.get('en', '')})")
    for robot in m.robots:
        click.echo(f"  robot     {robot.code:<22} -> {m.url(app_url, robot.handler)}  ({robot.name.get('en', '')})")


@click.command("keepalive")
@click.option("--idle-days", default=20.0, show_default=True,
              help="Refresh chains whose tokens were issued more than this many days ago.")
@with_appcontext
def keepalive(idle_days: float) -> None:
    """Refresh long-idle token chains so the refresh token never dies of old age (28/180 days)."""
    tokens = _portal_services().tokens
    cutoff = time.time() - idle_days * 86400
    refreshed = failed = 0
    for record in services().store.iter_all():
        if record.state != PortalState.ACTIVE or not record.token_issued_at or record.token_issued_at > cutoff:
            continue
        try:
            tokens.refresh(record.member_id, record.access_token)
            refreshed += 1
        except AppError as exc:
            failed += 1
            click.echo(f"{record.member_id}: {exc}", err=True)
    click.echo(f"keepalive: {refreshed} refreshed, {failed} failed (idle > {idle_days:g} days)")


@click.command("call")
@click.argument("member_id")
@click.argument("method")
@click.argument("params", nargs=-1)
@with_appcontext
def call(member_id: str, method: str, params: tuple[str, ...]) -> None:
    """Call a REST method for a portal: `b24 call MEMBER crm.activity.badge.add code=missedCall type=failure`.

    Values are parsed as JSON when they are valid JSON (numbers, objects), else taken as strings;
    `title[en]=Call` style keys build nested objects.
    """
    flat: dict[str, object] = {}
    for item in params:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {item!r}")
        try:
            flat[key] = json.loads(raw)
        except ValueError:
            flat[key] = raw
    try:
        payload = unflatten(flat)
        result = _portal_services().clients.portal(member_id).call(method, payload)
    except AppError as exc:
        raise click.ClickException(f"{exc.code}: {getattr(exc, 'message', exc.description)}") from None
    click.echo(json.dumps({"result": result.result, **({"total": result.total} if result.total is not None else {})},
                          ensure_ascii=False, indent=2))


def _sandbox_command(app_factory: AppFactory) -> click.Command:
    @click.command("sandbox")
    @click.option("--port", type=int, default=None,
                  help="Port of the app on 127.0.0.1 [default: the last run's, else 8000].")
    def sandbox(port: int | None) -> None:
        """Run the app against a local sandbox portal: no Bitrix24 account, tunnel or internet needed."""
        from werkzeug.serving import run_simple

        from . import devsandbox
        from .config import load_config, sandbox_environ
        from .rundir import AlreadyRunning, claim

        data_dir = load_config().data_dir
        try:
            held = claim(data_dir)
        except AlreadyRunning as exc:
            raise click.ClickException(str(exc)) from None
        wired = devsandbox.sandbox_app(data_dir, port)
        server, portal = devsandbox.start(wired.app_url, wired.client_id, wired.client_secret, wired.oauth_port,
                                          devsandbox.state_path(data_dir))
        try:
            environ = {**os.environ, "B24_ENV": "development", "B24_DATA_DIR": str(data_dir),
                       **(sandbox_environ(data_dir) or {})}
            app = app_factory(load_config(environ))
            held.announce(wired.app_url)
            click.echo(devsandbox.banner(wired.app_url, server.oauth_url, portal.base_url))
            run_simple("127.0.0.1", wired.app_port, app, threaded=True, use_reloader=False)
        finally:
            server.stop()

    return sandbox
