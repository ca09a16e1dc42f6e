"""Reform task lists (改革任务清单) as cases: both source documents are lists of reform tasks, each with a lead
unit, cooperating units, a responsible leader and a deadline ("2020年6月底", "长期"). Importing a list
starts one case per task of the catalogue's matter marked `import_as: reform-tasks`.

A file (CSV, UTF-8, or Excel) has a header row naming its columns, in Chinese or English: 序号 / number,
主要任务 / task, 牵头单位 / lead unit, 配合单位 or 责任单位 / cooperating units, 责任领导 or 市级牵头领导 /
leader, 完成时限 or 完成进度时限 / deadline. Units are read through the catalogue's names and aliases. A file
with a bad row imports nothing, unless the bad rows are to be skipped (and listed).
"""

from __future__ import annotations

import calendar
import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ..db import Database
from ..definitions.catalogue import catalogue
from ..errors import InvalidInput
from ..models import Case
from . import cases

COLUMNS = {
    "number": ("序号", "number", "no"),
    "task": ("主要任务", "任务", "task"),
    "lead": ("牵头单位", "lead unit", "lead"),
    "cooperating": ("配合单位", "责任单位", "cooperating units", "cooperating"),
    "leader": ("责任领导", "市级牵头领导", "牵头领导", "leader"),
    "deadline": ("完成时限", "完成进度时限", "deadline"),
}
REQUIRED = ("number", "task", "lead", "deadline")
ONGOING = ("长期", "长期坚持", "持续推进", "")
_MONTH_END = re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(?:底|末)?\s*(?:前)?$")
MAX_ROWS = 5_000


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)  # case numbers
    skipped: list[str] = field(default_factory=list)  # already imported (the same task number)
    errors: list[str] = field(default_factory=list)  # "row 7: …"


def read_rows(path: Path) -> list[dict[str, str]]:
    """The file's rows as {column: text}, keyed by the columns above."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        sheet = load_workbook(path, read_only=True, data_only=True).active
        table = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    else:
        text = path.read_bytes().decode("utf-8-sig")
        table = list(csv.reader(io.StringIO(text)))
    if not table:
        raise InvalidInput("the file is empty")
    header = [h.strip().lower() for h in table[0]]
    where = {}
    for key, names in COLUMNS.items():
        found = next((i for i, h in enumerate(header) if h in names), None)
        if found is not None:
            where[key] = found
    missing = [COLUMNS[k][0] for k in REQUIRED if k not in where]
    if missing:
        raise InvalidInput("the header row lacks the columns {missing}", {"missing": "、".join(missing)})
    if len(table) - 1 > MAX_ROWS:
        raise InvalidInput("at most {max} tasks per file", {"max": MAX_ROWS})
    return [{k: (row[i].strip() if i < len(row) else "") for k, i in where.items()} for row in table[1:]
            if any(cell.strip() for cell in row)]


def parse_deadline(text: str) -> date | None:
    """"2020年6月底" → 30 June 2020; "2020-06-30" → the same; "长期" → None (no deadline)."""
    cleaned = text.strip().replace("　", " ")
    if cleaned in ONGOING:
        return None
    if match := _MONTH_END.match(cleaned):
        year, month = int(match[1]), int(match[2])
        if 1 <= month <= 12:
            return date(year, month, calendar.monthrange(year, month)[1])
    try:
        return date.fromisoformat(cleaned)
    except ValueError:
        raise ValueError(f"the deadline {text!r} is neither a date (2020-06-30), a month (2020年6月底) nor "
                         "长期") from None


def check_row(row: dict[str, str]) -> dict[str, Any]:
    """The case data of one row; ValueError saying what is wrong."""
    cat = catalogue()
    number, task = row.get("number", ""), row.get("task", "")
    if not number or len(number) > 40:
        raise ValueError("the number is missing or longer than 40 characters")
    if not task or len(task) > 5_000:
        raise ValueError("the task is missing or longer than 5,000 characters")
    lead = cat.department_named(row.get("lead", ""))
    if lead is None:
        raise ValueError(f"the lead unit {row.get('lead', '')!r} is no department of the catalogue (add it, or "
                         "an alias for it)")
    cooperating = row.get("cooperating", "")
    codes = []
    for part in re.split(r"[、，,；;]|等", cooperating):
        code = cat.department_named(part)
        if code and code not in codes and code != lead:
            codes.append(code)
    deadline = parse_deadline(row.get("deadline", ""))
    return {"task_no": number, "task": task, "lead_unit": lead, "cooperating_units": cooperating[:2_000],
            "cooperating_codes": ",".join(codes), "leader": re.sub(r"\s+", "", row.get("leader", ""))[:100],
            "deadline": deadline.isoformat() if deadline else None}


def import_tasks(db: Database, path: Path, skip_bad: bool = False) -> ImportResult:
    """Start a case per task of the file; nothing when a row is bad, unless `skip_bad`."""
    matter = next((m for m in catalogue().matters.values() if m.extra.get("import_as") == "reform-tasks"), None)
    if matter is None:
        raise InvalidInput("no matter of the catalogue takes reform tasks (import_as: reform-tasks)")
    result = ImportResult()
    good: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, row in enumerate(read_rows(path), start=2):  # the header is row 1
        try:
            data = check_row(row)
            if data["task_no"] in seen:
                raise ValueError(f"the number {data['task_no']} is used twice in the file")
            seen.add(data["task_no"])
            good.append(data)
        except ValueError as exc:
            result.errors.append(f"row {index}: {exc}")
    if result.errors and not skip_bad:
        return result
    with db.read() as session:
        done = {c.data.get("task_no") for c in session.scalars(select(Case).where(Case.process_key == matter.process))}
    names = catalogue().departments
    for data in good:
        if data["task_no"] in done:
            result.skipped.append(data["task_no"])
            continue
        body = {"type": "organisation", "name": names[data["lead_unit"]].name,
                "id_no": f"RW-{re.sub(r'[^0-9A-Za-z]', '', data['task_no'])[:20] or '0'}"}
        clean = {k: v for k, v in data.items() if v is not None}
        case = db.transaction(lambda s, c=clean, b=body: cases.start_case(s, matter.process, b, c, cases.SYSTEM,
                                                                          matter_code=matter.code))
        result.created.append(case.case_no)
    return result
