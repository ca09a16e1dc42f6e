"""Every matter of the source documents added in issue 15 runs from intake to its end through the API, on
both databases, with one limit of each checked as a due instant across National Day 2026 (1–7 October,
Saturday 10 October worked), and every kind-dependent limit checked once against the catalogue."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import yaml

from timers.clock import SHANGHAI
from workflows.administration.clock_store import set_clock
from workflows.definitions.catalogue import BPMN_DIR, catalogue, parse_catalogue
from workflows.definitions.forms import Field
from workflows.oversight import jobs

START = datetime(2026, 9, 30, 10, 0, tzinfo=SHANGHAI)  # the day before the holiday
# the worker of each department in the demo data
WORKER = {"window": "clerk", "hotline": "hotline", "power": "power", "water": "water", "gas": "gas",
          "finance": "finance", "samr": "samr", "tax": "tax", "police": "police", "housing": "housing",
          "nrp": "nrp", "telecom": "telecom", "landscape": "landscape", "roads": "roads"}


def _value(field: dict, choices: dict):
    if field["name"] in choices:
        return choices[field["name"]]
    kind = field["type"]
    if kind == "choice":
        return field["options"][0]
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        return 1
    if kind == "date":
        return "2026-10-09"
    return "一件事-1"


def _run(api, deployed, process: str, start: dict, choices: dict) -> dict:
    """Intake, acceptance at the window, then every open step by its department's worker (timers fired by
    moving the clock) until the case ends; the case as the API shows it at the end."""
    case = api.start(process, start)
    case_no = case["case_no"]
    for _ in range(20):
        shown = api.get(f"/cases/{case_no}").get_json()
        if shown["status"] in ("completed", "refused", "terminated"):
            return shown
        if not shown["open_items"]:
            due = datetime.fromisoformat(shown["next_timer_at"]) if shown.get("next_timer_at") else None
            assert due is not None, shown
            deployed.transaction(lambda s, d=due: set_clock(s, d + timedelta(minutes=1), frozen=True))
            jobs.fire_timers(deployed)
            continue
        definition = api.get(f"/processes/{process}").get_json()
        fields = {s["id"]: s["fields"] for s in definition["steps"]}
        for item in shown["open_items"]:
            data = {"decision": "accept"} if item["step"] == "accept" else {
                f["name"]: _value(f, choices) for f in fields.get(item["step"], [])}
            who = WORKER[item["department"]]
            r = api.post(f"/work-items/{item['id']}/complete", who, json={"data": data})
            assert r.status_code == 200, (item, r.get_json())
    raise AssertionError(f"{case_no} did not end")


def _clock(api, case_no: str, scope: str = "case", step: str | None = None) -> dict:
    clocks = api.get(f"/cases/{case_no}").get_json()["clocks"]
    return next(c for c in clocks if c["scope"] == scope and (step is None or c.get("step") == step))


def _local(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(SHANGHAI)


CASES = [
    # process, start data, step choices, (scope, step, expected due) checked just after acceptance
    ("power_connection", {"voltage_kind": "low", "address": "涪城区一号"}, {},
     ("case", None, datetime(2026, 10, 10, 18, tzinfo=SHANGHAI))),  # P3D: 8, 9, Saturday 10 October
    ("power_connection", {"voltage_kind": "high_single", "address": "涪城区二号"}, {}, None),
    ("water_connection", {"connection_kind": "nonres_no_external", "address": "涪城区三号"}, {},
     ("case", None, datetime(2026, 10, 12, 18, tzinfo=SHANGHAI))),  # P4D
    ("gas_connection", {"connection_kind": "meter_not_buried"}, {},
     ("case", None, datetime(2026, 10, 14, 18, tzinfo=SHANGHAI))),  # P6D
    ("tax_deregistration", {"taxpayer_kind": "small"}, {},
     ("case", None, datetime(2026, 10, 13, 18, tzinfo=SHANGHAI))),  # P5D
    ("procurement_complaint", {"complaint_kind": "procurement", "project_name": "办公设备采购"},
     {"needs_investigation": False}, ("step", "review", datetime(2026, 10, 9, 18, tzinfo=SHANGHAI))),  # P2D
    ("hotline_ticket", {}, {"handling_department": "tax", "satisfaction": "satisfied"},
     ("step", "dispatch", datetime(2026, 9, 30, 15, tzinfo=SHANGHAI))),  # PT4H: 10–12, 13–15
    ("simple_deregistration", {}, {"result": "approve"}, None),
    ("telecom_access", {"address": "船山区一号"}, {},
     ("case", None, datetime(2026, 10, 10, 18, tzinfo=SHANGHAI))),  # P3D
    ("tax_refund", {"refund_kind": "vat_credit", "amount": 12000}, {},
     ("case", None, datetime(2026, 10, 13, 18, tzinfo=SHANGHAI))),  # P5D
    ("utility_works", {"works_kind": "other"}, {},
     ("case", None, datetime(2026, 10, 12, 18, tzinfo=SHANGHAI))),  # P4D, four departments in parallel
    ("procurement_deadlines", {"project_name": "办公设备采购"}, {},
     ("step", "result", datetime(2026, 10, 13, 18, tzinfo=SHANGHAI))),  # P5D
]


@pytest.mark.parametrize("process, start, choices, check", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_every_matter_runs_to_its_end(api, deployed, manual_clock, process, start, choices, check):
    deployed.transaction(lambda s: set_clock(s, START, frozen=True))
    if check is not None:
        case_no = api.start(process, start)["case_no"]
        item = next(i for i in api.get(f"/cases/{case_no}").get_json()["open_items"] if i["step"] == "accept")
        assert api.post(f"/work-items/{item['id']}/complete", WORKER[item["department"]],
                        json={"data": {"decision": "accept"}}).status_code == 200
        scope, step, expected = check
        assert _local(_clock(api, case_no, scope, step)["due_at"]) == expected
    done = _run(api, deployed, process, start, choices)
    assert done["status"] == "completed" and done["outcome"] != "refused", done


def test_the_notice_period_counts_natural_days(api, deployed, manual_clock):
    deployed.transaction(lambda s: set_clock(s, START, frozen=True))
    case_no = api.start("simple_deregistration", {})["case_no"]
    item = api.get(f"/cases/{case_no}").get_json()["open_items"][0]
    api.post(f"/work-items/{item['id']}/complete", "clerk", json={"data": {"decision": "accept"}})
    shown = api.get(f"/cases/{case_no}").get_json()
    assert shown["open_items"] == []  # the 20 days of public notice run first
    # 20 natural days from 30 September is 20 October, a Tuesday and a working day
    assert _local(shown["next_timer_at"]) == datetime(2026, 10, 20, 18, tzinfo=SHANGHAI)
    deployed.transaction(lambda s: set_clock(s, datetime(2026, 10, 20, 18, 1, tzinfo=SHANGHAI), frozen=True))
    jobs.fire_timers(deployed)
    decide = api.get(f"/cases/{case_no}").get_json()["open_items"]
    assert [i["step"] for i in decide] == ["decide"] and decide[0]["department"] == "samr"
    # the decision within 1 working day after the notice ends
    assert _local(_clock(api, case_no, "step", "decide")["due_at"]) == datetime(2026, 10, 21, 18, tzinfo=SHANGHAI)


@pytest.mark.parametrize("process, field", [("power_connection", "voltage_kind"),
                                            ("water_connection", "connection_kind"),
                                            ("gas_connection", "connection_kind"),
                                            ("tax_deregistration", "taxpayer_kind"),
                                            ("tax_refund", "refund_kind"),
                                            ("utility_works", "works_kind")])
def test_each_kind_takes_its_limit_from_the_catalogue(api, deployed, manual_clock, process, field):
    deployed.transaction(lambda s: set_clock(s, START, frozen=True))
    matter = catalogue().matter_for_process(process)
    extra = {"power_connection": {"address": "一号"}, "water_connection": {"address": "一号"},
             "tax_refund": {"amount": 100}}.get(process, {})
    for kind, limit in matter.promised_limits.items():
        case_no = api.start(process, {field: kind, **extra})["case_no"]
        assert api.get(f"/cases/{case_no}").get_json()["budget"] == limit, kind


RAW = yaml.safe_load((BPMN_DIR / "catalogue.yaml").read_text(encoding="utf-8"))


def test_the_catalogue_holds_the_documents_limits_for_both_regions():
    m, s = parse_catalogue(RAW, "mianyang").matters, parse_catalogue(RAW, "suining").matters
    assert m["YDBZ"].promised_limits == {"low": "P3D", "high_single": "P20D", "high_dual": "P40D"}
    assert s["YDBZ"].promised_limits == {"low_direct": "P1D", "low_external": "P3D", "low_roadworks": "P5D",
                                         "high_single_small": "P10D", "high_single_large": "P20D",
                                         "high_dual": "P30D"}
    assert m["YSBZ"].promised_limits == {"nonres_external": "P9D", "nonres_no_external": "P4D",
                                         "residential": "P4D"}
    assert s["YSBZ"].promised_limits == {"small_no_external": "P4D", "external_200m": "P9D"}
    assert m["YQBZ"].promised_limits == {"meter_not_buried": "P6D", "buried_no_overhead": "P8D",
                                         "no_external_buried": "P11D", "external_buried": "P15D"}
    assert s["YQBZ"].promised_limits == {"no_external": "P10D", "external": "P15D"}
    assert m["JYZX"].promised_limit == "natural:P20D" and m["JYZX"].step_limit("decide") == "P1D"
    assert m["SWZX"].promised_limits == {"general_vat": "P10D", "small": "P5D"}
    assert m["TSCL"].step_limit("review") == "P2D"
    assert m["RXGD"].step_limit("handle") == "P5D"
    assert m["RXGD"].extra["targets"]["satisfaction"]["at_least"] == 0.9
    assert m["RXGD"].extra["targets"]["reply_rate"]["at_least"] == 1.0
    assert s["BDCDJ"].extra["targets"]["average_days"]["value"] == 2 and "targets" not in m["BDCDJ"].extra
    assert m["SWTS"].extra["targets"]["average_days"]["value"] == 10
    assert "不收取设计费、开户费、接水费" in m["YSBZ"].fee and "6立方米" in m["YQBZ"].fee
    assert s["BDCDJ"].promised_limits["general"] == "P3D" and m["BDCDJ"].promised_limits["general"] == "P2D"
    assert m["TXJR"].promised_limit == "P3D"
    # 工程建设项目: Mianyang 30–80 working days by class (the plan's range), Suining 90 in all, 65/58/43/28 by class
    assert m["GCJS"].extra["promised_range"] == ["P30D", "P80D"] and m["GCJS"].statutory_limit == "P80D"
    assert sorted(m["GCJS"].promised_limits.values()) == ["P30D", "P45D", "P65D", "P80D"]
    assert s["GCJS"].statutory_limit == "P90D"
    assert s["GCJS"].promised_limits == {"government": "P65D", "general_social": "P58D", "small_social": "P43D",
                                         "industrial_park": "P28D"}
    assert m["SWTS"].promised_limits == {"vat_credit": "P5D", "vat_credit_small": "P1D", "export": "P10D"}
    assert m["WXBL"].promised_limits == {"small": "P1D", "other": "P4D"}
    assert [m["ZFCG"].step_limit(x) for x in ("result", "contract", "bid_bond", "performance_bond", "payment")] == \
        ["P5D", "P20D", "P1D", "P1D", "natural:P20D"]


def test_payment_within_twenty_natural_days_of_the_invoice(api, deployed, manual_clock):
    deployed.transaction(lambda s: set_clock(s, START, frozen=True))
    case_no = api.start("procurement_deadlines", {"project_name": "办公设备采购"})["case_no"]
    for _ in range(6):
        items = {i["step"]: i for i in api.get(f"/cases/{case_no}").get_json()["open_items"]}
        if "payment" in items:
            break
        for step, item in items.items():
            data = {"accept": {"decision": "accept"}, "result": {"supplier": "某公司"},
                    "contract": {"contract_no": "HT-1"}, "bid_bond": {"refunded": True},
                    "acceptance": {"accepted": True, "invoice_no": "FP-1"}}[step]
            assert api.post(f"/work-items/{item['id']}/complete", WORKER[item["department"]],
                            json={"data": data}).status_code == 200
    payment = _clock(api, case_no, "step", "payment")
    assert payment["budget"] == "natural:P20D"
    assert _local(payment["due_at"]) == datetime(2026, 10, 20, 18, tzinfo=SHANGHAI)  # 20 days, not 20 working days


def test_the_documents_targets_show_in_the_statistics(app, api, deployed, manual_clock):
    import re

    from tests.webapp.test_pages import Browser

    deployed.transaction(lambda s: set_clock(s, START, frozen=True))
    _run(api, deployed, "hotline_ticket", {}, {"handling_department": "tax", "satisfaction": "satisfied"})
    _run(api, deployed, "hotline_ticket", {}, {"handling_department": "samr", "satisfaction": "dissatisfied"})
    page = Browser(app, "supervisor").get("/stats?from=2026-09-01&to=2026-10-31").get_data(as_text=True)
    table = re.search(r'(?s)<table class="list" id="targets">(.*?)</table>', page).group(1)
    rows = [re.sub(r"<[^>]+>", "|", row) for row in table.split("<tr>")[2:]]
    reply = next(r for r in rows if "回复率" in r)
    satisfaction = next(r for r in rows if "回访满意率" in r)
    assert "≥ 100.0%" in reply and "|100.0%|" in reply and "|达成|" in reply
    assert "≥ 90.0%" in satisfaction and "|50.0%|" in satisfaction and "未达成" in satisfaction
    assert any("检验、检测、鉴定、专家评审" in r for r in rows)  # the complaints' excluded time, shown as a share


def test_a_hotline_ticket_must_be_taken_up_within_a_day(api, deployed, manual_clock):
    """12345: 1 天内启动核查 — the handling department's 签收 has a clock of its own (natural days), stopped
    when someone takes the ticket up; 5 working days to reply run on beside it."""
    assert catalogue().matters["RXGD"].response_limit("handle") == "natural:P1D"
    deployed.transaction(lambda s: set_clock(s, START, frozen=True))
    case_no = api.start("hotline_ticket", {})["case_no"]
    for step, data in (("accept", {"decision": "accept"}), ("dispatch", {"handling_department": "tax",
                                                                         "summary": "发票开具问题"})):
        item = api.open_items(case_no)[step]
        assert api.post(f"/work-items/{item['id']}/complete", WORKER[item["department"]],
                        json={"data": data}).status_code == 200
    response = _clock(api, case_no, "response", "handle")
    handling = _clock(api, case_no, "step", "handle")
    assert response["budget"] == "natural:P1D" and response["state"] == "running"
    assert _local(response["due_at"]) == datetime(2026, 10, 8, 18, tzinfo=SHANGHAI)  # 1 natural day, moved past
    # the holiday to the next working day (民法典 art. 203); the reply's 5 working days: 8, 9, 10 (worked), 12, 13
    assert _local(handling["due_at"]) == datetime(2026, 10, 13, 18, tzinfo=SHANGHAI)
    item = api.open_items(case_no)["handle"]
    assert api.post(f"/work-items/{item['id']}/claim", "tax").status_code == 200
    taken = _clock(api, case_no, "response", "handle")
    assert taken["state"] == "met" and taken["stopped_at"] is not None
    assert _clock(api, case_no, "step", "handle")["state"] == "running"  # the reply's clock goes on


def test_a_class_limit_outside_the_documents_range_is_refused():
    raw = yaml.safe_load((BPMN_DIR / "catalogue.yaml").read_text(encoding="utf-8"))
    gcjs = next(m for m in raw["matters"] if m["code"] == "GCJS")
    gcjs["promised_limits"]["government"] = "P85D"  # above Mianyang's 80
    with pytest.raises(ValueError, match="government lie outside promised_range P30D–P80D"):
        parse_catalogue(raw, "mianyang")


@pytest.mark.parametrize("region", ["mianyang", "suining"])
def test_every_kind_of_every_matter_takes_its_regions_limit(api, deployed, manual_clock, monkeypatch, region):
    """Each kind a limit depends on, in each region, starts a case whose clock is that region's limit — and the
    window is offered exactly those kinds."""
    monkeypatch.setenv("ONEWINDOW_REGION", region)
    deployed.transaction(lambda s: set_clock(s, START, frozen=True))
    checked = 0
    for matter in catalogue().matters.values():
        if not matter.promised_limit_by:
            continue
        definition = api.get(f"/processes/{matter.process}").get_json()
        fields = {f["name"]: f for f in definition["start_fields"]}
        offered = {f.name: f for f in matter.offered(tuple(
            Field(f["name"], f["type"], f["required"], tuple(f.get("options", ())), f["label"],
                  tuple(f.get("option_labels", {}).get(o, o) for o in f.get("options", ())))
            for f in definition["start_fields"]))}
        assert set(offered[matter.promised_limit_by].options) == set(matter.promised_limits), matter.code
        base = {name: _value(f, {}) for name, f in fields.items() if f["required"]}
        for kind, limit in matter.promised_limits.items():
            case = api.start(matter.process, {**base, matter.promised_limit_by: kind})
            assert case["budget"] == limit, (region, matter.code, kind)
            checked += 1
    assert checked >= (30 if region == "suining" else 25)
