"""The one place that turns values into the hall's words: working-time amounts, time left, and every state,
kind, role, outcome, alert level and audit action a page shows. Chinese is the message id; English comes
from the translation catalogue (`?lang=en`)."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from timers.calendar import HOLIDAY_NAMES
from timers.durations import parse_duration
from workflows.oversight.statistics import MINUTES_PER_DAY, budget_minutes  # a limit's length, one rule for both


def _number(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def duration(iso: str | None) -> str:
    """"PT3H" → 3 个工作小时, "PT1H30M" → 1.5 个工作小时, "P65D" → 65 个工作日, "PT0M" → 即时办结."""
    if not iso:
        return ""
    try:
        d = parse_duration(iso)
    except ValueError:
        return iso
    if d.natural:
        return _("%(n)s 个自然日", n=d.days)
    if d.days:
        return _("%(n)s 个工作日", n=d.days)
    if d.minutes == 0:
        return _("即时办结")
    if d.minutes % 60 == 0 or d.minutes % 30 == 0:
        return _("%(n)s 个工作小时", n=_number(d.minutes / 60))
    return _("%(n)s 个工作分钟", n=d.minutes)


def amount(minutes: int | float | None, budget: str | None = None) -> str:
    """Working time used or taken, in the budget's own unit: days for day limits, hours and minutes else."""
    if minutes is None:
        return _("日历缺失")
    minutes = abs(int(round(minutes)))
    if budget and budget.upper().endswith("D") and minutes >= MINUTES_PER_DAY:
        return _("%(n)s 个工作日", n=_number(minutes / MINUTES_PER_DAY))
    h, m = divmod(minutes, 60)
    if h and m:
        return _("%(h)d 小时 %(m)d 分", h=h, m=m)
    if h:
        return _("%(h)d 小时", h=h)
    return _("%(m)d 分钟", m=m)


def time_left(minutes: int | None, budget: str | None = None) -> str:
    """"剩 2 小时 15 分", "剩 3 个工作日", "超期 33 分钟"."""
    if minutes is None:
        return _("日历缺失")
    if minutes < 0:
        return _("超期 %(t)s", t=amount(-minutes, budget))
    return _("剩 %(t)s", t=amount(minutes, budget))


# Every code a page shows, in words. Lazy: the language is the request's.
CASE_STATUS = {"received": _l("已收件"), "in_progress": _l("办理中"), "paused": _l("挂起"),
               "completed": _l("已办结"), "refused": _l("不予受理"), "terminated": _l("已终止")}
OUTCOME = {"approved": _l("准予许可"), "rejected": _l("不予许可"), "refused": _l("不予受理"),
           "terminated": _l("已终止"), "withdrawn": _l("申请人撤回"), "completed": _l("已办结")}
CLOCK_STATE = {"running": _l("计时中"), "warned": _l("预警"), "breached": _l("已超期"), "paused": _l("暂停计时"),
               "met": _l("按时办结"), "met_late": _l("超期办结"), "cancelled": _l("已取消"),
               "returned": _l("已退回")}
CLOCK_SCOPE = {"case": _l("办件"), "step": _l("环节"), "stage": _l("阶段"), "oversight": _l("督办"),
               "response": _l("签收")}
COLOUR = {"green": _l("正常"), "yellow": _l("预警"), "red": _l("超期"), "grey": _l("已完成"), "unknown": _l("日历缺失")}
ITEM_STATE = {"open": _l("待领取"), "claimed": _l("办理中"), "completed": _l("已完成"), "cancelled": _l("已取消"),
              "returned": _l("已退回")}
PAUSE_KIND = {"supplement": _l("补正"), "special": _l("特别程序")}
ROLE = {"clerk": _l("窗口人员"), "reviewer": _l("审批人员"), "supervisor": _l("督查人员"), "admin": _l("系统管理员"),
        "applicant": _l("申请人"), "system": _l("系统")}
ALERT_LEVEL = {"warning": _l("预警"), "breach": _l("超期"), "escalation": _l("升级督办"), "terminated": _l("终止"),
               "notice": _l("通知"), "urge": _l("催办"), "incident": _l("故障"), "calendar_missing": _l("日历缺失"),
               "supplied": _l("已补正")}
