"""`onewindow bench startup`: start the demo N times on fresh instance directories and time how soon
/login answers after the web address is printed, and how soon every process is gone after a stop."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path


class StartFailed(AssertionError):
    """The server did not answer, did not stop, or printed a traceback."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def start_and_stop(args: list[str] | str, instance: Path, stop_signal: int = signal.SIGTERM, shell: bool = False,
                   url_wait: float = 60.0, answer_within: float = 5.0, stop_within: float = 5.0,
                   cwd: Path | None = None) -> dict[str, float]:
    """Start, wait for the printed web address, time the first /login, stop the whole process group."""
    port = free_port()
    env = {**os.environ, "ONEWINDOW_INSTANCE": str(instance), "ONEWINDOW_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen(args, cwd=cwd, env=env, shell=shell, executable="/bin/bash" if shell else None,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, text=True)
    lines: list[str] = []
    announced = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Web:"):
                announced.set()

    threading.Thread(target=read, daemon=True).start()
    tail = lambda: "".join(lines[-30:])  # noqa: E731
    answered = None
    try:
        if not announced.wait(url_wait):
            raise StartFailed("no web address printed:\n" + tail())
        printed = time.monotonic()
        while time.monotonic() - printed < answer_within:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=1) as response:
                    if response.status == 200:
                        answered = time.monotonic() - printed
                        break
            except OSError:
                time.sleep(0.05)
        if answered is None:
            raise StartFailed(f"/login did not answer within {answer_within} s:\n" + tail())
    finally:
        stopping = time.monotonic()
        os.killpg(proc.pid, stop_signal)
        try:
            proc.wait(stop_within + 5)
        except subprocess.TimeoutExpired:
            pass
        while _group_alive(proc.pid) and time.monotonic() - stopping < stop_within + 5:
            time.sleep(0.05)
        stopped = time.monotonic() - stopping
        if _group_alive(proc.pid) or proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise StartFailed("the server did not stop:\n" + tail())
    if stopped >= stop_within:
        raise StartFailed(f"stopping took {stopped:.1f} s")
    if "Traceback" in "".join(lines):
        raise StartFailed("a traceback was printed:\n" + "".join(lines))
    return {"answered": answered, "stopped": stopped}


def demo_command() -> list[str]:
    return [str(Path(sys.executable).parent / "onewindow"), "demo"]


def run(starts: int, busy: bool) -> dict:
    """`starts` demo starts, each on a fresh instance; with `busy`, a CPU burner on every core."""
    burners = [subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 3600\n"
                                 "while time.time() < end: pass"]) for _ in range(os.cpu_count() or 2)] if busy else []
    timings, failures = [], []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for i in range(starts):
                try:
                    timings.append(start_and_stop(demo_command(), Path(scratch) / f"instance-{i}",
                                                  signal.SIGINT if i % 2 else signal.SIGTERM))
                except StartFailed as exc:
                    text = str(exc)
                    failures.append(text if len(text) < 4000 else text[:1000] + "\n…\n" + text[-3000:])
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    answered = sorted(t["answered"] for t in timings)
    stopped = sorted(t["stopped"] for t in timings)

    def pct(values: list[float], q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))], 3) if values else float("nan")

    return {"workload": "startup", "starts": starts, "busy_cores": len(burners), "ok": len(timings),
            "failed": len(failures), "failures": failures[:5],
            "answer_p50_s": pct(answered, 0.5), "answer_p95_s": pct(answered, 0.95),
            "answer_max_s": round(max(answered), 3) if answered else None,
            "stop_p50_s": pct(stopped, 0.5), "stop_max_s": round(max(stopped), 3) if stopped else None,
            "answer_mean_s": round(statistics.fmean(answered), 3) if answered else None}
