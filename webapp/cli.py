"""The `onewindow` command: database, deployment, users, the demo and the server."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from workflows import processes, users
from workflows.db import Database
from workflows.errors import DomainError
from workflows.schema import upgrade

DEMO_PASSWORD = "onewindow-demo"
DEMO_USERS = [
    ("admin", "admin", None, "系统管理员"),
    ("supervisor", "supervisor", None, "督查员"),
    ("clerk", "clerk", "window", "窗口人员"),
    ("samr", "reviewer", "samr", "市场监管审批员"),
    ("police", "reviewer", "police", "公安审批员"),
    ("tax", "reviewer", "tax", "税务审批员"),
    ("housing", "reviewer", "housing", "住建审批员"),
    ("nrp", "reviewer", "nrp", "自然资源审批员"),
    ("ndrc", "reviewer", "ndrc", "发改审批员"),
]


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _database() -> Database:
    return Database()


@click.group()
def main() -> None:
    """OneWindow 一窗通办 — cases, processes and time limits of the service hall."""


@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    database = _database()
    upgrade(database, revision)
    click.echo(f"database at {database.engine.url.render_as_string(hide_password=True)} is at {revision}")


def deploy_files(database: Database, files: list[Path], actor: str = "cli") -> list[str]:
    lines = []
    for path in files:
        content = path.read_bytes()
        result = database.transaction(lambda s, c=content, p=path: processes.deploy(s, c, p.name, actor))
        verb = "deployed" if result.created else "unchanged"
        lines.append(f"{verb}: {result.version.process_key} version {result.version.version} ({path.name})")
    return lines


@main.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--bundled", is_flag=True, help="Deploy the BPMN files shipped in bpmn/.")
def deploy(files: tuple[Path, ...], bundled: bool) -> None:
    """Validate and deploy BPMN files; a new version is stored only when the content changed."""
    targets = list(files) + (processes.bundled_files() if bundled else [])
    if not targets:
        _fail("name a BPMN file or use --bundled")
    database = _database()
    try:
        for line in deploy_files(database, targets):
            click.echo(line)
    except DomainError as exc:
        _fail(exc.message)


@main.group()
def user() -> None:
    """Staff accounts."""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["clerk", "reviewer", "supervisor", "admin"]))
@click.option("--department", default=None, help="Department code from bpmn/catalogue.yaml.")
@click.option("--password", required=True)
@click.option("--display-name", default="")
def user_add(name: str, role: str, department: str | None, password: str, display_name: str) -> None:
    database = _database()
    try:
        created = database.transaction(
            lambda s: users.add_user(s, name, role, password, department, display_name))
    except DomainError as exc:
        _fail(exc.message)
    click.echo(f"user {created.username} ({created.role}, {created.department or '-'}) created")


@main.command()
def check() -> None:
    """Check every case: workflow state, work items and audit trail agree (e.g. after a crash)."""
    from workflows.integrity import all_problems

    with _database().read() as session:
        problems = all_problems(session)
    for line in problems:
        click.echo(line)
    if problems:
        _fail(f"{len(problems)} problem(s) found")
    click.echo("all cases consistent")


def prepare(database: Database) -> list[str]:
    """What start-up does: bring the schema up to date and deploy the bundled processes."""
    upgrade(database)
    return deploy_files(database, processes.bundled_files(), actor="startup")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Set up the demo data and exit.")
def demo(host: str, port: int, no_serve: bool) -> None:
    """Create the database, deploy the processes, add demo users, print them, then serve."""
    database = _database()
    for line in prepare(database):
        click.echo(line)
    for username, role, department, display in DEMO_USERS:
        try:
            database.transaction(lambda s, u=username, r=role, d=department, n=display:
                                 users.add_user(s, u, r, DEMO_PASSWORD, d, n))
        except DomainError:
            pass  # already there from an earlier run
    click.echo(f"\ndemo users (password for all: {DEMO_PASSWORD}):")
    for username, role, department, display in DEMO_USERS:
        click.echo(f"  {username:<11} {role:<10} {department or '':<8} {display}")
    click.echo(f"\nAPI:      http://{host}:{port}/api/v1  (OpenAPI: /api/v1/openapi.json)")
    click.echo(f'token:    curl -s -X POST http://{host}:{port}/api/v1/auth/token -H "Content-Type: '
               f'application/json" -d \'{{"username":"clerk","password":"{DEMO_PASSWORD}"}}\'')
    if not no_serve:
        _serve(host, port, workers=1, prepared=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes")
def serve(host: str, port: int, workers: int) -> None:
    """Run the web app against DATABASE_URL (gunicorn when installed, else the development server)."""
    _serve(host, port, workers, prepared=False)


def _serve(host: str, port: int, workers: int, prepared: bool) -> None:
    if not prepared:
        for line in prepare(_database()):
            click.echo(line)
    from .app import create_app

    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:
        BaseApplication = None
    if BaseApplication is None or os.environ.get("ONEWINDOW_DEV_SERVER"):
        click.echo(f"serving on http://{host}:{port} (development server)")
        create_app().run(host=host, port=port, threaded=True)
        return

    class _Gunicorn(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", 4)
            self.cfg.set("accesslog", "-")

        def load(self):
            return create_app()

    click.echo(f"serving on http://{host}:{port} (gunicorn, {workers} workers)")
    _Gunicorn().run()


if __name__ == "__main__":
    main()
