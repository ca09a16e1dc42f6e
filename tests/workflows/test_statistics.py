"""A month of history made with the manual clock; every statistic checked against values worked out
by hand here (office hours 09:00-12:00, 13:00-18:00; March 2026 has no holidays)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select, update

from tests.conftest import CLERK, COMPANY, PERSON
from timers.clock import SHANGHAI
from workflows.administration.clock_store import set_clock
from workflows.casework import applicant_portal, cases, window
from workflows.models import Case, DailyTally, TalliedDay, WorkItem
from workflows.oversight import jobs, statistics, tallies

ACTORS = {"window": CLERK, "samr": cases.Actor("samr", "reviewer", "samr"),
          "police": cases.Actor("police", "reviewer", "police"), "tax": cases.Actor("tax", "reviewer", "tax"),
          "housing": cases.Actor("housing", "reviewer", "housing"), "nrp": cases.Actor("nrp", "reviewer", "nrp"),
          "supervision": cases.Actor("supervisor", "supervisor", "supervision")}
DATA = {"accept": {"decision": "accept"}, "registration": {"approval": "approve", "license_no": "L"},
        "seal": {"seal_no": "S"}, "invoice": {"taxpayer_no": "T"}, "deliver": {"delivery_method": "window"},
        "transaction": {"contract_no": "C"}, "tax": {"tax_paid": True}, "callback": {"call_summary": "已回访"}}
REQUIRED = ["公司登记（备案）申请书", "公司章程", "股东主体资格证明或自然人身份证件",
            "法定代表人、董事、监事和经理的任职文件及身份证件", "住所使用证明"]


def at(d, h, m=0):
    return datetime(2026, 3, d, h, m, tzinfo=SHANGHAI)


class History:
    def __init__(self, db):
        self.db = db

    def move(self, instant):
        self.db.transaction(lambda s: set_clock(s, instant, frozen=True))

    def start(self, process, data=None, applicant=COMPANY):
        return self.db.transaction(lambda s: cases.start_case(s, process, applicant, data or {}, CLERK)).case_no

    def open(self, case_no):
        with self.db.read() as s:
            return {i.step: i for i in s.scalars(select(WorkItem).where(
                WorkItem.case_no == case_no, WorkItem.state.in_(("open", "claimed"))))}

    def work(self, case_no, *steps, data=None):
        items = self.open(case_no)
        for step in steps:
            item = items[step]
            payload = data if data is not None else DATA[step]
            self.db.transaction(lambda s, i=item, p=payload: cases.complete(s, i.id, ACTORS[i.department], p))

    def company_case(self, accepted, steps_done, delivered):
        self.move(accepted)
        no = self.start("company_setup")
        self.work(no, "accept")
        self.move(steps_done)
        self.work(no, "registration", "seal", "invoice")
        if "escalate_seal" in self.open(no):  # the seal ran past its timer: the supervisors chased it
            self.work(no, "escalate_seal", data={"action": "已督办"})
        self.move(delivered)
        self.work(no, "deliver")
        return no

    def rate(self, case_no, score, result=None):
        def work(s):
            case = s.scalar(select(Case).where(Case.case_no == case_no))
            return applicant_portal.rate(s, case, score, "")
        rating = self.db.transaction(work)
        if result:
            with self.db.read() as s:
                followup = s.get(Case, rating.followup_case_id).case_no
            self.work(followup, "callback")
            self.work(followup, "rectify", data={"rectification": "整改说明", "result": result})


def test_a_month_of_statistics(deployed, manual_clock):
    h = History(deployed)
    on_time = [h.company_case(at(2 + i, 9), at(2 + i, 10), at(2 + i, 11)) for i in range(3)]  # Mar 2, 3, 4
    late = h.company_case(at(9, 9), at(10, 10), at(10, 11))  # steps 9 working hours, case 10 hours
    h.move(at(11, 9))
    refused = h.start("company_setup")
    h.work(refused, "accept", data={"decision": "refuse", "reason": "名称不合规"})
    # 容缺受理: accepted, still running at the end of the month
    h.move(at(12, 9))
    deployed.transaction(lambda s: window.intake(
        s, "QYKB", COMPANY, {}, REQUIRED, ["印章刻制委托书"], "tolerate", "", CLERK, date(2026, 3, 20)))
    # property registration with a 补正 pause of one working day
    h.move(at(5, 10))
    prop = h.start("property_registration", {"registration_kind": "general"}, PERSON)
    h.work(prop, "accept")
    h.move(at(5, 11))
    deployed.transaction(lambda s: cases.pause(s, prop, "supplement", "缺少完税凭证", CLERK))
    h.move(at(6, 11))
    deployed.transaction(lambda s: cases.resume(s, prop, CLERK))
    h.move(at(6, 11, 30))
    h.work(prop, "transaction", "tax")
    h.work(prop, "registration", data={"certificate_no": "C-1"})
    h.move(at(6, 12))
    h.work(prop, "deliver")
    # ratings: two good, one bad that is rectified, one bad whose appeal is upheld
    h.move(at(20, 10))
    h.rate(on_time[0], 5)
    h.rate(on_time[1], 4)
    h.rate(late, 1, result="rectified")
    h.rate(prop, 2, result="appeal_upheld")

    with deployed.read() as s:
        r = statistics.report(s, date(2026, 3, 1), date(2026, 3, 31))
        april = statistics.report(s, date(2026, 4, 1), date(2026, 4, 30))

    company = r.matters["QYKB"]
    assert (company.received, company.accepted, company.refused, company.completed) == (6, 5, 1, 4)
    # case clocks: 09:00 → 11:00 is 120 working minutes; the late one 09:00 Mar 9 → 11:00 Mar 10 is 480 + 120
    assert (company.times.count, company.times.on_time, company.times.late) == (4, 3, 1)
    assert (company.times.used_count, company.times.used_sum) == (4, 120 * 3 + 600)
    assert company.times.on_time_rate == 0.75
    assert company.times.avg == (120 * 3 + 600) / 4
    assert company.times.p90 == 600  # nearest rank: ceil(0.9 × 4) = 4th of 4
    assert company.times.avg_budget == 480 and company.statutory_minutes == 3 * 480
    assert company.promised_to_statutory == 480 / 1440
    assert company.actual_to_promised == 240 / 480

    prop_stats = r.matters["BDCDJ"]
    assert (prop_stats.received, prop_stats.accepted, prop_stats.completed) == (1, 1, 1)
    # Mar 5 10:00 → Mar 6 12:00 is 600 working minutes, 480 of them paused
    assert (prop_stats.times.avg, prop_stats.times.p90, prop_stats.times.on_time) == (120, 120, 1)
    assert prop_stats.times.avg_budget == 2 * 480

    samr = r.departments["samr"]
    # registration steps: 60 minutes three times, and Mar 9 09:00 → Mar 10 10:00 = 540 (PT3H: late)
    assert (samr.count, samr.on_time, samr.late) == (4, 3, 1)
    assert (samr.avg, samr.p90) == ((60 * 3 + 540) / 4, 540)
    nrp = r.departments["nrp"]
    # 10:00 → 11:00 before the pause and 11:00 → 11:30 after it
    assert (nrp.count, nrp.avg, nrp.p90) == (1, 60 + 30, 60 + 30)

    assert r.paused_minutes == {"supplement": 480}
    assert (r.supplements, r.tolerated) == (1, 1)
    assert (r.ratings, r.satisfied, r.bad, r.appeals_upheld, r.rectified) == (4, 2, 2, 1, 1)
    assert r.satisfaction_rate == 0.5 and r.rectification_rate == 1.0
    assert "HCP" not in r.matters, "the internal follow-up process is not a matter of the hall"

    assert april.matters == {} and april.ratings == 0

    with deployed.read() as s:
        only_company = statistics.report(s, date(2026, 3, 1), date(2026, 3, 31), matter="QYKB")
    assert list(only_company.matters) == ["QYKB"] and only_company.paused_minutes == {}

    # The scheduler tallies the closed days (Mar 2, the first case, to Mar 19); the report read from the
    # tallies is the report counted live.
    assert jobs.tally_days(deployed) == 18
    assert jobs.tally_days(deployed) == 0, "a tallied day is not tallied twice"
    with deployed.read() as s:
        assert statistics.report(s, date(2026, 3, 1), date(2026, 3, 31)) == r
        assert statistics.report(s, date(2026, 3, 1), date(2026, 3, 31), matter="QYKB") == only_company
        assert statistics.report(s, date(2026, 3, 1), date(2026, 3, 31), department="samr").departments == \
            {"samr": samr}

    # ... and it really reads them: a tally changed behind its back shows in the report
    def tamper(s):
        s.execute(update(DailyTally).where(DailyTally.kind == "received", DailyTally.matter_code == "QYKB",
                                           DailyTally.day == date(2026, 3, 2)).values(n=DailyTally.n + 100))
    deployed.transaction(tamper)
    with deployed.read() as s:
        assert statistics.report(s, date(2026, 3, 1), date(2026, 3, 31)).matters["QYKB"].received == 106

    # The manual clock set back to Mar 10: Mar 10 onwards is no longer closed, so those days are counted
    # live again, and the tallies before it are kept.
    h.move(at(10, 9))
    with deployed.read() as s:
        days = set(s.scalars(select(TalliedDay.day)))
        assert days == {date(2026, 3, d) for d in range(2, 10)}
        assert s.scalar(select(func.count()).select_from(DailyTally).where(DailyTally.day >= date(2026, 3, 10))) == 0


def test_a_timer_fired_late_recounts_its_day(deployed, manual_clock):
    """The scheduler was down overnight: the seal step's 督办 timer fires the next morning at its own
    instant (Mon 18:00), so Monday's tallies, already built, are dropped and Monday is counted anew."""
    h = History(deployed)
    h.move(at(23, 15))
    no = h.start("company_setup")
    h.work(no, "accept")
    h.move(at(24, 10))
    assert jobs.tally_days(deployed) == 1
    with deployed.read() as s:
        assert s.get(TalliedDay, date(2026, 3, 23)) is not None
    assert jobs.fire_timers(deployed) == 1
    assert "escalate_seal" in h.open(no)
    with deployed.read() as s:
        assert s.get(TalliedDay, date(2026, 3, 23)) is None
        assert s.scalar(select(func.count()).select_from(DailyTally)) == 0
        monday = statistics.report(s, date(2026, 3, 23), date(2026, 3, 23))
    assert (monday.matters["QYKB"].received, monday.matters["QYKB"].accepted) == (1, 1)
    assert jobs.tally_days(deployed) == 1
    with deployed.read() as s:
        assert statistics.report(s, date(2026, 3, 23), date(2026, 3, 23)) == monday
        assert tallies.last_closed_day() == date(2026, 3, 23)


