"""Federation destinations. Docs: https://element-hq.github.io/synapse/latest/usage/administration/admin_api/federation.html"""

from __future__ import annotations

from .base import Area


class FederationAPI(Area):
    pass