FILE_KIND = {"supplement": _l("补正材料"), "intake": _l("收件材料"), "applicant": _l("申请人上传"),
             "staff": _l("工作人员上传")}
DELIVERY = {"window": _l("窗口领取"), "mail": _l("邮寄送达"), "email": _l("电子送达"), "post": _l("邮寄送达")}
APPLICANT_TYPE = {"company": _l("企业"), "person": _l("自然人"), "organisation": _l("其他组织")}
RATING = {5: _l("非常满意"), 4: _l("满意"), 3: _l("基本满意"), 2: _l("不满意"), 1: _l("非常不满意")}
EXTENSION_STATE = {"requested": _l("待审批"), "approved": _l("已批准"), "refused": _l("不予延期")}


def word(table: dict[str, Any], code: Any) -> str:
    """A code in words; one the table does not know is shown as a dash rather than as a code."""
    if code is None or code == "":
        return ""
    found = table.get(str(code))
    return str(found) if found is not None else _("其他")


def yes_no(value: Any) -> str:
    return _("是") if value else _("否")


# The history as sentences: "完成「企业设立登记」". %(step)s is the step's name.
ACTION = {
    "case.started": _l("收件登记"), "case.accepted": _l("受理"), "case.refused": _l("不予受理"),
    "case.paused": _l("挂起（%(kind)s）"), "case.resumed": _l("恢复计时"), "case.completed": _l("办结"),
    "case.terminated": _l("终止办件"), "case.withdrawn": _l("申请人撤回申请"), "case.rated": _l("评价"),
    "case.copied": _l("抄送"), "case.extended": _l("延期"), "case.note": _l("内部留言"),
    "case.supplied": _l("申请人补正材料"), "case.supplement_confirmed": _l("确认补正材料"),
    "case.tolerance_expired": _l("容缺材料逾期未补齐"), "case.repaired": _l("修复办件"),
    "work_item.created": _l("开始「%(step)s」"), "work_item.claimed": _l("领取「%(step)s」"),
    "work_item.released": _l("退回待领取「%(step)s」"), "work_item.completed": _l("完成「%(step)s」"),
    "work_item.cancelled": _l("取消「%(step)s」"), "work_item.returned": _l("退回「%(step)s」"),
    "work_item.withdrawn": _l("撤回「%(step)s」"), "work_item.transferred": _l("转办「%(step)s」"),
    "work_item.delegated": _l("委派「%(step)s」"), "work_item.delegate_done": _l("受托办理「%(step)s」"),
    "work_item.handed_back": _l("收回委派「%(step)s」"), "work_item.handed_over": _l("离职转办「%(step)s」"),
    "work_item.urged": _l("催办「%(step)s」"), "work_item.consulted": _l("征求意见「%(step)s」"),
    "work_item.consultation_answered": _l("答复征求意见「%(step)s」"),
    "work_item.consultation_withdrawn": _l("撤回征求意见「%(step)s」"),
    "work_item.copied": _l("抄送「%(step)s」"), "case.noted": _l("内部留言"),
    "consultation.answered": _l("答复征求意见"), "consultation.withdrawn": _l("撤回征求意见"),
    "process.unchanged": _l("流程未变更"),
    "extension.requested": _l("申请延期"), "extension.approved": _l("批准延期"), "extension.refused": _l("不予延期"),
    "supervision.opened": _l("发起督办"), "supervision.replied": _l("答复督办"),
    "clocks.stopped": _l("停止计时"), "clocks.extended": _l("时限顺延"), "timer.fired": _l("定时事件"),
    "message.received": _l("登记收到消息"), "signal.received": _l("登记收到信号"),
    "user.created": _l("新建用户"), "user.assigned": _l("调整角色与部门"), "user.disabled": _l("停用用户"),
    "user.enabled": _l("启用用户"), "user.password_reset": _l("重置密码"), "user.unlocked": _l("解除锁定"),
    "user.handed_over": _l("离职转办"), "user.stand_in": _l("设置代理"), "process.deployed": _l("部署流程"),
    "calendar.changed": _l("修改工作日历"), "calendar.loaded": _l("导入节假日安排"),
    "calendar.day": _l("修改工作日历"), "calendar.hours": _l("修改办公时间"), "calendar.year": _l("导入节假日安排"),
    "office_hours.changed": _l("修改办公时间"), "incident.retried": _l("重试故障任务"),
    "incident.retry": _l("重试故障任务"), "materials.supplied": _l("申请人补正材料"),
}


