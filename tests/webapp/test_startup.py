"""The README's first command starts every time and stops cleanly: run as a new user would, as a
subprocess on a fresh instance directory, idle and with every core busy."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from webapp.startbench import start_and_stop

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
ANSWER_WITHIN = 5.0  # /login answers within 5 s of the printed address; every process gone 5 s after a stop


def readme_first_command() -> str:
    """The first shell block of the README's "Two commands" section, as written."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Two commands", 1)[1]
    return re.search(r"```sh\n(.+?)\n```", section, re.S).group(1).strip()


def test_the_readme_first_command_as_written(tmp_path):
    """The whole command (venv, install, demo) on a fresh instance; Ctrl-C (SIGINT to the group) stops it."""
    command = readme_first_command()
    assert command.endswith("onewindow demo"), command
    start_and_stop(command, tmp_path / "instance", signal.SIGINT, shell=True, url_wait=600, cwd=ROOT)
    assert (tmp_path / "instance" / "onewindow.db").exists()


def _demo() -> list[str]:
    # the last part of the README's command: the installed console script
    return [str(Path(sys.executable).parent / "onewindow"), "demo"]


def test_a_start_that_does_not_answer_is_reported(tmp_path):
    """The check itself can fail: a command that prints the address but serves nothing is caught."""
    from webapp.startbench import StartFailed

    fake = [sys.executable, "-c", "import time; print('Web: http://127.0.0.1:1/', flush=True); time.sleep(60)"]
    with pytest.raises(StartFailed, match="did not answer"):
        start_and_stop(fake, tmp_path / "instance", answer_within=1.0)


def test_the_demo_starts_20_times_in_a_row(tmp_path):
    timings = [start_and_stop(_demo(), tmp_path / f"instance-{i}") for i in range(20)]
    assert max(t["answered"] for t in timings) < ANSWER_WITHIN


def test_the_demo_starts_20_times_with_every_core_busy(tmp_path):
    burners = [subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 600\n"
                                 "while time.time() < end: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        timings = [start_and_stop(_demo(), tmp_path / f"instance-{i}", signal.SIGINT if i % 2 else signal.SIGTERM)
                   for i in range(20)]
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    assert max(t["answered"] for t in timings) < ANSWER_WITHIN


def test_a_busy_database_at_start_up_is_waited_for(tmp_path):
    """Another process holds the write lock for 4 s while the demo starts: it waits, then serves."""
    instance = tmp_path / "instance"
    env = {**os.environ, "ONEWINDOW_INSTANCE": str(instance)}
    env.pop("DATABASE_URL", None)
    assert subprocess.run([*_demo(), "--no-serve"], env=env, capture_output=True, timeout=300).returncode == 0
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from sqlalchemy import text\n"
        "from workflows.db import Database\n"
        "db = Database()\n"
        "with db.write() as session:\n"
        "    session.execute(text('UPDATE settings SET key = key WHERE 1 = 0'))\n"
        "    print('held', flush=True)\n"
        "    time.sleep(4)\n")], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        start_and_stop(_demo(), instance, url_wait=120)
    finally:
        holder.wait(30)
    assert holder.returncode == 0
