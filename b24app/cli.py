"""`flask --app app b24 …`: operate the installations from a shell."""
from __future__ import annotations

import click


@click.group("b24")
def b24() -> None:
    """Activity Badges operations."""
