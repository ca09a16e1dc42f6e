"""Input no handler should have to think about, refused before any view runs.

- Path ids are database integers: a number past 2^31 - 1 (or hundreds of digits) is no id — 404.
- Text with a NUL character or a lone surrogate cannot be stored (PostgreSQL refuses NUL, no database
  encodes a lone surrogate): query strings, forms and JSON bodies carrying one are a 400, naming the field.
- JSON nested deeper than any form of ours (32 levels) is a 400 before it reaches a parser's recursion.
"""

from __future__ import annotations

import json
import re

from flask import Flask, request
from werkzeug.routing import IntegerConverter

from workflows.errors import InvalidInput

MAX_ID = 2**31 - 1
MAX_DEPTH = 32
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


class IdConverter(IntegerConverter):
    """`<int:…>` in every route: at most ten digits and within a database integer, else the route does not match."""

    regex = r"\d{1,10}"

    def __init__(self, map, *args, **kwargs) -> None:  # noqa: A002 - werkzeug's signature
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def _bad_text(value) -> bool:
    return isinstance(value, str) and _BAD_TEXT.search(value) is not None


def _scan(value, where: str, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise InvalidInput("{where}: nested more than {max_depth} levels deep",
                           {"where": where, "max_depth": MAX_DEPTH}, fields={where: "too deep"})
    if isinstance(value, dict):
        for key, item in value.items():
            if _bad_text(key):
                raise InvalidInput("{where}: a key holds a NUL or an invalid character",
                                   {"where": where}, fields={where: "bad text"})
            _scan(item, f"{where}.{key}" if where else str(key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _scan(item, f"{where}[{index}]", depth + 1)
    elif _bad_text(value):
        raise InvalidInput("{where}: text with a NUL or an invalid character",
                           {"where": where}, fields={where: "bad text"})


def _json_depth_ok(raw: bytes) -> bool:
    """Bracket depth counted on the raw text (strings skipped), before any recursive parser sees it."""
    depth = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return True


def register(app: Flask) -> None:
    app.url_map.converters["int"] = IdConverter

    @app.before_request
    def _guard():
        for name, value in request.args.items(multi=True):
            if _bad_text(value) or _bad_text(name):
                raise InvalidInput("{name}: text with a NUL or an invalid character",
                                   {"name": name}, fields={name: "bad text"})
        if request.method in ("POST", "PUT", "PATCH"):
            if request.mimetype == "application/json":
                raw = request.get_data(cache=True)
                if not _json_depth_ok(raw):
                    raise InvalidInput("the JSON body is nested more than {max_depth} levels deep",
                                       {"max_depth": MAX_DEPTH})
                try:
                    body = json.loads(raw) if raw else None
                except (ValueError, RecursionError) as exc:  # bad JSON, numbers past 4,300 digits, …
                    reason = str(exc).split(":")[0][:120]
                    raise InvalidInput("the body is not JSON we can read ({reason})", {"reason": reason}) from None
                _scan(body, "")
            elif request.form:
                for name, value in request.form.items(multi=True):
                    if _bad_text(value) or _bad_text(name):
                        raise InvalidInput("{name}: text with a NUL or an invalid character", {"name": name},
                                           fields={name: "bad text"})
        return None
