"""Supervisor and admin pages: the SLA board, the alerts inbox, statistics with exports, and admin
pages for processes, the calendar and users."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from timers.clock import SHANGHAI, now
from webapp.auth import TOKENS
from webapp.messages import say
from webapp.ui import words
from webapp.ui.helpers import db, department_name, page, roles
from workflows.administration import calendar_store, staff_admin, users
from workflows.definitions import processes
from workflows.definitions.catalogue import ROLES, catalogue
from workflows.errors import DomainError
from workflows.models import Case, OfficeHoursRule, ProcessVersion
from workflows.oversight import alerts, board, incidents, sla, statistics

bp = Blueprint("supervision", __name__)


def _int(name: str, default: int, low: int = 1, high: int = 10_000) -> int:
    raw = request.args.get(name, "")
    return min(high, max(low, int(raw))) if raw.isdigit() else default


@bp.route("/board")
@roles("supervisor")
def sla_board():
    args = request.args
    state = args.get("state") or None
    if state and state not in board.BOARD_STATES:
        abort(400)
    query = board.BoardQuery(process=args.get("process") or None, matter=args.get("matter") or None,
                             department=args.get("department") or None, assignee=args.get("assignee") or None,
                             state=state, scope=args.get("scope") or None, page=_int("page", 1),
                             per_page=_int("per_page", 50, 10, 200))
    with db().read() as session:
        result = board.board(session, query)
        tracked = board.deadlines(session)
        # each process by the name of its latest version
        processes = dict(session.execute(select(ProcessVersion.process_key, ProcessVersion.name)
                                         .order_by(ProcessVersion.process_key, ProcessVersion.version)).all())
    return page("board.html", b=result, processes=processes, matters=catalogue().matters,
                departments=catalogue().departments, tracked=tracked)


@bp.route("/alerts")
@roles("clerk", "reviewer", "supervisor")
def inbox():
    refresh = _int("refresh", 30, 2, 600)
    return page("alerts.html", refresh=refresh, **_alerts_context())


def _alerts_context():
    show = request.args.get("show", "open")
    with db().read() as session:
        rows, total = alerts.list_alerts(session, alerts.AlertQuery(
            acknowledged=False if show == "open" else None, limit=100), current_user.actor)
    return {"rows": rows, "total": total, "show": show}


@bp.route("/alerts/list")
@roles("clerk", "reviewer", "supervisor")
def inbox_fragment():
    """The inbox's list alone; the page fetches it every few seconds (a meta refresh without script)."""
    return render_template("_alerts_list.html", **_alerts_context())


@bp.post("/alerts/<int:alert_id>/ack")
@roles("clerk", "reviewer", "supervisor")
def acknowledge(alert_id: int):
    comment = request.form.get("comment", "").strip()[:1000] or None
    try:
        db().transaction(lambda s: alerts.acknowledge(s, alert_id, current_user.actor, comment))
        flash(_("已确认提醒"), "ok")
    except DomainError as exc:
        flash(say(exc), "error")
    return redirect(url_for("supervision.inbox"))


def _period():
    today = now().astimezone(SHANGHAI).date()
    try:
        end = date.fromisoformat(request.args["to"]) if request.args.get("to") else today
        start = date.fromisoformat(request.args["from"]) if request.args.get("from") else end - timedelta(days=30)
    except ValueError:
        abort(400, _("日期格式为 YYYY-MM-DD"))
    if start > end or (end - start).days > 366:
        abort(400, _("起止日期有误：开始不晚于结束，跨度不超过一年"))
    return start, end


def _report():
    start, end = _period()
    args = request.args
    with db().read() as session:
        return statistics.report(session, start, end, args.get("process") or None, args.get("matter") or None,
                                 args.get("department") or None)


@bp.route("/stats")
@roles("supervisor")
def stats():
    r = _report()

    def pct(x):
        return None if x is None else round(100 * x, 1)
    on_time = [(m.name[:14], pct(m.times.on_time_rate)) for m in r.matters.values()]
    actual = [(m.name[:14], pct(m.actual_to_promised)) for m in r.matters.values()]
    return page("stats.html", r=r, matters=catalogue().matters, departments=catalogue().departments,
                targets=(statistics.TARGET_PROMISED_TO_STATUTORY, statistics.TARGET_ACTUAL_TO_PROMISED),
                on_time_chart=on_time, actual_chart=actual)


