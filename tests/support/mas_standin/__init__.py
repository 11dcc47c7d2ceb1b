"""A stand-in matrix-authentication-service (MAS) for the tests: a real loopback HTTP server.

MAS cannot be installed on these machines, so the tests talk to this instead. It serves the MAS
admin API under `/api/admin/v1/` from MAS's published description (docs/mas-admin-api-spec.json)
and:
- KEEPS STATE — users (with ULIDs), compatibility / OAuth 2.0 / browser / personal sessions,
  e-mail addresses, upstream providers and links, registration tokens, OAuth 2.0 clients — so
  that tests assert effects, not calls;
- implements the semantics that matter, as MAS's handlers do (crates/handlers/src/admin/v1/):
  cursor paging by ID (`page[first|last|after|before]`, `count`, `meta.count`, `links.next`),
  the filters, deactivation that ends every session, drops the e-mail addresses and asks the
  homeserver to ERASE the account unless `skip_erase: true`, lock/unlock, finishing sessions,
  the 400/404/409 answers;
- VALIDATES every request it receives and every answer it gives against the description. A request
  or an answer that does not validate is answered with HTTP 500 naming the problem, and recorded in
  `violations` (the `mas` fixture fails the test at teardown when any is left);
- serves an OpenID discovery document and a token endpoint for the client-credentials grant,
  issuing short-lived tokens with the `urn:mas:admin` scope (or refusing the scope, as MAS's
  policy does for a client outside `policy.data.admin_clients`);
- can be switched down: connection refused, or 503 to everything.

Seeding: `add_user("alice")`, or `add_account(account)` for an account registered on the real
test Synapse (same localpart, plus a compatibility session for its device), or
`await add_synapse_users(hs.url, admin_token)` for all of them at once, then
`add_compat_session`, `add_oauth2_session`, `add_browser_session`, `add_email`, `add_provider`,
`add_link`, `add_registration_token`, `add_personal_session`, `add_client`.
"""

from .records import ADMIN_SCOPE, PREFIX, Answer, Client, Provider, User
from .server import SPEC_PATH, MASStandIn, description, running_standin

__all__ = ["ADMIN_SCOPE", "PREFIX", "SPEC_PATH", "Answer", "Client", "MASStandIn", "Provider", "User", "description",
           "running_standin"]
