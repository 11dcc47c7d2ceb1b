"""The bot's three private cross-signing keys and the file that keeps them.

The file lives under the storage directory (`crypto/cross_signing_keys.json`, mode 0600), is
created once and reused on every start. Its format (version 1) is a JSON object with the bot's
user ID and the three Ed25519 seeds as unpadded standard base64:
`{"version": 1, "user_id": …, "master": …, "self_signing": …, "user_signing": …}`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.matrix.crypto.signing import SigningKey
from bot.records import record

log = logging.getLogger(__name__)

KEYS_FILE_NAME = "cross_signing_keys.json"
KEYS_FILE_VERSION = 1
FILE_MODE = 0o600


@record
class CrossSigningKeys:
    """The bot's three private cross-signing keys."""

    user_id: str
    master: SigningKey
    self_signing: SigningKey
    user_signing: SigningKey

    @classmethod
    def generate(cls, user_id: str) -> CrossSigningKeys:
        return cls(user_id, SigningKey.generate(), SigningKey.generate(), SigningKey.generate())

    def _key_object(self, usage: str, key: SigningKey) -> dict[str, Any]:
        return {"user_id": self.user_id, "usage": [usage], "keys": {key.key_id: key.public}}

    def upload_body(self) -> dict[str, Any]:
        """The body of POST /keys/device_signing/upload: the public keys, the sub-keys signed by the master key."""
        return {
            "master_key": self._key_object("master", self.master),
            "self_signing_key": self.master.sign_json(self._key_object("self_signing", self.self_signing), self.user_id),
            "user_signing_key": self.master.sign_json(self._key_object("user_signing", self.user_signing), self.user_id),
        }

    def sign_device(self, device_keys: Mapping[str, Any]) -> dict[str, Any]:
        """The device's keys, as published, with the self-signing key's signature (for /keys/signatures/upload)."""
        return self.self_signing.sign_json(device_keys, self.user_id)

    # -- the file format

    def to_json(self) -> dict[str, Any]:
        return {
            "version": KEYS_FILE_VERSION,
            "user_id": self.user_id,
            "master": self.master.seed_b64(),
            "self_signing": self.self_signing.seed_b64(),
            "user_signing": self.user_signing.seed_b64(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CrossSigningKeys:
        if data.get("version") != KEYS_FILE_VERSION:
            raise ValueError(f"unknown version {data.get('version')!r}")
        return cls(
            str(data["user_id"]),
            SigningKey.from_seed_b64(data["master"]),
            SigningKey.from_seed_b64(data["self_signing"]),
            SigningKey.from_seed_b64(data["user_signing"]),
        )


class KeysFileError(RuntimeError):
    """The keys file exists but cannot be used; never overwritten silently."""


def keys_path(storage_directory: Path) -> Path:
    return storage_directory / "crypto" / KEYS_FILE_NAME


def load_keys(path: Path, user_id: str) -> CrossSigningKeys | None:
    """The bot's keys, or None when there is no file yet. A file readable by others is tightened to 0600."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o); made it owner-only", path, mode)
        path.chmod(FILE_MODE)
    try:
        keys = CrossSigningKeys.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # The message names the problem, never the content.
        raise KeysFileError(f"{path} cannot be read as the bot's cross-signing keys ({type(exc).__name__}); "
                            "move it away only if you mean to give the bot a new identity") from None
    if keys.user_id != user_id:
        raise KeysFileError(f"{path} holds the cross-signing keys of {keys.user_id}, not of {user_id}")
    return keys


def save_keys(path: Path, keys: CrossSigningKeys) -> None:
    """Write atomically; the file is created 0600 (never world-readable, not even for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".cross_signing.", dir=path.parent)  # mkstemp creates 0600
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(keys.to_json(), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def file_mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None
