"""The pages with Flask's test client: who may see and do what, forms that keep input, CSRF,
double submission, tracking codes and their rate limit, upload checks."""

from __future__ import annotations

import io
import re

import pytest

from tests.conftest import COMPANY, DEMO_PASSWORD

REQUIRED = ["公司登记（备案）申请书", "公司章程", "股东主体资格证明或自然人身份证件",
            "法定代表人、董事、监事和经理的任职文件及身份证件", "住所使用证明"]


def tokens(html: str) -> dict[str, str]:
    found = dict(re.findall(r'name="(csrf_token|form_token)" value="([^"]+)"', html))
    return found


class Browser:
    def __init__(self, app, username: str | None = None):
        self.client = app.test_client()
        if username:
            page = self.client.get("/login").get_data(as_text=True)
            r = self.client.post("/login", data={"username": username, "password": DEMO_PASSWORD, **tokens(page)})
            assert r.status_code == 302, r.get_data(as_text=True)[:500]

    def get(self, path):
        return self.client.get(path)

    def post_form(self, page_path, action_path=None, **data):
        page = self.client.get(page_path).get_data(as_text=True)
        return self.client.post(action_path or page_path, data={**tokens(page), **data})


def intake_form(action="accept", received=REQUIRED, missing=(), **extra):
    return {"applicant_type": "company", "applicant_name": COMPANY["name"], "applicant_id_no": COMPANY["id_no"],
            "applicant_contact": COMPANY["contact"], "received": list(received), "missing": list(missing),
            "action": action, **extra}


def accept_case(app) -> tuple[str, str]:
    clerk = Browser(app, "clerk")
    r = clerk.post_form("/intake/QYKB", **intake_form())
    assert r.status_code == 302
    notice = clerk.get(r.headers["Location"]).get_data(as_text=True)
    case_no = re.search(r'id="case-no">([^<]+)<', notice).group(1)
    code = re.search(r'id="query-code">([^<]+)<', notice).group(1)
    return case_no, code


PAGES = ["/intake", "/intake/QYKB", "/worklist", "/cases", "/cases/{case}", "/cases/{case}/notice"]
ALLOWED = {
    None: set(),
    "clerk": {"/intake", "/intake/QYKB", "/worklist", "/cases", "/cases/{case}", "/cases/{case}/notice"},
    "samr": {"/worklist", "/cases", "/cases/{case}", "/cases/{case}/notice"},
    "supervisor": {"/worklist", "/cases", "/cases/{case}", "/cases/{case}/notice"},
    "admin": set(PAGES),
}


@pytest.mark.parametrize("who", list(ALLOWED))
def test_page_matrix(app, who):
    case_no, _ = accept_case(app)
    browser = Browser(app, who)
    for path in PAGES:
        r = browser.get(path.format(case=case_no))
        if who is None:
            assert r.status_code == 302 and "/login" in r.headers["Location"], path
        elif path in ALLOWED[who]:
            assert r.status_code == 200, (who, path)
        else:
            assert r.status_code == 403, (who, path)


def test_a_department_cannot_open_or_complete_anothers_step(app, deployed):
    case_no, _ = accept_case(app)
    from sqlalchemy import select

    from workflows.models import WorkItem
    with deployed.read() as s:
        seal = s.scalar(select(WorkItem).where(WorkItem.case_no == case_no, WorkItem.step == "seal"))
    tax = Browser(app, "tax")
    assert tax.get(f"/items/{seal.id}").status_code == 403
    own_page = tax.get("/cases").get_data(as_text=True)  # a valid CSRF token of the tax reviewer's session
    r = tax.client.post(f"/items/{seal.id}", data={"csrf_token": tokens(own_page)["csrf_token"], "seal_no": "X"})
    assert r.status_code == 403
    with deployed.read() as s:
        assert s.get(WorkItem, seal.id).state == "open"


def test_intake_errors_keep_the_input_and_csrf_is_required(app):
    clerk = Browser(app, "clerk")
    r = clerk.post_form("/intake/QYKB", **intake_form(applicant_id_no="123"))
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and "统一社会信用代码" in html and COMPANY["name"] in html
    r = clerk.post_form("/intake/QYKB", **intake_form(action="supplement", received=REQUIRED[:-1],
                                                        missing=[REQUIRED[-1]]))
    assert r.status_code == 400 and "reason" in r.get_data(as_text=True)  # say why, once
    r = clerk.client.post("/intake/QYKB", data=intake_form())  # no CSRF token
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)


def test_a_double_submitted_intake_makes_one_case(app, deployed):
    clerk = Browser(app, "clerk")
    page = clerk.get("/intake/QYKB").get_data(as_text=True)
    data = {**tokens(page), **intake_form()}
    first = clerk.client.post("/intake/QYKB", data=data)
    second = clerk.client.post("/intake/QYKB", data=data)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    from sqlalchemy import func, select

    from workflows.models import Case
    with deployed.read() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 1


