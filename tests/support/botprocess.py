"""The bot as a process of its own (this tree), so that a test or a benchmark can kill it with
SIGKILL — no cleanup, no last write — and start it again on the same state directory.

    proc = BotProcess(world.config_dict(), state_dir)
    proc.start(); …; proc.kill(); proc.start(); …; await proc.stop()
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

import yaml

REPO = Path(__file__).resolve().parents[2]


class BotProcess:
    def __init__(self, config: dict[str, Any], state_dir: Path, *, tree: Path = REPO, log_level: str = "INFO",
                 log_format: str = "human") -> None:
        self.state_dir = state_dir
        self.tree = tree
        self.log_level = log_level
        self.log_format = log_format
        state_dir.mkdir(parents=True, exist_ok=True)
        self.config_path = state_dir / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = state_dir / "bot.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._log = self.log_path.open("ab")  # one log across restarts
        env = {**os.environ, "PYTHONPATH": str(self.tree)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "--log-level", self.log_level, "run", "--config", str(self.config_path),
             "--log-format", self.log_format],
            cwd=self.tree, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL: the process ends where it stands."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._close_log()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, 30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def rewrite_config(self, config: dict[str, Any]) -> None:
        self.config_path.write_text(yaml.safe_dump(config))

    def signal(self, sig: int) -> None:
        assert self.proc is not None and self.proc.poll() is None
        self.proc.send_signal(sig)

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None
