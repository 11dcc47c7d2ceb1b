"""The state directory's lock (bot/state/lock.py): exclusive, names its holder, released on close."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.state.lock import StateLock, StateLocked

ROOT = Path(__file__).resolve().parents[2]


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    with StateLock(tmp_path):
        with pytest.raises(StateLocked) as refused:
            StateLock(tmp_path).acquire()
        assert f"pid {os.getpid()}" in str(refused.value)
    with StateLock(tmp_path):  # released: the next one gets it
        pass


def test_the_lock_dies_with_a_killed_holder(tmp_path: Path) -> None:
    code = ("import os, sys; from pathlib import Path; from bot.state.lock import StateLock; "
            f"StateLock(Path({str(tmp_path)!r})).acquire(); print('held', flush=True); os.kill(os.getpid(), 9)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.strip() == "held" and done.returncode == -9
    with StateLock(tmp_path):
        pass
