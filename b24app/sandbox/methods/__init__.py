"""Portal REST methods. Importing this package registers every method in `REGISTRY`."""
from . import activities, badges, batch, bindings, users  # noqa: F401 - registration side effects
from .base import REGISTRY, CallContext, MethodSpec, Paged

__all__ = ["REGISTRY", "CallContext", "MethodSpec", "Paged"]
