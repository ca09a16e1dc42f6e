"""Database access without Flask: the declarative base, engines and the unit of work.

SQLite (WAL) is the embedded default, PostgreSQL is chosen by DATABASE_URL. Write transactions on
SQLite begin IMMEDIATE so two writers never fail on lock upgrade, and they queue on an advisory file
lock beside the database first: the kernel wakes the next writer the moment the lock is free, where
SQLite's busy handler would poll with sleeps of up to 100 ms (long, unfair tails under load).
"""

from __future__ import annotations

import fcntl
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

T = TypeVar("T")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


_STARTED_IN = Path.cwd()  # relative paths in the configuration mean: from where the process started


def configured_path(text: str) -> Path:
    """A configured path, absolute: a relative one is taken from the directory the process started in,
    so a file stored by one request is found by the next whatever directory it runs in."""
    return (_STARTED_IN / text).resolve()


def instance_dir() -> Path:
    """Where a deployment keeps its files (SQLite database, uploads): ONEWINDOW_INSTANCE, else
    `instance/` under the directory the process started in."""
    return configured_path(os.environ.get("ONEWINDOW_INSTANCE") or "instance")


def default_sqlite() -> str:
    return "sqlite:///" + str(instance_dir() / "onewindow.db")


def database_url() -> str:
    url = os.environ.get("DATABASE_URL") or default_sqlite()
    # Heroku-style URLs and plain postgresql:// mean psycopg 3 here.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def make_engine(url: str | None = None, **kwargs) -> Engine:
    url = url or database_url()
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Take transaction control away from pysqlite so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # switching the mode takes a lock that waits for every open read (a step evaluating its scripts
        # holds one): switch only a database that is not in WAL yet
        if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


_LIVE: weakref.WeakSet[Database] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for database in list(_LIVE):
        database.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Database:
    """An engine and its session factory; the one handle the domain needs."""

    def __init__(self, url: str | None = None, **engine_kwargs) -> None:
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        database = self.engine.url.database if is_sqlite(self.engine) else None
        self._writer_lock = _WriterQueue(database + "-writers") if database and database != ":memory:" else None
        _LIVE.add(self)

    def after_fork(self) -> None:
        """In a forked child: never use the parent's connections or its lock-file descriptors (a
        shared descriptor shares the flock, so parent and child would not exclude each other)."""
        self.engine.dispose(close=False)
        if self._writer_lock is not None:
            self._writer_lock.local = threading.local()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction: commit on success, roll back on any error."""
        queue = self._writer_lock.held() if self._writer_lock else _no_queue()
        with queue, self.sessions() as session:
            if is_sqlite(self.engine):
                session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                # files written for this transaction (uploads) go with it: no orphan on disk
                for path in session.info.pop("written_files", ()):
                    Path(path).unlink(missing_ok=True)
                raise

    def transaction(self, work: Callable[[Session], T], attempts: int = 8) -> T:
        """Run `work` in one write transaction, retrying on lock and serialization conflicts."""
        for attempt in range(attempts):
            try:
                with self.write() as session:
                    return work(session)
            except (StaleDataError, OperationalError, DBAPIError) as exc:
                if attempt == attempts - 1 or not _is_retryable(exc):
                    raise
                time.sleep(random.uniform(0.005, 0.02) * (attempt + 1))
        raise AssertionError("unreachable")

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """One process of the deployment at a time (start-up: migrations, deployment, calendar seeding).

        PostgreSQL: a session advisory lock; SQLite serves one node, whose writes already queue."""
        if self.dialect != "postgresql":
            yield
            return
        key = int.from_bytes(name.encode()[:8].ljust(8, b"\0"), "big") & 0x7FFFFFFFFFFFFFFF
        with self.engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({key})")
            conn.commit()
            try:
                yield
            finally:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({key})")
                conn.commit()

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def _no_queue() -> Iterator[None]:
    yield


class _LockFile:
    """An open lock file, closed when its thread (or its queue) is gone."""

    def __init__(self, path: str) -> None:
        # read-only is enough for flock, so a process of another user (the CLI run by an admin, the web
        # server's account) can take its turn on a lock file the other created
        self.fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)

    def __del__(self) -> None:
        os.close(self.fd)


class _WriterQueue:
    """SQLite writers of every process and thread take turns on an flock'd file. Re-entrant per thread,
    so a write inside a write (which SQLite would refuse anyway) cannot deadlock on it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.local = threading.local()

    @contextmanager
    def held(self) -> Iterator[None]:
        depth = getattr(self.local, "depth", 0)
        if depth:
            self.local.depth = depth + 1
            try:
                yield
            finally:
                self.local.depth -= 1
            return
        handle = getattr(self.local, "handle", None)
        if handle is None:  # one descriptor per thread: flock excludes other descriptions, threads included
            handle = self.local.handle = _LockFile(self.path)
        fd = handle.fd
        fcntl.flock(fd, fcntl.LOCK_EX)
        self.local.depth = 1
        try:
            yield
        finally:
            self.local.depth = 0
            fcntl.flock(fd, fcntl.LOCK_UN)


def _is_retryable(exc: Exception) -> bool:
    if isinstance(exc, StaleDataError):
        return True
    text = str(getattr(exc, "orig", exc)).lower()
    return any(
        marker in text
        for marker in ("database is locked", "deadlock detected", "could not serialize", "database is busy")
    )


def insert_ignoring_duplicates(session: Session, model, keys: list[str]):
    """INSERT … ON CONFLICT (keys) DO NOTHING on PostgreSQL and SQLite alike."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model).on_conflict_do_nothing(index_elements=keys)
