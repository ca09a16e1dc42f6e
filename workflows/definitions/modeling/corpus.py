"""How OneWindow reads BPMN files from other modelers: deploy each file of a folder, then drive each deployed
process to its end with generated data — fields filled by type, the variables its conditions read, timers
fired by moving the project's clock, the messages and signals it waits for handed to it — as `onewindow bench
interop` reports and the interop test checks.

Every file ends in one of: "ended" (a case reached an end event), "running" (deployed, but a case did not
finish within the step budget, or waits for nothing it can be given),
"failed" (deployed, but a case stopped on an error: the message says where), or "refused" (not deployed:
the message names the element and says what to change).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from timers import clock as project_clock

from ...casework import cases, messages
from ...db import Database
from ...errors import DomainError
from ...models import Case, WorkItem
from .. import processes
from ..forms import Field
from . import inference, tasks

APPLICANT = {"type": "person", "name": "互通测试", "id_no": "11010519491231002X"}
ADMIN = cases.Actor("admin", "admin", None)
MAX_ROUNDS = 60


@dataclass
class FileResult:
    source: str
    name: str
    outcome: str  # ended | running | failed | refused
    has_user_task: bool
    steps_done: int
    message: str
    as_steps: bool = False  # deployed only with its code-bound service tasks made steps people work


def corpus_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".bpmn", ".xml") and
                  not p.name.startswith("."))


def _value(field: Field, turn: int, literals: dict[str, list], department: str) -> Any:
    """A value of the field's type; choices, flags and the literals a condition compares a text field with
    take turns, so that a loop back (payment not OK: try again) ends on a later round."""
    compared = [v for v in literals.get(field.name, []) if isinstance(v, str)]
    if field.type in ("string", "text") and compared:
        return compared[turn % len(compared)]
    if field.type == "list":
        return [department]
    if field.type == "integer":
        return 1
    if field.type == "number":
        return 1.0
    if field.type == "boolean":
        return True if field.required else turn % 2 == 0  # a required tick box is a confirmation
    if field.type == "date":
        return date(2026, 3, 2).isoformat()
    if field.type == "choice":
        return field.options[turn % len(field.options)]
    return "互通测试"


def _fill(fields, turn: int, literals: dict[str, list], department: str) -> dict[str, Any]:
    return {f.name: _value(f, turn, literals, department) for f in fields}


def _literals(definition) -> dict[str, list]:
    """variable → the literals the process's conditions compare it with (in a stable order)."""
    found: dict[str, set] = {}
    for spec in [definition.spec, *definition.subprocess_specs.values()]:
        for task_spec in spec.task_specs.values():
            for condition, _target in getattr(task_spec, "cond_task_specs", None) or []:
                text = getattr(condition, "args", [None])[0] if condition is not None else None
                if isinstance(text, str):
                    for name, values in inference._uses(text).items():
                        found.setdefault(name, set()).update(values)
    return {name: sorted(values, key=repr) for name, values in found.items()}


def _has_user_task(content: bytes) -> bool:
    """Whether the file draws a user task (counted whether or not it deploys)."""
    try:
        tree = processes.read_xml(content)
    except DomainError:
        return False
    return bool(tree.xpath("//*[local-name()='userTask']"))


def try_file(database: Database, path: Path, root: Path, default_department: str = "window",
             code_tasks: str = "refuse") -> FileResult:
    """Deploy the file as `onewindow deploy` does (each executable pool of a collaboration a process of its own,
    the id confirmed as in a hall of its own), then drive a case of each deployed process. A file refused only
    for service tasks bound to code is tried again as `--code-tasks-as-steps` deploys it (and marked so)."""
    source = path.relative_to(root).parts[0]
    content = path.read_bytes()
    has_user_task = _has_user_task(content)
    definitions = []
    try:
        for name, text, companions, pool in processes.bundle([(path.name, content)]):
            with database.read() as session:
                definition = processes.check_file(text, name, default_department, session, companions or None,
                                                  pool, code_tasks)
            database.transaction(lambda s, t=text, n=name, d=definition: processes.deploy(
                s, t, n, "interop", d, True))
            definitions.append(definition)
    except tasks.CodeBound as exc:
        if code_tasks == "refuse":
            again = try_file(database, path, root, default_department, "steps")
            if again.outcome != "refused":
                again.as_steps = True
                return again
        return FileResult(source, path.name, "refused", has_user_task, 0, exc.message)
    except DomainError as exc:
        return FileResult(source, path.name, "refused", has_user_task, 0, exc.message)
    except Exception as exc:  # a crash is a finding, not a stop: reported as such
        return FileResult(source, path.name, "refused", has_user_task, 0, f"CRASH {type(exc).__name__}: {exc}"[:300])
    runs = [_drive(database, definition, default_department) for definition in definitions]
    worst = max(runs, key=lambda r: ("ended", "running", "failed").index(r[0]))
    return FileResult(source, path.name, worst[0], has_user_task, sum(r[1] for r in runs), worst[2])


