"""What a start pays for before its first answer (issue 23): only the imports it needs, and no CA
bundle for a homeserver reached over plain HTTP. Timing stays in bench/coldstart.py."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

from bot.homeserver.http import tls_context

ROOT = Path(__file__).resolve().parents[2]

# Loaded only when needed: metrics (`metrics.bind` set), signing (the bot's identity, after the first
# answer; an encrypted room's senders).
NOT_BEFORE_THE_FIRST_ANSWER = ("prometheus_client", "signedjson", "nacl")
# What a start loads before its first answer: the console, the app and the command table.
STARTED = "import bot.cli, bot.app\nfrom commands import load_table\nload_table()\n"


def _in_a_new_interpreter(script: str) -> Any:
    """What `script`, run by a new interpreter from this tree, writes last on standard error (JSON)."""
    done = subprocess.run([sys.executable, "-c", "import sys, json\n" + script], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True, capture_output=True, text=True)
    return json.loads(done.stderr.strip().splitlines()[-1])


def test_a_start_imports_neither_metrics_nor_signing() -> None:
    loaded = set(_in_a_new_interpreter(
        STARTED + "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})), file=sys.stderr)\n"))
    assert "nio" in loaded and "httpx" in loaded  # the check sees what a start imports
    assert loaded.isdisjoint(NOT_BEFORE_THE_FIRST_ANSWER), loaded & set(NOT_BEFORE_THE_FIRST_ANSWER)


def test_a_plain_http_client_gets_a_context_that_trusts_nothing_and_https_the_ca_bundle() -> None:
    plain = tls_context("http://127.0.0.1:8008")
    assert plain.verify_mode == ssl.CERT_REQUIRED and plain.check_hostname
    assert plain.cert_store_stats()["x509_ca"] == 0  # no bundle loaded; a TLS connection would fail closed
    verified = tls_context("https://matrix.example.org")
    assert verified.verify_mode == ssl.CERT_REQUIRED and verified.check_hostname
    assert verified.cert_store_stats()["x509_ca"] > 0
    assert tls_context() is verified and tls_context("HTTPS://other.example") is verified  # loaded once
    assert tls_context("http://elsewhere:80") is plain


def test_the_record_types_a_start_loads_compile_only_their_init() -> None:
    """`@dataclass(frozen=True)` compiles six methods a class on Python 3.11 (bot/records.py: `record`)."""
    counted, frozen = _in_a_new_interpreter(STARTED + (
        "import dataclasses\n"
        "found = {c for m in list(sys.modules.values()) for c in vars(m).values()\n"
        "         if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__.split('.')[0] in ('bot', 'commands')}\n"
        "frozen = sorted(f'{c.__module__}.{c.__qualname__}' for c in found if c.__dataclass_params__.frozen)\n"
        "print(json.dumps([len(found), frozen]), file=sys.stderr)\n"
    ))
    assert counted > 150  # the check sees the record types
    assert frozen == [], f"declare these with bot.records.record: {frozen}"


def test_the_console_leaves_what_its_imports_made_out_of_the_cyclic_collector() -> None:
    frozen, collecting, nio_loaded = _in_a_new_interpreter(
        "import gc\n"
        "from bot.__main__ import main\n"
        "sys.argv = ['synapse-admin-bot', '--version']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps([gc.get_freeze_count(), gc.isenabled(), 'nio' in sys.modules]), file=sys.stderr)\n"
    )
    assert nio_loaded and collecting
    assert frozen > 50_000  # the bot's and nio's modules, classes and tables
