"""Accounts, wherever they live: matrix-authentication-service (MAS) or Synapse.

- home.py: where an account lives (`AccountHome`) and the rules for finding it;
- directory.py: `Accounts`, what handlers get as `ctx.accounts`: `for_user(user)` finds the home
  once and hands back its backend;
- base.py: the backend interface (`Account`); synapse.py and mas.py: its two implementations;
- mas_reads.py: what the backends (and a few commands) read from MAS;
- errors.py: `AccountRefused`, this floor's refusal, which the handler API turns into an answer.
"""

from __future__ import annotations

from bot.homeserver.accounts.base import Account, Created, IdRemoval, Logins
from bot.homeserver.accounts.directory import Accounts
from bot.homeserver.accounts.errors import AccountRefused
from bot.homeserver.accounts.home import AccountDirectory, AccountHome, Home

__all__ = ["Account", "AccountDirectory", "AccountHome", "AccountRefused", "Accounts", "Created", "Home", "IdRemoval",
           "Logins"]
