"""What the memory benchmarks share: a child process that reports its own peak resident memory, and the record.

The peak is the child's VmHWM from /proc/self/status, its own high-water mark: ru_maxrss would carry over the
parent's size, which a child keeps across fork and exec.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Appended to a child's program: its last line of output is its peak resident memory in KiB.
PRINT_PEAK = """
import re as _re, pathlib as _pathlib
print(_re.search(r"VmHWM:\\s+(\\d+) kB", _pathlib.Path("/proc/self/status").read_text()).group(1))
"""


def run_child(program: str, args: list[str], what: str) -> tuple[list[str], int, float]:
    """Run ``program`` (which prints one line of fields last) with ``args`` from the repository root; return those
    fields, the child's peak resident memory in KiB and its wall seconds. A failed child stops the benchmark."""
    started = time.perf_counter()
    child = subprocess.run([sys.executable, "-c", program + PRINT_PEAK, *args], cwd=REPO, capture_output=True,
                           text=True)
    if child.returncode:
        raise SystemExit(f"{what} failed:\n{child.stderr[-3000:]}")
    *lines, peak = child.stdout.strip().splitlines()
    return lines[-1].split(), int(peak), round(time.perf_counter() - started, 2)


def write_record(out: Path, runs: list[dict[str, Any]], **described: Any) -> None:
    """Write ``runs`` with the machine and its load to ``out`` as JSON (and print it)."""
    record = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "load_average_1m": round(os.getloadavg()[0], 2)},
              "note": "shared 2-core CPU; wall times include other people's jobs", **described, "runs": runs}
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))
