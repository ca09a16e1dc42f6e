"""The public BPMN files of ../shared/bpmn-corpus (issue 14's acceptance): each file is deployed with the default
department "window" (a file refused only for code OneWindow does not run is tried again as
`--code-tasks-as-steps` deploys it) and each deployed process driven with generated data. No file crashes the
import or a case; every refusal names what it refuses; at least 85 % of the files with a user task run to an
end event, and the share reached without that option is kept from falling too."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from workflows.administration import calendar_store
from workflows.definitions.modeling import corpus

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "bpmn-corpus"
FLOOR = 0.85  # the floor: 48 of the 56 files with a user task end at this writing
STRICT_FLOOR = 0.75  # without --code-tasks-as-steps: 42 of 56 at this writing
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/bpmn-corpus is not on this machine")


def test_every_corpus_file_deploys_and_runs_or_is_refused_with_a_reason(database, db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("the corpus is read once, on SQLite; the engine's path is the same on PostgreSQL")
    for year in (2025, 2026):
        database.transaction(lambda s, y=year: calendar_store.load_official_year(s, y, "tests"))
    results = corpus.run(database, CORPUS)
    assert len(results) == len(corpus.corpus_files(CORPUS)) > 100
    crashed = [(r.name, r.message) for r in results if "CRASH" in r.message or "Traceback" in r.message]
    assert not crashed, crashed
    unnamed = [(r.name, r.message) for r in results if r.outcome == "refused"
               and not re.search(r"'[^']+'|<\w+>|DOCTYPE", r.message)]
    assert not unnamed, unnamed
    assert not [r for r in results if r.outcome == "refused" and "<Element" in r.message]  # no Python reprs
    with_steps = [r for r in results if r.has_user_task]
    ended = [r for r in with_steps if r.outcome == "ended"]
    assert len(ended) / len(with_steps) >= FLOOR, corpus.table(results)
    strict = [r for r in ended if not r.as_steps]
    assert len(strict) / len(with_steps) >= STRICT_FLOOR, corpus.table(results)
    # no case hangs: what does not end either waits for something it cannot be given or failed, and says so
    assert all(r.message for r in results if r.outcome in ("running", "failed"))
