"""The `onewindow` command: database, deployment, users, the demo and the server."""

from __future__ import annotations

import os
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import click
from sqlalchemy import select

from timers.calendar import CalendarMissing
from timers.clock import SHANGHAI, clock, now, to_local
from timers.durations import parse_duration
from workflows.administration import calendar_store, users
from workflows.administration.clock_store import set_clock, sync_clock
from workflows.db import Database, instance_dir
from workflows.definitions import processes
from workflows.errors import DomainError, InvalidInput
from workflows.models import CalendarYear, User
from workflows.oversight import sla
from workflows.schema import upgrade

DEMO_PASSWORD = "onewindow-demo"
DEMO_USERS = [
    ("admin", "admin", None, "系统管理员"),
    ("supervisor", "supervisor", "supervision", "督查员"),
    ("clerk", "clerk", "window", "窗口人员"),
    ("samr", "reviewer", "samr", "市场监管审批员"),
    ("police", "reviewer", "police", "公安审批员"),
    ("tax", "reviewer", "tax", "税务审批员"),
    ("housing", "reviewer", "housing", "住建审批员（科长）"),
    ("housing2", "reviewer", "housing", "住建承办人"),
    ("nrp", "reviewer", "nrp", "自然资源审批员"),
    ("ndrc", "reviewer", "ndrc", "发改审批员"),
    ("power", "reviewer", "power", "供电公司客户经理"),
    ("water", "reviewer", "water", "自来水公司客户经理"),
    ("gas", "reviewer", "gas", "燃气公司客户经理"),
    ("finance", "reviewer", "finance", "财政局审批员"),
    ("hotline", "clerk", "hotline", "12345话务员"),
    ("telecom", "reviewer", "telecom", "通信运营商客户经理"),
    ("landscape", "reviewer", "landscape", "园林绿化审批员"),
    ("roads", "reviewer", "roads", "交通运输审批员"),
]


# positions held in the department: construction permits' 联合竣工验收 is signed off by a 科长
DEMO_POSITIONS = {"housing": ("承办人", "科长"), "housing2": ("承办人",)}


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _database() -> Database:
    return Database()


def _bench_sqlite() -> str:
    return "sqlite:///" + str(instance_dir() / "bench.db")


def _bench_setup() -> tuple[Database, dict]:
    """The benchmarks fill and time a database of their own: DATABASE_URL when set (point it at a
    scratch database), else instance/bench.db — never the demo's instance/onewindow.db. Prepared like
    a server start; the machine, versions and database are printed first."""
    from workflows import bench as benchmarks

    database = Database(None if os.environ.get("DATABASE_URL") else _bench_sqlite())
    click.echo(f"benchmark database: {database.engine.url.render_as_string(hide_password=True)}")
    prepare(database)
    env = benchmarks.environment(database)
    click.echo(benchmarks.describe(env))
    return database, env


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
    if revision == "head":  # deadlines work right after an upgrade: the official calendar years are there
        added = database.transaction(lambda s: calendar_store.seed_official_years(s, "upgrade"))
        if added:
            click.echo(f"calendar: loaded {added[0]}–{added[-1]} from chinese-calendar")


def deploy_files(database: Database, files: list[Path], actor: str = "cli",
                 default_department: str | None = None, as_key: str | None = None,
                 code_tasks: str = "refuse") -> list[str]:
    """Deploy files together: a BPMN file with the processes it calls and the DMN decisions it takes from the
    other files (or a .zip); each main process becomes a version of its own."""
    parts = processes.bundle([(p.name, p.read_bytes()) for p in files])
    checked = []
    with database.read() as session:  # every file checked before anything is written: all deploy, or none
        for name, content, companions, pool in parts:
            checked.append((name, content, processes.check_file(content, name, default_department, session,
                                                                companions or None, pool, code_tasks)))

    def write(session):
        return [processes.deploy(session, c, n, actor, d, as_key) for n, c, d in checked]
    lines = []
    for (name, _content, definition), result in zip(checked, database.transaction(write), strict=True):
        verb = "deployed" if result.created else "unchanged"
        lines.append(f"{verb}: {result.version.process_key} version {result.version.version} ({name})")
        lines += [f"  warning: {w}" for w in definition.warnings]
    return lines


