"""Run every budget script in ``benchmarks/`` one after the other and sum up their verdicts.

Each script runs in its own process, alone (so they do not time each other); its whole output
goes to ``<out>/<script>.txt`` and to the terminal, and the lines that carry a verdict (PASS,
FAIL, or a throughput goal) are repeated at the end. Exit status 1 when any script failed.

    python benchmarks/run_all.py [--quick] [--out DIR] [--only engine,geo,...] [--load]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ("engine", "geo", "inject", "rules_load", "middleware")
VERDICT = re.compile(r"\b(PASS|FAIL|goal met|goal missed)\b")


def _machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs ({model}), {platform.system()} {platform.release()}, "
        f"CPython {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="middleware.py --quick")
    parser.add_argument("--out", type=Path, help="where outputs go (default: a new temp dir)")
    parser.add_argument("--only", help="comma-separated script names (default: all)")
    parser.add_argument("--load", action="store_true", help="also run load.py --quick")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(SCRIPTS)
    if args.load:
        names.append("load")
    out = args.out or Path(tempfile.mkdtemp(prefix="compliance-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {_machine()}")
    summary: list[tuple[str, int, float, list[str]]] = []
    for name in names:
        command = [sys.executable, str(HERE / f"{name}.py")]
        if name == "load" or (args.quick and name == "middleware"):
            command.append("--quick")
        print(f"== {' '.join(command[1:])}", flush=True)
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            print(line, end="", flush=True)
            lines.append(line)
        code = process.wait()
        elapsed = time.perf_counter() - started
        (out / f"{name}.txt").write_text("".join(lines))
        verdicts = [line.rstrip() for line in lines if VERDICT.search(line)]
        summary.append((name, code, elapsed, verdicts))
    print(f"\n== summary (outputs in {out})")
    failed = False
    for name, code, elapsed, verdicts in summary:
        failed |= code != 0
        state = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"{name}.py: {state}, {elapsed:.0f} s")
        for line in verdicts:
            print(f"    {line.strip()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
