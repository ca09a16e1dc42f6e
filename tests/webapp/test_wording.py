"""The hall's language (issue 13): after a journey through all three seed processes, every page reachable
by every role, in Chinese and English, is crawled; no raw ISO duration, program identifier or English
word reaches a Chinese page, and no Chinese outside case data reaches an English one."""

from __future__ import annotations

import html
import re
import subprocess
from collections import deque
from urllib.parse import urljoin, urlparse

import pytest

from tests.conftest import COMPANY, PERSON
from tests.webapp.test_pages import REQUIRED, Browser, accept_case, intake_form
from tests.webapp.test_seed_processes import accept
from webapp.cli import DEMO_USERS
from workflows.definitions.catalogue import catalogue

ISO_DURATION = re.compile(r"\bP(?:\d+[YMWD])*(?:T(?:\d+(?:\.\d+)?[HMS])+)?\b(?<!P)")
SNAKE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")
DOTTED = re.compile(r"\b[a-z]+\.[a-z_]+\b")  # audit actions: case.started, work_item.completed
WORD = re.compile(r"[A-Za-z][A-Za-z'’-]{2,}")
# proper names and marks a Chinese page may carry: the product, formats, the case-number codes of the
# matters, and units or terms used as they are in Chinese offices
ALLOWED_EN = {"OneWindow", "English", "CSV", "Excel", "PDF", "BPMN", "API", "OpenAPI", "HFGZ",
              "SVG", "URL", "Bearer", "JSON", "kVA", "PNG", "JPEG", "XLSX", "QR", "DMN", "ZIP"} | \
    set(catalogue().matters)
HAN = re.compile(r"[\u4e00-\u9fff]")
SKIP = ("/logout", "/static/", "/export", ".xlsx", ".csv", ".pdf", "/api/", "/metrics", "/healthz", "/files/",
        "/attachments/")


def _visible_text(page: str, lang: str = "zh") -> str:
    page = re.sub(r"(?is)<(script|style|svg)\b.*?</\1>", " ", page)
    if lang == "en":
        # messages and notes written once, in Chinese, when the event happened (alerts, 督办, a step's note):
        # marked as Chinese text for the reader's browser, and stored text like case data
        page = re.sub(r'(?s)<span lang="zh">.*?</span>', " ", page)
    # what a user reads besides text: placeholders, titles, labels of buttons and fields
    attrs = " ".join(m for m in re.findall(r'(?:placeholder|title|aria-label|alt)="([^"]*)"', page))
    text = re.sub(r"(?s)<[^>]+>", " ", page)
    text = re.sub(r"\b[0-9a-f]{8,64}\b", " ", text)  # a version's content hash is a fingerprint, not a word
    return html.unescape(text + " " + attrs)


def _raw_words(text: str, lang: str, case_data: set[str]) -> list[str]:
    found = []
    for pattern in (ISO_DURATION, SNAKE, DOTTED):
        found += [m.group(0) for m in pattern.finditer(text) if m.group(0) not in case_data]
    if lang == "zh":
        found += [w for w in WORD.findall(text) if w not in ALLOWED_EN and not any(w in d for d in case_data)]
    else:
        for chunk in re.findall(r"[\u4e00-\u9fff][\u4e00-\u9fff（）·、，：]*", text):
            if not any(chunk in d for d in case_data):
                found.append(chunk)
    return found


def _links(page: str, here: str) -> list[str]:
    out = []
    for href in re.findall(r'href="([^"#]+)', page):
        href = html.unescape(href)
        url = urljoin("http://localhost" + here, href)
        parsed = urlparse(url)
        if parsed.netloc != "localhost" or any(s in parsed.path for s in SKIP):
            continue
        out.append(parsed.path + (f"?{parsed.query}" if parsed.query else ""))
    return out


def _crawl(browser: Browser, starts: list[str], lang: str, case_data: set[str], limit: int = 120):
    seen: set[str] = set()
    queue = deque(starts)
    problems: dict[str, list[str]] = {}
    while queue and len(seen) < limit:
        path = queue.popleft()
        # one page per kind: every case page looks alike, so case numbers are folded for the seen-set
        key = re.sub(r"\d{4}[A-Z]+\d+", "N", re.sub(r"/\d+", "/N", path.split("?")[0]))
        if key in seen:
            continue
        seen.add(key)
        url = path + ("&" if "?" in path else "?") + f"lang={lang}"
        r = browser.get(url)
        if r.status_code in (302, 403, 404, 405):
            continue
        assert r.status_code == 200, (url, r.status_code)
        if not r.content_type.startswith("text/html"):
            continue
        page = r.get_data(as_text=True)
        # login names are chosen by people, as case data is: the admin's user list shows them, no other page
        logins = {u[0] for u in DEMO_USERS} if path.startswith("/admin/users") else set()
        bad = _raw_words(_visible_text(page, lang), lang, case_data | logins)
        if bad:
            problems[path] = sorted(set(bad))[:15]
        queue.extend(_links(page, path))
    return seen, problems