def _drive(database: Database, definition, department: str) -> tuple[str, int, str]:
    """Run one case of a deployed process to its end: (outcome, steps done, message)."""
    steps_done = 0
    literals = _literals(definition)
    try:
        start_data = _fill(definition.start_fields, 0, literals, department)
        case = database.transaction(lambda s: cases.start_case(s, definition.key, APPLICANT, start_data,
                                                                cases.SYSTEM))
        case_id = case.id
        for _round in range(MAX_ROUNDS):
            with database.read() as session:
                row = session.get(Case, case_id)
                if row.status in ("completed", "refused", "terminated"):
                    return "ended", steps_done, row.outcome or ""
                items = session.scalars(select(WorkItem).where(WorkItem.case_id == case_id, WorkItem.state.in_(
                    cases.OPEN_STATES)).order_by(WorkItem.id)).all()
                next_timer = row.next_timer_at
                version = processes.cached_version(session, row.process_version_id)
            if items:
                _take_time(database, STEP_MINUTES)  # a person takes a few working minutes: due timers fire
                steps = processes.definition_for(version).steps
                for item in items:
                    with database.read() as session:
                        if session.get(WorkItem, item.id).state not in cases.OPEN_STATES:
                            continue  # ended by an item completed before it (a completion condition, a boundary)
                    data = _fill(steps[item.step].fields if item.step in steps else (), _round, literals, department)
                    database.transaction(lambda s, i=item.id, d=data: cases.complete(s, i, ADMIN, d))
                    steps_done += 1
                continue
            if next_timer is not None:
                _advance_to(database, next_timer)
                continue
            with database.read() as session:
                expected = messages.waiting_for(session, session.get(Case, case_id))
            if not expected:
                return "running", steps_done, "waits for nothing it can be given (no step, timer, message or signal)"
            wanted = expected[0]
            messages.deliver(database, row.case_no, wanted.kind, wanted.name or wanted.element,
                             {name: "互通测试" for name in wanted.carries}, ADMIN)
        return "running", steps_done, f"not finished after {MAX_ROUNDS} rounds"
    except DomainError as exc:
        return "failed", steps_done, exc.message[:300]
    except Exception as exc:
        return "failed", steps_done, f"CRASH {type(exc).__name__}: {exc}"[:300]


STEP_MINUTES = 5


def _take_time(database: Database, minutes: int) -> None:
    """Let `minutes` of working time pass, as when people work the open steps, and fire what fell due."""
    from ...oversight import sla

    with database.read() as session:
        until = sla.working_calendar(session).add_minutes(project_clock.now(), minutes)
    _advance_to(database, until - timedelta(minutes=1))


def _advance_to(database: Database, instant) -> None:
    """Move the project's (manual) clock just past a timer and let the timer job fire it."""
    from ...oversight import jobs

    current = project_clock.now()
    if instant > current:
        project_clock.clock.advance(instant - current + timedelta(minutes=1))
    jobs.fire_timers(database)


def run(database: Database, root: Path, default_department: str = "window") -> list[FileResult]:
    if not project_clock.clock.manual:
        project_clock.clock.manual = True  # the harness moves time to fire timers (its own process)
    return [try_file(database, path, root, default_department) for path in corpus_files(root)]


def table(results: list[FileResult]) -> str:
    """The results by source, as docs/interop.md shows them. "as steps": of the ended files, those that deploy
    only with their code-bound service tasks made steps (`--code-tasks-as-steps`); by default they are refused."""
    by_source: dict[str, Counter] = {}
    for r in results:
        c = by_source.setdefault(r.source, Counter())
        c[r.outcome] += 1
        c["files"] += 1
        c["as_steps"] += r.outcome == "ended" and r.as_steps
        if r.has_user_task:
            c["user_task"] += 1
            c["user_task_ended"] += r.outcome == "ended"
            c["user_task_as_steps"] += r.outcome == "ended" and r.as_steps
    lines = ["| source | files | ended | of which as steps | running | failed | refused | files with a user task: "
             "ended | of which as steps |", "|---|---|---|---|---|---|---|---|---|"]
    total: Counter = Counter()
    for source, c in [*sorted(by_source.items()), ("**all**", None)]:
        if c is None:
            c = total
        else:
            total.update(c)
        lines.append(f"| {source} | {c['files']} | {c['ended']} | {c['as_steps']} | {c['running']} | {c['failed']} "
                     f"| {c['refused']} | {c['user_task_ended']} / {c['user_task']} | {c['user_task_as_steps']} |")
    return "\n".join(lines)


def reasons(results: list[FileResult], outcome: str, limit: int = 25) -> list[tuple[int, str]]:
    """The most common messages of an outcome, with the quoted names folded so that alike ones count together."""
    folded = Counter(re.sub(r"'[^']*'", "'…'", r.message)[:160] for r in results if r.outcome == outcome)
    return [(n, m) for m, n in folded.most_common(limit)]


def timed_run(database: Database, root: Path) -> tuple[list[FileResult], float]:
    started = time.perf_counter()
    results = run(database, root)
    return results, time.perf_counter() - started
