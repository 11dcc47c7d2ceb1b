"""matrix-authentication-service (MAS) next to Synapse: whether the homeserver delegates its
accounts to MAS, and `check`'s probe of MAS. (The MAS client itself is built by bot/wiring.py.)

The CLI and the app use it; commands see only the detection result (`MASDetection`) and the client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from bot.config import MASConfig, TokenSource
from bot.homeserver.login import AUTH_METADATA_PATHS
from bot.homeserver.http import tls_context
from bot.homeserver.mas_api import ADMIN_SCOPE, MASAPIError, MissingScope, ScopeRefused, TokenError
from bot.text.untrusted import inline
from bot.homeserver.mas_api.paths import V1
from bot.wiring import mas_client
from bot.records import record

Say = Callable[[bool, str], None]
GUIDE = "README: ESS / MAS"


@record
class MASDetection:
    """Where this homeserver's accounts live, for `check` and for replies.

    `delegated`: True when the homeserver advertises OAuth 2.0 auth metadata (MSC2965 — what
    Synapse does when MAS handles its accounts), False when it does not, None when that could not
    be told (`error` says why). `issuer` is what the homeserver names as its authorization server
    (MAS's public base URL); `mas_url` is the configured `mas.url` (None without a `mas:` section).
    """

    delegated: bool | None
    issuer: str | None = None
    account_management_uri: str | None = None
    mas_url: str | None = None
    error: str | None = None

    @property
    def configured(self) -> bool:
        return self.mas_url is not None

    @property
    def needs_configuration(self) -> bool:
        """MAS holds the accounts, but the bot has no `mas:` section to reach it."""
        return bool(self.delegated) and not self.configured

    def advice(self) -> str | None:
        """One sentence for a reply or `check` about what the operator should configure, or None."""
        if not self.needs_configuration:
            return None
        where = f" ({self.issuer})" if self.issuer else ""
        suggestion = f"url: {self.issuer.rstrip('/')}" if self.issuer else "url"
        return (f"This homeserver delegates its accounts to matrix-authentication-service{where}: accounts, "
                "passwords, sessions, e-mail addresses and single-sign-on links live there, not in Synapse. "
                f"Add a `mas:` section to the bot's config ({suggestion}, and a credential with the {ADMIN_SCOPE} "
                f"scope) so that the bot can manage them; see {GUIDE}.")


async def detect_mas(
    homeserver_url: str, *, mas_url: str | None = None, transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 10.0,
) -> MASDetection:
    """Ask the homeserver (no token needed) whether it delegates auth: `GET /_matrix/client/v1/auth_metadata`,
    then the unstable MSC2965 path that older homeservers serve."""
    async with httpx.AsyncClient(base_url=homeserver_url.rstrip("/"), timeout=timeout, transport=transport,
                                 follow_redirects=False, verify=tls_context(homeserver_url),
                                 headers={"User-Agent": "synapse-admin-bot"}) as http:
        for path in AUTH_METADATA_PATHS:
            try:
                response = await http.get(path)
            except httpx.HTTPError as exc:
                return MASDetection(None, mas_url=mas_url, error=f"cannot reach the homeserver ({type(exc).__name__})")
            if response.status_code in (404, 405):
                continue  # not served: try the next path
            if response.status_code != 200:
                return MASDetection(None, mas_url=mas_url, error=f"{path} answered HTTP {response.status_code}")
            try:
                data = response.json()
            except ValueError:
                return MASDetection(None, mas_url=mas_url, error=f"{path} answered something other than JSON")
            if not isinstance(data, dict) or not isinstance(data.get("issuer"), str):
                return MASDetection(None, mas_url=mas_url, error=f"{path} answered without an issuer")
            return MASDetection(True, issuer=inline(data["issuer"], 200),
                                account_management_uri=_text(data.get("account_management_uri")), mas_url=mas_url)
    return MASDetection(False, mas_url=mas_url)


def _text(value: Any) -> str | None:
    return inline(value, 200) if isinstance(value, str) else None


async def probe_mas(
    config: MASConfig, say: Say, *, on_secret: Callable[[str], None] | None = None,
    transport: httpx.AsyncBaseTransport | None = None, timeout: float = 15.0,
) -> bool:
    """`check`'s lines for MAS: reachable (and serving the admin API), credential accepted, and the
    credential has the admin scope. True when all passed. Never prints a token or a secret."""
    if not await _probe_reachable(config.url, say, transport=transport, timeout=timeout):
        return False
    what = (f"MAS client {config.client_id} (client-credentials grant)" if config.uses_client_credentials
            else f"MAS token from {_where(config.token)}")
    api = mas_client(config, on_secret=on_secret, transport=transport, timeout=timeout, max_retries=0)
    try:
        version = await api.version()
    except ScopeRefused as exc:
        say(True, f"{what}: valid (MAS authenticates the client)")
        why = f"{exc.oauth_error}: {exc.description}" if exc.description else exc.oauth_error
        say(False, f"{what}: MAS refuses it the {ADMIN_SCOPE} scope ({why}). {exc.hint}")
        return False
    except MissingScope as exc:
        say(True, f"{what}: valid")
        say(False, f"{what}: lacks the {ADMIN_SCOPE} scope. {exc.hint}")
        return False
    except TokenError as exc:
        say(False, f"{what}: not valid: {exc.error}. {exc.hint}")
        return False
    except MASAPIError as exc:
        say(False, f"{what}: not valid: {exc.errcode}: {exc.error}. {exc.hint}".rstrip(". ") + ".")
        return False
    finally:
        await api.aclose()
    say(True, f"{what}: valid")
    say(True, f"{what}: has the {ADMIN_SCOPE} scope (MAS {version} at {config.url})")
    return True


def _where(source: TokenSource | None) -> str:
    if source is None:
        return "nowhere"
    return str(source.file) if source.file is not None else source.key


async def _probe_reachable(url: str, say: Say, *, transport: httpx.AsyncBaseTransport | None, timeout: float) -> bool:
    """Without a token MAS answers its admin API with 400 (missing header) or 401: then it serves it."""
    target = url.rstrip("/") + str(V1.version)
    async with httpx.AsyncClient(timeout=timeout, transport=transport, follow_redirects=False, verify=tls_context(),
                                 headers={"User-Agent": "synapse-admin-bot"}) as http:
        try:
            response = await http.get(target)
        except httpx.HTTPError as exc:
            say(False, f"MAS not reachable at {url}: {type(exc).__name__}")
            return False
    if response.status_code in (400, 401, 200):
        say(True, f"MAS reachable at {url}; it serves the admin API")
        return True
    if response.status_code == 404:
        say(False, f"MAS at {url} does not serve the admin API (404 for /api/admin/v1/): add the `adminapi` resource "
                   "to one of its http.listeners, and point mas.url at that listener")
    elif response.is_redirect:
        say(False, f"MAS at {url} answers with a redirect, which the bot does not follow: point mas.url at the final address")
    else:
        say(False, f"MAS at {url} answers HTTP {response.status_code} for its admin API")
    return False


async def check_mas(
    homeserver_url: str, config: MASConfig | None, say: Say, note: Callable[[str], None], *,
    on_secret: Callable[[str], None] | None = None, transport: httpx.AsyncBaseTransport | None = None,
) -> MASDetection:
    """`check`: where the accounts live, and with a `mas:` section, whether the bot can manage them there."""
    detection = await detect_mas(homeserver_url, mas_url=config.url if config else None, transport=transport)
    if config is None:
        advice = detection.advice()
        if advice is not None:
            note(advice)
        elif detection.delegated is False:
            say(True, "accounts: managed by Synapse itself (the homeserver advertises no delegated authentication)")
        else:
            note(f"could not tell whether the homeserver delegates its accounts to MAS: {detection.error}")
        return detection
    if detection.delegated is False:
        note("a `mas:` section is set, but the homeserver advertises no delegated authentication: "
             "is mas.url the service this homeserver uses?")
    elif detection.delegated:
        say(True, f"accounts: the homeserver delegates them to matrix-authentication-service ({detection.issuer})")
    await probe_mas(config, say, on_secret=on_secret, transport=transport)
    return detection
