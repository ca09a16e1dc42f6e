"""The applicant of a case: a company (unified social credit code) or a citizen (resident ID number)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput, Problems, problem

TYPES = ("company", "person", "organisation")  # organisation: a government body or other organisation
_ORG_CODE = re.compile(r"^[0-9A-Z\-]{2,30}$")

# GB 32100-2015: 18 characters from this alphabet, the last a check character.
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# GB 11643-1999: 17 digits and a check digit (0-9 or X).
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_PHONE = re.compile(r"^[0-9+\- ]{5,20}$")


def uscc_is_valid(code: str) -> bool:
    if len(code) != 18 or any(c not in _USCC_ALPHABET for c in code):
        return False
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(code[:17], _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31] == code[17]


def resident_id_is_valid(number: str) -> bool:
    if not re.fullmatch(r"\d{17}[\dX]", number):
        return False
    total = sum(int(c) * w for c, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17]


@dataclass(frozen=True)
class Applicant:
    type: str
    name: str
    id_no: str
    contact: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "id_no": self.id_no, "contact": self.contact}


def check_applicant(raw: Any) -> Applicant:
    if not isinstance(raw, dict):
        raise InvalidInput("applicant: must be an object with type, name, id_no and contact")
    problems = Problems()
    kind = raw.get("type")
    if kind not in TYPES:
        problems.add(problem("applicant.type", "must be company, person or organisation"))
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.add(problem("applicant.name", "required"))
    elif len(name) > 200:
        problems.add(problem("applicant.name", "at most 200 characters"))
    id_no = raw.get("id_no")
    if not isinstance(id_no, str) or not id_no.strip():
        problems.add(problem("applicant.id_no", "required"))
    else:
        id_no = id_no.strip().upper()
        if kind == "company" and not uscc_is_valid(id_no):
            problems.add(problem("applicant.id_no", "not a valid unified social credit code (统一社会信用代码)"))
        elif kind == "organisation" and not (uscc_is_valid(id_no) or _ORG_CODE.match(id_no)):
            problems.add(problem("applicant.id_no", "an organisation's code: its unified social credit code or "
                                                    "2 to 30 letters, digits or dashes"))
        elif kind == "person" and not resident_id_is_valid(id_no):
            problems.add(problem("applicant.id_no", "not a valid resident ID number (居民身份证号码)"))
    contact = raw.get("contact")
    if contact is not None and (not isinstance(contact, str) or not _PHONE.match(contact)):
        problems.add(problem("applicant.contact", "a telephone number of 5 to 20 digits"))
    unknown = set(raw) - {"type", "name", "id_no", "contact"}
    for key in unknown:
        problems.add(problem(f"applicant.{key}", "unknown field"))
    problems.check()
    return Applicant(kind, name.strip(), id_no, contact)