@main.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--bundled", is_flag=True, help="Deploy the BPMN files shipped in bpmn/.")
@click.option("--department", "default_department", default=None, metavar="CODE",
              help="The department that works every task the file does not give to one (by lane, "
                   "'department' property, candidate group or assignee).")
@click.option("--as", "as_key", default=None, metavar="KEY",
              help="Confirm the file as the next version of process KEY when that id belongs to another file.")
@click.option("--code-tasks-as-steps", "code_tasks", flag_value="steps", default="refuse",
              help="Service tasks bound to code (a Java class, an expression, a job worker) become steps a person "
                   "works, instead of refusing the file.")
def deploy(files: tuple[Path, ...], bundled: bool, default_department: str | None, as_key: str | None,
           code_tasks: str) -> None:
    """Validate and deploy BPMN files; a new version is stored only when the content changed."""
    targets = list(files) + (processes.bundled_files() if bundled else [])
    if not targets:
        _fail("name a BPMN file or use --bundled")
    database = _database()
    try:
        for line in deploy_files(database, targets, default_department=default_department, as_key=as_key,
                                 code_tasks=code_tasks):
            click.echo(line)
    except DomainError as exc:
        _fail(exc.message)


@main.group("import")
def import_() -> None:
    """Bring lists into the system."""


@import_.command("reform-tasks")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--skip-bad", is_flag=True, help="Import the good rows of a file with bad ones (listed).")
def import_reform_tasks(path: Path, skip_bad: bool) -> None:
    """Start a reform-task case for each row of a CSV or Excel task list (序号, 主要任务, 牵头单位, 配合单位,
    责任领导, 完成时限); a file with a bad row imports nothing unless --skip-bad."""
    from workflows.casework import task_lists

    database = _database()
    try:
        result = task_lists.import_tasks(database, path, skip_bad)
    except DomainError as exc:
        _fail(exc.message)
    for error in result.errors:
        click.echo(error, err=True)
    if result.errors and not skip_bad:
        _fail(f"{len(result.errors)} bad row(s); nothing imported (--skip-bad imports the others)")
    click.echo(f"imported {len(result.created)} task(s)" +
               (f", {len(result.skipped)} already there" if result.skipped else "") +
               (f", {len(result.errors)} bad row(s) skipped" if result.errors else ""))


@main.group()
def user() -> None:
    """Staff accounts."""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["clerk", "reviewer", "supervisor", "admin"]))
@click.option("--department", default=None, help="Department code from bpmn/catalogue.yaml.")
@click.option("--password", required=True)
@click.option("--display-name", default="")
@click.option("--member", "members", multiple=True,
              help="A position in the home department (科长), or DEPARTMENT/POSITION elsewhere (nrp/承办人).")
def user_add(name: str, role: str, department: str | None, password: str, display_name: str,
             members: tuple[str, ...]) -> None:
    database = _database()

    def work(s):
        created = users.add_user(s, name, role, password, department, display_name)
        users.set_memberships(created, users.parse_memberships(",".join(members), created.department))
        return created
    try:
        created = database.transaction(work)
    except DomainError as exc:
        _fail(exc.message)
    click.echo(f"user {created.username} ({created.role}, {created.department or '-'}) created")


@user.command("unlock")
@click.argument("name")
def user_unlock(name: str) -> None:
    """Lift the lockout of an account after too many failed sign-ins (recorded as an admin action)."""
    from workflows.administration import staff_admin
    from workflows.casework.cases import Actor

    try:
        _database().transaction(lambda s: staff_admin.unlock(s, Actor("cli", "admin"), name))
    except DomainError as exc:
        _fail(exc.message)
    click.echo(f"{name} unlocked")


@main.command()
@click.option("--all", "everything", is_flag=True, help="every case, finished ones included")
@click.option("--days", default=2, show_default=True, type=click.IntRange(0, 36500),
              help="besides the running cases, those changed in the last N days")
def check(everything: bool, days: int) -> None:
    """Check that workflow state, work items and audit trail agree (e.g. after a crash): the running
    cases and those changed lately, or every case with --all."""
    from workflows.oversight.integrity import problems

    found, checked = 0, []
    with _database().read() as session:
        sync_clock(session)
        since = now() - timedelta(days=days)
        for line in problems(session, since=since, everything=everything, checked=checked):
            click.echo(line)
            found += 1
    scope = "all cases" if everything else f"running cases and cases changed since {to_local(since):%Y-%m-%d %H:%M}"
    if found:
        _fail(f"{found} problem(s) found in {checked[0]} cases ({scope})")
    click.echo(f"{checked[0]} cases consistent ({scope})")


