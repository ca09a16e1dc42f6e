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

from . import attachments, cases, throttle
from .errors import Conflict, InvalidInput
from .models import Alert, Case, Pause, Rating

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
class Progress:
    case: Case
    done: list
    current: list
    upcoming: list[str]
    expected: object
    notice: str | None
    rating: Rating | None


def progress(session: Session, case: Case) -> Progress:
    view = cases.case_view(session, case)
    case_clock = next((c for c in view["clocks"] if c.clock.scope == "case"), None)
    pause = session.scalar(select(Pause).where(Pause.case_id == case.id, Pause.ended_at.is_(None)))
    notice = pause.reason if pause is not None and pause.kind == "supplement" else None
    if case.supplement_due_at and not notice:
        notice = "容缺受理：请于期限前补齐 " + "、".join((case.materials or {}).get("tolerated", []))
    from .processes import definition_for

    definition = definition_for(case.process_version)
    seen = {i.step for i in view["done_items"]} | {i.step for i in view["open_items"]}
    upcoming = [s.name for s in definition.steps.values() if s.kind == "task" and s.bpmn_id not in seen
                and s.role != "supervisor" and case.status not in ("completed", "refused", "terminated")]
    rating = session.scalar(select(Rating).where(Rating.case_id == case.id))
    return Progress(case, view["done_items"], view["open_items"], upcoming,
                    case_clock.clock.due_at if case_clock else None, notice, rating)


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