def _table(r: statistics.Report) -> list[list]:
    """The report as a sheet a supervisor hands on as it is: headers in the page's language, working
    time in working days (8 working hours each) with the unit in the header, rates in per cent."""
    def pct(x):
        return "" if x is None else round(100 * x, 1)

    def days(x):
        return "" if x is None else round(x / words.MINUTES_PER_DAY, 2)

    def ratio(x):
        return "" if x is None else round(x, 2)
    en = g.get("lang") == "en"
    rows = [[_("类别"), _("编码"), _("名称"), _("收件"), _("受理"), _("不予受理"), _("办结"), _("终止"), _("计时件数"),
             _("按时办结率（%）"), _("平均用时（工作日）"), _("90% 用时（工作日）"), _("平均承诺时限（工作日）"),
             _("法定时限（工作日）"), _("承诺/法定"), _("实际/承诺")]]
    for code, m in r.matters.items():
        t = m.times
        matter = catalogue().matters.get(code)
        name = (matter.name_en if en else matter.name) if matter else m.name
        rows.append([_("事项"), code, name, m.received, m.accepted, m.refused, m.completed, m.terminated, t.count,
                     pct(t.on_time_rate), days(t.avg), days(t.p90), days(t.avg_budget), days(m.statutory_minutes),
                     ratio(m.promised_to_statutory), ratio(m.actual_to_promised)])
    for dept, t in r.departments.items():
        rows.append([_("部门"), "", department_name(dept), "", "", "", "", "", t.count, pct(t.on_time_rate),
                     days(t.avg), days(t.p90), days(t.avg_budget), "", "", ""])
    for kind, minutes in r.paused_minutes.items():
        rows.append([_("挂起用时（工作日）"), "", words.word(words.PAUSE_KIND, kind), "", "", "", "", "",
                     days(minutes)])
    blank = ["", "", "", "", "", ""]
    rows += [[_("补正"), "", "", *blank, r.supplements],
             [_("容缺受理"), "", "", *blank, r.tolerated],
             [_("延期办件"), "", "", *blank, r.extended],
             [_("评价（满意率 %）"), "", "", *blank, r.ratings, pct(r.satisfaction_rate)],
             [_("差评"), "", "", *blank, r.bad],
             [_("差评整改（整改率 %）"), "", "", *blank, r.rectified, pct(r.rectification_rate)]]
    return rows


@bp.route("/stats.csv")
@roles("supervisor")
def stats_csv():
    r = _report()
    buffer = io.StringIO()
    csv.writer(buffer).writerows(_table(r))
    return Response("\ufeff" + buffer.getvalue(), mimetype="text/csv", headers={  # BOM: Excel reads it as UTF-8
        "Content-Disposition": f"attachment; filename=onewindow-stats-{r.start}-{r.end}.csv"})