def prepare(database: Database) -> list[str]:
    """What start-up does: schema up to date, bundled processes deployed, official calendar years loaded.
    Several nodes starting together take turns."""
    with database.exclusive("onewindow-startup"):
        upgrade(database)
        lines = deploy_files(database, processes.bundled_files(), actor="startup")
        added = database.transaction(lambda s: calendar_store.seed_official_years(s, "startup"))
    if added:
        lines.append(f"calendar: loaded {added[0]}–{added[-1]} from chinese-calendar")
    return lines


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"{text!r} is not an ISO-8601 date-time (e.g. 2026-02-13T15:00 or 2026-02-13T15:00+08:00)")
    # a time without zone is the hall's local time
    return value if value.tzinfo else value.replace(tzinfo=SHANGHAI)


@main.group()
def calendar() -> None:
    """The working calendar: loaded years, holidays, make-up days, office hours, deadlines."""


@calendar.command("years")
def calendar_years() -> None:
    with _database().read() as session:
        for row in session.scalars(select(CalendarYear).order_by(CalendarYear.year)):
            click.echo(f"{row.year}  {row.source:<16} {to_local(row.loaded_at):%Y-%m-%d %H:%M}  {row.loaded_by}")


@calendar.command("show")
@click.argument("year", type=int)
def calendar_show(year: int) -> None:
    try:
        with _database().read() as session:
            for day in calendar_store.year_days(session, year):
                click.echo(f"{day.day}  {day.day:%a}  {day.kind:<8} {day.name}")
    except DomainError as exc:
        _fail(exc.message)


def _after_change(session) -> int:
    return len(sla.recompute(session))


@calendar.command("load")
@click.argument("year", type=int)
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='JSON {"holidays": {"YYYY-MM-DD": name}, "workdays": {...}}; default: chinese-calendar')
def calendar_load(year: int, path: Path | None) -> None:
    """Load (or reload) a year's holidays and make-up workdays; running clocks are recomputed."""
    try:
        if path:
            holidays, workdays = calendar_store.parse_year_file(year, path.read_bytes())

            def work(s):
                n = calendar_store.load_year(s, year, holidays, workdays, "cli", source=path.name)
                return n, _after_change(s)
        else:
            def work(s):
                return calendar_store.load_official_year(s, year, "cli"), _after_change(s)
        days, moved = _database().transaction(work)
    except (DomainError, CalendarMissing, ValueError) as exc:
        _fail(getattr(exc, "message", str(exc)) + ("" if path else " (give --file with the State Council's "
                                                              "schedule)"))
    click.echo(f"{year}: {days} holidays and make-up days loaded; {moved} running clock(s) moved")


@calendar.command("set-day")
@click.argument("day")
@click.argument("kind", type=click.Choice(["holiday", "workday", "normal"]))
@click.option("--name", default="")
def calendar_set_day(day: str, kind: str, name: str) -> None:
    """Correct one day: holiday, workday (调休) or normal (the weekday rule)."""
    try:
        when = date.fromisoformat(day)
    except ValueError:
        _fail(f"{day!r} is not a date YYYY-MM-DD")
    try:
        moved = _database().transaction(
            lambda s: (calendar_store.set_day(s, when, kind, name, "cli"), _after_change(s))[1])
    except DomainError as exc:
        _fail(exc.message)
    click.echo(f"{when} is now {kind}; {moved} running clock(s) moved")


def _cli_calendar():
    with _database().read() as session:
        return calendar_store.working_calendar(session)


@calendar.command("due")
@click.argument("start")
@click.argument("duration")
def calendar_due(start: str, duration: str) -> None:
    """The due instant of DURATION (PTnH, PTnM, PnD) from START, in Asia/Shanghai."""
    begin = _instant(start)
    try:
        budget = parse_duration(duration)
        click.echo(to_local(_cli_calendar().due(begin, budget)).isoformat())
    except (ValueError, CalendarMissing) as exc:
        _fail(str(exc) + (" — load it with `onewindow calendar load`" if isinstance(exc, CalendarMissing) else ""))


