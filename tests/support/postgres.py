"""A private, throwaway PostgreSQL cluster on loopback, for a test session or a benchmark.

    with LocalPostgres() as pg:                       # initdb in a temp dir, start, createdb
        LocalHomeserver(postgres=pg.database("synapse"))

- The binaries are found with `$SAB_PG_BINDIR`, `pg_config --bindir`, then
  /usr/lib/postgresql/<newest>/bin, then the PATH. `postgres_binaries()` returns None when there
  are none at all (the caller skips with that reason); anything else that goes wrong raises.
- PostgreSQL refuses to run as root: as root, every server-side command runs as the `postgres`
  OS user (`runuser -u postgres --`) and the data directory is handed to that user.
- The cluster is UTF8 with C collation and ctype, as Synapse requires.
- `keep=True` with a `root` leaves the data directory in place on stop, and a later
  `LocalPostgres(root)` starts it again without initdb (the benchmarks' seeded homeserver).
- Durability is traded for speed (fsync off): this holds test data, never anything of value.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from bot.demo.synapse import LOOPBACK, PostgresDatabase, free_port

PG_MAJOR = "15"
SUPERUSER = "postgres"
OS_USER = "postgres"


class PostgresError(RuntimeError):
    """The local cluster could not be set up, started or stopped."""


def postgres_binaries(preferred_major: str = PG_MAJOR) -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, or None when PostgreSQL is not installed."""
    candidates: list[Path] = []
    if os.environ.get("SAB_PG_BINDIR"):
        candidates.append(Path(os.environ["SAB_PG_BINDIR"]))
    candidates.append(Path(f"/usr/lib/postgresql/{preferred_major}/bin"))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            candidates.append(Path(out.stdout.strip()))
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _major(p.parent.name), reverse=True)
    candidates.extend(versions)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for directory in candidates:
        if all((directory / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


def _major(name: str) -> int:
    return int(name) if name.isdigit() else 0


class LocalPostgres:
    def __init__(self, root: Path | None = None, *, keep: bool = False, bindir: Path | None = None,
                 port: int | None = None) -> None:
        found = bindir or postgres_binaries()
        if found is None:
            raise PostgresError("no PostgreSQL binaries (initdb, pg_ctl, postgres) found: install postgresql-15")
        self.bindir = found
        self._owns_root = root is None
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="sab-pg-"))
        self.keep = keep and not self._owns_root
        self.port = port or free_port()
        self.host = LOOPBACK
        self._as_other_user = os.geteuid() == 0
        self._started = False

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    def version(self) -> str:
        return self._run([str(self.bindir / "postgres"), "--version"]).stdout.strip()

    def _command(self, argv: list[str]) -> list[str]:
        if not self._as_other_user:
            return argv
        runuser = shutil.which("runuser")
        if runuser:
            return [runuser, "-u", OS_USER, "--", *argv]
        return ["su", OS_USER, "-s", "/bin/sh", "-c", " ".join(_sh_quote(a) for a in argv)]

    def _run(self, argv: list[str], *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        try:
            result = subprocess.run(self._command(argv), capture_output=True, text=True, timeout=timeout,
                                    cwd=self.root, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresError(f"{Path(argv[0]).name} failed: {exc}") from exc
        if result.returncode != 0:
            raise PostgresError(f"{Path(argv[0]).name} exited {result.returncode}:\n{result.stdout}{result.stderr}"
                                f"{self.tail_log()}")
        return result

    def _hand_over(self, path: Path) -> None:
        """As root, the server's files belong to the postgres OS user (it refuses anything else)."""
        if not self._as_other_user:
            return
        try:
            user = pwd.getpwnam(OS_USER)
        except KeyError:
            raise PostgresError(f"running as root and there is no {OS_USER!r} OS user to run PostgreSQL as") from None
        for item in (path, *path.rglob("*")) if path.is_dir() else (path,):
            os.chown(item, user.pw_uid, user.pw_gid)

    def _check_reachable(self) -> None:
        """The postgres OS user must be able to walk down to the root; say so instead of a cryptic initdb error."""
        for parent in self.root.parents:
            if not parent.stat().st_mode & 0o001:
                raise PostgresError(f"{parent} is not traversable by other users, so the {OS_USER} OS user "
                                    f"cannot reach {self.root}: choose a root elsewhere (e.g. under /tmp)")

    def start(self, timeout: float = 60) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._as_other_user:
            self._check_reachable()
            os.chmod(self.root, 0o711)
        self.socket_dir.mkdir(exist_ok=True)
        self._hand_over(self.socket_dir)
        if not (self.data_dir / "PG_VERSION").exists():
            self.data_dir.mkdir(exist_ok=True)
            self._hand_over(self.data_dir)
            self._run([str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust",
                       "--encoding=UTF8", "--locale=C", "--no-sync"], timeout=timeout)
        log = self.log_path
        log.touch()
        self._hand_over(log)
        options = " ".join([
            f"-c listen_addresses={self.host}", f"-p {self.port}", f"-c unix_socket_directories={self.socket_dir}",
            "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
            "-c max_connections=200", "-c shared_buffers=128MB",
        ])
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(log), "-o", options,
                   "-w", "-t", str(int(timeout)), "start"], timeout=timeout + 10)
        self._started = True

    def create_database(self, name: str) -> PostgresDatabase:
        """A database of that name (created unless it exists) with the encoding Synapse requires."""
        exists = self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip()
        if exists != "1":
            self._psql(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
        return self.database(name)

    def database(self, name: str) -> PostgresDatabase:
        return PostgresDatabase(host=self.host, port=self.port, user=SUPERUSER, database=name)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser; returns psql's unaligned output."""
        return self._psql(sql, database)

    def _psql(self, sql: str, database: str = "postgres") -> str:
        psql = self.bindir / "psql"
        if not psql.is_file():
            psql = Path(shutil.which("psql") or "psql")
        return self._run([str(psql), "-h", self.host, "-p", str(self.port), "-U", SUPERUSER, "-d", database,
                          "-v", "ON_ERROR_STOP=1", "-At", "-c", sql]).stdout

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        try:
            self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"], timeout=60)
        except PostgresError:
            with contextlib.suppress(PostgresError):
                self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"])

    def cleanup(self) -> None:
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def tail_log(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n" + "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def __enter__(self) -> LocalPostgres:
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.cleanup()


def _sh_quote(value: str) -> str:
    import shlex

    return shlex.quote(value)
