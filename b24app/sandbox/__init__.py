"""The sandbox portal: a faithful local Bitrix24 (OAuth server + portals) for tests and developers.

It follows docs/bitrix24-protocol.md and imports nothing from the rest of `b24app` (it is the
other side of the wire). Start it with `start_sandbox()`; see docs/SANDBOX.md.
"""
from .errors import RestError, SandboxError
from .launcher import SandboxServer, start_sandbox
from .models import AppCard, Portal, PortalSettings, User
from .sandbox import Sandbox

__all__ = ["AppCard", "Portal", "PortalSettings", "RestError", "Sandbox", "SandboxError", "SandboxServer", "User",
           "start_sandbox"]
