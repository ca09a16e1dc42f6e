"""Staff pages: login, intake at the window, worklists, working a step, case pages and search."""

from __future__ import annotations

import os
from datetime import date

import segno
from flask import Blueprint, abort, flash, redirect, request, send_file, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import or_, select

from webapp.auth import TOKENS, client_address
from webapp.messages import field_errors, say
from webapp.security import local_path
from webapp.ui import pdf, words
from webapp.ui.helpers import db, page, roles
from workflows.administration import users
from workflows.casework import attachments, cases, copies, extensions, messages, operations, visibility, window
from workflows.definitions import diagram, engine
from workflows.definitions.catalogue import catalogue
from workflows.definitions.processes import definition_for, latest_version
from workflows.errors import DomainError, Forbidden, InvalidInput
from workflows.models import Alert, Attachment, Case, User, WorkItem
from workflows.oversight import alerts, sla, supervision

bp = Blueprint("staff", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    error, status = None, 200
    if request.method == "POST":
        from webapp.ui import StaffUser

        username = request.form.get("username", "").strip()
        try:
            user = users.sign_in(db(), username, request.form.get("password", ""), client_address())
        except users.TooManyAttempts as exc:
            error, status = _("登录失败次数过多，请稍后再试或联系管理员解锁"), 429
            log_retry = exc.details.get("retry_after")
            if log_retry:
                error = _("登录失败次数过多，请 %(s)d 秒后再试", s=log_retry)
        except DomainError:
            error, status = _("用户名或密码错误"), 401
        else:
            login_user(StaffUser(user))
            session["cv"] = user.credential_version  # a later reset, logout or role change ends this session
            # only local paths: never an open redirect
            return redirect(local_path(request.args.get("next")) or url_for("staff.home"))
    return page("login.html", status, error=error)


@bp.post("/logout")
@login_required
def logout():
    user_id = current_user.id
    db().transaction(lambda s: users.revoke(s.get(User, user_id)))  # every older session and token ends
    TOKENS.forget_user(user_id)
    logout_user()
    session.clear()
    return redirect(url_for("public.home"))


@bp.route("/work")
@login_required
def home():
    if current_user.role == "clerk":
        return redirect(url_for("staff.intake_matters"))
    return redirect(url_for("staff.worklist"))


# --- intake -----------------------------------------------------------------------------------
def _matters():
    return [m for m in catalogue().matters.values() if not m.internal]


@bp.route("/intake")
@roles("clerk")
def intake_matters():
    return page("intake_matters.html", matters=_matters())


def _start_fields(matter):
    with db().read() as session:
        return matter.offered(definition_for(latest_version(session, matter.process)).start_fields)


@bp.route("/intake/<code>", methods=["GET", "POST"])
@roles("clerk")
def intake(code: str):
    matter = catalogue().matters.get(code)
    if matter is None or matter.internal:
        abort(404)
    fields = _start_fields(matter)
    errors: dict[str, str] = {}
    form = request.form
    if request.method == "POST":
        token = form.get("form_token")
        with db().read() as session:
            done = window.used_token(session, token)
        if done is not None:  # the same form again (double click, back and resubmit): show what it made
            return redirect(url_for("staff.receipt", case_no=done.result))
        applicant = {k: form.get(f"applicant_{k}", "").strip() or None for k in ("type", "name", "id_no", "contact")}
        data = {}
        for f in fields:
            raw = form.get(f"data_{f.name}", "").strip()
            if raw:
                data[f.name] = int(raw) if f.type == "integer" and raw.lstrip("-").isdigit() else raw
        deadline = None
        if form.get("deadline"):
            try:
                deadline = date.fromisoformat(form["deadline"])
            except ValueError:
                errors["deadline"] = _("日期格式为 YYYY-MM-DD")
        action = form.get("action", "")
        if not errors:
            try:
                case = window.intake_case(
                    db(), code, applicant, data, form.getlist("received"), form.getlist("missing"), action,
                    form.get("reason", ""), current_user.actor, deadline, token)
                return redirect(url_for("staff.receipt", case_no=case.case_no))
            except DomainError as exc:
                labels = _intake_labels(fields)
                errors = field_errors(exc, labels)
                errors["_form"] = say(exc, labels=labels)
    return page("intake.html", 400 if errors else 200, matter=matter, fields=fields, form=form, errors=errors)


def _intake_labels(fields) -> dict[str, str]:
    """The intake form's fields by the names its page gives them, for messages about them."""
    return {"applicant.type": _("申请人类型"), "applicant.name": _("名称 / 姓名"),
            "applicant.id_no": _("统一社会信用代码 / 身份证号"), "applicant.contact": _("联系电话"),
            "missing": _("材料清单"), "reason": _("理由 / 补正说明"), "deadline": _("容缺材料补齐期限"),
            **{f.name: f.label or f.name for f in fields}}


@bp.route("/cases/<case_no>/notice")
@roles("clerk", "reviewer", "supervisor")
def receipt(case_no: str):
    """The documents a hall hands out for a case: 收件回执 (?doc=receipt), and by the case's state the
    受理 / 补正 / 不予受理 notice or, at the end, the 办结通知书."""
    doc = request.args.get("doc", "")
    with db().read() as session:
        case = visibility.case_for(session, case_no, current_user.actor)
        view = cases.case_view(session, case)
        matter = catalogue().matters.get(case.matter_code)
        definition = definition_for(case.process_version)
    if doc not in ("", "receipt", "service") or (doc == "service" and case.status not in ("completed", "refused")):
        abort(404)
    # what the case produced (licence, certificate, seal numbers), each under its step's field label
    results = [(label, value) for item in view["done_items"] if item.step in definition.steps
               and definition.steps[item.step].department != "window"
               for label, value in words.shown_fields(definition.steps[item.step].fields, item.data or {})]
    delivery = next((words.word(words.DELIVERY, (i.data or {}).get("delivery_method")) for i in view["done_items"]
                     if (i.data or {}).get("delivery_method")), "")
    progress_url = url_for("public.track", _external=True, case_no=case.case_no)
    qr = segno.make(progress_url, error="m").svg_inline(scale=3, title=_("扫码查询办理进度"))
    html, status = page("notice.html", case=case, view=view, matter=matter, doc=doc or "state", results=results,
                        qr=qr, delivery=delivery, hall=os.environ.get("ONEWINDOW_HALL_NAME", "政务服务中心"),
                        query_code=case.query_code if visibility.sees_query_code(current_user.actor) else None)
    if request.args.get("format") == "pdf":
        return pdf.as_pdf(html, f"{case.case_no}-{doc or case.status}.pdf")
    return html, status


# --- worklists --------------------------------------------------------------------------------
def _clock_by_item(session, items):
    ids = [i.id for i in items]
    if not ids:
        return {}
    clocks = session.scalars(select(sla.SlaClock).where(sla.SlaClock.work_item_id.in_(ids),
                                                       sla.SlaClock.state.in_(sla.ACTIVE))).all()
    return {c.work_item_id: sla.view(session, c) for c in clocks}


@bp.route("/worklist")
@login_required
def worklist():
    which = request.args.get("view", "queue")
    actor = current_user.actor
    with db().read() as session:
        query = cases.WorkItemQuery(state="active", limit=200,
                                    assignee=actor.username if which == "mine" else None)
        if actor.role == "supervisor":
            query = cases.WorkItemQuery(state="active", role="supervisor", limit=200)
        items, total = cases.list_work_items(session, query, actor)
        views = _clock_by_item(session, items)
        case_status = dict(session.execute(select(Case.case_no, Case.status).where(
            Case.case_no.in_({i.case_no for i in items}))).all()) if items else {}
    with db().read() as session:
        # the latest few; the rest are one link away, so the queue stays where the eye expects it
        notes, notes_total = alerts.list_alerts(session, alerts.AlertQuery(acknowledged=False, limit=5), actor)
    # the least time left first; items without a clock last
    items.sort(key=lambda i: (views[i.id].left_minutes if i.id in views and views[i.id].left_minutes is not None
                              else 10 ** 9, i.created_at))
    return page("worklist.html", items=items, views=views, which=which, total=total, case_status=case_status,
                notes=notes, notes_total=notes_total)


@bp.post("/alerts/<int:alert_id>/acknowledge")
@login_required
def acknowledge(alert_id: int):
    comment = request.form.get("comment", "").strip()[:1000] or None
    _act(lambda s: alerts.acknowledge(s, alert_id, current_user.actor, comment), _("已确认提醒"))
    return redirect(url_for("staff.worklist"))


@bp.post("/alerts/acknowledge-all")
@login_required
def acknowledge_all():
    """知道了 for every reminder shown: one click, not one per line."""
    ids = [int(x) for x in request.form.getlist("alert_id") if x.isdigit()][:alerts.MAX_AT_ONCE]
    _act(lambda s: alerts.acknowledge_many(s, ids, current_user.actor), _("已确认提醒"))
    return redirect(url_for("staff.worklist"))


@bp.post("/items/<int:item_id>/claim")
@login_required
def claim(item_id: int):
    _act(lambda s: cases.claim(s, item_id, current_user.actor), _("已领取"))
    return redirect(request.referrer or url_for("staff.worklist"))


@bp.post("/items/<int:item_id>/release")
@login_required
def release(item_id: int):
    _act(lambda s: cases.release(s, item_id, current_user.actor), _("已退回队列"))
    return redirect(request.referrer or url_for("staff.worklist"))


def _act(work, done_message: str):
    """Run `work` in one transaction; flash the outcome; return what it returned (None on refusal)."""
    try:
        result = db().transaction(work)
    except DomainError as exc:
        flash(say(exc), "error")
        return None
    flash(done_message, "ok")
    return result


# --- working a step ---------------------------------------------------------------------------
@bp.route("/items/<int:item_id>", methods=["GET", "POST"])
@login_required
def work_item(item_id: int):
    actor = current_user.actor
    errors: dict[str, str] = {}
    with db().read() as session:
        try:
            item = cases.get_work_item(session, item_id, actor)
        except Forbidden:
            abort(403)
        definition = definition_for(item.case.process_version)
        step = definition.steps[item.step]
        case_no = item.case_no
    if request.method == "POST":
        form = request.form
        token = form.get("form_token")
        with db().read() as session:
            if window.used_token(session, token) is not None:
                return redirect(url_for("staff.case_page", case_no=case_no))
        data = {}
        for f in step.fields:
            raw = form.get(f.name, "")
            if f.type == "boolean":
                data[f.name] = raw == "on"
            elif raw.strip():
                if f.type == "integer":
                    try:
                        data[f.name] = int(raw)
                    except ValueError:
                        errors[f.name] = _("请输入整数")
                elif f.type == "number":
                    try:
                        data[f.name] = float(raw)
                    except ValueError:
                        errors[f.name] = _("请输入数字")
                else:
                    data[f.name] = raw
        files = [f for f in request.files.getlist("files") if f and f.filename]
        if not errors:
            def also(session, done):
                window.spend_token(session, token, actor, case_no)
                case = session.get(Case, done.case_id)
                for upload in files:
                    upload.stream.seek(0)  # a retried write reads the upload again
                    attachments.save(session, case, "step", upload.filename, upload.stream, actor.username,
                                     work_item_id=item_id)
            try:
                cases.complete_step(db(), item_id, actor, data, also=also)
                flash(_("已办结该环节"), "ok")
                return redirect(url_for("staff.case_page", case_no=case_no))
            except DomainError as exc:
                labels = {f.name: f.label or f.name for f in step.fields}
                errors = field_errors(exc, labels)
                errors["_form"] = say(exc, labels=labels)
    with db().read() as session:
        item = session.get(WorkItem, item_id)
        case = session.get(Case, item.case_id)
        view = cases.case_view(session, case)
        back = operations.targets(session, item_id, actor) if item.state in cases.OPEN_STATES else []
        colleagues = session.scalars(select(User).where(
            User.role == item.role, User.member_of(item.department), User.active.is_(True),
            User.username != (item.assignee or actor.username)).order_by(User.username)).all() \
            if item.state in cases.OPEN_STATES else []
    # a delegated step's draft (委派) fills the form for its holder to confirm
    form = request.form if request.method == "POST" else {k: v for k, v in (item.data or {}).items()
                                                           if item.state in cases.OPEN_STATES}
    # what the case was started with, by its labels: the worker needs it (a 回访 needs the rated case)
    facts = words.shown_fields(definition.start_fields, case.data or {})
    return page("work_item.html", 400 if errors else 200, item=item, step=step, case=case, view=view,
                errors=errors, form=form, back=back, colleagues=colleagues, facts=facts)


@bp.post("/items/<int:item_id>/delegate")
@login_required
def delegate(item_id: int):
    actor = current_user.actor
    done = _act(lambda s: operations.delegate(s, item_id, actor, request.form.get("to")), _("已委派"))
    return redirect(url_for("staff.worklist") if done else url_for("staff.work_item", item_id=item_id))


@bp.post("/items/<int:item_id>/transfer")
@login_required
def transfer(item_id: int):
    actor = current_user.actor
    done = _act(lambda s: operations.transfer(s, item_id, actor, request.form.get("to"), request.form.get("reason")),
                _("已转办"))
    return redirect(url_for("staff.worklist") if done else url_for("staff.work_item", item_id=item_id))


@bp.post("/items/<int:item_id>/urge")
@login_required
def urge(item_id: int):
    actor = current_user.actor
    done = _act(lambda s: operations.urge(s, item_id, actor, request.form.get("message", "")), _("已催办"))
    return redirect(url_for("staff.case_page", case_no=done.case_no) if done else url_for("staff.worklist"))


@bp.post("/items/<int:item_id>/return")
@login_required
def return_item(item_id: int):
    """退回 from the item page: to the step chosen (the step before by default), with the reason."""
    actor = current_user.actor
    try:
        reopened = operations.return_to(db(), item_id, actor, request.form.get("to") or None,
                                        request.form.get("reason", ""))
    except DomainError as exc:
        flash(say(exc), "error")
        return redirect(url_for("staff.work_item", item_id=item_id))
    flash(_("已退回至「%(step)s」", step=reopened.name), "ok")
    return redirect(url_for("staff.case_page", case_no=reopened.case_no))


@bp.post("/cases/<case_no>/pause")
@login_required
def pause(case_no: str):
    reason = request.form.get("reason", "").strip()
    expected = request.form.get("expected_days", "").strip()
    if reason and expected.isdigit():
        reason = f"{reason}（预计 {int(expected)} 个工作日）"
    _act(lambda s: cases.pause(s, case_no, request.form.get("kind"), reason, current_user.actor),
         _("已挂起，计时暂停"))
    return redirect(url_for("staff.case_page", case_no=case_no))


@bp.post("/cases/<case_no>/resume")
@login_required
def resume(case_no: str):
    _act(lambda s: cases.resume(s, case_no, current_user.actor), _("已恢复，计时继续"))
    return redirect(url_for("staff.case_page", case_no=case_no))


@bp.post("/cases/<case_no>/extensions")
@roles("clerk", "reviewer")
def request_extension(case_no: str):
    days = request.form.get("working_days", "")
    _act(lambda s: extensions.request(s, case_no, current_user.actor, int(days) if days.isdigit() else 0,
                                      request.form.get("reason", ""), request.form.get("move_steps") == "yes"),
         _("延期申请已提交，待督查审批"))
    return redirect(url_for("staff.case_page", case_no=case_no))


@bp.post("/extensions/<int:extension_id>/<any(approve, refuse):decision>")
@roles("supervisor")
def decide_extension(extension_id: int, decision: str):
    done = _act(lambda s: extensions.decide(s, extension_id, current_user.actor, decision == "approve",
                                            request.form.get("note", "")),
                _("已批准延期") if decision == "approve" else _("已不予延期"))
    return redirect(url_for("staff.case_page", case_no=done.case_no) if done else url_for("staff.home"))


@bp.route("/cases/<case_no>/extensions/<int:extension_id>/notice")
@roles("clerk", "reviewer", "supervisor")
def extension_notice(case_no: str, extension_id: int):
    """延期告知书, printable: the applicant is told the new limit and why."""
    with db().read() as session:
        case = visibility.case_for(session, case_no, current_user.actor)
        found = next((e for e in extensions.of_case(session, case.id)
                      if e.id == extension_id and e.state == "approved"), None)
        if found is None:
            abort(404)
        matter = catalogue().matters.get(case.matter_code)
    return page("extension_notice.html", case=case, extension=found, matter=matter)


@bp.post("/cases/<case_no>/notes")
@roles("clerk", "reviewer", "supervisor")
def add_note(case_no: str):
    _act(lambda s: visibility.add_note(s, case_no, current_user.actor, request.form.get("text", "")), _("已留言"))
    return redirect(url_for("staff.case_page", case_no=case_no) + "#notes")


def _names(text: str) -> list[str]:
    """Usernames or department codes typed in one field, separated by commas (either width)."""
    return [t.strip() for t in text.replace("，", ",").split(",") if t.strip()]


@bp.route("/copies")
@login_required
def copies_page():
    """抄送我的: cases copied to me or my department, unread first."""
    with db().read() as session:
        rows = copies.for_actor(session, current_user.actor)
    rows.sort(key=lambda c: (c.read_at is not None, -c.at.timestamp()))
    return page("copies.html", rows=rows)


@bp.post("/items/<int:item_id>/cc")
@login_required
def cc(item_id: int):
    to = _names(request.form.get("to", ""))
    _act(lambda s: copies.copy_item(s, item_id, current_user.actor, to), _("已抄送"))
    return redirect(url_for("staff.work_item", item_id=item_id))


@bp.post("/cases/<case_no>/supervisions")
@roles("supervisor")
def open_supervision(case_no: str):
    raw = request.form.get("item_id", "")
    _act(lambda s: supervision.open_supervision(s, case_no, current_user.actor, int(raw) if raw.isdigit() else None,
                                                request.form.get("reply_within", ""), request.form.get("message", ""),
                                                request.form.get("department") or None), _("已发起督办"))
    return redirect(url_for("staff.case_page", case_no=case_no))


@bp.post("/supervisions/<int:supervision_id>/reply")
@login_required
def reply_supervision(supervision_id: int):
    done = _act(lambda s: supervision.reply(s, supervision_id, current_user.actor, request.form.get("reply", "")),
                _("已答复督办"))
    return redirect(url_for("staff.case_page", case_no=done.case_no) if done else url_for("staff.worklist"))


@bp.post("/items/<int:item_id>/consult")
@login_required
def consult(item_id: int):
    to = _names(request.form.get("to", ""))
    _act(lambda s: copies.consult(s, item_id, current_user.actor, to, request.form.get("question", "")),
         _("已征求意见，待各方答复后再办结"))
    return redirect(url_for("staff.work_item", item_id=item_id))


@bp.post("/consultations/<int:consultation_id>/answer")
@login_required
def answer(consultation_id: int):
    done = _act(lambda s: copies.answer(s, consultation_id, current_user.actor, request.form.get("answer", "")),
                _("已答复"))
    if done is None:
        return redirect(url_for("staff.copies_page"))
    with db().read() as session:
        case = session.get(Case, done.case_id)
    return redirect(url_for("staff.case_page", case_no=case.case_no))


@bp.post("/cases/<case_no>/terminate")
@roles("supervisor")
def terminate(case_no: str):
    _act(lambda s: window.end_case(s, case_no, request.form.get("reason", ""), current_user.actor), _("办件已终止"))
    return redirect(url_for("staff.case_page", case_no=case_no))


@bp.post("/cases/<case_no>/messages")
@roles("supervisor")
def deliver_message(case_no: str):
    """A message or signal the case waits for, recorded as received (a payment confirmed by telephone, a
    reply that came by post)."""
    try:
        messages.deliver(db(), case_no, request.form.get("kind", "message"), request.form.get("name", ""), {},
                         current_user.actor)
    except DomainError as exc:
        flash(say(exc), "error")
    else:
        flash(_("已登记收到，办件继续办理"), "ok")
    return redirect(url_for("staff.case_page", case_no=case_no))


@bp.post("/cases/<case_no>/confirm-supplement")
@roles("clerk")
def confirm_supplement(case_no: str):
    def work(session):
        case = window.confirm_supplement(session, case_no, current_user.actor)
        item = cases.open_item(session, case, "accept")
        return item.id if item is not None and case.status == "received" else None

    accept_item = _act(work, _("补正材料已确认，计时恢复"))
    if accept_item:  # the case waited at intake: the clerk now decides 受理 or 不予受理
        return redirect(url_for("staff.work_item", item_id=accept_item))
    return redirect(url_for("staff.case_page", case_no=case_no))


# --- case pages -------------------------------------------------------------------------------
@bp.route("/cases")
@roles("clerk", "reviewer", "supervisor")
def search():
    q = request.args.get("q", "").strip()
    status = request.args.get("status", "")
    rows = []
    with db().read() as session:
        stmt = visibility.visible(select(Case).order_by(Case.created_at.desc()).limit(100), current_user.actor)
        if q:
            stmt = stmt.where(or_(Case.case_no == q.upper(), Case.applicant_name.contains(q),
                                  Case.applicant_id_no == q.upper()))
        if status:
            stmt = stmt.where(Case.status == status)
        rows = session.scalars(stmt).all()
    return page("search.html", rows=rows, q=q, status_filter=status)


@bp.route("/cases/<case_no>")
@roles("clerk", "reviewer", "supervisor")
def case_page(case_no: str):
    with db().read() as session:
        case = visibility.case_for(session, case_no, current_user.actor)
        view = cases.case_view(session, case)
        definition = definition_for(case.process_version)
        workflow = engine.load(case.state, definition)
        svg = diagram.render_svg(case.process_version.bpmn_xml, diagram.case_states(workflow),
                                 case.process_version.name)
        waits = messages.waiting(workflow) if case.status in ("received", "in_progress") else []
        files = session.scalars(select(Attachment).where(Attachment.case_id == case.id)).all()
        alerts = session.scalars(select(Alert).where(Alert.case_id == case.id).order_by(Alert.at)).all()
        matter = catalogue().matters.get(case.matter_code)
        granted = extensions.of_case(session, case.id)
        thread = visibility.notes(session, case.id)
        supervisions = supervision.of_case(session, case.id)
        opinions = copies.opinions_of_case(session, case.id)
        people = {u.username: (u.display_name or u.username, u.department) for u in session.scalars(
            select(User).where(User.username.in_({e.actor for e in view["history"]})))}
    if current_user.role == "reviewer":  # a copy to them or their department is read now
        db().transaction(lambda s: copies.mark_read(s, case.id, current_user.actor))
    # each step's own submission is shown under it: parallel steps never overwrite each other's fields
    records = [(item, words.shown_fields(definition.steps[item.step].fields if item.step in definition.steps
                                         else (), item.data or {})) for item in view["done_items"]]
    start_data = words.shown_fields(definition.start_fields, case.data)
    story = words.history(view["history"], definition.steps, people)
    return page("case.html", story=story, case=case, view=view, svg=svg, files=files, alerts=alerts, matter=matter,
                steps=definition.steps, records=records, start_data=start_data, extensions=granted, notes=thread,
                supervisions=supervisions, opinions=opinions, waits=waits)


@bp.route("/attachments/<int:attachment_id>")
@roles("clerk", "reviewer", "supervisor")
def attachment(attachment_id: int):
    with db().read() as session:
        row = session.get(Attachment, attachment_id)
        if row is None or not visibility.may_see(session, current_user.actor, session.get(Case, row.case_id)):
            abort(404)  # another department's file answers as if there were none
    return send_file(attachments.path_of(row), mimetype=row.content_type, as_attachment=True,
                     download_name=row.original_name)


__all__ = ["bp", "InvalidInput"]
