"""A throwaway Synapse on loopback, for `synapse-admin-bot demo`, the tests and the benchmarks.

It runs the real `matrix-synapse` package (an optional dependency: the `demo` and `test`
extras) as a child process, in a temporary directory, on a free loopback port, with sqlite
(or PostgreSQL when asked), rate limits lifted and cheap password hashing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from bot.records import record

LOOPBACK = "127.0.0.1"

# Every limit Synapse applies to clients, raised out of the way: the demo and the tests
# send many requests from a handful of accounts in a few seconds.
_NO_LIMIT = {"per_second": 10000, "burst_count": 100000}
_RATE_LIMITS: dict[str, Any] = {
    "rc_message": _NO_LIMIT,
    "rc_registration": _NO_LIMIT,
    "rc_registration_token_validity": _NO_LIMIT,
    "rc_login": {"address": _NO_LIMIT, "account": _NO_LIMIT, "failed_attempts": _NO_LIMIT},
    "rc_admin_redaction": _NO_LIMIT,
    "rc_joins": {"local": _NO_LIMIT, "remote": _NO_LIMIT},
    "rc_joins_per_room": _NO_LIMIT,
    "rc_key_requests": _NO_LIMIT,
    "rc_3pid_validation": _NO_LIMIT,
    "rc_invites": {"per_room": _NO_LIMIT, "per_user": _NO_LIMIT, "per_issuer": _NO_LIMIT},
    "rc_third_party_invite": _NO_LIMIT,
    "rc_media_create": _NO_LIMIT,
    "rc_presence": {"per_user": _NO_LIMIT},
    "rc_delayed_event_mgmt": _NO_LIMIT,
    "rc_room_creation": _NO_LIMIT,
    "rc_reports": _NO_LIMIT,
    "rc_user_directory": _NO_LIMIT,
}


def _blocklist_without_loopback() -> list[str]:
    from synapse.config.server import DEFAULT_IP_RANGE_BLOCKLIST

    return [r for r in DEFAULT_IP_RANGE_BLOCKLIST if r not in ("127.0.0.0/8", "::1/128")]


class HomeserverError(RuntimeError):
    """The local homeserver could not be started or did not answer as expected."""


@record
class Account:
    """A user registered on the local homeserver, logged in on one device."""

    user_id: str
    password: str
    access_token: str
    device_id: str

    @property
    def localpart(self) -> str:
        return self.user_id[1:].split(":", 1)[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def synapse_available() -> bool:
    try:
        import synapse  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class PostgresDatabase:
    """Connection settings of a PostgreSQL database that Synapse should use."""

    host: str
    port: int
    user: str
    database: str
    password: str = ""

    def synapse_config(self) -> dict[str, Any]:
        args: dict[str, Any] = {
            "user": self.user,
            "database": self.database,
            "host": self.host,
            "port": self.port,
            "cp_min": 1,
            "cp_max": 5,
        }
        if self.password:
            args["password"] = self.password
        return {"name": "psycopg2", "args": args}


class LocalHomeserver:
    """One Synapse process. Use `async with LocalHomeserver() as hs:` or start()/stop()."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        server_name: str = "localhost",
        port: int | None = None,
        postgres: PostgresDatabase | None = None,
        extra_config: dict[str, Any] | None = None,
        federation: bool = False,
        log_level: str = "WARNING",
    ) -> None:
        self.log_level = log_level
        self._owns_root = root is None
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="synapse-admin-bot-hs-"))
        self.port = port or free_port()
        # With federation, the server is named after its TLS federation listener on loopback
        # ("127.0.0.1:<port>"), so that two local homeservers find each other without DNS.
        self.federation_port = free_port() if federation else None
        self.server_name = f"{LOOPBACK}:{self.federation_port}" if federation else server_name
        self.federation_peers: set[str] = {self.server_name}
        self.postgres = postgres
        self.extra_config = extra_config or {}
        self.shared_secret = hashlib.sha256(os.urandom(32)).hexdigest()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / "homeserver.log"

    def config(self) -> dict[str, Any]:
        database = (
            self.postgres.synapse_config()
            if self.postgres
            else {"name": "sqlite3", "args": {"database": str(self.root / "homeserver.db")}}
        )
        config: dict[str, Any] = {
            "server_name": self.server_name,
            "public_baseurl": self.url + "/",
            "pid_file": str(self.root / "homeserver.pid"),
            "listeners": self.config_listeners(),
            "database": database,
            "log_config": str(self.root / "log.yaml"),
            "media_store_path": str(self.root / "media"),
            "signing_key_path": str(self.root / "signing.key"),
            "registration_shared_secret": self.shared_secret,
            "report_stats": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "bcrypt_rounds": 4,
            "enable_registration": False,
            "url_preview_enabled": False,
            "presence": {"enabled": False},
            "federation_domain_whitelist": [],
            # A fresh database schedules background updates (some create unique indexes that
            # Synapse then relies on); run them at once instead of trickling over a minute.
            "background_updates": {
                "sleep_enabled": False,
                "background_update_duration_ms": 2000,
                "min_batch_size": 10000,
                "default_batch_size": 10000,
            },
            "server_notices": {
                "system_mxid_localpart": "notices",
                "system_mxid_display_name": "Server Notices",
                "room_name": "Server Notices",
            },
            **_RATE_LIMITS,
        }
        if self.federation_port is not None:
            config.update(self._federation_config())
        config.update(self.extra_config)
        return config

    def _federation_config(self) -> dict[str, Any]:
        listener = {
            "port": self.federation_port,
            "bind_addresses": [LOOPBACK],
            "type": "http",
            "tls": True,
            "x_forwarded": False,
            "resources": [{"names": ["federation"], "compress": False}],
        }
        return {
            "listeners": [*self.config_listeners(), listener],
            "tls_certificate_path": str(self.root / "tls.crt"),
            "tls_private_key_path": str(self.root / "tls.key"),
            "federation_verify_certificates": False,  # self-signed, loopback only
            # Synapse refuses private addresses, loopback included, for federation: allow loopback only.
            "ip_range_blacklist": _blocklist_without_loopback(),
            # Only the local peers named by the caller (`federate_with`); nobody by default.
            "federation_domain_whitelist": list(self.federation_peers),
            # Give up on an unreachable peer in a second, not after ten minutes of retries.
            "federation": {
                "client_timeout": "5s", "max_long_retry_delay": 100, "max_short_retry_delay": 100,
                "max_long_retries": 1, "max_short_retries": 1,
            },
        }

    def federate_with(self, *others: LocalHomeserver) -> None:
        """Allow federation with these local homeservers (call before start)."""
        self.federation_peers.update(o.server_name for o in others)

    def config_listeners(self) -> list[dict[str, Any]]:
        return [{
            "port": self.port,
            "bind_addresses": [LOOPBACK],
            "type": "http",
            "tls": False,
            "x_forwarded": False,
            "resources": [{"names": ["client", "federation"], "compress": False}],
        }]

    def _write_files(self) -> None:
        from signedjson.key import generate_signing_key, write_signing_keys

        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "media").mkdir(exist_ok=True)
        key_path = self.root / "signing.key"
        if not key_path.exists():
            with key_path.open("w") as handle:
                write_signing_keys(handle, [generate_signing_key("auto")])
        log_config = {
            "version": 1,
            "formatters": {"precise": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "formatter": "precise",
                    "filename": str(self.log_path),
                }
            },
            "root": {"level": self.log_level, "handlers": ["file"]},
            "disable_existing_loggers": False,
        }
        (self.root / "log.yaml").write_text(yaml.safe_dump(log_config))
        if self.federation_port is not None:
            self._write_self_signed_certificate()
        (self.root / "homeserver.yaml").write_text(yaml.safe_dump(self.config()))

    def _write_self_signed_certificate(self) -> None:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LOOPBACK)])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256())
        )
        (self.root / "tls.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        (self.root / "tls.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    async def start(self, timeout: float = 90.0) -> None:
        if not synapse_available():
            raise HomeserverError(
                "matrix-synapse is not installed: pip install 'synapse-admin-bot[demo]'"
            )
        self._write_files()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.root / "homeserver.yaml")],
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "stderr.log").open("wb"),
            start_new_session=True,
        )
        await self._wait_until_ready(timeout)

    async def _wait_until_ready(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=2.0) as http:
            while loop.time() < deadline:
                assert self._process is not None
                if self._process.poll() is not None:
                    raise HomeserverError(f"Synapse exited at start-up:\n{self.tail_logs()}")
                try:
                    if (await http.get("/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        await self.stop()
        raise HomeserverError(f"Synapse did not answer within {timeout:.0f}s:\n{self.tail_logs()}")

    def tail_logs(self, lines: int = 30) -> str:
        text = ""
        for name in ("stderr.log", "homeserver.log"):
            path = self.root / name
            if path.exists():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, 20)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)

    def cleanup(self) -> None:
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    async def __aenter__(self) -> LocalHomeserver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        self.cleanup()

    async def register(
        self,
        localpart: str,
        password: str | None = None,
        *,
        admin: bool = False,
        displayname: str | None = None,
    ) -> Account:
        """Create an account through the shared-secret registration endpoint."""
        password = password or hashlib.sha256(os.urandom(16)).hexdigest()[:24]
        async with httpx.AsyncClient(base_url=self.url, timeout=30.0) as http:
            nonce_response = await http.get("/_synapse/admin/v1/register")
            nonce_response.raise_for_status()
            nonce = nonce_response.json()["nonce"]
            mac = hmac.new(self.shared_secret.encode(), digestmod=hashlib.sha1)
            for part in (nonce, localpart, password, "admin" if admin else "notadmin"):
                mac.update(part.encode())
                if part != ("admin" if admin else "notadmin"):
                    mac.update(b"\x00")
            body: dict[str, Any] = {
                "nonce": nonce,
                "username": localpart,
                "password": password,
                "admin": admin,
                "mac": mac.hexdigest(),
            }
            if displayname:
                body["displayname"] = displayname
            response = await http.post("/_synapse/admin/v1/register", json=body)
            if response.status_code != 200:
                raise HomeserverError(f"registering {localpart} failed: {response.text}")
            data = response.json()
        return Account(data["user_id"], password, data["access_token"], data["device_id"])