def test_admin_commands_show_and_rebuild_the_tallies(deployed, db_url, manual_clock):
    import os
    import subprocess
    import sys

    h = History(deployed)
    h.company_case(at(2, 9), at(2, 10), at(2, 11))
    h.move(at(4, 10))
    env = {**os.environ, "DATABASE_URL": db_url, "ONEWINDOW_CLOCK": "manual"}

    def cli(*args):
        out = subprocess.run([sys.executable, "-m", "webapp.cli", "tallies", *args], env=env, capture_output=True,
                             text=True, timeout=120)
        return out.returncode, out.stdout + out.stderr

    assert cli("show") == (0, "last closed day 2026-03-03; tallied days 0, latest -; "
                              "closed days not tallied yet 2\n")
    assert cli("rebuild", "--from", "2026-03-01") == (0, "tallied 2 closed days\n")
    assert "tallied days 2, latest 2026-03-03; closed days not tallied yet 0" in cli("show")[1]
    code, text = cli("rebuild", "--from", "March")
    assert code == 2 and "--from: a day as YYYY-MM-DD" in text
    with deployed.read() as s:
        assert statistics.report(s, date(2026, 3, 1), date(2026, 3, 31)).matters["QYKB"].completed == 1


def test_two_schedulers_tally_each_day_once(deployed, manual_clock):
    """Two schedulers running the tally job at the same moment: every day is tallied once, its rows
    written once (PostgreSQL: builds take turns on an advisory lock; SQLite: writers queue)."""
    import threading

    h = History(deployed)
    for day in (2, 3, 4, 5, 6):
        h.company_case(at(day, 9), at(day, 10), at(day, 11))
    h.move(at(10, 9))
    counts: list[int] = []
    threads = [threading.Thread(target=lambda: counts.append(jobs.tally_days(deployed))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with deployed.read() as s:
        days = s.scalars(select(TalliedDay.day)).all()
        rows = s.scalar(select(func.count()).select_from(DailyTally))
        single = sum(len(tallies.collect(s, date(2026, 3, d), date(2026, 3, d))) for d in range(2, 10))
    assert sum(counts) == 8, counts  # Mar 2..9, shared between the two in any way
    assert len(days) == len(set(days)) == 8
    assert rows == single > 0  # the same rows as counting each day alone: nothing written twice
