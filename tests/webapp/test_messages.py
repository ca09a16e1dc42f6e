"""Messages in the reader's language: the API by Accept-Language (default Chinese) with its machine code kept,
pages in Chinese, every domain message in both catalogues, and forms that report every problem at once."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from sqlalchemy import func, select

from tests.conftest import Api
from tests.webapp.test_pages import REQUIRED, Browser, intake_form
from workflows.models import Case

CATALOGUES = Path(__file__).parents[2] / "webapp" / "ui" / "translations"
HAN = re.compile(r"[\u4e00-\u9fff]")


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_domain_message_has_chinese_with_the_same_placeholders():
    with open(CATALOGUES / "zh" / "LC_MESSAGES" / "messages.po", "rb") as f:
        catalogue = read_po(f)
    english = [m for m in catalogue if m.id and isinstance(m.id, str) and re.search(r"[A-Za-z]{3,}", m.id)
               and not HAN.search(m.id) and "%(" not in m.id]
    assert len(english) > 200  # the domain's messages are extracted (babel.cfg covers workflows/)
    untranslated = [m.id for m in english if not m.string]
    assert not untranslated, untranslated[:10]
    # a translation may leave a parameter out (the field is named by the words), never invent one
    broken = [m.id for m in english if not _placeholders(m.string) <= _placeholders(m.id)]
    assert not broken, broken[:10]
    # every message with words has Chinese words; one made of placeholders alone ("{where}: {problem}") may not
    assert all(HAN.search(m.string) or not re.search(r"[A-Za-z]{3,}", re.sub(r"\{[^}]*\}", "", m.id))
               for m in english)


def test_english_catalogue_has_no_chinese_for_english_messages():
    with open(CATALOGUES / "en" / "LC_MESSAGES" / "messages.po", "rb") as f:
        catalogue = read_po(f)
    mixed = [m.id for m in catalogue if m.id and isinstance(m.id, str) and re.search(r"[a-z]{3,} ", m.id)
             and HAN.search(m.id) and "%(" not in m.id and (not m.string or HAN.search(m.string))]
    assert not mixed, mixed


def test_the_api_answers_in_chinese_by_default_and_in_english_on_request(client):
    chinese, english = Api(client, language=""), Api(client, language="en")
    for caller, expected in ((chinese, "办件 NO-SUCH 不存在"), (english, "no case NO-SUCH")):
        r = caller.get("/cases/NO-SUCH", "clerk")
        assert r.status_code == 404 and r.get_json() == {"error": "not_found", "message": expected}
    zh_cn = Api(client, language="zh-CN,zh;q=0.9,en;q=0.5").get("/cases/NO-SUCH", "clerk")
    assert zh_cn.get_json()["message"] == "办件 NO-SUCH 不存在"


def test_a_bad_start_lists_every_problem_in_the_request_language(client, deployed):
    body = {"process": "company_setup", "applicant": {"type": "company", "name": " ", "id_no": "123"},
            "data": {"registered_capital": "many", "nonsense": 1}}
    r = Api(client, language="").post("/cases", "clerk", json=body)
    out = r.get_json()
    assert r.status_code == 400 and out["error"] == "invalid_input", out
    assert out["message"].startswith("有 ") and "处需要更正" in out["message"], out
    assert "必填" in out["message"] and "不是有效的统一社会信用代码" in out["message"] and "未知字段" in out["message"]
    assert set(out["fields"]) >= {"applicant.name", "applicant.id_no", "nonsense"}
    # beyond the field names (the API's own identifiers), no English
    assert not re.search(r"[A-Za-z]{3,}", re.sub(r"[a-z_]+(\.[a-z_]+)?：", "：", out["message"])), out["message"]
    r = Api(client, language="en").post("/cases", "clerk", json=body)
    assert "problems:" in r.get_json()["message"] and "required" in r.get_json()["message"]
    with deployed.read() as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 0


def test_the_intake_page_reports_all_problems_at_once_beside_the_fields(app, deployed):
    clerk = Browser(app, "clerk")
    form = intake_form(action="accept", received=REQUIRED[1:], applicant_name="", applicant_id_no="91XXXX")
    r = clerk.post_form("/intake/QYKB", **form)
    page = r.get_data(as_text=True)
    assert r.status_code == 400
    # the blank name, the bad code and the materials, all in one answer, each beside its field
    errors = re.findall(r'<span class="field-error" role="alert"[^>]*>([^<]+)</span>', page)
    assert "必填" in errors and "不是有效的统一社会信用代码" in errors, errors
    assert any(e.startswith("受理须收齐全部必需材料") and REQUIRED[0] in e for e in errors), errors
    summary = re.search(r'<p class="error" role="alert">([^<]+)</p>', page).group(1)
    assert "有 3 处需要更正" in summary and "名称 / 姓名：必填" in summary, summary
    shown = re.sub(r"<[^>]+>", " ", page)
    assert not re.search(r"\b(applicant|required|must|materials)\b", shown)
    with deployed.read() as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 0


@pytest.mark.parametrize("lang, expected", [("zh", "您要找的页面或记录不存在。"),
                                            ("en", "The page or record asked for does not exist.")])
def test_the_not_found_page_speaks_the_page_language(client, lang, expected):
    r = client.get(f"/no/such/page?lang={lang}")
    assert r.status_code == 404 and expected in r.get_data(as_text=True)
