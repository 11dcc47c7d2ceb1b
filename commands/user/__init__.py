"""`user` — local accounts: looking them up, moderating them, and cleaning up after them.

One module per concern; they are imported here in the order help lists their verbs. Commands
that act on an account ask `ctx.accounts.for_user(user)` for its backend (where the account
lives: matrix-authentication-service or Synapse) and call its typed methods.
"""

from __future__ import annotations

from ._common import existing, user
from .reading import accountdata, info, list_users, memberships, pushers, rooms, whois
from .activity import by_3pid, by_external_id, experimental_features, invites_sent, media, username_available
from .account import admin, create, reset_password
from .moderation import deactivate, lock, reactivate, shadow_ban, suspend
from .sessions import emails, logout, personal_sessions, sessions
from .devices import device, device_create, device_rename, devices
from .limits import account_validity, allow_cross_signing_reset, ratelimit
from .redaction import redact
from .external_ids import external_ids

__all__ = [
    "user", "existing", "list_users", "info", "whois", "rooms", "memberships", "pushers", "accountdata", "media",
    "invites_sent", "experimental_features", "by_3pid", "by_external_id", "username_available", "create",
    "reset_password", "admin", "suspend", "shadow_ban", "lock", "deactivate", "reactivate", "logout", "sessions",
    "emails", "personal_sessions", "devices", "device", "device_create", "device_rename", "ratelimit",
    "account_validity", "allow_cross_signing_reset", "redact", "external_ids",
]
