"""The stores a test's dispatcher is handed, as the app hands them (bot/app.py)."""

from __future__ import annotations

from typing import Any

from bot.state.stores import Stores


def dispatcher_stores(stores: Stores) -> dict[str, Any]:
    return {"confirmations": stores.confirmations, "journal": stores.journal, "audit": stores.audit,
            "undo": stores.undo, "job_store": stores.jobs, "meta": stores.meta, "identity_pins": stores.identities}
