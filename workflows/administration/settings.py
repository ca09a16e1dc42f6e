"""Small shared settings rows, written with an upsert so concurrent processes never collide."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..models import Setting


def _insert(session: Session):
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(Setting)



def put(session: Session, key: str, value: dict[str, Any]) -> None:
    stmt = _insert(session).values(key=key, value=value)
    session.execute(stmt.on_conflict_do_update(index_elements=[Setting.key], set_={"value": stmt.excluded.value}))
    session.expire_all()


def get_or_create(session: Session, key: str, value: dict[str, Any]) -> dict[str, Any]:
    """The stored value, or `value` stored now if there was none (first writer wins)."""
    session.execute(_insert(session).values(key=key, value=value).on_conflict_do_nothing(
        index_elements=[Setting.key]))
    session.expire_all()
    return session.get(Setting, key).value
