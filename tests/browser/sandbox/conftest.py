"""The sandbox's own fixtures (tests/integration/sandbox), for its page and frame protocol in Chromium."""
from tests.integration.sandbox.conftest import card, sb, server, stub

__all__ = ["card", "sb", "server", "stub"]
