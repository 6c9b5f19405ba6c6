"""Sampling profile of the gunicorn workers with py-spy, summarised as text.

py-spy attaches from outside (no change to the service) and samples both workers while
the load generator runs. The summary lists where the time goes: own time by function,
and the inclusive share of the project's functions (the pipeline steps).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.server import ROOT

PROJECT_DIRS = ("core/", "clients/", "identity/", "licensing/", "verification/", "seed/")


def py_spy() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


def start(pids: list[int], duration: float, out_dir: Path) -> list[tuple[subprocess.Popen, Path]]:
    binary = py_spy()
    if binary is None:
        return []
    recorders = []
    for pid in pids:
        path = out_dir / f"py-spy-{pid}.txt"
        process = subprocess.Popen(  # noqa: S603
            [
                binary,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(max(1, round(duration))),
                "--rate",
                "250",
                "--format",
                "raw",
                "--function",
                "--nonblocking",
                "--output",
                str(path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        recorders.append((process, path))
    return recorders


def _frame_name(frame: str) -> str:
    # "function (path/to/file.py)" -> "file-relative function"
    name, _, location = frame.partition(" (")
    location = location.rstrip(")")
    try:
        location = str(Path(location).resolve().relative_to(ROOT))
    except ValueError:
        marker = "site-packages/"
        if marker in location:
            location = location.split(marker, 1)[1]
    return f"{location}:{name}"


def summarise(recorders: list[tuple[subprocess.Popen, Path]], top: int = 25) -> dict:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for process, path in recorders:
        process.wait(timeout=120)
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [_frame_name(f) for f in stack.split(";")]
            total += count
            own[frames[-1]] += count
            for name in set(frames):
                inclusive[name] += count
    if not total:
        return {}
    project = [(name, n) for name, n in inclusive.most_common() if name.startswith(PROJECT_DIRS)]
    return {
        "samples": total,
        "own_top": [(name, round(100 * n / total, 1)) for name, n in own.most_common(top)],
        "project_inclusive": [(name, round(100 * n / total, 1)) for name, n in project[:top]],
        "library_inclusive": [
            (name, round(100 * n / total, 1))
            for name, n in inclusive.most_common(200)
            if not name.startswith(PROJECT_DIRS)
        ][:top],
    }


def print_summary(summary: dict, log) -> None:
    if not summary:
        log("  (no profile: py-spy unavailable or no samples)")
        return
    log(f"  profile: {summary['samples']} samples over both workers")
    log("  own time (top):")
    for name, pct in summary["own_top"][:15]:
        log(f"    {pct:5.1f}%  {name}")
    log("  project functions, inclusive:")
    for name, pct in summary["project_inclusive"][:20]:
        log(f"    {pct:5.1f}%  {name}")