def action(event: Any, step_name: str | None = None) -> str:
    template = ACTION.get(event.action)
    after = event.after if isinstance(event.after, dict) else {}
    if template is None:
        return _("其他操作")
    kind = word(PAUSE_KIND, after.get("kind")) if "kind" in after else ""
    return str(template) % {"step": text(step_name or event.step or ""), "kind": kind}


def limit_range(limits: list[str]) -> str:
    """Several promised limits (by project type, by kind of registration) as one span: "1 个工作小时至 2 个工作日"."""
    valid = sorted((x for x in limits if x), key=budget_minutes)
    if not valid:
        return ""
    if budget_minutes(valid[0]) == budget_minutes(valid[-1]):
        return duration(valid[0])
    return _("%(a)s至%(b)s", a=duration(valid[0]), b=duration(valid[-1]))


def choice_labels(fields, name: str | None) -> dict[str, str]:
    """The labels a process's start form gives the values of one choice field."""
    for f in fields or ():
        if f.name == name:
            return dict(zip(f.options, f.option_labels, strict=True))
    return {}


def shown_fields(fields, data: dict) -> list[tuple[str, str]]:
    """A submission as the hall reads it: field labels, choice labels, 是 / 否 for tick boxes; data the form
    does not declare stays off the page."""
    shown = []
    for f in fields:
        if f.name not in data:
            continue
        value = data[f.name]
        if f.type == "choice":
            value = text(dict(f.choices).get(value, value))
        elif f.type == "boolean":
            value = yes_no(value)
        elif f.type == "list" and isinstance(value, list):
            value = "、".join(text(str(v)) for v in value)
        shown.append((text(f.label) or f.name, value))
    return shown


# the parts of an audit event's before → after worth reading, with what each is called
DETAIL = {"day": _l("日期"), "year": _l("年份"), "name": _l("名称"),
          "reason": _l("理由"), "message": _l("内容"), "to_name": _l("退回至"), "assignee": _l("经办人"),
          "question": _l("征求意见"), "answer": _l("答复"), "reply": _l("答复"), "working_days": _l("工作日"),
          "note": _l("说明"), "text": _l("留言"), "score": _l("评分"), "comment": _l("评价内容"),
          "status": _l("办件状态"), "outcome": _l("结果"), "state": _l("状态"), "kind": _l("类型"),
          "user": _l("用户"), "department": _l("部门"), "to": _l("去向")}
DAY_KIND = {"holiday": _l("节假日"), "workday": _l("调休上班"), "normal": _l("按平常")}
_VALUE_TABLES = {"status": CASE_STATUS, "outcome": OUTCOME, "state": ITEM_STATE, "kind": {**PAUSE_KIND, **DAY_KIND}}


# reasons the system itself writes into the history
SYSTEM_REASON = {"case ended": _l("办件已结束"), "withdrawn by the process": _l("流程已撤销该环节"),
                 "case terminated": _l("办件已终止"), "application withdrawn": _l("申请人已撤回申请")}


def _value(key: str, value: Any, steps: dict) -> str | None:
    if value is None or value == "" or isinstance(value, dict):
        return None
    if key == "reason" and isinstance(value, str):
        if value in SYSTEM_REASON:
            return str(SYSTEM_REASON[value])
        if value.startswith("returned: "):
            return _("退回：%(r)s", r=value[len("returned: "):])
    if key in ("assignee", "user", "to") and isinstance(value, str) and value not in steps:
        return person(value)
    if key in _VALUE_TABLES:
        return word(_VALUE_TABLES[key], value)
    if key == "department":
        from workflows.definitions.catalogue import catalogue
        dept = catalogue().departments.get(str(value))
        return (dept.name_en if _is_en() else dept.name) if dept else str(value)
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, list):
        return "、".join(str(text(steps[v].name) if v in steps else v) for v in value if not isinstance(v, dict))
    if key == "to" and value in steps:
        return text(steps[value].name)
    return str(value)