def test_tolerated_intake_ends_the_case_when_the_deadline_passes(app, deployed, manual_clock):
    from datetime import datetime

    from timers.clock import SHANGHAI
    from workflows.administration.clock_store import set_clock
    from workflows.oversight import jobs
    deployed.transaction(lambda s: set_clock(s, datetime(2026, 3, 9, 10, tzinfo=SHANGHAI), frozen=True))
    clerk = Browser(app, "clerk")
    key_missing = clerk.post_form("/intake/QYKB", **intake_form(action="tolerate", received=REQUIRED[1:],
                                                                  missing=REQUIRED[:1], deadline="2026-03-12"))
    assert key_missing.status_code == 400 and "是核心材料" in key_missing.get_data(as_text=True)
    r = clerk.post_form("/intake/QYKB", **intake_form(action="tolerate", received=REQUIRED,
                                                        missing=["印章刻制委托书"], deadline="2026-03-12"))
    assert r.status_code == 302
    deployed.transaction(lambda s: set_clock(s, datetime(2026, 3, 12, 18, 1, tzinfo=SHANGHAI), frozen=True))
    assert jobs.expire_tolerated(deployed) == 1
    from sqlalchemy import select

    from workflows.models import Alert, Case, WorkItem
    with deployed.read() as s:
        case = s.scalar(select(Case))
        assert case.status == "terminated"
        assert {i.state for i in s.scalars(select(WorkItem).where(WorkItem.step != "accept"))} == {"cancelled"}
        notice = s.scalar(select(Alert).where(Alert.level == "terminated"))
        assert notice.concerned[0] == "department:window"
    # the window is told on its worklist, and can acknowledge it
    clerk = Browser(app, "clerk")  # a fresh login: the old session's clock moved on
    html = clerk.get("/worklist").get_data(as_text=True)
    assert "已终止" in html
    r = clerk.post_form("/worklist", f"/alerts/{notice.id}/acknowledge", comment="已电话告知")
    assert r.status_code == 302
    with deployed.read() as s:
        assert s.get(Alert, notice.id).acknowledged_by == "clerk"


def test_tracking_same_answer_for_wrong_code_and_unknown_case_and_rate_limit(app):
    case_no, code = accept_case(app)
    visitor = Browser(app)
    wrong = visitor.post_form("/track", case_no=case_no, query_code="AAAAAAAA")
    unknown = visitor.post_form("/track", case_no="2026QYKB999999", query_code=code)
    assert wrong.status_code == unknown.status_code == 404
    assert re.search(r'class="error"[^>]*>([^<]+)<', wrong.get_data(as_text=True)).group(1) == \
        re.search(r'class="error"[^>]*>([^<]+)<', unknown.get_data(as_text=True)).group(1)
    # another applicant's case stays closed without its code
    assert visitor.get(f"/track/{case_no}").status_code == 404
    for _ in range(9):  # ten wrong codes for this case from this address
        assert visitor.post_form("/track", case_no=case_no, query_code="BBBBBBBB").status_code == 404
    assert visitor.post_form("/track", case_no=case_no, query_code=code).status_code == 429
    # the limit is per case and address: another applicant's case at the same kiosk still opens
    second_no, second_code = accept_case(app)
    r = visitor.post_form("/track", case_no=second_no, query_code=second_code)
    assert r.status_code == 302
    other = Browser(app)
    other.client.environ_base["REMOTE_ADDR"] = "10.9.9.9"
    r = other.post_form("/track", case_no=case_no, query_code=code.lower())
    assert r.status_code == 302 and other.get(r.headers["Location"]).status_code == 200


def test_supply_checks_type_and_size_and_keeps_names_off_the_disk(app, deployed, tmp_path, monkeypatch):
    uploads = tmp_path / "uploads"
    monkeypatch.setenv("ONEWINDOW_UPLOAD_DIR", str(uploads))
    clerk = Browser(app, "clerk")
    r = clerk.post_form("/intake/QYKB", **intake_form(action="supplement", received=REQUIRED[:-1],
                                                        missing=[REQUIRED[-1]], reason="请补交"))
    notice = clerk.get(r.headers["Location"]).get_data(as_text=True)
    case_no = re.search(r'id="case-no">([^<]+)<', notice).group(1)
    code = re.search(r'id="query-code">([^<]+)<', notice).group(1)
    applicant = Browser(app)
    applicant.post_form("/track", case_no=case_no, query_code=code)
    page = applicant.get(f"/track/{case_no}").get_data(as_text=True)
    bad = applicant.client.post(f"/track/{case_no}/supply", data={
        **tokens(page), "files": (io.BytesIO(b"MZ\x90\x00 not a pdf"), "evil.pdf")}, follow_redirects=True)
    assert "只接受 PDF、PNG 或 JPEG 文件" in bad.get_data(as_text=True)
    ok = applicant.client.post(f"/track/{case_no}/supply", data={
        **tokens(page), "files": (io.BytesIO(b"%PDF-1.4 lease"), "../../etc/passwd.pdf")}, follow_redirects=True)
    assert "已提交 1 个文件" in ok.get_data(as_text=True)
    stored = list(uploads.iterdir())
    assert len(stored) == 1 and re.fullmatch(r"[0-9a-f]{32}", stored[0].name)
    from sqlalchemy import select

    from workflows.models import Attachment
    with deployed.read() as s:
        assert s.scalar(select(Attachment)).original_name == "passwd.pdf"


def test_english_on_request(app):
    visitor = Browser(app)
    html = visitor.get("/?lang=en").get_data(as_text=True)
    assert "Track a case" in html and "Service guide" in html
    assert "Track a case" in visitor.get("/").get_data(as_text=True), "the choice is remembered"
    assert "进度查询" in Browser(app).get("/").get_data(as_text=True), "Chinese by default"


def test_concurrent_tracking_guesses_are_all_counted(app):
    """40 wrong codes at once for one case from one address: ten are tried, the rest refused."""
    import threading

    case_no, _ = accept_case(app)
    page = Browser(app).client.get("/track").get_data(as_text=True)
    barrier = threading.Barrier(40)
    answers: list[int] = []

    def guess():
        client = app.test_client()
        client.get("/track")
        html = client.get("/track").get_data(as_text=True)
        barrier.wait()
        r = client.post("/track", data={**tokens(html), "case_no": case_no, "query_code": "CCCCCCCC"})
        answers.append(r.status_code)

    threads = [threading.Thread(target=guess) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert page and answers.count(404) == 10 and answers.count(429) == 30
