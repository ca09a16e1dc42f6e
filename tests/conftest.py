"""Fixtures: a real database for every test, on SQLite and on PostgreSQL.

PostgreSQL is the server at TEST_PG_URL (default: 127.0.0.1:5432, trust auth); each test run makes a
database of its own there and drops it at the end. Set ONEWINDOW_SKIP_PG=1 to run on SQLite only.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("ONEWINDOW_PASSWORD_METHOD", "pbkdf2:sha256:1000")
from sqlalchemy import create_engine, text

import workflows.models  # noqa: F401  (the tables, for TABLES)
from webapp.app import create_app
from webapp.cli import DEMO_PASSWORD, DEMO_POSITIONS, DEMO_USERS
from workflows.administration import calendar_store, users
from workflows.casework.cases import Actor
from workflows.db import Base, Database
from workflows.schema import upgrade

PG_ADMIN_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# every table of the schema, emptied between PostgreSQL tests (new tables are included by themselves)
TABLES = ", ".join(table.name for table in Base.metadata.sorted_tables)


def _backends() -> list[str]:
    return ["sqlite"] if os.environ.get("ONEWINDOW_SKIP_PG") == "1" else ["sqlite", "postgres"]


def _fill_demo(database: Database) -> None:
    """The bundled processes deployed, the official calendars of 2025 and 2026, the demo users."""
    from webapp.cli import deploy_files
    from workflows.definitions.processes import bundled_files

    deploy_files(database, bundled_files())
    for year in (2025, 2026):
        database.transaction(lambda s, y=year: calendar_store.load_official_year(s, y, "tests"))
    for username, role, department, display in DEMO_USERS:
        database.transaction(lambda s, u=username, r=role, d=department, n=display:
                             users.add_user(s, u, r, DEMO_PASSWORD, d, n, DEMO_POSITIONS.get(u, ())))


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory) -> dict[str, Path]:
    """Two SQLite files made once per run and copied for each test: the schema alone (every migration run),
    and the schema with the demo content (`deployed`). Copying a file is far quicker than migrating and
    deploying again for each of several hundred tests."""
    folder = tmp_path_factory.mktemp("templates")
    made = {}
    for name in ("migrated", "deployed"):
        path = folder / f"{name}.db"
        database = Database(f"sqlite:///{path}")
        upgrade(database)
        if name == "deployed":
            _fill_demo(database)
        with database.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        database.dispose()
        made[name] = path
    return made


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"onewindow_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    database = Database(url)
    upgrade(database)
    database.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_demo_rows(pg_url) -> dict[str, list[dict]]:
    """The demo content's rows, made once per run on PostgreSQL and written back for each test that asks for
    `deployed` (the tables are emptied between tests)."""
    database = Database(pg_url)
    _empty_pg(database)
    _fill_demo(database)
    with database.engine.connect() as conn:
        rows = {table.name: [dict(r._mapping) for r in conn.execute(table.select())]
                for table in Base.metadata.sorted_tables}
    _empty_pg(database)
    database.dispose()
    return rows


def _empty_pg(database: Database) -> None:
    with database.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    from workflows.definitions.processes import forget_cached_versions
    forget_cached_versions()  # ids start again at 1 with other content


def _restore_pg(database: Database, rows: dict[str, list[dict]]) -> None:
    with database.engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            if rows.get(table.name):
                conn.execute(table.insert(), rows[table.name])
                for column in table.primary_key.columns:
                    if column.autoincrement is True or (column.autoincrement == "auto" and
                                                        column.type.python_type is int):
                        conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                                          f"(SELECT max({column.name}) FROM {table.name}))"))


@pytest.fixture(params=_backends())
def db_url(request, tmp_path) -> str:
    """A database of its own for each test: the demo content in it when the test asks for `deployed`."""
    wants_demo = "deployed" in request.fixturenames
    if request.param == "sqlite":
        templates = request.getfixturevalue("sqlite_templates")
        path = tmp_path / "onewindow.db"
        shutil.copyfile(templates["deployed" if wants_demo else "migrated"], path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_url")
    rows = request.getfixturevalue("pg_demo_rows") if wants_demo else None
    database = Database(url)
    _empty_pg(database)
    if rows:
        _restore_pg(database, rows)
    database.dispose()
    return url


@pytest.fixture
def database(db_url) -> Iterator[Database]:
    db = Database(db_url)
    yield db
    db.dispose()


@pytest.fixture
def deployed(database) -> Database:
    """The bundled processes deployed and the demo users present (copied in by `db_url`)."""
    return database


@pytest.fixture
def app(deployed):
    return create_app({"TESTING": True}, database=deployed)


@pytest.fixture
def client(app):
    return app.test_client()


class Api:
    """A thin caller of the HTTP API that logs in as the demo users. It asks for English messages, which the
    tests quote (the default, Chinese, is tested in test_messages.py); `language` changes that."""

    def __init__(self, client, language: str = "en") -> None:
        self.client = client
        self.tokens: dict[str, str] = {}
        self.language = language

    def token(self, username: str) -> str:
        if username not in self.tokens:
            r = self.client.post("/api/v1/auth/token", json={"username": username, "password": DEMO_PASSWORD})
            assert r.status_code == 201, r.get_json()
            self.tokens[username] = r.get_json()["token"]
        return self.tokens[username]

    def call(self, method: str, path: str, as_user: str, **kwargs):
        headers = {"Authorization": f"Bearer {self.token(as_user)}", "Accept-Language": self.language,
                   **kwargs.pop("headers", {})}
        return self.client.open("/api/v1" + path, method=method, headers=headers, **kwargs)

    def get(self, path, as_user="admin", **kw):
        return self.call("GET", path, as_user, **kw)

    def post(self, path, as_user="admin", **kw):
        return self.call("POST", path, as_user, **kw)

    def start(self, process: str, data: dict | None = None, as_user: str = "clerk", **applicant) -> dict:
        body = {"process": process, "applicant": {**COMPANY, **applicant}, "data": data or {}}
        r = self.post("/cases", as_user, json=body)
        assert r.status_code == 201, r.get_json()
        return r.get_json()

    def open_items(self, case_no: str) -> dict[str, dict]:
        case = self.get(f"/cases/{case_no}").get_json()
        return {item["step"]: item for item in case["open_items"]}

    def complete(self, item: dict, as_user: str, data: dict) -> dict:
        r = self.post(f"/work-items/{item['id']}/complete", as_user, json={"data": data})
        assert r.status_code == 200, r.get_json()
        return r.get_json()


COMPANY = {"type": "company", "name": "绵阳市示例科技有限公司", "id_no": "91350100M000100Y43",
           "contact": "0816-1234567"}
PERSON = {"type": "person", "name": "张三", "id_no": "11010519491231002X", "contact": "13800000000"}
CLERK = Actor("clerk", "clerk", "window")


@pytest.fixture
def api(client) -> Api:
    return Api(client)


@pytest.fixture
def manual_clock(monkeypatch):
    """The project's clock in manual mode for this test; back to the system clock afterwards."""
    from timers.clock import clock

    monkeypatch.setattr(clock, "manual", True)
    yield clock
    clock._frozen = None
    clock._offset = __import__("datetime").timedelta(0)
