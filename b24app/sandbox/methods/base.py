"""What a REST method implementation sees, and how methods register themselves."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import RestError, param_missing, param_wrong_type

if TYPE_CHECKING:
    from ..models import Installation, Portal, User, Webhook
    from ..sandbox import Sandbox


@dataclass
class CallContext:
    """One authenticated caller on one portal: an app token (client_id set) or a webhook."""

    sandbox: Sandbox
    portal: Portal
    user: User
    scopes: set[str]
    now: float
    client_id: str | None = None
    webhook: Webhook | None = None
    installation: Installation | None = None
    access_expires: float | None = None
    force_500: bool = False  # an apply_then_500 fault fired inside this request (batch)
    delay: float = 0.0  # a delay fault fired: answer this many seconds late
    dispatcher: Any = None

    @property
    def is_app(self) -> bool:
        return self.client_id is not None

    @property
    def caller_key(self) -> str:
        """Operating time is accounted per app or per webhook (docs/bitrix24-protocol.md §4.2)."""
        return self.client_id if self.client_id else f"webhook:{self.webhook.id if self.webhook else 0}"


@dataclass
class Paged:
    """A list result: adds top-level `next`/`total` to the envelope (docs/bitrix24-protocol.md §3.2)."""

    result: Any
    total: int | None = None
    next: int | None = None


MethodFn = Callable[[CallContext, dict[str, Any]], Any]


@dataclass
class MethodSpec:
    name: str
    fn: MethodFn
    scope: str | None = None  # None: basic methods, always allowed
    alt_scopes: tuple[str, ...] = field(default_factory=tuple)

    def allowed(self, scopes: set[str]) -> bool:
        if self.scope is None:
            return True
        return self.scope in scopes or any(s in scopes for s in self.alt_scopes)


REGISTRY: dict[str, MethodSpec] = {}


def rest_method(name: str, scope: str | None = None,
                alt_scopes: tuple[str, ...] = ()) -> Callable[[MethodFn], MethodFn]:
    def register(fn: MethodFn) -> MethodFn:
        REGISTRY[name] = MethodSpec(name, fn, scope, alt_scopes)
        return fn
    return register


# -- parameter helpers shared by Engine-controller style methods (binder errors, code 100) ----------
_MISSING = object()


def required(params: dict[str, Any], name: str) -> Any:
    if name not in params or params[name] is None:
        raise param_missing(name)
    return params[name]


def as_int(params: dict[str, Any], name: str, default: Any = _MISSING) -> Any:
    """`int $name` of an Engine action: missing -> 100 (unless defaulted), non-numeric -> 100."""
    if name not in params or params[name] is None:
        if default is _MISSING:
            raise param_missing(name)
        return default
    value = params[name]
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise param_wrong_type(name, value, "int")


def as_str(params: dict[str, Any], name: str, default: Any = _MISSING) -> Any:
    if name not in params or params[name] is None:
        if default is _MISSING:
            raise param_missing(name)
        return default
    value = params[name]
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, str | int | float):
        return str(value)
    raise param_wrong_type(name, value, "string")


def as_array(params: dict[str, Any], name: str, default: Any = _MISSING) -> Any:
    """`array $name`: a JSON object/list or a bracket array; scalars -> 100."""
    if name not in params or params[name] is None:
        if default is _MISSING:
            raise param_missing(name)
        return default
    value = params[name]
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    if value == "":
        return {}
    raise param_wrong_type(name, value, "array")


def upper_keys(params: dict[str, Any]) -> dict[str, Any]:
    """Old-style REST methods read params case-insensitively (array_change_key_case)."""
    return {str(k).upper(): v for k, v in params.items()}


def require_admin(ctx: CallContext) -> None:
    """Portal-admin check for old-style methods (AccessException, 403)."""
    if not ctx.user.admin:
        raise RestError("ACCESS_DENIED", "Access denied!", 403)