@calendar.command("elapsed")
@click.argument("start")
@click.argument("end")
def calendar_elapsed(start: str, end: str) -> None:
    """Working time between START and END (e.g. PT10H30M, and minutes)."""
    try:
        minutes = _cli_calendar().elapsed_minutes(_instant(start), _instant(end))
    except CalendarMissing as exc:
        _fail(f"{exc} — load it with `onewindow calendar load`")
    sign = "-" if minutes < 0 else ""
    h, m = divmod(abs(minutes), 60)
    click.echo(f"{sign}PT{h}H{m}M ({minutes} working minutes)")


@calendar.command("hours")
@click.argument("name")
@click.option("--period", "periods", multiple=True, required=True, help="HH:MM-HH:MM, repeat for each period")
@click.option("--from", "valid_from", default=None, help="first day (seasonal variant)")
@click.option("--to", "valid_to", default=None, help="last day (seasonal variant)")
def calendar_hours(name: str, periods: tuple[str, ...], valid_from: str | None, valid_to: str | None) -> None:
    """Set office hours (the default, or a seasonal variant with --from and --to)."""
    try:
        parsed = [tuple(p.split("-", 1)) for p in periods]
        if any(len(p) != 2 for p in parsed):
            raise InvalidInput("--period: HH:MM-HH:MM")
        first = date.fromisoformat(valid_from) if valid_from else None
        last = date.fromisoformat(valid_to) if valid_to else None
        moved = _database().transaction(
            lambda s: (calendar_store.set_office_hours(s, name, parsed, first, last), _after_change(s))[1])
    except (DomainError, ValueError) as exc:
        _fail(getattr(exc, "message", str(exc)))
    click.echo(f"office hours {name!r} set; {moved} running clock(s) moved")


@main.group("clock")
def clock_group() -> None:
    """The manual clock (only with ONEWINDOW_CLOCK=manual)."""


@clock_group.command("set")
@click.argument("instant")
@click.option("--frozen", is_flag=True, help="Stop the clock at that instant instead of letting it run on.")
def clock_set(instant: str, frozen: bool) -> None:
    try:
        shown = _database().transaction(lambda s: set_clock(s, _instant(instant), frozen))
    except DomainError as exc:
        _fail(exc.message)
    click.echo(f"clock set: {to_local(shown).isoformat()}")


@clock_group.command("show")
def clock_show() -> None:
    with _database().read() as session:
        sync_clock(session)
    click.echo(f"{to_local(now()).isoformat()} ({'manual' if clock.manual else 'system'} clock)")


@main.group("tallies")
def tallies_group() -> None:
    """The statistics' daily tallies: which closed days are tallied; rebuild them after a data fix."""


@tallies_group.command("show")
def tallies_show() -> None:
    from workflows.oversight import tallies

    with _database().read() as session:
        sync_clock(session)
        status = tallies.status(session)
    click.echo(f"last closed day {status.last_closed}; tallied days {status.tallied}, "
               f"latest {status.latest or '-'}; closed days not tallied yet {status.missing}")


@tallies_group.command("rebuild")
@click.option("--from", "start", required=True, help="first day to count again, YYYY-MM-DD")
def tallies_rebuild(start: str) -> None:
    """Drop the tallies from a day on and tally every closed day again (after data was corrected by hand)."""
    from workflows.oversight import tallies

    try:
        day = date.fromisoformat(start)
    except ValueError:
        _fail("--from: a day as YYYY-MM-DD")
    database = _database()
    with database.read() as session:
        sync_clock(session)
    database.transaction(lambda s: tallies.forget(s, day))
    click.echo(f"tallied {tallies.build_missing(database)} closed days")


def _month(text: str) -> date:
    try:
        return date.fromisoformat(text).replace(day=1)
    except ValueError:
        _fail("--month: YYYY-MM-DD")


@main.group()
def bench() -> None:
    """Benchmarks that print numbers (record them in docs/benchmarks.md)."""


@bench.command("interop")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path),
                default=Path(__file__).resolve().parents[1].parent / "shared" / "bpmn-corpus")
@click.option("--department", "default_department", default="window", show_default=True,
              help="the default department for tasks a file gives to no known department")
