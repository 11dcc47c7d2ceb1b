"""Ed25519 keys and signed JSON (the Matrix "Signing JSON" algorithm), done by `signedjson` and
`canonicaljson`: the libraries Synapse itself verifies our signatures with, so what we sign is
byte for byte what the homeserver checks. This module only adapts them: a key is named by its
public key, as cross-signing keys are (`ed25519:<public key>`); signing returns a copy instead of
changing its input; verifying hostile input answers yes or no instead of raising.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import signedjson.types

ED25519 = "ed25519"


def _signedjson() -> Any:
    """signedjson (and PyNaCl under it), imported at first use: keys are signed and checked after
    the first answer of a start (the bot's identity) or for an encrypted room's senders, and the
    import is not worth paying before."""
    import signedjson.key
    import signedjson.sign

    return signedjson


class SigningKey:
    """An Ed25519 private key, named by its public key. Its repr never shows the seed."""

    __slots__ = ("_key", "public")

    def __init__(self, key: signedjson.types.SigningKey) -> None:
        signedjson = _signedjson()
        self.public: str = signedjson.key.encode_verify_key_base64(signedjson.key.get_verify_key(key))
        key.version = self.public  # so that signedjson signs as `ed25519:<public key>`
        self._key = key

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(_signedjson().key.generate_signing_key(""))

    @classmethod
    def from_seed_b64(cls, text: str) -> SigningKey:
        """From the seed as the keys file stores it (32 bytes, unpadded base64)."""
        if not isinstance(text, str):
            raise ValueError("a seed is a base64 string")
        return cls(_signedjson().key.decode_signing_key_base64(ED25519, "", text))

    @property
    def key_id(self) -> str:
        return f"{ED25519}:{self.public}"

    def seed_b64(self) -> str:
        """Unpadded standard base64, as the keys file stores it."""
        return _signedjson().key.encode_signing_key_base64(self._key)

    def sign_json(self, obj: Mapping[str, Any], signer_user_id: str) -> dict[str, Any]:
        """A copy of `obj` (without `unsigned`) with this key's signature added to its `signatures`."""
        signed = copy.deepcopy(dict(obj))
        signed.pop("unsigned", None)
        return _signedjson().sign.sign_json(signed, signer_user_id, self._key)

    def __repr__(self) -> str:
        return f"SigningKey(public={self.public!r})"


def sign_json(obj: Mapping[str, Any], signer_user_id: str, key: SigningKey) -> dict[str, Any]:
    return key.sign_json(obj, signer_user_id)


def verify_signed_json(obj: Any, signer_user_id: str, public_key: Any, key_name: str | None = None) -> bool:
    """Whether `obj` carries a valid signature of `signer_user_id`'s Ed25519 key `public_key`.

    Cross-signing keys sign as `ed25519:<public key>`; a device signs as `ed25519:<device ID>` (`key_name`).
    Anything malformed (hostile input from the homeserver) is simply not a valid signature."""
    if not isinstance(obj, Mapping) or not isinstance(public_key, str):
        return False
    signedjson = _signedjson()
    try:
        verify_key = signedjson.key.decode_verify_key_base64(ED25519, key_name or public_key, public_key)
        signedjson.sign.verify_signed_json(obj, signer_user_id, verify_key)
    except (signedjson.sign.SignatureVerifyException, ValueError, TypeError, RecursionError):
        return False
    return True