@bp.route("/stats.xlsx")
@roles("supervisor")
def stats_xlsx():
    from openpyxl import Workbook

    r = _report()
    book = Workbook()
    sheet = book.active
    sheet.title = _("办件统计")
    for row in _table(r):
        sheet.append(row)
    from openpyxl.styles import Font
    for cell in sheet[1]:  # a header row that reads as one, and columns wide enough for it
        cell.font = Font(bold=True)
    for column in sheet.columns:
        width = max(len(str(c.value or "")) for c in column)
        sheet.column_dimensions[column[0].column_letter].width = min(40, 2 * width + 2)
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return Response(buffer.getvalue(), headers={
        "Content-Disposition": f"attachment; filename=onewindow-stats-{r.start}-{r.end}.xlsx"},
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


# --- admin ------------------------------------------------------------------------------------
@bp.route("/admin/processes", methods=["GET", "POST"])
@roles()
def admin_processes():
    error = None
    if request.method == "POST":
        uploads = [u for u in request.files.getlist("file") if u and u.filename]
        if not uploads:
            error = _("请选择 BPMN 文件")
        else:
            actor = current_user.actor
            default_department = request.form.get("default_department") or None
            new_version = request.form.get("new_version") == "yes"
            code_tasks = "steps" if request.form.get("code_tasks") == "steps" else "refuse"
            try:
                files = [(u.filename, u.read(processes.MAX_BPMN_BYTES * 20 + 1)) for u in uploads]
                # several files at once (or a .zip): each main process with what it calls and decides; every
                # file is checked before the write lock, and all of them deploy in one transaction, or none
                checked = []
                with db().read() as session:
                    for name, content, companions, pool in processes.bundle(files):
                        checked.append((name, content, processes.check_file(
                            content, name, default_department, session, companions or None, pool, code_tasks)))

                def work(session):
                    results = []
                    for n, c, d in checked:
                        result = processes.deploy(session, c, n, actor.username, d, as_key=new_version)
                        staff_admin.record(session, actor, "process.deployed" if result.created else
                                           "process.unchanged", None,
                                           {"process": result.version.process_key, "version": result.version.version})
                        results.append(result)
                    return results
                for (_name, _content, definition), result in zip(checked, db().transaction(work), strict=True):
                    flash(_("已部署「%(n)s」第 %(v)d 版", n=result.version.name, v=result.version.version)
                          if result.created else _("内容未变，未产生新版本"), "ok")
                    for warning in definition.warnings:  # accepted, but not honoured as the modeler meant
                        flash(_("提示：%(w)s", w=say(warning)), "warning")
                return redirect(url_for("supervision.admin_processes"))
            except DomainError as exc:
                error = say(exc)
    with db().read() as session:
        counts = dict(session.execute(select(Case.process_version_id, func.count()).where(
            Case.status.in_(("received", "in_progress", "paused"))).group_by(Case.process_version_id)).all())
        versions = session.scalars(select(ProcessVersion).order_by(ProcessVersion.process_key,
                                                                   ProcessVersion.version.desc())).all()
    return page("admin_processes.html", 400 if error else 200, versions=versions, counts=counts, error=error,
                departments=catalogue().departments)


@bp.route("/admin/incidents", methods=["GET", "POST"])
@roles()
def admin_incidents():
    if request.method == "POST":
        actor = current_user.actor
        try:
            incident_id = int(request.form.get("incident", ""))
        except ValueError:
            abort(400)
        try:
            db().transaction(lambda s: incidents.retry(s, incident_id, actor.username))
            flash(_("已安排重试，调度器下一轮处理"), "ok")
        except DomainError as exc:
            flash(say(exc), "error")
        return redirect(url_for("supervision.admin_incidents"))
    state = request.args.get("state", "open")
    with db().read() as session:
        rows = incidents.list_incidents(session, None if state == "all" else state if state in ("open", "resolved")
                                        else "open")
    return page("admin_incidents.html", rows=rows, state=state)


@bp.route("/admin/processes/<int:version_id>")
@roles()
def admin_process(version_id: int):
    from workflows.definitions import diagram

    with db().read() as session:
        version = session.get(ProcessVersion, version_id)
        if version is None:
            abort(404)
        svg = diagram.render_svg(version.bpmn_xml, {}, version.name)
    return page("admin_process.html", version=version, svg=svg)


@bp.route("/admin/processes/<int:version_id>/bpmn")
@roles()
def admin_process_file(version_id: int):
    """The deployed file, to open again in a modeler."""
    from webapp.api.processes import bpmn_download

    with db().read() as session:
        version = session.get(ProcessVersion, version_id)
        if version is None:
            abort(404)
        return bpmn_download(version)


@bp.route("/admin/calendar", methods=["GET", "POST"])
@roles()
def admin_calendar():
    error, moved = None, None
    if request.method == "POST":
        form = request.form
        actor = current_user.actor

        def work(session):
            what = form.get("what")
            if what == "day":
                day = date.fromisoformat(form.get("day", ""))
                calendar_store.set_day(session, day, form.get("kind", ""), form.get("name", ""), actor.username)
                staff_admin.record(session, actor, "calendar.day", None,
                                   {"day": day.isoformat(), "kind": form.get("kind"), "name": form.get("name")})
            elif what == "hours":
                periods = [tuple(p.strip().split("-", 1)) for p in form.get("periods", "").split(",") if p.strip()]
                if any(len(p) != 2 for p in periods):
                    raise DomainError("periods: HH:MM-HH:MM, comma separated")
                first = date.fromisoformat(form["valid_from"]) if form.get("valid_from") else None
                last = date.fromisoformat(form["valid_to"]) if form.get("valid_to") else None
                calendar_store.set_office_hours(session, form.get("name", "default") or "default", periods,
                                                first, last)
                staff_admin.record(session, actor, "calendar.hours", None, {"name": form.get("name"),
                                                                            "periods": form.get("periods")})
            elif what == "year":
                year = int(form.get("year", "0"))
                upload = request.files.get("file")
                if upload is not None and upload.filename:  # the State Council's schedule, as JSON
                    holidays, workdays = calendar_store.parse_year_file(year, upload.read(1024 * 1024))
                    calendar_store.load_year(session, year, holidays, workdays, actor.username,
                                             source=upload.filename[:60])
                else:
                    try:
                        calendar_store.load_official_year(session, year, actor.username)
                    except calendar_store.CalendarMissing:
                        raise DomainError(_("chinese-calendar 尚未收录 %(y)d 年的安排：请按国务院办公厅通知整理成 "
                                            "JSON 文件后上传", y=year)) from None
                staff_admin.record(session, actor, "calendar.year", None, {"year": year})
            else:
                raise DomainError("unknown change")
            return [(c.case_no, c.name, c.due_at, c.calendar_missing) for c in sla.recompute(session)]
        try:
            moved = db().transaction(work)
            flash(_("日历已更新，%(n)d 个计时已重算", n=len(moved)), "ok")
        except (DomainError, ValueError) as exc:
            error = getattr(exc, "message", None) or str(exc)
        except calendar_store.CalendarMissing as exc:
            error = str(exc)
    year = _int("year", now().astimezone(SHANGHAI).year, 2000, 2100)
    with db().read() as session:
        years = session.scalars(select(calendar_store.CalendarYear).order_by(calendar_store.CalendarYear.year)).all()
        try:
            days = calendar_store.year_days(session, year)
        except DomainError:
            days = []
        hours = session.scalars(select(OfficeHoursRule).order_by(OfficeHoursRule.id)).all()
    return page("admin_calendar.html", 400 if error else 200, years=years, days=days, year=year, hours=hours,
                error=error, moved=moved)


@bp.route("/admin/users", methods=["GET", "POST"])
@roles()
def admin_users():
    error = None
    if request.method == "POST":
        form = request.form
        actor = current_user.actor
        op = form.get("op")
        username = form.get("username", "").strip()

        def work(session):
            if op == "create":
                return staff_admin.create(session, actor, username, form.get("role", ""), form.get("password", ""),
                                          form.get("department") or None, form.get("display_name", ""))
            if op in ("disable", "enable"):
                return staff_admin.set_active(session, actor, username, op == "enable")
            if op == "password":
                return staff_admin.reset_password(session, actor, username, form.get("password", ""))
            if op == "assign":
                return staff_admin.assign(session, actor, username, form.get("role", ""),
                                          form.get("department") or None,
                                          form.get("memberships"))
            if op == "unlock":
                return staff_admin.unlock(session, actor, username)
            if op == "hand_over":
                staff_admin.hand_over(session, actor, username, form.get("to", "").strip())
                return staff_admin._user(session, username)
            raise DomainError("unknown operation")
        try:
            changed = db().transaction(work)
            TOKENS.forget_user(changed.id)  # a revocation holds in this process at once
            flash(_("已保存"), "ok")
            return redirect(url_for("supervision.admin_users"))
        except DomainError as exc:
            error = say(exc)
    with db().read() as session:
        people = staff_admin.all_users(session)
        history = staff_admin.admin_history(session)
        locked = staff_admin.locked_usernames(session)
    return page("admin_users.html", 400 if error else 200, people=people, history=history, error=error, locked=locked,
                roles=ROLES, departments=catalogue().departments,
                describe_memberships=users.describe_memberships)
