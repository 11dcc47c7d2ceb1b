"""Registration tokens. Docs: https://element-hq.github.io/synapse/latest/usage/administration/admin_api/registration_tokens.html"""

from __future__ import annotations

from .base import Area


class RegistrationTokensAPI(Area):
    pass
