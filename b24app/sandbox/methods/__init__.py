"""Portal REST methods. Importing this package registers every method in `REGISTRY`."""
from . import activities, app, badges, batch, bindings, bizproc, system_activities, users  # noqa: F401 - registration
from .base import REGISTRY, CallContext, MethodSpec, Paged

__all__ = ["REGISTRY", "CallContext", "MethodSpec", "Paged"]
