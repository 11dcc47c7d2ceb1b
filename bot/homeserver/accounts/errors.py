"""The account backends' own refusal: what the homeserver clients' floor says when an operation
cannot go where the account lives (MAS unreachable, an account MAS does not know, a link of
someone else…). The handler API turns it into a command's answer (bot/handler_api/spec.py), so
this floor never imports the one above it."""

from __future__ import annotations


class AccountRefused(Exception):
    """An account operation cannot be done as asked; nothing was changed. The text is the answer."""