@pytest.fixture
def journey(app, api, deployed):
    """One case of each seed process in the states pages show: finished and rated badly (with its
    follow-up), paused for a 补正, returned, extended, in a construction stage, refused, terminated."""
    from sqlalchemy import select

    from workflows.models import Case

    done = api.start("company_setup")["case_no"]
    accept(api, done)
    items = api.open_items(done)
    api.complete(items["registration"], "samr", {"approval": "approve", "license_no": "913100001234567890"})
    api.complete(items["seal"], "police", {"seal_no": "S-1"})
    api.complete(items["invoice"], "tax", {"taxpayer_no": "T-1"})
    api.complete(api.open_items(done)["deliver"], "clerk", {"delivery_method": "window"})
    paused = api.start("company_setup")["case_no"]
    accept(api, paused)
    api.post(f"/cases/{paused}/pause", "clerk", json={"kind": "supplement", "reason": "章程缺少签字页"})
    building = api.start("construction_permit", {"project_type": "small_social", "project_name": "小型商业楼"})[
        "case_no"]
    accept(api, building)
    stage = api.open_items(building)
    api.complete(stage["ndrc_approval"], "ndrc", {"approval_no": "A-1"})
    r = api.post(f"/work-items/{stage['land_planning']['id']}/return", "nrp",
                 json={"to": "window", "reason": "红线图不清"})
    assert r.status_code == 200
    api.post(f"/cases/{building}/extensions", "clerk", json={"working_days": 2, "reason": "需现场踏勘"})
    house = api.start("property_registration", {"registration_kind": "general"}, **PERSON)["case_no"]
    accept(api, house)
    api.post(f"/cases/{house}/supervisions", "supervisor",
             json={"reply_within": "PT2H", "message": "请加快办理"})
    ended = api.start("property_registration", {"registration_kind": "general"}, **PERSON)["case_no"]
    api.post(f"/cases/{ended}/terminate", "supervisor", json={"reason": "申请人死亡"})
    with deployed.read() as s:
        codes = {c.case_no: c.query_code for c in s.scalars(select(Case))}
    return {"done": done, "paused": paused, "building": building, "house": house, "codes": codes}


STAFF_STARTS = ["/", "/worklist", "/cases", "/intake", "/alerts", "/board", "/stats", "/copies", "/admin/processes",
                "/admin/users", "/admin/calendar", "/admin/incidents", "/search"]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_no_raw_codes_on_any_page(app, journey, lang):
    case_data = {"913100001234567890", "S-1", "T-1", "A-1"} | set(journey["codes"].values())  # query codes
    # what people wrote or are called: applicants, the texts typed in the journey, staff names, the hall's
    # configured name, and the language switch's own label
    case_data |= {COMPANY["name"], PERSON["name"], "小型商业楼", "章程缺少签字页", "红线图不清", "需现场踏勘",
                  "申请人死亡", "请加快办理", "政务服务中心", "中文"} | {u[3] for u in DEMO_USERS}
    problems: dict[str, dict[str, list[str]]] = {}
    for who in ("clerk", "samr", "nrp", "housing", "supervisor", "admin"):
        browser = Browser(app, who)
        starts = STAFF_STARTS + [f"/cases/{journey[k]}" for k in ("done", "paused", "building", "house")]
        _, found = _crawl(browser, starts, lang, case_data)
        if found:
            problems[who] = found
    applicant = Browser(app)
    for key in ("done", "paused", "building"):
        case_no = journey[key]
        page = applicant.get("/track").get_data(as_text=True)
        from tests.webapp.test_pages import tokens
        applicant.client.post("/track", data={"case_no": case_no, "query_code": journey["codes"][case_no],
                                              **tokens(page)})
    _, found = _crawl(applicant, ["/", "/track"] + [f"/track/{journey[k]}" for k in ("done", "paused", "building")],
                      lang, case_data)
    if found:
        problems["applicant"] = found
    assert not problems, "\n".join(f"{who} {path}: {words}" for who, pages in problems.items()
                                   for path, words in pages.items())


