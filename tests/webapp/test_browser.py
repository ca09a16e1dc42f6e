"""The company-setup journey in a real browser (Playwright driving Debian's Chromium).

Intake with a 补正 round, the three departments in parallel, delivery, the applicant tracking it and
rating it. Screenshots of the main pages go to docs/screenshots/.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import DEMO_PASSWORD

CHROMIUM = os.environ.get("ONEWINDOW_CHROMIUM", "/usr/bin/chromium")
# ONEWINDOW_SCREENSHOTS=1 refreshes the README's pictures; otherwise they go to a scratch folder, so a
# test run leaves the work tree as it was
SHOTS = (Path(__file__).resolve().parents[2] / "docs" / "screenshots" if os.environ.get("ONEWINDOW_SCREENSHOTS")
         else Path(os.environ.get("TMPDIR", "/tmp")) / "onewindow-screenshots")
pytestmark = pytest.mark.slow  # .ci/run and the README's test command install Debian's chromium


@pytest.fixture
def server(deployed, db_url, tmp_path):
    if not db_url.startswith("sqlite"):
        pytest.skip("the browser journey runs on SQLite; PostgreSQL is covered by the API tests")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": db_url, "ONEWINDOW_DEV_SERVER": "1", "ONEWINDOW_CLOCK": "manual",
           "ONEWINDOW_UPLOAD_DIR": str(tmp_path / "uploads")}
    proc = subprocess.Popen([sys.executable, "-m", "webapp.cli", "serve", "--port", str(port), "--no-scheduler"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(base + "/", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    yield base
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync", "--disable-quic"])
        yield chromium
        chromium.close()


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def login(browser, base, username):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.goto(base + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("form button")
    return page


def test_company_setup_journey(server, browser, tmp_path):
    base = server
    public = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    public.goto(base + "/")
    shot(public, "home")
    public.click("text=企业开办“一件事”")
    assert "办事指南" in public.inner_text("h1") and public.locator("svg.bpmn").count() == 1
    shot(public, "guide")

    # 1. intake with one required material missing → 补正, the notice lists it
    clerk = login(browser, base, "clerk")
    clerk.goto(base + "/intake/QYKB")
    clerk.select_option("select[name=applicant_type]", "company")
    clerk.fill("input[name=applicant_name]", "绵阳市示例科技有限公司")
    clerk.fill("input[name=applicant_id_no]", "91350100M000100Y43")
    clerk.fill("input[name=applicant_contact]", "0816-1234567")
    materials = clerk.locator("table.materials tr")
    for i in range(1, materials.count()):
        row = materials.nth(i)
        name = row.locator("td").first.inner_text()
        if "住所使用证明" in name:
            row.locator("input[name=missing]").check()
        elif "如需" not in name:
            row.locator("input[name=received]").check()
    clerk.click("button[value=accept]")  # with a required material missing: refused with the error beside it
    assert "受理须收齐全部必需材料" in clerk.inner_text(".error")
    assert clerk.locator("input[name=applicant_name]").input_value() == "绵阳市示例科技有限公司"  # nothing lost
    clerk.fill("textarea[name=reason]", "请提供租赁合同及产权证明")
    shot(clerk, "intake")
    clerk.click("button[value=supplement]")
    assert "补正材料通知书" in clerk.inner_text("h1")
    case_no = clerk.inner_text("#case-no").strip()
    code = clerk.inner_text("#query-code").strip()
    assert "住所使用证明" in clerk.inner_text("article")
    shot(clerk, "notice")

    # 2. the applicant tracks it: a wrong code and an unknown case get the same answer
    public.goto(base + "/track")
    public.fill("input[name=case_no]", case_no)
    public.fill("input[name=query_code]", "WRONGCOD")
    public.click("form button")
    wrong = public.inner_text(".error")
    public.fill("input[name=case_no]", "2026QYKB999999")
    public.fill("input[name=query_code]", code)
    public.click("form button")
    assert public.inner_text(".error") == wrong
    public.fill("input[name=case_no]", case_no)
    public.fill("input[name=query_code]", code)
    public.click("form button")
    assert "住所使用证明" in public.inner_text(".notice-box")
    pdf = tmp_path / "lease.pdf"
    pdf.write_bytes(b"%PDF-1.4\n% lease contract\n")
    public.set_input_files("input[type=file]", str(pdf))
    public.click(".notice-box button")
    assert "已提交 1 个文件" in public.inner_text(".flash")

    # 3. the clerk confirms: the clock starts, the three departments get their steps
    clerk.goto(f"{base}/cases/{case_no}")
    assert "lease.pdf" in clerk.inner_text("body")
    clerk.click("text=确认补正材料")
    # the clock runs again and the clerk is back at the 受理 decision, now with every material
    assert "受理审查" in clerk.inner_text("h1") and "补正材料已确认" in clerk.inner_text(".flash")
    clerk.select_option("select[name=decision]", "accept")
    clerk.click("button.primary")
    assert "办理中" in clerk.inner_text("h1")

    # 4. the three departments work in parallel
    for username, step, fields in (("samr", "企业设立登记", {"license_no": "LIC-2026-001"}),
                                   ("police", "印章刻制", {"seal_no": "SEAL-77"}),
                                   ("tax", "发票申领及涉税事项", {"taxpayer_no": "91350100M000100Y43"})):
        page = login(browser, base, username)
        page.goto(base + "/worklist")
        row = page.locator("table.list tbody tr", has_text=case_no)
        assert row.count() == 1 and step in row.inner_text()
        if username == "police":
            shot(page, "worklist")
        row.locator("text=" + step).click()
        for name, value in fields.items():
            page.fill(f"input[name={name}]", value)
        if username == "samr":
            page.select_option("select[name=approval]", "approve")
        if username == "police":
            shot(page, "work-item")
        page.click("button.primary")
        assert "已办结该环节" in page.inner_text(".flash")
        page.context.close()

    # 5. delivery at the window
    clerk.goto(base + "/worklist")
    clerk.locator("table.list tbody tr", has_text=case_no).locator("text=出件送达").click()
    clerk.select_option("select[name=delivery_method]", "window")
    clerk.click("button.primary")
    assert "已办结" in clerk.inner_text("h1")
    shot(clerk, "case")

    # 6. the applicant sees it done and rates it; a bad rating opens a follow-up for the supervisors
    public.goto(f"{base}/track/{case_no}")
    assert public.locator("ol.tracker li.done").count() >= 6
    public.check("input[name=score][value='2']")
    public.fill("textarea[name=comment]", "等候时间较长")
    shot(public, "progress")
    public.click("form button.primary")
    assert "感谢您的评价" in public.inner_text(".flash")
    supervisor = login(browser, base, "supervisor")
    supervisor.goto(base + "/worklist")
    assert "回访" in supervisor.inner_text("table.list")

    # 7. English on request
    public.goto(base + "/?lang=en")
    assert "Track" in public.inner_text("header")
    shot(public, "home-en")



def test_supervisor_board_inbox_export_and_admin_calendar(server, browser, deployed, manual_clock, tmp_path):
    from datetime import datetime

    from tests.conftest import CLERK, COMPANY
    from timers.clock import SHANGHAI
    from workflows.administration.clock_store import set_clock
    from workflows.casework import cases
    from workflows.oversight import jobs

    base = server
    deployed.transaction(lambda s: set_clock(s, datetime(2026, 3, 9, 9, tzinfo=SHANGHAI), frozen=True))
    for _ in range(3):
        case = deployed.transaction(lambda s: cases.start_case(s, "company_setup", COMPANY, {}, CLERK))
        accept = deployed.transaction(lambda s, c=case: next(
            i for i in s.scalars(select_items(c.id)) if i.step == "accept"))
        deployed.transaction(lambda s, i=accept: cases.complete(s, i.id, CLERK, {"decision": "accept"}))
    deployed.transaction(lambda s: set_clock(s, datetime(2026, 3, 9, 10, 15, tzinfo=SHANGHAI), frozen=True))
    jobs.sweep_clocks(deployed)  # the invoice steps (due 10:30) are warned

    supervisor = login(browser, base, "supervisor")
    supervisor.goto(base + "/board")
    assert supervisor.locator("a.count.warned strong").inner_text() == "3"
    shot(supervisor, "board")

    # the inbox shows a breach that happens while it is open, without a reload
    supervisor.goto(base + "/alerts?refresh=2")
    assert supervisor.locator("tr.red").count() == 0
    deployed.transaction(lambda s: set_clock(s, datetime(2026, 3, 9, 10, 31, tzinfo=SHANGHAI), frozen=True))
    jobs.sweep_clocks(deployed)
    supervisor.wait_for_selector("tr.red", timeout=15_000)
    assert supervisor.locator("tr.red").count() == 3
    shot(supervisor, "alerts")

    supervisor.goto(base + "/stats?from=2026-03-01&to=2026-03-31")
    shot(supervisor, "stats")
    with supervisor.expect_download() as download:
        supervisor.click("text=CSV")
    exported = (tmp_path / "stats.csv")
    download.value.save_as(exported)
    assert "QYKB" in exported.read_text(encoding="utf-8-sig")

    admin = login(browser, base, "admin")
    admin.goto(base + "/admin/calendar?year=2026")
    admin.fill("#day-form input[name=day]", "2026-03-09")  # today, after all, the hall is closed
    admin.select_option("#day-form select[name=kind]", "holiday")
    admin.fill("#day-form input[name=name]", "临时闭厅")
    admin.click("#day-form button")
    assert "个计时已重算" in admin.inner_text(".flash")
    moved = admin.locator("table.list").first.inner_text()
    assert moved.count("2026-03-10") >= 9, "every running clock moved a working day on"
    shot(admin, "admin-calendar")


def select_items(case_id):
    from sqlalchemy import select

    from workflows.models import WorkItem
    return select(WorkItem).where(WorkItem.case_id == case_id)


def test_a_case_returned_to_the_window_for_a_supplement_finishes(server, browser, tmp_path):
    """A reviewer returns a company-setup case to the window; the window issues 补正; the applicant
    supplies; the window accepts again; the departments finish; the history tells the story."""
    base = server
    clerk = login(browser, base, "clerk")
    clerk.goto(base + "/intake/QYKB")
    clerk.select_option("select[name=applicant_type]", "company")
    clerk.fill("input[name=applicant_name]", "绵阳市示例科技有限公司")
    clerk.fill("input[name=applicant_id_no]", "91350100M000100Y43")
    materials = clerk.locator("table.materials tr")
    for i in range(1, materials.count()):
        row = materials.nth(i)
        if "如需" not in row.locator("td").first.inner_text():
            row.locator("input[name=received]").check()
    clerk.click("button[value=accept]")
    case_no = clerk.inner_text("#case-no").strip()
    code = clerk.inner_text("#query-code").strip()

    # 1. 市场监管 finds the business scope unclear and returns the case to the window
    samr = login(browser, base, "samr")
    samr.goto(base + "/worklist")
    samr.locator("table.list tbody tr", has_text=case_no).locator("text=企业设立登记").click()
    samr.select_option("form.return select[name=to]", "accept")
    samr.fill("form.return textarea[name=reason]", "经营范围表述不规范，请申请人补充说明")
    samr.click("form.return button")
    assert "已退回至「受理审查」" in samr.inner_text(".flash")

    # 2. the window sees why, and issues 补正 to the applicant (the case's clock pauses)
    clerk.goto(base + "/worklist")
    clerk.locator("table.list tbody tr", has_text=case_no).locator("text=受理审查").click()
    assert "经营范围表述不规范" in clerk.inner_text("body")
    clerk.goto(f"{base}/cases/{case_no}")
    clerk.select_option("select[name=kind]", "supplement")
    clerk.fill("input[name=reason]", "请补充经营范围说明")
    clerk.click("form.inline-form button:has-text('挂起')")
    assert "挂起" in clerk.inner_text("h1")

    # 3. the applicant supplies it
    public = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    public.goto(base + "/track")
    public.fill("input[name=case_no]", case_no)
    public.fill("input[name=query_code]", code)
    public.click("form button")
    assert "请补充经营范围说明" in public.inner_text(".notice-box")
    pdf = tmp_path / "scope.pdf"
    pdf.write_bytes(b"%PDF-1.4\n% business scope\n")
    public.set_input_files("input[type=file]", str(pdf))
    public.click(".notice-box button")
    assert "已提交 1 个文件" in public.inner_text(".flash")

    # 4. the window confirms and accepts again; the three departments and the delivery finish it
    clerk.goto(f"{base}/cases/{case_no}")
    clerk.click("text=确认补正材料")
    clerk.goto(base + "/worklist")
    clerk.locator("table.list tbody tr", has_text=case_no).locator("text=受理审查").click()
    clerk.select_option("select[name=decision]", "accept")
    clerk.click("form.step button.primary")
    for username, step, fields in (("samr", "企业设立登记", {"license_no": "LIC-2026-002"}),
                                   ("police", "印章刻制", {"seal_no": "SEAL-78"}),
                                   ("tax", "发票申领及涉税事项", {"taxpayer_no": "91350100M000100Y43"})):
        page = samr if username == "samr" else login(browser, base, username)
        page.goto(base + "/worklist")
        page.locator("table.list tbody tr", has_text=case_no).locator("text=" + step).click()
        for name, value in fields.items():
            page.fill(f"input[name={name}]", value)
        if username == "samr":
            page.select_option("select[name=approval]", "approve")
        page.click("form.step button.primary")
        assert "已办结该环节" in page.inner_text(".flash")
    clerk.goto(base + "/worklist")
    clerk.locator("table.list tbody tr", has_text=case_no).locator("text=出件送达").click()
    clerk.select_option("select[name=delivery_method]", "window")
    clerk.click("form.step button.primary")
    assert "已办结" in clerk.inner_text("h1")

    # 5. the history reads as the story, in order
    history = clerk.inner_text("ol.story")
    story = ["收件登记", "完成「受理审查」", "退回「企业设立登记」", "挂起（补正）", "申请人补正材料", "恢复计时",
             "完成「企业设立登记」"]
    at = 0
    for action in story:  # each after the one before
        at = history.find(action, at)
        assert at >= 0, (action, history[:2000])
        at += len(action)
    assert "经营范围表述不规范" in history


# Each role's main pages, as a phone shows them: nothing wider than the screen (a wide table scrolls in its
# own box), at 360 px (the narrowest common phone) and at 390 px, where the README's phone pictures come from.
PHONE_PAGES = {
    None: [("home", "/"), ("guide", "/guide/QYKB"), ("progress", "/track/{done}")],
    "clerk": [("worklist-clerk", "/worklist"), ("intake", "/intake/QYKB"), ("case", "/cases/{open}"),
              ("notice", "/cases/{done}/notice")],
    "samr": [("worklist", "/worklist"), ("work-item", "/items/{item}")],
    "supervisor": [("board", "/board"), ("alerts", "/alerts"), ("stats", "/stats")],
    "admin": [("admin-users", "/admin/users"), ("admin-calendar", "/admin/calendar")],
}


def test_every_roles_main_pages_fit_a_phone(server, browser, api):
    from tests.webapp.test_seed_processes import accept

    done = api.start("company_setup")
    accept(api, done["case_no"])
    items = api.open_items(done["case_no"])
    api.complete(items["registration"], "samr", {"approval": "approve", "license_no": "913100001234567890"})
    api.complete(items["seal"], "police", {"seal_no": "S-1"})
    api.complete(items["invoice"], "tax", {"taxpayer_no": "T-1"})
    api.complete(api.open_items(done["case_no"])["deliver"], "clerk", {"delivery_method": "window"})
    running = api.start("company_setup")["case_no"]
    accept(api, running)
    values = {"done": done["case_no"], "open": running, "item": api.open_items(running)["registration"]["id"]}
    too_wide = {}
    for who, pages in PHONE_PAGES.items():
        for width in (360, 390):
            if who:
                page = login(browser, server, who)
                page.set_viewport_size({"width": width, "height": 800})
            else:
                page = browser.new_context(viewport={"width": width, "height": 800}, locale="zh-CN").new_page()
                page.goto(server + "/track")
                page.fill("input[name=case_no]", done["case_no"])
                page.fill("input[name=query_code]", done["query_code"])
                page.click("form button")
            for name, path in pages:
                page.goto(server + path.format(**values))
                assert page.locator("main").count() == 1, (who, path)
                overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                if overflow > 1:
                    too_wide[(who, name, width)] = overflow
                if width == 390:
                    shot(page, f"{name}-phone")
            page.context.close()
    assert not too_wide, sorted(too_wide.items(), key=str)


CROSSINGS_JS = """() => {
  const svg = document.querySelector('svg.bpmn');
  const boxes = [...svg.querySelectorAll('text.label')].filter(t => t.textContent.trim().length > 1)
    .map(t => ({name: t.textContent.trim(), b: t.getBBox()}));
  const hits = [];
  const cut = (x1, y1, x2, y2, r) => {  // Liang-Barsky: does the segment pass through the box?
    let t0 = 0, t1 = 1; const dx = x2 - x1, dy = y2 - y1;
    const p = [-dx, dx, -dy, dy], q = [x1 - r.x, r.x + r.width - x1, y1 - r.y, r.y + r.height - y1];
    for (let i = 0; i < 4; i++) {
      if (p[i] === 0) { if (q[i] < 0) return false; continue; }
      const t = q[i] / p[i];
      if (p[i] < 0) t0 = Math.max(t0, t); else t1 = Math.min(t1, t);
      if (t0 > t1) return false;
    }
    return true;
  };
  for (const line of svg.querySelectorAll('polyline.edge')) {
    const pts = line.getAttribute('points').trim().split(/\\s+/).map(p => p.split(',').map(Number));
    for (let i = 1; i < pts.length; i++)
      for (const {name, b} of boxes) {
        const r = {x: b.x + 2, y: b.y + 2, width: b.width - 4, height: b.height - 4};  // touching is not crossing
        if (r.width > 0 && r.height > 0 && cut(pts[i-1][0], pts[i-1][1], pts[i][0], pts[i][1], r)) hits.push(name);
      }
  }
  const pool = svg.querySelector('rect.pool').getBBox();
  const outside = [...svg.querySelectorAll('rect.sub, rect.node')].map(r => r.getBBox()).filter(b =>
    b.x < pool.x || b.y < pool.y || b.x + b.width > pool.x + pool.width || b.y + b.height > pool.y + pool.height);
  return {hits, outside: outside.length, width: +svg.getAttribute('width'), natural: +svg.dataset.width};
}"""


@pytest.mark.parametrize("matter", ["QYKB", "GCJS", "BDCDJ"])
def test_diagrams_are_readable_at_natural_size_and_zoom(server, browser, matter):
    page = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN").new_page()
    page.goto(f"{server}/guide/{matter}")
    found = page.evaluate(CROSSINGS_JS)
    assert found["hits"] == [], found["hits"]  # no flow line runs through a name
    assert found["outside"] == 0  # every task and stage inside its pool
    assert found["width"] == found["natural"] and found["natural"] > 900  # not squeezed to the page
    page.click("[data-zoom=in]")
    assert page.evaluate("+document.querySelector('svg.bpmn').getAttribute('width')") > found["natural"]
    page.click("[data-zoom=fit]")
    fitted = page.evaluate("+document.querySelector('svg.bpmn').getAttribute('width')")
    assert fitted <= page.evaluate("document.querySelector('.diagram').clientWidth")
    if matter == "GCJS":
        page.click("[data-zoom=reset]")
        shot(page, "guide-construction")


def test_the_window_form_takes_the_keyboard_first(server, browser):
    clerk = login(browser, server, "clerk")
    clerk.goto(server + "/intake/QYKB")
    assert clerk.evaluate("document.activeElement.name") == "applicant_name"  # type at once
    clerk.goto(server + "/worklist")
    clerk.keyboard.press("Tab")
    assert clerk.evaluate("document.activeElement.className") == "skip"
    clerk.keyboard.press("Enter")
    assert clerk.evaluate("document.activeElement.id") == "main"  # past the navigation
