"""Pages without an account: the service guide (办事指南) and the applicant's tracking (进度查询)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user

from webapp.auth import client_address
from webapp.messages import say
from webapp.ui import words
from webapp.ui.helpers import db, page
from workflows.casework import applicant_portal, extensions
from workflows.definitions import diagram
from workflows.definitions.catalogue import catalogue
from workflows.definitions.processes import definition_for, latest_version
from workflows.errors import DomainError
from workflows.models import Case

bp = Blueprint("public", __name__)


@bp.route("/")
def home():
    return page("home.html", matters=[m for m in catalogue().matters.values() if not m.internal])


@bp.route("/favicon.ico")
def favicon():
    """Browsers ask for it whatever the page says; the same mark as the pages' icon."""
    return redirect(url_for("static", filename="favicon.svg"), 301)


@bp.route("/guide/<code>")
def guide(code: str):
    matter = catalogue().matters.get(code)
    if matter is None or matter.internal:
        abort(404)
    with db().read() as s:
        version = latest_version(s, matter.process)
        svg = diagram.render_svg(version.bpmn_xml, {}, version.name)
        fields = definition_for(version).start_fields if matter.promised_limit_by else ()
    departments = [catalogue().departments[d] for d in matter.departments if d in catalogue().departments]
    labels = words.choice_labels(fields, matter.promised_limit_by)
    promised = [(labels.get(k, k), v) for k, v in matter.promised_limits.items()]
    return page("guide.html", matter=matter, svg=svg, departments=departments, promised=promised)


def _client_ip() -> str:
    return client_address() or "unknown"


@bp.route("/track", methods=["GET", "POST"])
def track():
    error = None
    status = 200
    if request.method == "POST":
        case_no = request.form.get("case_no", "").strip().upper()
        code = request.form.get("query_code", "")
        try:
            found = db().transaction(lambda s: applicant_portal.open_case(s, case_no, code, _client_ip()))
        except applicant_portal.TooManyAttempts:
            error, status = _("尝试次数过多，请 15 分钟后再试"), 429
        else:
            if found is None:
                return page("track.html", 404, error=_("办件编号或查询码不正确"))
            session.setdefault("tracked", [])
            session["tracked"] = [*session["tracked"][-9:], case_no]
            return redirect(url_for("public.progress", case_no=case_no))
    return page("track.html", status, error=error)


def _tracked_case(s, case_no: str) -> Case:
    if case_no not in session.get("tracked", []):
        abort(404)
    from sqlalchemy import select

    case = s.scalar(select(Case).where(Case.case_no == case_no))
    if case is None:
        abort(404)
    return case


@bp.route("/track/<case_no>")
def progress(case_no: str):
    with db().read() as s:
        case = _tracked_case(s, case_no)
        view = applicant_portal.progress(s, case)
        department_names = {c: d.name for c, d in catalogue().departments.items()}
        granted = [e for e in extensions.of_case(s, case.id) if e.state == "approved"]
    return page("progress.html", p=view, departments=department_names, scores=words.RATING,
                extensions=granted)


def _staff_refused(case_no: str):
    """Staff signed in act as staff, never as the applicant (a query code seen at work is not theirs)."""
    if current_user.is_authenticated:
        flash(_("工作人员不能以申请人身份提交或评价，请退出登录后再操作"), "error")
        return redirect(url_for("public.progress", case_no=case_no))
    return None


@bp.post("/track/<case_no>/supply")
def supply(case_no: str):
    if refused := _staff_refused(case_no):
        return refused
    files = [(f.filename, f.stream) for f in request.files.getlist("files") if f and f.filename]

    def work(s):
        return applicant_portal.supply(s, _tracked_case(s, case_no), files)
    try:
        n = db().transaction(work)
        flash(_("已提交 %(n)d 个文件，窗口核对后恢复计时", n=n), "ok")
    except DomainError as exc:
        flash(say(exc), "error")
    return redirect(url_for("public.progress", case_no=case_no))


@bp.post("/track/<case_no>/rate")
def rate(case_no: str):
    if refused := _staff_refused(case_no):
        return refused
    raw = request.form.get("score", "")

    def work(s):
        score = int(raw) if raw.isdigit() else 0
        return applicant_portal.rate(s, _tracked_case(s, case_no), score, request.form.get("comment", ""))
    try:
        db().transaction(work)
        flash(_("感谢您的评价"), "ok")
    except DomainError as exc:
        flash(say(exc), "error")
    return redirect(url_for("public.progress", case_no=case_no))


@bp.post("/track/<case_no>/withdraw")
def withdraw(case_no: str):
    """撤回申请 by the applicant: asked to confirm on the page, with a reason."""
    if refused := _staff_refused(case_no):
        return refused
    if request.form.get("confirm") != "yes":
        flash(_("请勾选确认后再撤回申请"), "error")
        return redirect(url_for("public.progress", case_no=case_no))
    reason = request.form.get("reason", "").strip() or _("申请人撤回申请")

    def work(s):
        case = _tracked_case(s, case_no)
        return applicant_portal.withdraw(s, case, reason)
    try:
        db().transaction(work)
        flash(_("申请已撤回，办件已终结"), "ok")
    except DomainError as exc:
        flash(say(exc), "error")
    return redirect(url_for("public.progress", case_no=case_no))
