"""Errors of the account stores."""

from __future__ import annotations


class Conflict(Exception):
    """The name is taken, or the row already exists."""


class NotFound(Exception):
    """No such user, organization, team, robot, token or grant."""