def history(events, steps: dict, people: dict[str, tuple[str, str | None]]) -> list[dict[str, Any]]:
    """The case's history as sentences: who (department and name), what, on which step, the step's own
    data by its labels; the before → after details by label, for those who unfold them."""
    from workflows.definitions.catalogue import catalogue

    lines = []
    for e in events:
        step = steps.get(e.step) if e.step else None
        name, department = people.get(e.actor, (person(e.actor), None))
        dept = catalogue().departments.get(department or "")
        after = e.after if isinstance(e.after, dict) else {}
        before = e.before if isinstance(e.before, dict) else {}
        summary = ""
        if isinstance(after.get("data"), dict) and step is not None:
            comma = ", " if _is_en() else "，"
            summary = comma.join(f"{label} {value}" for label, value in shown_fields(step.fields, after["data"]))
        details = []
        reason = _value("reason", after.get("reason"), steps)
        if reason:  # why something was returned, paused, ended: part of the sentence, not folded away
            summary = f"{summary}；{reason}" if summary else _("理由：%(r)s", r=reason)
        for key, label in DETAIL.items():
            if key == "reason" and reason:
                continue
            old, new = _value(key, before.get(key), steps), _value(key, after.get(key), steps)
            if new is None and old is None:
                continue
            details.append((str(label), f"{old} → {new}" if old is not None and new is not None and old != new
                            else (new if new is not None else old)))
        lines.append({"at": e.at, "who": name, "department": (dept.name_en if _is_en() else dept.name)
                      if dept else "", "what": action(e, step.name if step else None), "summary": summary,
                      "details": details})
    return lines


def person(username: str | None) -> str:
    """A staff member by name, not by login: looked up once per request."""
    if not username:
        return ""
    if username == "system":
        return _("系统")
    if username == "cli":
        return _("命令行")
    from flask import current_app, g
    from sqlalchemy import select

    from workflows.models import User

    known = g.setdefault("people", {})
    if username not in known:
        with current_app.extensions["onewindow.db"].read() as session:
            found = session.scalar(select(User.display_name).where(User.username == username))
        known[username] = found or username
    return known[username]


def text(value: Any) -> Any:
    """A text of a BPMN file or of the catalogue (a step, a field label, a material) in the page's language:
    its English form from the catalogue's `english` table on English pages; anything else as it is."""
    if not isinstance(value, str) or not value or not _is_en():
        return value
    from workflows.definitions.catalogue import catalogue

    return catalogue().english.get(value, value)


def text_width(value: Any, size: float = 13) -> float:
    """About how wide a text is drawn, in pixels: a Chinese character is square, a Latin one about half."""
    return sum(size if ord(c) > 0x2E80 else size * 0.6 for c in str(text(value)))


def case_no_like(value: Any) -> bool:
    """A value that reads as a case number (2026QYKB000001): the page links it to that case."""
    import re

    return isinstance(value, str) and re.fullmatch(r"\d{4}[A-Z]{2,12}\d{6}", value) is not None


def finalize(value: Any) -> Any:
    """Every value a template prints passes here (Jinja's finalize): None prints nothing, and on English
    pages a BPMN or catalogue text prints in English wherever a template shows it."""
    if value is None:
        return ""
    if type(value) is str and _is_en():  # Markup and case data objects pass as they are
        return text(value)
    return value


def _is_en() -> bool:
    from flask import g
    return getattr(g, "lang", "zh") == "en"


_ENGLISH_HOLIDAY = {zh: en for en, zh in HOLIDAY_NAMES.items()}


def holiday(name: str | None) -> str:
    """A holiday or make-up day by its name in the page's language (older rows may hold the English)."""
    if not name:
        return ""
    base, makeup = (name[:-2].strip(), True) if name.endswith("调休") else (name.strip(), False)
    zh = HOLIDAY_NAMES.get(base, base)
    if _is_en():
        en = _ENGLISH_HOLIDAY.get(zh, zh)
        return f"{en} (make-up workday)" if makeup else en
    return f"{zh}调休" if makeup else zh