def test_the_documents_a_hall_hands_out(app, journey, tmp_path):
    """收件回执 with the materials received and the clerk; 办结通知书 with the outcome and the licence number;
    不予受理决定书 with the right to reconsideration or litigation; each with the case number and a QR code."""
    clerk = Browser(app, "clerk")
    taken, _ = accept_case(app)  # at the window, with its checklist
    receipt = clerk.get(f"/cases/{taken}/notice?doc=receipt").get_data(as_text=True)
    assert "收件回执" in receipt and "公司章程" in receipt and "窗口人员" in receipt
    done = clerk.get(f"/cases/{journey['done']}/notice").get_data(as_text=True)
    assert "办结通知书" in done and "913100001234567890" in done and "窗口领取" in done
    assert journey["done"] in done and "<svg" in done  # the QR code, inline
    assert clerk.get(f"/cases/{journey['done']}/notice?doc=nonsense").status_code == 404
    r = clerk.post_form("/intake/QYKB", **intake_form(action="refuse", received=REQUIRED[:2],
                                                       missing=REQUIRED[2:], reason="不属于本机关职权范围"))
    assert r.status_code == 302
    refused = clerk.get(r.headers["Location"]).get_data(as_text=True)
    assert "不予受理决定书" in refused and "行政复议" in refused and "行政诉讼" in refused
    refused_no = re.search(r'id="case-no">([^<]+)<', refused).group(1)
    # the same documents as PDF: they render, carry the case number and their Chinese in an embedded font
    service = clerk.get(f"/cases/{journey['done']}/notice?doc=service").get_data(as_text=True)
    assert "送达回证" in service and "受送达人签收" in service and "窗口领取" in service
    assert clerk.get(f"/cases/{journey['paused']}/notice?doc=service").status_code == 404  # nothing to serve yet
    for case_no, doc, words in ((taken, "receipt", "收件回执"), (journey["done"], "", "办结通知书"),
                                (journey["done"], "service", "送达回证"),
                                (journey["paused"], "", "补正材料通知书"), (refused_no, "", "行政复议")):
        r = clerk.get(f"/cases/{case_no}/notice?doc={doc}&format=pdf")
        assert r.status_code == 200 and r.content_type == "application/pdf" and r.data.startswith(b"%PDF")
        pdf = tmp_path / f"{case_no}-{doc or 'state'}.pdf"
        pdf.write_bytes(r.data)
        text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True,
                              check=True).stdout
        assert case_no in text and words in text, text[:300]
        fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
        assert "WenQuanYi" in fonts or "Noto" in fonts, fonts
        assert all(line.split()[-5] == "yes" for line in fonts.splitlines()[2:]), fonts  # every font embedded
        subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")],
                       check=True)
        page = next(tmp_path.glob("page*.png"))
        assert page.stat().st_size > 5_000  # a rendered page, not a blank one
        page.unlink()


def test_a_material_both_received_and_missing_is_refused(app, deployed):
    from sqlalchemy import func, select

    from workflows.models import Case

    clerk = Browser(app, "clerk")
    r = clerk.post_form("/intake/QYKB", **intake_form(action="supplement", received=REQUIRED,
                                                       missing=REQUIRED[:1], reason="章程未签字"))
    assert r.status_code == 400 and "既勾选已收又勾选缺少" in r.get_data(as_text=True)
    with deployed.read() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 0  # nothing half written


def test_the_favicon_is_there(client):
    r = client.get("/favicon.ico")
    assert r.status_code == 301
    icon = client.get(r.headers["Location"])
    assert icon.status_code == 200 and b"<svg" in icon.data


def test_the_reminder_panel_shows_the_latest_five_and_acknowledges_them_at_once(app, api, deployed):
    from sqlalchemy import func, select

    from workflows.models import Alert

    for _ in range(7):  # seven urges of the window's 受理审查: seven reminders for the window
        case_no = api.start("company_setup")["case_no"]
        item = api.open_items(case_no)["accept"]
        r = api.post(f"/work-items/{item['id']}/urge", "supervisor", json={"message": "请尽快受理"})
        assert r.status_code == 200
    clerk = Browser(app, "clerk")
    page = clerk.get("/worklist").get_data(as_text=True)
    panel = page.split('class="notes"')[1].split("</section>")[0]
    assert panel.count("<li") == 5 and "全部 7 条提醒" in panel
    r = clerk.post_form("/worklist", "/alerts/acknowledge-all",
                        alert_id=re.findall(r'name="alert_id" value="(\d+)"', panel))
    assert r.status_code == 302
    with deployed.read() as s:
        open_left = s.scalar(select(func.count()).select_from(Alert).where(
            Alert.acknowledged_at.is_(None), Alert.department == "window"))
    assert open_left == 2


def test_the_api_acknowledges_several_reminders_at_once_and_refuses_another_departments(api, deployed):
    from sqlalchemy import func, select

    from workflows.models import Alert

    for _ in range(3):
        case_no = api.start("company_setup")["case_no"]
        item = api.open_items(case_no)["accept"]
        urged = api.post(f"/work-items/{item['id']}/urge", "supervisor", json={"message": "请尽快受理"})
        assert urged.status_code == 200
    ids = [a["id"] for a in api.get("/alerts?acknowledged=false", "clerk").get_json()["alerts"]]
    assert len(ids) == 3
    refused = api.post("/alerts/acknowledge", "tax", json={"ids": ids})
    assert refused.status_code == 403 and refused.get_json()["error"] == "forbidden"
    assert api.post("/alerts/acknowledge", "clerk", json={"ids": []}).status_code == 400
    with deployed.read() as s:
        assert s.scalar(select(func.count()).select_from(Alert).where(Alert.acknowledged_at.is_(None))) == 3
    r = api.post("/alerts/acknowledge", "clerk", json={"ids": ids + ids[:1], "comment": "已处理"})
    assert r.status_code == 200 and r.get_json() == {"acknowledged": 3}
    again = api.post("/alerts/acknowledge", "clerk", json={"ids": ids})
    assert again.get_json() == {"acknowledged": 0}  # acknowledged meanwhile: passed over, not an error
