"""The migrations build exactly the schema the models declare, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import workflows.models  # noqa: F401  (registers the tables)
from workflows.db import Base


def test_migrations_match_the_models(database):
    with database.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []


def test_finished_items_leave_the_open_task_guard(deployed):
    """One open work item per workflow task is enforced; a finished item's task id is no longer held."""
    import pytest
    from sqlalchemy.exc import IntegrityError

    from timers.clock import now
    from workflows.models import Case, WorkItem

    def item(case_id, state):
        return WorkItem(case_id=case_id, case_no="X", task_id="00000000-0000-0000-0000-000000000001", step="s",
                        name="n", role="clerk", department="window", state=state, created_at=now())

    def setup(s):
        from tests.conftest import CLERK, COMPANY
        from workflows.casework import cases
        case = cases.start_case(s, "company_setup", COMPANY, {}, CLERK)
        s.add(item(case.id, "completed"))
        s.add(item(case.id, "open"))
        return case.id
    case_id = deployed.transaction(setup)
    with pytest.raises(IntegrityError):
        deployed.transaction(lambda s: s.add(item(case_id, "claimed")))
    with deployed.read() as s:
        assert s.query(WorkItem).filter_by(task_id="00000000-0000-0000-0000-000000000001").count() == 2
        assert s.get(Case, case_id) is not None
