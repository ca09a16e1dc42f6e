"""The applicant's progress page (issue 13, point 4): the steps in the process's order with parallel ones
together and stages as groups, what is happening now in plain words, the expected completion, and at the end
the result and how to collect it; an upload lists what was received."""

from __future__ import annotations

import io
import re

from tests.webapp.test_pages import Browser, tokens
from tests.webapp.test_seed_processes import accept


def _applicant(app, case_no: str, code: str) -> Browser:
    applicant = Browser(app)
    page = applicant.get("/track").get_data(as_text=True)
    r = applicant.client.post("/track", data={"case_no": case_no, "query_code": code, **tokens(page)})
    assert r.status_code == 302
    return applicant


def _route(page: str) -> list[str]:
    """The route's entries in page order: step names, with "‖" opening a parallel group and "§" a stage."""
    block = re.search(r'(?s)<ol class="tracker" id="route">(.*?)</ol>\s*\n', page).group(1)
    out = []
    for m in re.finditer(r'<li class="(parallel|stage [a-z]+|[a-z]+)"><span[^>]*>([^<]+)</span>', block):
        kind, name = m.groups()
        out.append("‖" if kind == "parallel" else f"§{name}" if kind.startswith("stage") else name)
    return out


def _now(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.search(r'(?s)<p class="status[^"]*" id="now">(.*?)</p>',
                                                                 page).group(1))).strip()


def test_company_setup_in_order_with_the_parallel_steps_together_then_the_result(app, api):
    case = api.start("company_setup")
    applicant = _applicant(app, case["case_no"], case["query_code"])
    page = applicant.get(f"/track/{case['case_no']}").get_data(as_text=True)
    route = _route(page)
    assert route[:3] == ["已收件", "受理审查", "‖"] and route[-1] == "出件送达"
    assert sorted(route[3:6]) == sorted(["企业设立登记", "印章刻制", "发票申领及涉税事项"])  # side by side
    assert "「受理审查」办理中（综合窗口）" in _now(page)
    accept(api, case["case_no"])
    items = api.open_items(case["case_no"])
    api.complete(items["seal"], "police", {"seal_no": "S-1"})
    page = applicant.get(f"/track/{case['case_no']}").get_data(as_text=True)
    assert "各部门并联审批中（1/3 已完成）" in _now(page) and "预计办结" in _now(page)
    api.complete(items["registration"], "samr", {"approval": "approve", "license_no": "913100001234567890"})
    api.complete(items["invoice"], "tax", {"taxpayer_no": "T-1"})
    api.complete(api.open_items(case["case_no"])["deliver"], "clerk", {"delivery_method": "window"})
    page = applicant.get(f"/track/{case['case_no']}").get_data(as_text=True)
    assert "办理结果：准予许可" in _now(page) and "预计办结" not in _now(page)
    result = re.search(r'(?s)<section class="result" id="result">(.*?)</section>', page).group(1)
    assert "营业执照编号" in result and "913100001234567890" in result and "S-1" in result
    assert "窗口领取" in result and "综合窗口领取" in result
    english = applicant.get(f"/track/{case['case_no']}?lang=en").get_data(as_text=True)
    assert "Business licence number" in english and "Result: Granted" in _now(english)


def test_construction_stages_are_groups_in_order_and_delivery_comes_last(app, api):
    case = api.start("construction_permit", {"project_type": "small_social", "project_name": "小型商业楼"})
    accept(api, case["case_no"])
    page = _applicant(app, case["case_no"], case["query_code"]).get(f"/track/{case['case_no']}").get_data(
        as_text=True)
    route = _route(page)
    stages = [e for e in route if e.startswith("§")]
    assert stages == ["§立项用地规划许可", "§工程建设许可", "§施工许可", "§竣工验收"]
    assert route[-1] == "出件送达" and route.index("§竣工验收") < route.index("出件送达")
    assert route.index("§立项用地规划许可") < route.index("项目审批（核准、备案）") < route.index("§工程建设许可")
    assert '<li class="stage current">' in page and '<li class="stage upcoming">' in page


def test_a_paused_case_asks_for_its_materials_and_an_upload_is_listed(app, api):
    case = api.start("company_setup")
    accept(api, case["case_no"])
    r = api.post(f"/cases/{case['case_no']}/pause", "clerk", json={"kind": "supplement", "reason": "章程缺少签字页"})
    assert r.status_code == 201, r.get_json()
    applicant = _applicant(app, case["case_no"], case["query_code"])
    page = applicant.get(f"/track/{case['case_no']}").get_data(as_text=True)
    assert _now(page).startswith("挂起 · 等待您补正材料") and "章程缺少签字页" in page
    assert 'id="supplied"' not in page
    r = applicant.client.post(f"/track/{case['case_no']}/supply", data={
        **tokens(page), "files": (io.BytesIO(b"%PDF-1.4 signed page"), "章程签字页.pdf")}, follow_redirects=True)
    page = r.get_data(as_text=True)
    assert "已提交 1 个文件" in page
    supplied = re.search(r'(?s)<ul id="supplied">(.*?)</ul>', page).group(1)
    assert "章程签字页.pdf" in supplied and "继续上传补正材料" in page


def test_the_callback_step_shows_the_rated_case_its_score_and_comment(app, api, deployed):
    from sqlalchemy import select

    from workflows.models import Case, WorkItem

    case = api.start("company_setup")
    accept(api, case["case_no"])
    items = api.open_items(case["case_no"])
    api.complete(items["registration"], "samr", {"approval": "approve", "license_no": "L-1"})
    api.complete(items["seal"], "police", {"seal_no": "S-1"})
    api.complete(items["invoice"], "tax", {"taxpayer_no": "T-1"})
    api.complete(api.open_items(case["case_no"])["deliver"], "clerk", {"delivery_method": "window"})
    applicant = _applicant(app, case["case_no"], case["query_code"])
    page = applicant.get(f"/track/{case['case_no']}").get_data(as_text=True)
    r = applicant.client.post(f"/track/{case['case_no']}/rate",
                              data={**tokens(page), "score": "2", "comment": "窗口排队两小时"})
    assert r.status_code == 302
    with deployed.read() as s:
        followup = s.scalar(select(Case).where(Case.process_key == "rating_followup"))
        item = s.scalar(select(WorkItem).where(WorkItem.case_id == followup.id))
    shown = Browser(app, "supervisor").get(f"/items/{item.id}").get_data(as_text=True)
    facts = re.search(r'(?s)<dl class="facts" id="case-facts">(.*?)</dl>', shown).group(1)
    assert f'href="/cases/{case["case_no"]}"' in facts and "窗口排队两小时" in facts
    assert re.search(r"评分（1 至 5 分，1 为非常不满意）</dt><dd>2</dd>", facts), facts
