"""Regions: both cities' limits live in the catalogue, a deployment chooses one by ONEWINDOW_REGION, the
clocks of new cases and the guide follow it, and a running case keeps the clocks it started with."""

from __future__ import annotations

import pytest
import yaml
from sqlalchemy import select

from tests.conftest import PERSON
from workflows.casework import cases
from workflows.definitions.catalogue import BPMN_DIR, parse_catalogue
from workflows.models import SlaClock

RAW = yaml.safe_load((BPMN_DIR / "catalogue.yaml").read_text(encoding="utf-8"))


def test_each_region_reads_its_own_limits():
    mianyang, suining = parse_catalogue(RAW, "mianyang"), parse_catalogue(RAW, "suining")
    assert [mianyang.matters["QYKB"].step_limit(s) for s in ("registration", "seal", "invoice")] == \
        ["PT3H", "PT3H", "PT1H30M"]
    assert [suining.matters["QYKB"].step_limit(s) for s in ("registration", "seal", "invoice")] == \
        ["PT4H", "PT4H", "PT4H"]
    assert mianyang.matters["BDCDJ"].promised_for({"registration_kind": "general"}) == "P2D"
    assert suining.matters["BDCDJ"].promised_for({"registration_kind": "general"}) == "P3D"
    with pytest.raises(ValueError, match="not one of the catalogue's regions"):
        parse_catalogue(RAW, "chengdu")


def _case_budget(database, case_id: int) -> str:
    with database.read() as s:
        return s.scalar(select(SlaClock.budget).where(SlaClock.case_id == case_id, SlaClock.scope == "case"))


def _start_property_case(database):
    case = database.transaction(lambda s: cases.start_case(s, "property_registration", PERSON,
                                                           {"registration_kind": "general"}, cases.SYSTEM))
    with database.read() as s:
        item = s.scalar(select(cases.WorkItem).where(cases.WorkItem.case_id == case.id))
    database.transaction(lambda s: cases.complete(s, item.id, cases.SYSTEM, {"decision": "accept"}))
    return case


def test_switching_region_changes_new_cases_not_running_ones(deployed, monkeypatch, client):
    monkeypatch.setenv("ONEWINDOW_REGION", "mianyang")
    running = _start_property_case(deployed)
    assert _case_budget(deployed, running.id) == "P2D"
    monkeypatch.setenv("ONEWINDOW_REGION", "suining")
    new = _start_property_case(deployed)
    assert _case_budget(deployed, new.id) == "P3D"
    assert _case_budget(deployed, running.id) == "P2D"  # started under the old region's limit
    guide = client.get("/guide/BDCDJ").get_data(as_text=True)
    assert "3 个工作日" in guide


def test_suining_property_kinds_and_the_window_offers_only_the_regions_kinds(deployed, monkeypatch, app):
    """Suining: 新建商品房转移登记 (one of the eleven) within a working hour, the two mortgages of land-use right
    and of buildings under construction within a working day, the rest 3 working days; the intake form offers
    only the kinds the region in force gives a limit for."""
    from tests.webapp.test_pages import Browser

    suining = parse_catalogue(RAW, "suining").matters["BDCDJ"]
    assert suining.promised_for({"registration_kind": "new_housing_transfer"}) == "PT1H"
    assert {k for k, v in suining.promised_limits.items() if v == "P1D"} == {"land_use_mortgage",
                                                                             "construction_mortgage"}
    assert suining.promised_for({"registration_kind": "mortgage"}) == "P3D"
    mianyang = parse_catalogue(RAW, "mianyang").matters["BDCDJ"]
    assert mianyang.promised_for({"registration_kind": "new_housing_transfer"}) is None
    monkeypatch.setenv("ONEWINDOW_REGION", "suining")
    page = Browser(app, "clerk").get("/intake/BDCDJ").get_data(as_text=True)
    assert "新建商品房转移登记" in page and "在建建筑物抵押登记" in page
    monkeypatch.setenv("ONEWINDOW_REGION", "mianyang")
    page = Browser(app, "clerk").get("/intake/BDCDJ").get_data(as_text=True)
    assert "抵押注销登记" in page and "新建商品房转移登记" not in page  # not a kind of Mianyang's
    with pytest.raises(cases.InvalidInput):  # and the domain refuses it too
        deployed.transaction(lambda s: cases.start_case(s, "property_registration", PERSON,
                                                        {"registration_kind": "new_housing_transfer"}, cases.SYSTEM))
