"""What an applicant does without an account: track a case (进度查询), supply missing materials, rate it.

A case number and its query code open the case. A wrong code gets the same answer as an unknown case,
and an address that keeps guessing is refused for a while.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from timers.clock import now

from ..administration import throttle
from ..errors import Conflict, InvalidInput
from ..models import Alert, Case, Pause, Rating
from . import attachments, cases

WINDOW = timedelta(minutes=15)
MAX_FAILURES = int(os.environ.get("ONEWINDOW_TRACK_MAX_FAILURES", "10"))
FOLLOWUP_DAYS = int(os.environ.get("ONEWINDOW_FOLLOWUP_DAYS", "15"))
SCORES = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}


TooManyAttempts = throttle.TooManyAttempts


def _track_wait(failures: int) -> timedelta | None:
    return WINDOW if failures >= MAX_FAILURES else None


def open_case(session: Session, case_no: str, query_code: str, ip: str) -> Case | None:
    """The case when number and code match, else None. Attempts are counted per case number and client
    address, atomically and before the code is compared (TooManyAttempts after ten wrong ones, for 15
    minutes): a guesser is stopped without locking out everyone else at a shared kiosk or proxy. The
    caller commits even when None comes back, so a failed guess stays counted."""
    number = (case_no or "").strip().upper()[:40]
    key = f"track:{number}|{(ip or '-')[:64]}"
    throttle.take(session, key, _track_wait)
    case = session.scalar(select(Case).where(Case.case_no == number))
    ok = case is not None and hmac.compare_digest(case.query_code, (query_code or "").strip().upper()[:16])
    if ok:
        throttle.forgive(session, key)
    return case if ok else None


@dataclass
class StepLine:
    """One step as the applicant sees it: done (when, by which department), being worked, waiting, or skipped."""

    step: str
    name: str
    department: str
    state: str  # done | current | upcoming | skipped
    at: object = None


@dataclass
class Stage:
    name: str
    state: str
    groups: list[list[StepLine]]


@dataclass
class Progress:
    case: Case
    route: list  # in the process's order: a list of steps worked side by side, or a Stage of such lists
    expected: object
    notice: str | None
    rating: Rating | None
    now: str  # what is happening, in a few words (a key of NOW in the web layer) ...
    now_args: dict
    missing: list[str]
    results: list[tuple[str, object]]  # what the case produced: (label, value) from the steps' data
    delivery: str | None
    supplied: list  # the files the applicant uploaded while the case waited for them


def _ranks(spec, visible: set[str]) -> dict[str, int]:
    """Each task of a BPMN spec by the number of visible steps on the longest forward path from the start to
    it: steps worked in parallel share a rank, and a step after a join comes after all its branches; gateways
    and events count nothing. Loops (returns) are cut."""
    order: list = []
    state: dict[str, int] = {}
    stack = [(spec.start, iter(spec.start.outputs))]
    state[spec.start.name] = 1
    while stack:  # depth-first, iteratively: a large diagram does not exhaust the recursion limit
        node, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            state[node.name] = 2
            order.append(node)
        elif child.name not in state:
            state[child.name] = 1
            stack.append((child, iter(child.outputs)))
    order.reverse()
    position = {node.name: i for i, node in enumerate(order)}
    rank = {node.name: 0 for node in order}
    for node in order:
        for child in node.outputs:
            if position.get(child.name, -1) > position[node.name]:
                rank[child.name] = max(rank[child.name], rank[node.name] + (child.name in visible))
    return rank


def _groups(spec, steps: dict, lines: dict[str, StepLine]) -> list[list[StepLine]]:
    ranks = _ranks(spec, set(lines))
    by_rank: dict[int, list[StepLine]] = {}
    for name, rank in ranks.items():
        if name in lines:
            by_rank.setdefault(rank, []).append(lines[name])
    drawn = {key: i for i, key in enumerate(steps)}  # side by side in the order the file lists them
    return [sorted(by_rank[r], key=lambda line: drawn.get(line.step, 0)) for r in sorted(by_rank)]


def route(definition, lines: dict[str, StepLine]) -> list:
    """The process's steps in order for the applicant: parallel ones together, a stage's steps under it."""
    out: list = []
    for group in _groups(definition.spec, definition.steps, lines | {
            k: StepLine(k, s.name, s.department, "stage") for k, s in definition.steps.items() if s.kind == "stage"}):
        for line in group:
            if line.state == "stage":
                inner = _groups(definition.subprocess_specs[line.step], definition.steps, lines)
                states = {i.state for g in inner for i in g}
                state = ("done" if states <= {"done", "skipped"} and "done" in states else
                         "current" if "current" in states or ("done" in states and "upcoming" in states)
                         else "upcoming")
                out.append(Stage(line.name, state, inner))
        plain = [line for line in group if line.state != "stage"]
        if plain:
            out.append(plain)
    return out


def progress(session: Session, case: Case) -> Progress:
    from ..definitions.processes import definition_for

    view = cases.case_view(session, case)
    case_clock = next((c for c in view["clocks"] if c.clock.scope == "case"), None)
    pause = session.scalar(select(Pause).where(Pause.case_id == case.id, Pause.ended_at.is_(None)))
    notice = pause.reason if pause is not None and pause.kind == "supplement" else None
    missing = list((case.materials or {}).get("missing", [])) if notice else []
    if case.supplement_due_at and not notice:
        missing = list((case.materials or {}).get("tolerated", []))
    definition = definition_for(case.process_version)
    ended = case.status in ("completed", "refused", "terminated")
    lines: dict[str, StepLine] = {}
    for key, step in definition.steps.items():
        if step.kind != "task" or step.role == "supervisor":
            continue
        lines[key] = StepLine(key, step.name, step.department, "skipped" if ended else "upcoming")
    for item in view["done_items"]:  # the latest completion counts (a returned step is done again)
        if item.step in lines:
            lines[item.step].state, lines[item.step].at = "done", item.completed_at
    for item in view["open_items"]:
        if item.step in lines:
            lines[item.step].state, lines[item.step].at = "current", None
    ordered = route(definition, lines)
    now_key, now_args = _now(case, pause, missing, ordered)
    results = []
    delivery = None
    if case.status == "completed":
        for item in view["done_items"]:
            step = definition.steps.get(item.step)
            if step is None or step.department == "window":
                if (item.data or {}).get("delivery_method"):
                    delivery = item.data["delivery_method"]
                continue
            results += [(f.label or f.name, (item.data or {})[f.name]) for f in step.fields
                        if f.type in ("string",) and (item.data or {}).get(f.name)]
    supplied = [] if ended else attachments.of_case(session, case.id, kind="supplement")
    rating = session.scalar(select(Rating).where(Rating.case_id == case.id))
    return Progress(case, ordered, case_clock.clock.due_at if case_clock else None, notice, rating, now_key,
                    now_args, missing, results, delivery, supplied)


def _now(case: Case, pause, missing: list[str], ordered: list) -> tuple[str, dict]:
    """What is happening, as a key and its values: the page turns it into a sentence."""
    if case.status in ("completed", "refused", "terminated"):
        return case.outcome or case.status, {}
    if pause is not None:
        return ("supplement" if pause.kind == "supplement" else "paused"), {"missing": missing}
    if case.supplement_due_at:
        return "tolerated", {"missing": missing, "due": case.supplement_due_at}
    flat = [g for entry in ordered for g in (entry.groups if isinstance(entry, Stage) else [entry])]
    group = next((g for g in flat if any(line.state == "current" for line in g)), None)
    if group is None:
        return "working", {}
    if len(group) > 1:
        return "parallel", {"done": sum(line.state == "done" for line in group), "all": len(group)}
    return "step", {"step": group[0].name, "department": group[0].department}


def supply(session: Session, case: Case, files: list[tuple[str, BinaryIO]]) -> int:
    """The applicant uploads the listed materials; the window is told and confirms them."""
    waiting = case.status == "paused" or case.supplement_due_at is not None
    if not waiting:
        raise Conflict("this case is not waiting for materials")
    if not files:
        raise InvalidInput("choose at least one file")
    saved = [attachments.save(session, case, "supplement", name, stream, "applicant") for name, stream in files]
    at = now()
    key = f"case:{case.id}:supplied:{saved[0].id}"  # one notice per upload, however close two uploads come
    session.add(Alert(dedupe_key=key, level="supplied", case_id=case.id, case_no=case.case_no, department="window",
                      concerned=["department:window", f"user:{case.created_by}"],
                      message=f"申请人已提交补正材料：{case.case_no}（{len(files)} 个文件），请核对", at=at,
                      created_at=at))
    cases._audit(session, case, cases.Actor("applicant", "applicant"), "materials.supplied",
                 after={"files": [n for n, _ in files]})
    return len(files)


def rate(session: Session, case: Case, score: int, comment: str) -> Rating:
    """好差评, once per case after completion; a bad rating (1-2) opens a 回访/整改 follow-up case."""
    if case.status not in ("completed", "refused"):
        raise Conflict("a case is rated after it is completed")
    if score not in SCORES:
        raise InvalidInput("score: 1 to 5", fields={"score": "1-5"})
    comment = (comment or "").strip()
    if len(comment) > 1000:
        raise InvalidInput("comment: at most 1000 characters", fields={"comment": "too long"})
    if session.scalar(select(Rating.id).where(Rating.case_id == case.id)) is not None:
        raise Conflict("this case has been rated already")
    rating = Rating(case_id=case.id, score=score, comment=comment, at=now())
    session.add(rating)
    session.flush()
    cases._audit(session, case, cases.Actor("applicant", "applicant"), "case.rated",
                 after={"score": score, "label": SCORES[score], "comment": comment})
    if score <= 2:
        followup = cases.start_case(session, "rating_followup", cases.applicant_of(case),
                                    {"rated_case_no": case.case_no, "score": score, "comment": comment,
                                     "followup_days": FOLLOWUP_DAYS}, cases.SYSTEM)
        rating.followup_case_id = followup.id
    return rating


def withdraw(session: Session, case: Case, reason: str) -> Case:
    """撤回申请 on the progress page: the case ends as withdrawn (the window is told)."""
    from . import window

    window.end_case(session, case.case_no, reason[:500], cases.Actor("applicant", "applicant"), "withdrawn")
    at = now()
    session.add(Alert(dedupe_key=f"case:{case.id}:withdrawn", level="terminated", case_id=case.id,
                      case_no=case.case_no, department="window", concerned=["department:window"],
                      message=f"申请人已撤回申请：{case.case_no}", at=at, created_at=at))
    return case
