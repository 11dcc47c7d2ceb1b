"""Cross-signing for the bot's own account, and checking other people's devices. matrix-nio has none.

Clients in "exclude insecure devices" mode (MSC4153; Element's default direction) share room keys
only with devices that their owner has cross-signed, and do not decrypt messages from other
devices. So the bot owns a cross-signing identity: a master key, which signs a self-signing key
(which signs the bot's device) and a user-signing key, created once and reused on every start —
a new master key would show up in every client as an identity reset.

The package, bottom up:
- `signing`   Ed25519 keys, signing and verifying JSON, through `signedjson`/`canonicaljson`
              (the libraries Synapse verifies our signatures with);
- `keyfile`   the bot's three private keys and their file (0600, format version 1);
- `keys_api`  the client-server key endpoints (query, upload signing keys with interactive auth,
              upload signatures) and what the homeserver publishes, verified here;
- `identity`  the orchestration: ensure the identity at start, sign the bot's device, inspect it
              for `check`, replace it on the operator's request.

The homeserver is trusted to relay keys, not to forge them: every signature read back from
/keys/query is verified. Private keys never appear in a log line, a repr or an exception.
"""
