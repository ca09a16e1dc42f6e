"""The matter catalogue (事项目录) and the departments, read from bpmn/catalogue.yaml.

Limits differ between cities (the Mianyang plan and the Suining list set different ones): a matter may give,
under `regions:`, what its limits are in each region, and a deployment chooses its region with
ONEWINDOW_REGION (else the catalogue's `region:`). The guide, the clocks of new cases and the statistics
then read that region's limits; a running case keeps the clocks it started with."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

BPMN_DIR = Path(__file__).resolve().parents[2] / "bpmn"
REGIONAL = ("statutory_limit", "promised_limit", "promised_limit_by", "promised_limits", "step_limits",
            "response_limits", "promised_range", "fee", "legal_basis", "conditions", "targets")
ROLES = ("clerk", "reviewer", "supervisor", "admin")


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    name_en: str
    role: str


@dataclass(frozen=True)
class Matter:
    code: str
    name: str
    name_en: str
    process: str
    departments: tuple[str, ...]
    materials: dict[str, list[str]]
    statutory_limit: str
    promised_limit: str | None
    promised_limit_by: str | None
    promised_limits: dict[str, str]
    fee: str
    legal_basis: str
    conditions: str
    internal: bool = False  # not offered at the window (e.g. the bad-rating follow-up)
    extra: dict[str, Any] = field(default_factory=dict)

    def promised_for(self, data: dict[str, Any]) -> str | None:
        if self.promised_limit_by:
            return self.promised_limits.get(str(data.get(self.promised_limit_by)))
        return self.promised_limit

    def offered(self, fields: tuple) -> tuple:
        """The start form as the window offers it: the kind a limit depends on lists only the kinds this
        region's catalogue gives a limit for (the BPMN file holds every region's kinds)."""
        if not self.promised_limit_by:
            return fields
        out = []
        for f in fields:
            if f.name == self.promised_limit_by and f.type == "choice":
                kept = [(o, label) for o, label in f.choices if o in self.promised_limits]
                f = replace(f, options=tuple(o for o, _ in kept), option_labels=tuple(label for _, label in kept))
            out.append(f)
        return tuple(out)

    def step_limit(self, step: str) -> str | None:
        return (self.extra.get("step_limits") or {}).get(step)

    def response_limit(self, step: str) -> str | None:
        """How soon a step must be taken up (签收, 启动核查) after it reaches its department."""
        return (self.extra.get("response_limits") or {}).get(step)


@dataclass(frozen=True)
class Catalogue:
    departments: dict[str, Department]
    matters: dict[str, Matter]
    english: dict[str, str] = field(default_factory=dict)  # Chinese text of BPMN and catalogue → English
    region: str | None = None  # whose limits are in force (the matters' `regions:`)
    regions: dict[str, str] = field(default_factory=dict)  # code → name
    aliases: dict[str, str] = field(default_factory=dict)  # another name (a modeler's group) → department code

    def department_named(self, name: str | None) -> str | None:
        """The department a lane, a property or a modeler's candidate group names: by its code, its name, its
        English name or an alias (Latin letters compared without case)."""
        if not name or not name.strip():
            return None
        wanted = name.strip().casefold()
        for code, dept in self.departments.items():
            if wanted in (code.casefold(), dept.name.casefold(), dept.name_en.casefold()):
                return code
        found = next((code for alias, code in self.aliases.items() if alias.casefold() == wanted), None)
        return found if found in self.departments else None

    def matter_for_process(self, process_key: str) -> Matter | None:
        return next((m for m in self.matters.values() if m.process == process_key), None)


def parse_catalogue(raw: dict[str, Any], region: str | None = None) -> Catalogue:
    regions = {str(k): str(v) for k, v in (raw.get("regions") or {}).items()}
    region = region or raw.get("region")
    if region is not None and regions and region not in regions:
        raise ValueError(f"region {region!r} is not one of the catalogue's regions ({', '.join(regions)})")
    departments = {
        code: Department(code, d["name"], d.get("name_en", d["name"]), d.get("role", "reviewer"))
        for code, d in (raw.get("departments") or {}).items()
    }
    matters: dict[str, Matter] = {}
    for m in raw.get("matters") or []:
        chosen = (m.get("regions") or {}).get(region) if region else None
        if chosen:  # this region's limits (and fees, bases …) replace the matter's own
            unknown_keys = set(chosen) - set(REGIONAL)
            if unknown_keys:
                raise ValueError(f"matter {m['code']}: regions.{region} may set {', '.join(REGIONAL)}, "
                                 f"not {', '.join(sorted(unknown_keys))}")
            m = {**m, **chosen}
        _check_range(m)
        known = {"code", "name", "name_en", "process", "departments", "materials", "statutory_limit",
                 "promised_limit", "promised_limit_by", "promised_limits", "fee", "legal_basis", "conditions",
                 "regions"}
        matters[m["code"]] = Matter(
            code=m["code"], name=m["name"], name_en=m.get("name_en", m["name"]), process=m["process"],
            departments=tuple(m.get("departments", [])), materials=m.get("materials", {}),
            statutory_limit=m["statutory_limit"], promised_limit=m.get("promised_limit"),
            promised_limit_by=m.get("promised_limit_by"), promised_limits=m.get("promised_limits", {}),
            fee=m.get("fee", ""), legal_basis=m.get("legal_basis", ""), conditions=m.get("conditions", ""),
            internal=bool(m.get("internal", False)),
            extra={k: v for k, v in m.items() if k not in known},
        )
    english = {str(k): str(v) for k, v in (raw.get("english") or {}).items()}
    for named in (*departments.values(), *matters.values()):  # a name shown alone reads in English too
        english.setdefault(named.name, named.name_en)
    aliases = {str(k).strip(): str(v) for k, v in (raw.get("aliases") or {}).items()}
    unknown = sorted({code for code in aliases.values() if code not in departments})
    if unknown:
        raise ValueError(f"catalogue aliases name unknown departments: {', '.join(unknown)}")
    return Catalogue(departments, matters, english=english, aliases=aliases, region=region, regions=regions)


def _check_range(m: dict) -> None:
    """A matter whose source gives a range (工程建设项目: 30–80 working days by class) keeps each class within it."""
    bounds = m.get("promised_range")
    if not bounds:
        return
    from timers.durations import parse_duration

    def size(text: str) -> tuple[int, int]:
        duration = parse_duration(text)
        return duration.days, duration.minutes

    low, high = size(bounds[0]), size(bounds[1])
    outside = [k for k, v in (m.get("promised_limits") or {}).items() if not low <= size(v) <= high]
    if outside:
        raise ValueError(f"matter {m['code']}: promised_limits {', '.join(outside)} lie outside promised_range "
                         f"{bounds[0]}–{bounds[1]}")


def catalogue() -> Catalogue:
    return _catalogue(os.environ.get("ONEWINDOW_REGION") or None)


@lru_cache(maxsize=4)
def _catalogue(region: str | None) -> Catalogue:
    with open(BPMN_DIR / "catalogue.yaml", encoding="utf-8") as fh:
        return parse_catalogue(yaml.safe_load(fh), region)
