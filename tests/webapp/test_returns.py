"""退回 on the seed processes and inside and across parallel branches, through the API (issue 12)."""

from __future__ import annotations

from sqlalchemy import select

from tests.webapp.test_seed_processes import accept
from workflows.definitions.processes import deploy
from workflows.models import AuditEvent, SlaClock, WorkItem


def _clocks(deployed, case_no) -> dict[tuple[str, str | None], list[str]]:
    with deployed.read() as s:
        found: dict[tuple[str, str | None], list[str]] = {}
        for c in s.scalars(select(SlaClock).where(SlaClock.case_no == case_no).order_by(SlaClock.id)):
            found.setdefault((c.scope, c.step), []).append(c.state)
        return found


def test_a_department_returns_company_setup_to_the_window(api, deployed):
    case = api.start("company_setup")
    case_no = case["case_no"]
    accept(api, case_no)
    items = api.open_items(case_no)
    api.complete(items["seal"], "police", {"seal_no": "S-1"})
    r = api.post(f"/work-items/{items['registration']['id']}/return", "samr", json={"to": "window"})
    assert r.status_code == 400 and "reason" in r.get_json()["message"]  # a reason is required
    targets = api.get(f"/work-items/{items['registration']['id']}/return-targets", as_user="samr").get_json()
    assert [t["step"] for t in targets["targets"]] == ["accept"]
    r = api.post(f"/work-items/{items['registration']['id']}/return", "samr",
                 json={"to": "window", "reason": "经营范围表述不规范，请窗口补正"})
    assert r.status_code == 200, r.get_json()
    reopened = r.get_json()
    assert (reopened["step"], reopened["state"], reopened["assignee"]) == ("accept", "claimed", "clerk")
    assert "经营范围表述不规范" in reopened["note"]
    detail = api.get(f"/cases/{case_no}").get_json()
    assert [i["step"] for i in detail["open_items"]] == ["accept"]  # the open invoice step went with it
    assert detail["status"] == "in_progress"
    clocks = _clocks(deployed, case_no)
    assert clocks[("step", "registration")] == ["returned"] and clocks[("step", "invoice")] == ["returned"]
    assert clocks[("step", "seal")] == ["met"]  # done before the return: its record and clock stay
    assert clocks[("case", None)] == ["running"]  # the case clock keeps running
    actions = [e["action"] for e in detail["history"]]
    assert "work_item.returned" in actions and actions.count("work_item.cancelled") == 1
    # the window accepts again: the three departments work again, and the case finishes
    api.complete(reopened, "clerk", {"decision": "accept"})
    items = api.open_items(case_no)
    assert sorted(items) == ["invoice", "registration", "seal"]
    for step, user, data in (("registration", "samr", {"approval": "approve", "license_no": "L"}),
                             ("seal", "police", {"seal_no": "S-2"}), ("invoice", "tax", {"taxpayer_no": "T"})):
        api.complete(items[step], user, data)
    api.complete(api.open_items(case_no)["deliver"], "clerk", {"delivery_method": "window"})
    assert api.get(f"/cases/{case_no}").get_json()["status"] == "completed"
    with deployed.read() as s:
        from workflows.oversight.integrity import problems
        assert list(problems(s)) == []


def test_a_case_returned_again_and_again_loops_cleanly(api, deployed):
    case = api.start("company_setup")
    case_no = case["case_no"]
    accept(api, case_no)
    for round_ in range(5):
        items = api.open_items(case_no)
        r = api.post(f"/work-items/{items['invoice']['id']}/return", "tax", json={"reason": f"第{round_ + 1}次退回"})
        assert r.status_code == 200, r.get_json()
        api.complete(r.get_json(), "clerk", {"decision": "accept"})
    assert sorted(api.open_items(case_no)) == ["invoice", "registration", "seal"]
    with deployed.read() as s:
        from workflows.oversight.integrity import problems
        assert list(problems(s)) == []
        assert s.scalar(select(WorkItem).where(WorkItem.case_no == case_no, WorkItem.step == "accept",
                                               WorkItem.state.in_(("open", "claimed")))) is None


def test_construction_permit_returned_across_a_stage(api, deployed):
    case = api.start("construction_permit", {"project_type": "small_social", "project_name": "小型商业楼"})
    case_no = case["case_no"]
    accept(api, case_no)
    items = api.open_items(case_no)
    api.complete(items["ndrc_approval"], "ndrc", {"approval_no": "A1"})
    api.complete(items["land_planning"], "nrp", {"permit_no": "P1"})
    items = api.open_items(case_no)
    assert sorted(items) == ["design_review", "planning_permit"]
    api.complete(items["design_review"], "housing", {"review_no": "R1"})
    # the planning permit goes back to stage 1's land planning: stage 1 runs again for that branch only
    targets = [t["step"] for t in api.get(f"/work-items/{items['planning_permit']['id']}/return-targets",
                                           as_user="nrp").get_json()["targets"]]
    assert targets == ["land_planning", "ndrc_approval", "accept"]  # nearest first, stage 1 included
    r = api.post(f"/work-items/{items['planning_permit']['id']}/return", "nrp",
                 json={"to": "land_planning", "reason": "用地红线与规划条件不符"})
    assert r.status_code == 200, r.get_json()
    assert list(api.open_items(case_no)) == ["land_planning"]  # ndrc_approval's work stands
    clocks = _clocks(deployed, case_no)
    assert clocks[("stage", "stage2")] == ["returned"]
    assert clocks[("stage", "stage1")] == ["met", "running"]  # stage 1 runs again, on a clock of its own
    api.complete(r.get_json(), "nrp", {"permit_no": "P1-b"})
    assert sorted(api.open_items(case_no)) == ["design_review", "planning_permit"]  # stage 2 from the start
    with deployed.read() as s:
        from workflows.oversight.integrity import problems
        assert list(problems(s)) == []