@click.option("--write", "write_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="put the table into this Markdown file between its interop-results markers")
def bench_interop(folder: Path, default_department: str, write_path: Path | None) -> None:
    """Deploy every BPMN file of FOLDER (default ../shared/bpmn-corpus) into a scratch SQLite database and drive
    each deployed process to its end with generated data; print what happened, by source."""
    import tempfile

    from workflows.definitions.modeling import corpus
    from workflows.schema import upgrade

    with tempfile.TemporaryDirectory() as scratch:
        database = Database(f"sqlite:///{scratch}/interop.db")
        upgrade(database)
        for year in range(2025, 2027):
            database.transaction(lambda s, y=year: calendar_store.load_official_year(s, y, "interop"))
        results, seconds = corpus.timed_run(database, folder)
        database.dispose()
    table = corpus.table(results)
    click.echo(table)
    for outcome in ("refused", "failed", "running"):
        found = corpus.reasons(results, outcome, limit=12)
        if found:
            click.echo(f"\n{outcome}:")
            for n, message in found:
                click.echo(f"  {n:3d}  {message}")
    click.echo(f"\n{len(results)} files in {seconds:.1f} s")
    if write_path is not None:
        text = write_path.read_text(encoding="utf-8")
        start, end = "<!-- interop-results -->", "<!-- /interop-results -->"
        if start not in text or end not in text:
            _fail(f"{write_path} has no {start} … {end} markers")
        head, rest = text.split(start, 1)
        write_path.write_text(head + start + "\n" + table + "\n" + end + rest.split(end, 1)[1], encoding="utf-8")
        click.echo(f"written to {write_path}")


@bench.command("supervision")
@click.option("--open", "open_cases", default=100_000, show_default=True, type=click.IntRange(1, 10_000_000))
@click.option("--completed", default=20_000, show_default=True, type=click.IntRange(0, 10_000_000),
              help="cases completed in the measured month")
@click.option("--runs", default=20, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--month", default="2026-10-01", show_default=True, help="first day of the month for statistics")
@click.option("--json", "json_path", default=None, help="write the result as JSON here too")
@click.option("--no-fill", is_flag=True, help="measure the database as it is (filled by an earlier run)")
def bench_supervision(open_cases: int, completed: int, runs: int, month: str, json_path: str | None,
                      no_fill: bool) -> None:
    """Fill DATABASE_URL with open and completed cases, then time the board's first page and month statistics."""
    from workflows import bench as benchmarks

    first = _month(month)
    database, env = _bench_setup()
    result = benchmarks.run_scale(database, 0 if no_fill else open_cases, 0 if no_fill else completed, runs, first)
    click.echo(benchmarks.render(result))
    if json_path:
        benchmarks.dump(result, json_path, env)


@bench.command("scale")
@click.option("--open", "open_cases", default=100_000, show_default=True, type=click.IntRange(0, 10_000_000))
@click.option("--completed", default=900_000, show_default=True, type=click.IntRange(0, 100_000_000),
              help="completed cases, spread over the twelve months ending with --month")
@click.option("--runs", default=20, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--month", default="2026-10-01", show_default=True)
@click.option("--json", "json_path", default=None)
def bench_scale(open_cases: int, completed: int, runs: int, month: str, json_path: str | None) -> None:
    """Fill DATABASE_URL (default 1,000,000 cases, 100,000 open) and time the everyday reads and sweeps."""
    import time as _time

    from workflows import bench as benchmarks

    first = _month(month)
    database, env = _bench_setup()
    started = _time.perf_counter()
    # the completed cases spread over the twelve months ending with the measured one
    written = benchmarks.populate(database, open_cases, completed, first, months=12) if open_cases + completed \
        else {}
    built = round(_time.perf_counter() - started, 1)
    timings = benchmarks.run_scale_queries(database, first, runs)
    result = {"workload": "scale", "database": database.dialect, "written": written, "build_seconds": built,
              "timings": [t.__dict__ for t in timings], "peak_rss_mb": benchmarks.peak_rss_mb()}
    click.echo(f"database {database.dialect}; written {written} in {built} s; peak RSS {result['peak_rss_mb']} MB")
    for t in timings:
        click.echo(f"{t.name:<50} {t.runs:>4} p50 {t.p50_ms:>9} ms  p95 {t.p95_ms:>9} ms")
    if json_path:
        benchmarks.dump(result, json_path, env)


@bench.command("timers")
@click.option("--clocks", default=100_000, show_default=True, type=click.IntRange(100, 10_000_000))
@click.option("--due", "due_share", default=0.1, show_default=True, type=click.FloatRange(0, 1))
@click.option("--json", "json_path", default=None)
def bench_timers(clocks: int, due_share: float, json_path: str | None) -> None:
    """Running clocks of which a share has passed its limits: one sweep's duration and alerts per second."""
    from workflows import bench as benchmarks

    database, env = _bench_setup()
    result = benchmarks.run_timers(database, clocks, due_share)
    click.echo(" ".join(f"{k}={v}" for k, v in result.items()))
    if json_path:
        benchmarks.dump(result, json_path, env)


@bench.command("http")
@click.option("--cases", "n_cases", default=200, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--clients", default="1,4,8", show_default=True, help="concurrent client counts, comma separated")
@click.option("--web-workers", default=2, show_default=True, type=click.IntRange(1, 64), help="gunicorn workers")
@click.option("--port", default=0, type=click.IntRange(0, 65535), help="loopback port (default: a free one)")
@click.option("--json", "json_path", default=None)
def bench_http(n_cases: int, clients: str, web_workers: int, port: int, json_path: str | None) -> None:
    """Company-setup cases from intake to delivery through the HTTP API: a gunicorn server on loopback
    against DATABASE_URL and K concurrent keep-alive clients."""
    import socket

    from webapp.loadtest import run_http
    from workflows import bench as benchmarks

    counts = _counts(clients, "--clients")
    database, env = _bench_setup()
    url = database.engine.url.render_as_string(hide_password=False)
    database.dispose()
    if not port:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    results = [run_http(url, n_cases, k, web_workers, port, instance_dir() / "bench-http-server.log")
               for k in counts]
    click.echo(f"database {database.dialect}; {n_cases} company-setup cases through the API, 6 steps each, "
               f"{web_workers} gunicorn worker(s)")
    click.echo(f"{'clients':>7} {'steps/s':>9} {'cases/s':>8} {'mean ms':>8} {'p50':>7} {'p95':>7} {'p99':>7} "
               f"{'list p95':>8} {'server RSS MB':>13} errors")
    for r in results:
        click.echo(f"{r['clients']:>7} {r['steps_per_s']:>9} {r['cases_per_s']:>8} {r['step_mean_ms']:>8} "
                   f"{r['p50_ms']:>7} {r['p95_ms']:>7} {r['p99_ms']:>7} {r['list_p95_ms']:>8} "
                   f"{r['server_rss_mb']:>13} {len(r['errors'])}")
        for error in r["errors"][:3]:
            click.echo(f"    error: {error}")
    if json_path:
        benchmarks.dump({"workload": "http", "database": database.dialect, "runs": results}, json_path, env)
    if any(r["errors"] for r in results):
        raise SystemExit(1)


@bench.command("returns")
@click.option("--rounds", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--samples", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "json_path", default=None)
def bench_returns(rounds: int, samples: int, json_path: str | None) -> None:
    """Company-setup cases returned ROUNDS times (退回 to the window, accepted again) against cases never
    returned: the time of the steps after, and the stored state (target: within 1.3x)."""
    from workflows import bench as benchmarks

    database, env = _bench_setup()
    result = benchmarks.run_returns(database, rounds, samples)
    click.echo(" ".join(f"{k}={v}" for k, v in result.items()))
    if json_path:
        benchmarks.dump(result, json_path, env)


@bench.command("startup")
@click.option("--starts", default=100, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--busy", is_flag=True, help="with a CPU-burning process on every core")
@click.option("--json", "json_path", default=None)
def bench_startup(starts: int, busy: bool, json_path: str | None) -> None:
    """Start `onewindow demo` N times on fresh instance directories: time from the printed address to
    the first /login answer, and from SIGTERM / SIGINT to every process gone."""
    from webapp.startbench import run
    from workflows import bench as benchmarks

    env = benchmarks.environment(Database("sqlite:///:memory:"))  # the demo's own database: SQLite
    click.echo(benchmarks.describe(env))
    result = run(starts, busy)
    click.echo(" ".join(f"{k}={v}" for k, v in result.items() if k != "failures"))
    for failure in result["failures"]:
        click.echo("    failure: " + failure.replace("\n", "\n    "))
    if json_path:
        benchmarks.dump(result, json_path, env)
    if result["failed"]:
        raise SystemExit(1)


def _counts(text: str, option: str) -> list[int]:
    try:
        counts = [int(w) for w in text.split(",") if w.strip()]
    except ValueError:
        _fail(f"{option}: numbers, e.g. 1,2")
    if not counts or min(counts) < 1 or max(counts) > 64:
        _fail(f"{option}: between 1 and 64")
    return counts


@bench.command("throughput")
@click.option("--cases", "n_cases", default=200, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--workers", default="1,2", show_default=True, help="worker process counts to run, comma separated")
@click.option("--floor/--no-floor", default=True, show_default=True, help="also run bare SpiffWorkflow")
@click.option("--json", "json_path", default=None)
def bench_throughput(n_cases: int, workers: str, floor: bool, json_path: str | None) -> None:
    """Company-setup cases from intake to delivery through the service layer against DATABASE_URL, and the
    engine floor (bare SpiffWorkflow in memory, with and without serializing every step)."""
    from workflows import bench as benchmarks

    counts = _counts(workers, "--workers")
    database, env = _bench_setup()
    url = database.engine.url.render_as_string(hide_password=False)
    results = []
    if floor:
        for serialize in (False, True):
            results.append(benchmarks.floor(n_cases, serialize))
    for count in counts:
        results.append(benchmarks.throughput(url, n_cases, count))
    size = benchmarks.completed_case_bytes(database)
    click.echo(f"database {database.dialect}; {n_cases} company-setup cases, 6 steps each")
    click.echo(f"{'run':<34} {'steps/s':>9} {'cases/s':>8} {'mean ms':>8} {'p50':>7} {'p95':>7} {'p99':>7} "
               f"{'RSS MB':>7}")
    for r in results:
        name = (f"floor, {'serializing' if r['serialize'] else 'in memory'}" if r["workload"] == "floor"
                else f"service layer, {r['workers']} worker(s)")
        click.echo(f"{name:<34} {r['steps_per_s']:>9} {r.get('cases_per_s', ''):>8} {r['step_mean_ms']:>8} "
                   f"{r['p50_ms']:>7} {r['p95_ms']:>7} {r['p99_ms']:>7} {r.get('worker_rss_mb', r.get('rss_mb')):>7}")
    floor_run = next((r for r in results if r["workload"] == "floor" and r["serialize"]), None)
    one = next((r for r in results if r["workload"] == "throughput" and r["workers"] == 1), None)
    two = next((r for r in results if r["workload"] == "throughput" and r["workers"] == 2), None)
    if floor_run and one:
        ratio = one["step_mean_ms"] / floor_run["step_mean_ms"]
        click.echo(f"per-step overhead over the serializing floor: {ratio:.2f}x")
    if one and two:
        click.echo(f"2 workers / 1 worker: {two['steps_per_s'] / one['steps_per_s']:.2f}x")
    for r in results:
        samples = r.get("rss_samples_mb") or []
        if len(samples) >= 3:
            drift = (samples[-1] - samples[1]) / samples[1] * 100
            click.echo(f"{r['workers']} worker(s): RSS over the run {samples} MB; from 10 % to the end {drift:+.1f} %")
    click.echo(f"completed case: {size}")
    if json_path:
        benchmarks.dump({"results": results, "completed_case": size, "database": database.dialect}, json_path,
                        env)


@main.command()
@click.option("--once", is_flag=True, help="Run every due job once and exit.")
@click.option("--parent", type=int, default=None, hidden=True, help="exit when this process is gone")
def scheduler(once: bool, parent: int | None) -> None:
    """Run the periodic jobs: BPMN timers, SLA sweep, alert delivery, 容缺 expiry, daily tallies."""
    from webapp.scheduler import run_blocking, run_once

    database = _database()
    if once:
        for name, result in run_once(database).items():
            click.echo(f"{name}: {result}")
        return
    click.echo("scheduler running (Ctrl-C to stop)")
    run_blocking(database, parent_pid=parent)


def _add_demo_users(database: Database) -> None:
    with database.read() as session:
        present = set(session.scalars(select(User.username)))
    missing = [u for u in DEMO_USERS if u[0] not in present]
    if not missing:
        return
    shared = users.hash_password(DEMO_PASSWORD)  # one published password: hashed once, not once per user
    for username, role, department, display in missing:
        try:
            database.transaction(lambda s, u=username, r=role, d=department, n=display:
                                 users.add_user(s, u, r, DEMO_PASSWORD, d, n, DEMO_POSITIONS.get(u, ()), shared))
        except DomainError:
            pass  # already there from an earlier run


def _demo_banner(host: str, port: int) -> list[str]:
    lines = [f"\ndemo users (password for all: {DEMO_PASSWORD}):"]
    lines += [f"  {u:<11} {r:<10} {d or '':<8} {n}" for u, r, d, n in DEMO_USERS]
    lines += [f"\nWeb:      http://{host}:{port}/  (staff: /login; applicants: /track; supervisors: /board)",
              f"API:      http://{host}:{port}/api/v1  (OpenAPI: /api/v1/openapi.json)",
              f'token:    curl -s -X POST http://{host}:{port}/api/v1/auth/token -H "Content-Type: '
              f'application/json" -d \'{{"username":"clerk","password":"{DEMO_PASSWORD}"}}\'']
    return lines


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="ONEWINDOW_HOST")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535), envvar="ONEWINDOW_PORT")
@click.option("--no-serve", is_flag=True, help="Set up the demo data and exit.")
def demo(host: str, port: int, no_serve: bool) -> None:
    """Create the database, deploy the processes, add demo users, print them, then serve."""
    database = _database()
    for line in prepare(database):
        click.echo(line)
    _add_demo_users(database)
    database.dispose()
    if no_serve:
        for line in _demo_banner(host, port):
            click.echo(line)
        return
    # the banner is printed once the server listens: the address it gives answers at once
    _serve(host, port, workers=1, prepared=True, with_scheduler=True, banner=_demo_banner(host, port))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="ONEWINDOW_HOST")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535), envvar="ONEWINDOW_PORT")
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes")
@click.option("--no-scheduler", is_flag=True, help="Leave the periodic jobs to separate `onewindow scheduler`s.")
def serve(host: str, port: int, workers: int, no_scheduler: bool) -> None:
    """Run the web app against DATABASE_URL (gunicorn when installed, else the development server)."""
    _serve(host, port, workers, prepared=False, with_scheduler=not no_scheduler)


def _serve(host: str, port: int, workers: int, prepared: bool, with_scheduler: bool = True,
           banner: list[str] | None = None) -> None:
    """The web server and, unless told otherwise, the scheduler as a child process.

    The app is built once, here, before any fork (gunicorn's preload): workers answer at once. This
    process then holds no connection (disposed), no thread and no lock when gunicorn forks."""
    import signal

    from webapp.app import create_app
    from webapp.scheduler import spawn_child, stop_child

    if not prepared:
        database = _database()
        for line in prepare(database):
            click.echo(line)
        database.dispose()
    app = create_app()
    app.extensions["onewindow.db"].dispose()
    child = spawn_child() if with_scheduler else None
    if child:
        click.echo(f"scheduler running as process {child.pid}")

    def announce() -> None:
        for line in banner or []:
            click.echo(line)

    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:
        BaseApplication = None
    try:
        if BaseApplication is None or os.environ.get("ONEWINDOW_DEV_SERVER"):
            # Ctrl-C raises KeyboardInterrupt; SIGTERM should end the same way
            signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
            click.echo(f"serving on http://{host}:{port} (development server)")
            announce()
            try:
                app.run(host=host, port=port, threaded=True)
            except KeyboardInterrupt:
                pass
            return

        class _Gunicorn(BaseApplication):
            def load_config(self):
                self.cfg.set("bind", f"{host}:{port}")
                self.cfg.set("workers", workers)
                self.cfg.set("threads", 4)
                self.cfg.set("accesslog", "-")
                self.cfg.set("preload_app", True)
                self.cfg.set("graceful_timeout", 3)  # SIGTERM / Ctrl-C: every process gone within 5 s
                self.cfg.set("when_ready", lambda _server: announce())
                self.cfg.set("on_exit", lambda _server: stop_child(child))
                if "control_socket_disable" in self.cfg.settings:
                    # one control socket path per machine: several servers on one machine would collide
                    self.cfg.set("control_socket_disable", True)

            def load(self):
                return app

        click.echo(f"serving on http://{host}:{port} (gunicorn, {workers} workers)")
        _Gunicorn().run()
    finally:
        stop_child(child)


if __name__ == "__main__":
    main()
