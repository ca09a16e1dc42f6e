"""How OneWindow reads BPMN files from other modelers: deploy each file of a folder, then drive each deployed
process to its end with generated data — fields filled by type, the variables its conditions read, timers
fired by moving the project's clock — as `onewindow bench interop` reports and the interop test checks.

Every file ends in one of: "ended" (a case reached an end event), "running" (deployed, but a case did not
finish within the step budget: it waits for a message, a signal, or data the generator cannot guess),
"failed" (deployed, but a case stopped on an error: the message says where), or "refused" (not deployed:
the message names the element and says what to change).
"""

from __future__ import annotations

import ast
import re
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from timers import clock as project_clock

from .. import cases, processes
from ..db import Database
from ..errors import DomainError
from ..forms import Field
from ..models import Case, WorkItem

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


def corpus_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".bpmn", ".xml") and
                  not p.name.startswith("."))


def _value(field: Field, turn: int) -> Any:
    """A value of the field's type; choices and flags take turns, so that a loop back (payment not OK: try
    again) ends on a later round."""
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


def _fill(fields, turn: int = 0) -> dict[str, Any]:
    return {f.name: _value(f, turn) for f in fields}


def _variables(definition) -> set[str]:
    """The names the process's conditions read: the generator gives them a value (true, which also counts
    as 1 and compares with numbers) so that a gateway can choose."""
    names: set[str] = set()
    for spec in [definition.spec, *definition.subprocess_specs.values()]:
        for task_spec in spec.task_specs.values():
            for condition, _target in getattr(task_spec, "cond_task_specs", None) or []:
                text = getattr(condition, "args", [None])[0] if condition is not None else None
                if isinstance(text, str):
                    try:
                        tree = ast.parse(text, mode="eval")
                    except SyntaxError:
                        continue
                    names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return names - {"True", "False", "None", "len", "str", "int", "float"}


def _has_user_task(content: bytes) -> bool:
    """Whether the file draws a user task (counted whether or not it deploys)."""
    try:
        tree = processes.read_xml(content)
    except DomainError:
        return False
    return bool(tree.xpath("//*[local-name()='userTask']"))


def try_file(database: Database, path: Path, root: Path, default_department: str = "window") -> FileResult:
    source = path.relative_to(root).parts[0]
    content = path.read_bytes()
    has_user_task = _has_user_task(content)
    try:
        with database.read() as session:
            definition = processes.check_file(content, path.name, default_department, session)
        database.transaction(lambda s: processes.deploy(s, content, path.name, "interop", definition))
    except DomainError as exc:
        return FileResult(source, path.name, "refused", has_user_task, 0, exc.message)
    except Exception as exc:  # a crash is a finding, not a stop: reported as such
        return FileResult(source, path.name, "refused", has_user_task, 0, f"CRASH {type(exc).__name__}: {exc}"[:300])
    steps_done = 0
    try:
        start_data = _fill(definition.start_fields)
        case = database.transaction(lambda s: cases.start_case(s, definition.key, APPLICANT, start_data,
                                                                cases.SYSTEM))
        case_id = case.id
        for _round in range(MAX_ROUNDS):
            with database.read() as session:
                row = session.get(Case, case_id)
                if row.status in ("completed", "refused", "terminated"):
                    return FileResult(source, path.name, "ended", has_user_task, steps_done, row.outcome or "")
                items = session.scalars(select(WorkItem).where(WorkItem.case_id == case_id, WorkItem.state.in_(
                    cases.OPEN_STATES)).order_by(WorkItem.id)).all()
                next_timer = row.next_timer_at
                version = processes.cached_version(session, row.process_version_id)
            if items:
                steps = processes.definition_for(version).steps
                for item in items:
                    data = _fill(steps[item.step].fields if item.step in steps else (), _round)
                    database.transaction(lambda s, i=item.id, d=data: cases.complete(s, i, ADMIN, d))
                    steps_done += 1
                continue
            if next_timer is None:
                return FileResult(source, path.name, "running", has_user_task, steps_done,
                                  "waits for something other than a step or a timer (a message or a signal)")
            _advance_to(database, next_timer)
        return FileResult(source, path.name, "running", has_user_task, steps_done,
                          f"not finished after {MAX_ROUNDS} rounds")
    except DomainError as exc:
        return FileResult(source, path.name, "failed", has_user_task, steps_done, exc.message[:300])
    except Exception as exc:
        return FileResult(source, path.name, "failed", has_user_task, steps_done,
                          f"CRASH {type(exc).__name__}: {exc}"[:300])


def _advance_to(database: Database, instant) -> None:
    """Move the project's (manual) clock just past a timer and let the timer job fire it."""
    from .. import jobs

    current = project_clock.now()
    if instant > current:
        project_clock.clock.advance(instant - current + timedelta(minutes=1))
    jobs.fire_timers(database)


def run(database: Database, root: Path, default_department: str = "window") -> list[FileResult]:
    if not project_clock.clock.manual:
        project_clock.clock.manual = True  # the harness moves time to fire timers (its own process)
    return [try_file(database, path, root, default_department) for path in corpus_files(root)]


def table(results: list[FileResult]) -> str:
    """The results by source, as docs/interop.md shows them."""
    by_source: dict[str, Counter] = {}
    for r in results:
        by_source.setdefault(r.source, Counter())[r.outcome] += 1
        by_source[r.source]["files"] += 1
        if r.has_user_task:
            by_source[r.source]["user_task"] += 1
            by_source[r.source]["user_task_ended"] += r.outcome == "ended"
    lines = ["| source | files | ended | running | failed | refused | files with a user task: ended |",
             "|---|---|---|---|---|---|---|"]
    total = Counter()
    for source, c in sorted(by_source.items()):
        total.update(c)
        lines.append(f"| {source} | {c['files']} | {c['ended']} | {c['running']} | {c['failed']} | {c['refused']} "
                     f"| {c['user_task_ended']} / {c['user_task']} |")
    lines.append(f"| **all** | {total['files']} | {total['ended']} | {total['running']} | {total['failed']} | "
                 f"{total['refused']} | {total['user_task_ended']} / {total['user_task']} |")
    return "\n".join(lines)


def reasons(results: list[FileResult], outcome: str, limit: int = 25) -> list[tuple[int, str]]:
    """The most common messages of an outcome, with the quoted names folded so that alike ones count together."""
    folded = Counter(re.sub(r"'[^']*'", "'…'", r.message)[:160] for r in results if r.outcome == outcome)
    return [(n, m) for m, n in folded.most_common(limit)]


def timed_run(database: Database, root: Path) -> tuple[list[FileResult], float]:
    started = time.perf_counter()
    results = run(database, root)
    return results, time.perf_counter() - started