BRANCHES = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
  <bpmn:process id="two_branches" name="two branches" isExecutable="true">
    <bpmn:laneSet id="ls">
      <bpmn:lane id="w" name="综合窗口">
        <bpmn:flowNodeRef>s</bpmn:flowNodeRef><bpmn:flowNodeRef>accept</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>split</bpmn:flowNodeRef><bpmn:flowNodeRef>join</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>e</bpmn:flowNodeRef></bpmn:lane>
      <bpmn:lane id="a" name="市场监督管理局">
        <bpmn:flowNodeRef>a1</bpmn:flowNodeRef><bpmn:flowNodeRef>a2</bpmn:flowNodeRef>
      </bpmn:lane>
      <bpmn:lane id="b" name="税务局"><bpmn:flowNodeRef>b1</bpmn:flowNodeRef></bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="accept" name="受理审查"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:parallelGateway id="split"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>fa</bpmn:outgoing>
      <bpmn:outgoing>fb</bpmn:outgoing></bpmn:parallelGateway>
    <bpmn:userTask id="a1" name="初审"><bpmn:extensionElements><spiffworkflow:properties>
      <spiffworkflow:property name="budget" value="PT2H" /><spiffworkflow:property name="cc" value="housing" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>fa</bpmn:incoming><bpmn:outgoing>fa2</bpmn:outgoing></bpmn:userTask>
    <bpmn:userTask id="a2" name="复审"><bpmn:extensionElements><spiffworkflow:properties>
      <spiffworkflow:property name="budget" value="PT2H" /><spiffworkflow:property name="return_to" value="a1" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>fa2</bpmn:incoming><bpmn:outgoing>fa3</bpmn:outgoing></bpmn:userTask>
    <bpmn:userTask id="b1" name="税务审核"><bpmn:extensionElements><spiffworkflow:properties>
      <spiffworkflow:property name="budget" value="PT2H" /></spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>fb</bpmn:incoming><bpmn:outgoing>fb2</bpmn:outgoing></bpmn:userTask>
    <bpmn:parallelGateway id="join"><bpmn:incoming>fa3</bpmn:incoming><bpmn:incoming>fb2</bpmn:incoming>
      <bpmn:outgoing>f9</bpmn:outgoing></bpmn:parallelGateway>
    <bpmn:endEvent id="e"><bpmn:incoming>f9</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="accept" />
    <bpmn:sequenceFlow id="f2" sourceRef="accept" targetRef="split" />
    <bpmn:sequenceFlow id="fa" sourceRef="split" targetRef="a1" />
    <bpmn:sequenceFlow id="fa2" sourceRef="a1" targetRef="a2" />
    <bpmn:sequenceFlow id="fa3" sourceRef="a2" targetRef="join" />
    <bpmn:sequenceFlow id="fb" sourceRef="split" targetRef="b1" />
    <bpmn:sequenceFlow id="fb2" sourceRef="b1" targetRef="join" />
    <bpmn:sequenceFlow id="f9" sourceRef="join" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>"""


def test_returning_inside_one_branch_leaves_the_sibling_branch_alone(api, deployed):
    deployed.transaction(lambda s: deploy(s, BRANCHES.encode(), "two_branches.bpmn"))
    case_no = api.start("two_branches")["case_no"]
    api.complete(api.open_items(case_no)["accept"], "clerk", {})
    items = api.open_items(case_no)
    api.complete(items["a1"], "samr", {})
    # the BPMN copies 初审 to 住建 when it completes
    assert [c["case_no"] for c in api.get("/copies", as_user="housing").get_json()["copies"]] == [case_no]
    items = api.open_items(case_no)
    sibling = items["b1"]
    # the BPMN lets 复审 go back to 初审 only (a reviewer cannot send it to the window)
    r = api.post(f"/work-items/{items['a2']['id']}/return", "samr", json={"to": "window", "reason": "x"})
    assert r.status_code == 400 and "a1" in r.get_json()["message"]
    r = api.post(f"/work-items/{items['a2']['id']}/return", "samr", json={"reason": "初审意见不完整"})
    assert r.status_code == 200 and r.get_json()["step"] == "a1"
    items = api.open_items(case_no)
    assert sorted(items) == ["a1", "b1"] and items["b1"]["id"] == sibling["id"]  # the sibling item is the same
    clocks = _clocks(deployed, case_no)
    assert clocks[("step", "b1")] == ["running"] and clocks[("step", "a2")] == ["returned"]
    assert clocks[("step", "a1")] == ["met", "running"]
    # a supervisor may pick any earlier step, past the BPMN's limit
    api.complete(items["a1"], "samr", {})
    a2 = api.open_items(case_no)["a2"]
    r = api.post(f"/work-items/{a2['id']}/return", "supervisor", json={"to": "accept", "reason": "重新受理"})
    assert r.status_code == 200 and r.get_json()["step"] == "accept"
    assert list(api.open_items(case_no)) == ["accept"]
    assert _clocks(deployed, case_no)[("step", "b1")] == ["returned"]


def test_returns_refused_when_the_item_cannot_be_returned(api):
    case = api.start("company_setup")
    items = api.open_items(case["case_no"])
    r = api.post(f"/work-items/{items['accept']['id']}/return", "clerk", json={"reason": "x"})
    assert r.status_code == 409 and "no earlier step" in r.get_json()["message"]
    accept(api, case["case_no"])
    items = api.open_items(case["case_no"])
    r = api.post(f"/work-items/{items['seal']['id']}/return", "samr", json={"reason": "x"})
    assert r.status_code == 403  # another department's item
    r = api.post(f"/work-items/{items['seal']['id']}/return", "police", json={"to": "invoice", "reason": "x"})
    assert r.status_code == 400  # a sibling branch is not an earlier step


def test_the_item_page_returns_a_step_with_its_reason(app, deployed):
    from tests.webapp.test_pages import Browser, accept_case

    case_no, _ = accept_case(app)
    with deployed.read() as s:
        item = s.scalar(select(WorkItem).where(WorkItem.case_no == case_no, WorkItem.step == "registration"))
    samr = Browser(app, "samr")
    page = samr.get(f"/items/{item.id}").get_data(as_text=True)
    assert "退回至" in page and "受理审查" in page
    r = samr.post_form(f"/items/{item.id}", f"/items/{item.id}/return", to="accept", reason="名称需补正")
    assert r.status_code == 302
    clerk = Browser(app, "clerk")
    with deployed.read() as s:
        reopened = s.scalar(select(WorkItem).where(WorkItem.case_no == case_no, WorkItem.step == "accept",
                                                   WorkItem.state == "claimed"))
    assert "名称需补正" in clerk.get(f"/items/{reopened.id}").get_data(as_text=True)
    empty = samr.post_form(f"/items/{item.id}", f"/items/{item.id}/return", to="accept", reason="")
    assert empty.status_code == 302  # refused with a message: the item was returned already


def test_whoever_completed_a_step_takes_it_back_while_nothing_that_followed_was_taken_up(api, deployed):
    case_no = api.start("company_setup")["case_no"]
    accept_item = api.open_items(case_no)["accept"]
    api.complete(accept_item, "clerk", {"decision": "accept"})
    assert api.post(f"/work-items/{accept_item['id']}/withdraw", "samr").status_code == 403  # not theirs
    r = api.post(f"/work-items/{accept_item['id']}/withdraw", "clerk")
    assert r.status_code == 200, r.get_json()
    again = r.get_json()
    assert (again["step"], again["state"], again["assignee"]) == ("accept", "claimed", "clerk")
    assert list(api.open_items(case_no)) == ["accept"]  # the three departments' items are withdrawn
    assert _clocks(deployed, case_no)[("step", "seal")] == ["returned"]
    api.complete(again, "clerk", {"decision": "accept"})
    items = api.open_items(case_no)
    # a department took its step up: the window can no longer take the acceptance back
    api.post(f"/work-items/{items['seal']['id']}/claim", "police")
    done = next(i for i in api.get(f"/cases/{case_no}").get_json()["done_items"] if i["step"] == "accept"
                and i["state"] == "completed" and i["id"] != accept_item["id"])
    r = api.post(f"/work-items/{done['id']}/withdraw", "clerk")
    assert r.status_code == 409 and "claimed" in r.get_json()["message"]
    # a branch step is taken back by its completer while the others still work
    api.complete(items["registration"], "samr", {"approval": "approve", "license_no": "L"})
    r = api.post(f"/work-items/{items['registration']['id']}/withdraw", "samr")
    assert r.status_code == 200 and r.get_json()["step"] == "registration"
    assert sorted(api.open_items(case_no)) == ["invoice", "registration", "seal"]
    with deployed.read() as s:
        from workflows.oversight.integrity import problems
        assert list(problems(s)) == []


def test_a_supervisor_terminates_a_case_and_an_applicant_withdraws_one(api, app, deployed):
    from tests.webapp.test_pages import Browser, accept_case, tokens

    case_no = api.start("company_setup")["case_no"]
    accept(api, case_no)
    assert api.post(f"/cases/{case_no}/terminate", "clerk", json={"reason": "x"}).status_code == 403
    assert api.post(f"/cases/{case_no}/terminate", "supervisor", json={}).status_code == 400
    r = api.post(f"/cases/{case_no}/terminate", "supervisor", json={"reason": "申请人涉嫌虚假材料，移送核查"})
    assert r.status_code == 200, r.get_json()
    done = r.get_json()
    assert (done["status"], done["outcome"], done["open_items"]) == ("terminated", "terminated", [])
    assert {c["state"] for c in done["clocks"]} <= {"cancelled", "met", "met_late"}
    assert api.post(f"/cases/{case_no}/terminate", "supervisor", json={"reason": "again"}).status_code == 409

    # the applicant withdraws from the progress page, after confirming
    second, code = accept_case(app)
    applicant = Browser(app)
    applicant.post_form("/track", case_no=second, query_code=code)
    page = applicant.get(f"/track/{second}").get_data(as_text=True)
    assert "撤回申请" in page
    r = applicant.client.post(f"/track/{second}/withdraw", data={**tokens(page), "reason": "不再需要"},
                              follow_redirects=True)
    assert "请勾选确认" in r.get_data(as_text=True)
    r = applicant.client.post(f"/track/{second}/withdraw", data={**tokens(page), "confirm": "yes"},
                              follow_redirects=True)
    assert "已撤回申请" in r.get_data(as_text=True)
    detail = api.get(f"/cases/{second}").get_json()
    assert (detail["status"], detail["outcome"]) == ("terminated", "withdrawn")
    assert "case.withdrawn" in [e["action"] for e in detail["history"]]
    with deployed.read() as s:
        from workflows.oversight.integrity import problems
        assert list(problems(s)) == []


def test_transfer_to_a_colleague_and_urging(api, deployed):
    from workflows.administration import users

    deployed.transaction(lambda s: users.add_user(s, "samr2", "reviewer", "Another-samr-2026", "samr"))
    case_no = api.start("company_setup")["case_no"]
    accept(api, case_no)
    item = api.open_items(case_no)["registration"]
    api.post(f"/work-items/{item['id']}/claim", "samr")
    r = api.post(f"/work-items/{item['id']}/transfer", "samr", json={"to": "police", "reason": "x"})
    assert r.status_code == 400  # not a colleague of the department
    r = api.post(f"/work-items/{item['id']}/transfer", "police", json={"to": "samr2", "reason": "x"})
    assert r.status_code == 403
    r = api.post(f"/work-items/{item['id']}/transfer", "samr", json={"to": "samr2", "reason": "休假，转同事办理"})
    assert r.status_code == 200 and (r.get_json()["assignee"], r.get_json()["state"]) == ("samr2", "claimed")
    alerts = api.get(f"/alerts?case_no={case_no}&level=notice").get_json()["alerts"]
    assert any("转给您办理" in a["message"] and a["assignee"] == "samr2" for a in alerts)
    # 催办: the window urges; the holder is told; the item counts it; a reviewer may not urge
    assert api.post(f"/work-items/{item['id']}/urge", "police", json={}).status_code == 403
    for _ in range(2):
        r = api.post(f"/work-items/{item['id']}/urge", "clerk", json={"message": "申请人来电催问"})
        assert r.status_code == 200
    assert r.get_json()["urged"] == 2
    urged = api.get(f"/alerts?case_no={case_no}&level=urge").get_json()["alerts"]
    assert len(urged) == 2 and all(a["assignee"] == "samr2" for a in urged)
    history = [e["action"] for e in api.get(f"/cases/{case_no}").get_json()["history"]]
    assert "work_item.transferred" in history and history.count("work_item.urged") == 2


def test_urging_and_transferring_from_the_pages(app, deployed):
    from tests.webapp.test_pages import Browser, accept_case
    from workflows.administration import users

    deployed.transaction(lambda s: users.add_user(s, "tax2", "reviewer", "Another-tax-2026", "tax"))
    case_no, _ = accept_case(app)
    with deployed.read() as s:
        invoice = s.scalar(select(WorkItem).where(WorkItem.case_no == case_no, WorkItem.step == "invoice"))
    clerk = Browser(app, "clerk")
    assert clerk.post_form(f"/cases/{case_no}", f"/items/{invoice.id}/urge", message="申请人催问").status_code == 302
    tax = Browser(app, "tax")
    assert "催办 1 次" in tax.get("/worklist").get_data(as_text=True)
    page = tax.get(f"/items/{invoice.id}").get_data(as_text=True)
    assert "转办" in page and "tax2" in page
    r = tax.post_form(f"/items/{invoice.id}", f"/items/{invoice.id}/transfer", to="tax2", reason="出差")
    assert r.status_code == 302
    with deployed.read() as s:
        assert s.get(WorkItem, invoice.id).assignee == "tax2"


def test_the_case_has_an_internal_thread_staff_only(api, app, deployed):
    from tests.webapp.test_pages import Browser, accept_case

    case_no, code = accept_case(app)
    r = api.post(f"/cases/{case_no}/notes", "samr", json={"text": "法人代表身份证复印件不清晰，已电话联系"})
    assert r.status_code == 201
    assert api.post(f"/cases/{case_no}/notes", "housing", json={"text": "x"}).status_code == 404  # not theirs
    assert api.post(f"/cases/{case_no}/notes", "samr", json={"text": ""}).status_code == 400
    clerk = Browser(app, "clerk")
    assert clerk.post_form(f"/cases/{case_no}", f"/cases/{case_no}/notes", text="已补收").status_code == 302
    page = clerk.get(f"/cases/{case_no}").get_data(as_text=True)
    assert "身份证复印件不清晰" in page and "已补收" in page
    notes = api.get(f"/cases/{case_no}").get_json()["notes"]
    assert [n["author"] for n in notes] == ["samr", "clerk"]
    applicant = Browser(app)
    applicant.post_form("/track", case_no=case_no, query_code=code)
    assert "身份证复印件不清晰" not in applicant.get(f"/track/{case_no}").get_data(as_text=True)


def test_an_admin_hands_a_leaving_users_open_items_over_in_one_action(api, app, deployed):
    from tests.webapp.test_pages import Browser
    from workflows.administration import users

    deployed.transaction(lambda s: users.add_user(s, "police2", "reviewer", "Another-police-2026", "police"))
    claimed = []
    for _ in range(2):
        case_no = api.start("company_setup")["case_no"]
        accept(api, case_no)
        seal = api.open_items(case_no)["seal"]
        api.post(f"/work-items/{seal['id']}/claim", "police")
        claimed.append(seal["id"])
    admin = Browser(app, "admin")
    r = admin.post_form("/admin/users", op="hand_over", username="police", to="samr")
    assert r.status_code == 400  # not a colleague of the department
    r = admin.post_form("/admin/users", op="hand_over", username="police", to="police2")
    assert r.status_code == 302
    for item_id in claimed:
        item = api.get(f"/work-items/{item_id}").get_json()
        assert item["assignee"] == "police2" and "离职转办" in item["note"]
    assert "离职转办" in admin.get("/admin/users").get_data(as_text=True).split("管理操作记录")[1]


def test_a_stand_in_period_starting_and_ending(api, deployed, manual_clock):
    from datetime import datetime

    from timers.clock import SHANGHAI
    from workflows.administration import users
    from workflows.administration.clock_store import set_clock

    deployed.transaction(lambda s: users.add_user(s, "samr2", "reviewer", "Another-samr-2026", "samr"))
    r = api.call("PUT", "/users/samr/stand-in", "police", json={"to": "samr2", "from": "2026-03-10",
                                                                 "until": "2026-03-11"})
    assert r.status_code == 403  # not their own, not an admin
    r = api.call("PUT", "/users/samr/stand-in", "samr", json={"to": "police", "from": "2026-03-10",
                                                               "until": "2026-03-11"})
    assert r.status_code == 400  # not a colleague
    r = api.call("PUT", "/users/samr/stand-in", "samr", json={"to": "samr2", "from": "2026-03-10",
                                                               "until": "2026-03-11"})
    assert r.status_code == 200 and r.get_json()["stand_in"] == "samr2"

    def returned_holder(day):
        deployed.transaction(lambda s: set_clock(s, datetime(2026, 3, day, 10, tzinfo=SHANGHAI), frozen=True))
        case_no = api.start("company_setup")["case_no"]
        accept(api, case_no)
        items = api.open_items(case_no)
        api.complete(items["seal"], "police", {"seal_no": "S"})
        api.complete(items["invoice"], "tax", {"taxpayer_no": "T"})
        # registration last: the delivery follows from its branch, so it is the step just before it
        api.complete(items["registration"], "samr", {"approval": "approve", "license_no": "L"})
        deliver = api.open_items(case_no)["deliver"]
        back = api.post(f"/work-items/{deliver['id']}/return", "clerk",
                        json={"to": "registration", "reason": "执照信息有误"}).get_json()
        return back["assignee"], back["note"]

    assert returned_holder(9)[0] == "samr"  # before the period
    holder, note = returned_holder(10)  # during it: to the stand-in, said so
    assert holder == "samr2" and "代 samr 办理" in note
    assert returned_holder(12)[0] == "samr"  # after it
    r = api.call("PUT", "/users/samr/stand-in", "admin", json={"to": None})
    assert r.status_code == 200 and r.get_json()["stand_in"] is None


def test_copies_by_hand_and_by_the_bpmn_give_read_only_sight_and_are_marked_read(api, app, deployed):
    from tests.webapp.test_pages import Browser, accept_case

    case_no, _ = accept_case(app)
    assert api.get(f"/cases/{case_no}", as_user="housing").status_code == 404  # 住建 has nothing to do with it
    registration = api.open_items(case_no)["registration"]
    r = api.post(f"/work-items/{registration['id']}/cc", "samr", json={"to": ["housing", "nobody-here"]})
    assert r.status_code == 400  # an unknown name: nothing copied
    r = api.post(f"/work-items/{registration['id']}/cc", "samr", json={"to": ["housing"]})
    assert r.status_code == 201 and r.get_json()["copies"][0]["to_department"] == "housing"
    assert api.get(f"/cases/{case_no}", as_user="housing").status_code == 200  # now it sees it, read-only
    assert api.post(f"/cases/{case_no}/pause", "housing", json={"kind": "special", "reason": "x"}).status_code == 403
    unread = api.get("/copies?unread=true", as_user="housing").get_json()["copies"]
    assert [c["case_no"] for c in unread] == [case_no]
    housing = Browser(app, "housing")
    assert "未读" in housing.get("/copies").get_data(as_text=True)
    assert housing.get(f"/cases/{case_no}").status_code == 200
    assert api.get("/copies?unread=true", as_user="housing").get_json()["copies"] == []  # read now
    history = [e["action"] for e in api.get(f"/cases/{case_no}").get_json()["history"]]
    assert "case.copied" in history


def test_a_step_waits_for_the_opinions_it_asked(api, deployed):
    case_no = api.start("company_setup")["case_no"]
    accept(api, case_no)
    registration = api.open_items(case_no)["registration"]
    r = api.post(f"/work-items/{registration['id']}/consult", "samr",
                 json={"to": ["housing", "tax"], "question": "经营场所是否符合住建要求？"})
    assert r.status_code == 201
    asked = {c["to_department"]: c for c in r.get_json()["consultations"]}
    r = api.post(f"/work-items/{registration['id']}/complete", "samr",
                 json={"data": {"approval": "approve", "license_no": "L"}})
    assert r.status_code == 409 and "housing" in r.get_json()["message"]  # waits for the opinions
    assert api.get(f"/cases/{case_no}", as_user="housing").status_code == 200  # may read it to answer
    assert api.post(f"/consultations/{asked['housing']['id']}/answer", "police",
                    json={"answer": "x"}).status_code == 403
    r = api.post(f"/consultations/{asked['housing']['id']}/answer", "housing", json={"answer": "符合，无异议"})
    assert r.status_code == 200 and r.get_json()["state"] == "answered"
    assert api.post(f"/consultations/{asked['tax']['id']}/withdraw", "tax").status_code == 403
    assert api.post(f"/consultations/{asked['tax']['id']}/withdraw", "samr").status_code == 200
    api.complete(registration, "samr", {"approval": "approve", "license_no": "L"})
    opinions = api.get(f"/cases/{case_no}").get_json()["opinions"]
    assert {(o["to_department"], o["state"]) for o in opinions} == {("housing", "answered"), ("tax", "withdrawn")}
    assert opinions[0]["answer"] == "符合，无异议" or opinions[1]["answer"] == "符合，无异议"


def test_opinions_are_asked_and_answered_on_the_pages(app, deployed):
    from tests.webapp.test_pages import Browser, accept_case

    case_no, _ = accept_case(app)
    with deployed.read() as s:
        item = s.scalar(select(WorkItem).where(WorkItem.case_no == case_no, WorkItem.step == "registration"))
    samr = Browser(app, "samr")
    r = samr.post_form(f"/items/{item.id}", f"/items/{item.id}/consult", to="housing", question="场所是否合规？")
    assert r.status_code == 302
    housing = Browser(app, "housing")
    page = housing.get(f"/cases/{case_no}").get_data(as_text=True)
    assert "场所是否合规" in page and "您的意见" in page
    import re
    consultation = re.search(r"/consultations/(\d+)/answer", page).group(1)
    assert housing.post_form(f"/cases/{case_no}", f"/consultations/{consultation}/answer",
                             answer="合规").status_code == 302
    assert "合规" in samr.get(f"/cases/{case_no}").get_data(as_text=True)


def test_a_delegated_step_comes_back_to_its_holder_to_confirm(api, deployed):
    from tests.conftest import DEMO_PASSWORD
    from workflows.administration import users

    deployed.transaction(lambda s: users.add_user(s, "samr2", "reviewer", DEMO_PASSWORD, "samr"))
    case_no = api.start("company_setup")["case_no"]
    accept(api, case_no)
    item = api.open_items(case_no)["registration"]
    assert api.post(f"/work-items/{item['id']}/delegate", "samr", json={"to": "samr2"}).status_code == 409
    api.post(f"/work-items/{item['id']}/claim", "samr")
    r = api.post(f"/work-items/{item['id']}/delegate", "samr", json={"to": "samr2"})
    assert r.status_code == 200 and r.get_json()["assignee"] == "samr2"
    # the colleague does it: a draft, back to the holder — the process has not moved
    r = api.post(f"/work-items/{item['id']}/complete", "samr2",
                 json={"data": {"approval": "approve", "license_no": "L-7", "opinion": "材料齐全"}})
    assert r.status_code == 200, r.get_json()
    back = r.get_json()
    assert (back["state"], back["assignee"], back["data"]["license_no"]) == ("claimed", "samr", "L-7")
    assert "registration" in api.open_items(case_no)
    # the holder confirms (completes with the draft)
    api.complete(back, "samr", back["data"])
    assert "registration" not in api.open_items(case_no)
    history = [e["action"] for e in api.get(f"/cases/{case_no}").get_json()["history"]]
    assert history.index("work_item.delegated") < history.index("work_item.delegate_done")


def test_a_step_that_needs_a_position_is_worked_by_who_holds_it(api, deployed):
    """Construction permits' 联合竣工验收 is signed off by a 科长: the 承办人 of the department neither sees
    it in the worklist nor completes it; the 科长 does."""
    case_no = api.start("construction_permit", {"project_type": "small_social", "project_name": "小型商业楼"})[
        "case_no"]
    accept(api, case_no)
    for stage in ({"ndrc_approval": ("ndrc", {"approval_no": "A"}), "land_planning": ("nrp", {"permit_no": "P"})},
                  {"planning_permit": ("nrp", {"permit_no": "P2"}), "design_review": ("housing", {"review_no": "R"})},
                  {"construction_license": ("housing", {"license_no": "L"}),
                   "fire_design": ("housing", {"review_no": "F"})}):
        items = api.open_items(case_no)
        for step, (user, data) in stage.items():
            api.complete(items[step], user, data)
    joint = api.open_items(case_no)["joint_acceptance"]
    assert joint["position"] == "科长"
    staff_list = api.get(f"/work-items?state=active&case_no={case_no}", as_user="housing2").get_json()["items"]
    assert "joint_acceptance" not in {i["step"] for i in staff_list}
    assert "archive" in {i["step"] for i in staff_list}  # steps without a position still show
    r = api.post(f"/work-items/{joint['id']}/complete", "housing2", json={"data": {"acceptance_no": "J"}})
    assert r.status_code == 403 and "科长" in r.get_json()["message"]
    assert api.post(f"/work-items/{joint['id']}/claim", "housing2").status_code == 403
    api.complete(joint, "housing", {"acceptance_no": "J"})


def test_an_admin_gives_memberships_in_several_departments(app, deployed):
    """A 住建局 承办人 who is also 科长 of 自然资源局: the admin writes it as the page shows it; a department
    that does not exist is refused naming those that do, and nothing changes."""
    from tests.webapp.test_pages import Browser
    from workflows.administration.users import describe_memberships
    from workflows.models import User

    admin = Browser(app, "admin")
    r = admin.post_form("/admin/users", op="assign", username="housing2", role="reviewer", department="housing",
                        memberships="承办人，自然资源和规划局/科长")
    assert r.status_code == 302
    with deployed.read() as s:
        user = s.scalar(select(User).where(User.username == "housing2"))
        assert {(m.department, m.position) for m in user.memberships} == {("housing", "承办人"), ("nrp", "科长")}
        assert describe_memberships(user) == "承办人, 自然资源和规划局/科长"
    r = admin.post_form("/admin/users", op="assign", username="housing2", role="reviewer", department="housing",
                        memberships="气象局/科长")
    assert r.status_code == 400 and "自然资源和规划局" in r.get_data(as_text=True)
    with deployed.read() as s:
        user = s.scalar(select(User).where(User.username == "housing2"))
        assert len(user.memberships) == 2
        event = s.execute(select(AuditEvent).where(AuditEvent.action == "user.assigned")).scalars().all()[-1]
        assert event.after["memberships"] == "承办人, 自然资源和规划局/科长"


def test_a_user_works_in_a_second_department(api, deployed):
    """Memberships decide where a user works: the second department's queue, its cases and its steps;
    a membership taken away counts at once for steps that need a position."""
    from workflows.administration import staff_admin
    from workflows.casework.cases import SYSTEM

    deployed.transaction(lambda s: staff_admin.assign(s, SYSTEM, "housing2", "reviewer", "housing",
                                                      "承办人, 自然资源和规划局/科长"))
    api.tokens.pop("housing2", None)  # the assignment signed the old token out
    case_no = api.start("construction_permit", {"project_type": "small_social", "project_name": "小型商业楼"})[
        "case_no"]
    accept(api, case_no)
    mine = api.get(f"/work-items?state=active&case_no={case_no}", as_user="housing2").get_json()["items"]
    assert {i["step"] for i in mine} == {"land_planning"}  # 自然资源局's step, none of 发改委's
    assert api.get(f"/cases/{case_no}", as_user="housing2").status_code == 200
    r = api.get("/work-items?state=active&department=ndrc", as_user="housing2")
    assert r.status_code == 403
    items = api.open_items(case_no)
    api.complete(items["land_planning"], "housing2", {"permit_no": "P"})
    api.complete(items["ndrc_approval"], "ndrc", {"approval_no": "A"})
    # a colleague by membership takes a transfer; a user of neither department does not
    planning = api.open_items(case_no)["planning_permit"]
    api.post(f"/work-items/{planning['id']}/claim", "nrp")
    r = api.post(f"/work-items/{planning['id']}/transfer", "nrp", json={"to": "ndrc", "reason": "不是本部门"})
    assert r.status_code == 400
    r = api.post(f"/work-items/{planning['id']}/transfer", "nrp", json={"to": "housing2", "reason": "科长审核"})
    assert r.status_code == 200 and r.get_json()["assignee"] == "housing2"
    deployed.transaction(lambda s: staff_admin.assign(s, SYSTEM, "housing2", "reviewer", "housing", "承办人"))
    api.tokens.pop("housing2", None)
    mine = api.get(f"/work-items?state=active&case_no={case_no}", as_user="housing2").get_json()["items"]
    assert {i["step"] for i in mine} == {"design_review"}
    r = api.post(f"/work-items/{planning['id']}/complete", "housing2", json={"data": {"permit_no": "P2"}})
    assert r.status_code == 403


def test_operations_on_a_property_registration(api, deployed):
    """退回 inside the parallel stage, 转办-free 催办, 延期 and 终止 on the third seed process."""
    from tests.conftest import PERSON

    case_no = api.start("property_registration", {"registration_kind": "general"}, **PERSON)["case_no"]
    accept(api, case_no)
    items = api.open_items(case_no)
    assert sorted(items) == ["registration", "tax", "transaction"]
    api.complete(items["transaction"], "housing", {"contract_no": "HT-1"})
    # the tax step goes back to the window: the registration still open is cancelled, the done one stays
    r = api.post(f"/work-items/{items['tax']['id']}/return", "tax", json={"to": "window", "reason": "合同价格需核实"})
    assert r.status_code == 200 and r.get_json()["step"] == "accept"
    assert list(api.open_items(case_no)) == ["accept"]
    api.complete(r.get_json(), "clerk", {"decision": "accept"})
    items = api.open_items(case_no)
    assert api.post(f"/work-items/{items['registration']['id']}/urge", "clerk", json={}).get_json()["urged"] == 1
    ext = api.post(f"/cases/{case_no}/extensions", "nrp", json={"working_days": 1, "reason": "需实地查看"})
    assert ext.status_code == 201
    assert api.post(f"/extensions/{ext.get_json()['id']}/approve", "supervisor", json={}).status_code == 200
    r = api.post(f"/cases/{case_no}/terminate", "supervisor", json={"reason": "法院查封，中止登记"})
    assert r.status_code == 200 and r.get_json()["open_items"] == []
    with deployed.read() as s:
        from workflows.oversight.integrity import problems
        assert list(problems(s)) == []


def test_every_holder_operation_on_a_property_registration(api, deployed):
    """撤回, 转办, 代理, 委派, 加签, 抄送, 督办, notes and 撤回申请 on the property registration."""
    from tests.conftest import DEMO_PASSWORD, PERSON
    from timers.clock import now, to_local
    from workflows.administration import users

    deployed.transaction(lambda s: users.add_user(s, "nrp2", "reviewer", DEMO_PASSWORD, "nrp"))
    deployed.transaction(lambda s: users.add_user(s, "clerk2", "clerk", DEMO_PASSWORD, "window"))
    case_no = api.start("property_registration", {"registration_kind": "general"}, **PERSON)["case_no"]
    accept(api, case_no)
    # 撤回: the window takes its 受理 back while nobody has touched what followed
    accepted = next(e for e in api.get(f"/cases/{case_no}").get_json()["history"]
                    if e["action"] == "work_item.completed")
    r = api.post(f"/work-items/{accepted['work_item_id']}/withdraw", "clerk")
    assert r.status_code == 200, r.get_json()
    assert list(api.open_items(case_no)) == ["accept"]
    api.complete(r.get_json(), "clerk", {"decision": "accept"})
    items = api.open_items(case_no)
    # 转办 inside 住建局, with the reason; both are told
    api.post(f"/work-items/{items['transaction']['id']}/claim", "housing")
    r = api.post(f"/work-items/{items['transaction']['id']}/transfer", "housing",
                 json={"to": "housing2", "reason": "本人外出培训"})
    assert r.status_code == 200 and r.get_json()["assignee"] == "housing2"
    api.complete(r.get_json(), "housing2", {"contract_no": "HT-9"})
    # 代理: the clerk is away today; the case returned to the window goes to clerk2, "代 clerk 办理"
    today = to_local(now()).date().isoformat()
    r = api.call("PUT", "/users/clerk/stand-in", "clerk", json={"to": "clerk2", "from": today, "until": today})
    assert r.status_code == 200, r.get_json()
    r = api.post(f"/work-items/{items['tax']['id']}/return", "tax", json={"to": "window", "reason": "合同价格需核实"})
    assert r.status_code == 200, r.get_json()
    back = r.get_json()
    assert back["assignee"] == "clerk2" and "代 clerk 办理" in back["note"]
    api.complete(back, "clerk2", {"decision": "accept"})
    api.complete(api.open_items(case_no)["transaction"], "housing", {"contract_no": "HT-10"})
    # 委派: nrp asks nrp2 to draft the registration; it comes back to nrp to confirm
    registration = api.open_items(case_no)["registration"]
    api.post(f"/work-items/{registration['id']}/claim", "nrp")
    assert api.post(f"/work-items/{registration['id']}/delegate", "nrp", json={"to": "nrp2"}).status_code == 200
    draft = api.complete(registration, "nrp2", {"certificate_no": "不动产权第 1 号"})
    assert (draft["state"], draft["assignee"]) == ("claimed", "nrp")
    # 加签: the tax step asks 住建局 before deciding; it cannot complete until the answer is in
    tax = api.open_items(case_no)["tax"]
    r = api.post(f"/work-items/{tax['id']}/consult", "tax", json={"to": ["housing"], "question": "合同价格是否偏低？"})
    assert r.status_code == 201, r.get_json()
    asked = r.get_json()["consultations"][0]
    assert api.post(f"/work-items/{tax['id']}/complete", "tax", json={"data": {"tax_paid": True}}).status_code == 409
    assert api.post(f"/consultations/{asked['id']}/answer", "housing2", json={"answer": "价格正常"}).status_code == 200
    # 抄送 and a note; 督办 on the case, answered by the department asked
    assert api.post(f"/work-items/{tax['id']}/cc", "tax", json={"to": ["housing"]}).status_code == 201
    assert case_no in [c["case_no"] for c in api.get("/copies", as_user="housing2").get_json()["copies"]]
    assert api.post(f"/cases/{case_no}/notes", "tax", json={"text": "已电话核实成交价"}).status_code == 201
    r = api.post(f"/cases/{case_no}/supervisions", "supervisor",
                 json={"item_id": tax["id"], "reply_within": "PT2H", "message": "请加快办理"})
    assert r.status_code == 201, r.get_json()
    assert api.post(f"/supervisions/{r.get_json()['id']}/reply", "tax", json={"reply": "今日办结"}).status_code == 200
    api.complete(tax, "tax", {"tax_paid": True})
    # 撤回申请 at the window: every open item ends, every clock stops
    r = api.post(f"/cases/{case_no}/withdraw", "clerk", json={"reason": "申请人书面申请撤回"})
    assert r.status_code == 200, r.get_json()
    detail = r.get_json()
    assert (detail["status"], detail["outcome"], detail["open_items"]) == ("terminated", "withdrawn", [])
    assert all(state != "running" for states in _clocks(deployed, case_no).values() for state in states)
    actions = {e["action"] for e in api.get(f"/cases/{case_no}").get_json()["history"]}
    assert {"work_item.withdrawn", "work_item.transferred", "work_item.returned", "work_item.delegated",
            "work_item.consulted", "case.copied", "case.withdrawn"} <= actions
    with deployed.read() as s:
        from workflows.oversight.integrity import problems
        assert list(problems(s)) == []


def test_the_command_line_adds_a_user_with_memberships(deployed, db_url):
    from tests.webapp.test_time_api import cli
    from workflows.models import User

    out = cli(db_url, "user", "add", "li", "--role", "reviewer", "--department", "samr", "--password",
              "a-long-passphrase-9", "--member", "科长", "--member", "nrp/承办人")
    assert out.returncode == 0, out.stderr
    with deployed.read() as s:
        user = s.scalar(select(User).where(User.username == "li"))
        assert {(m.department, m.position) for m in user.memberships} == {("samr", "科长"), ("nrp", "承办人")}
    out = cli(db_url, "user", "add", "wang", "--role", "reviewer", "--department", "samr", "--password",
              "a-long-passphrase-9", "--member", "气象局/科长")
    assert out.returncode == 2 and "气象局" in out.stderr and "自然资源和规划局" in out.stderr
    with deployed.read() as s:
        assert s.scalar(select(User).where(User.username == "wang")) is None  # nothing half written
