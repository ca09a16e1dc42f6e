"""Working-time durations as written in BPMN: PTnH / PTnM (working hours / minutes), PnD (working days) and
natural:PnD (natural days, 自然日: a notice period, days to pay).

Days and hours are not mixed in one budget: a day budget ends at close of business, an hour budget
counts minutes inside office hours; "P1DT2H" would have no single meaning in the hall. A natural-day budget
counts every day, the start day not counted, and a last day that is no working day moves to the next
working day (民法典 art. 203).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DAYS = re.compile(r"^P(?P<d>\d{1,4})D$")
_NATURAL = re.compile(r"^NATURAL:\s*P(?P<d>\d{1,4})D$")
_HOURS = re.compile(r"^PT(?:(?P<h>\d{1,5})H)?(?:(?P<m>\d{1,6})M)?$")


@dataclass(frozen=True)
class WorkingDuration:
    days: int = 0
    minutes: int = 0
    natural: bool = False  # days are natural days (自然日), not working days

    def iso(self) -> str:
        if self.natural:
            return f"natural:P{self.days}D"
        if self.days:
            return f"P{self.days}D"
        h, m = divmod(self.minutes, 60)
        return "PT" + (f"{h}H" if h else "") + (f"{m}M" if m or not h else "")

    def __str__(self) -> str:
        return self.iso()

    def words(self) -> str:
        """In the hall's words, for texts stored as written (alert messages): "2 个工作小时", "3 个工作日"."""
        if self.natural:
            return f"{self.days} 个自然日"
        if self.days:
            return f"{self.days} 个工作日"
        hours = self.minutes / 60
        if self.minutes % 30 == 0:
            return f"{hours:.1f}".rstrip("0").rstrip(".") + " 个工作小时"
        return f"{self.minutes} 个工作分钟"


def parse_duration(text: str) -> WorkingDuration:
    """Parse a budget; raise ValueError with a message a process author can act on."""
    if not isinstance(text, str):
        raise ValueError(f"a working-time duration must be text, not {type(text).__name__}")
    value = text.strip().upper()
    if m := _NATURAL.match(value):
        days = int(m["d"])
        if days == 0:
            raise ValueError(f"{text!r}: a day budget needs at least 1 day")
        return WorkingDuration(days=days, natural=True)
    if m := _DAYS.match(value):
        days = int(m["d"])
        if days == 0:
            raise ValueError(f"{text!r}: a day budget needs at least 1 day")
        return WorkingDuration(days=days)
    m = _HOURS.match(value)
    if m and (m["h"] or m["m"]):
        return WorkingDuration(minutes=int(m["h"] or 0) * 60 + int(m["m"] or 0))
    raise ValueError(f"{text!r} is not a working-time duration (use PnD, PTnH, PTnM or PTnHnM, or natural:PnD "
                     "for natural days)")
