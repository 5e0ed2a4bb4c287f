"""`just demo` as a user runs it: wall time and peak memory of the whole process tree.

    python bench/bench_demo.py --out /tmp/demo-bench            # the default demo (real pool)
    python bench/bench_demo.py --out /tmp/demo-bench -- --full  # any `python -m tierclip.demo` options after --

Prints one JSON line: wall seconds, the peak of the summed proportional set size (PSS) of the demo and all its
children (the demo runs two training lanes side by side, so the largest single process understates what the
machine needs, and summed RSS counts the pages a forked loader worker shares with its trainer twice), summed RSS,
the largest single process, the processes alive at the summed-PSS peak (command and PSS each: which step holds
the peak), the 1-minute load average before and after, and the demo's own per-step timings (OUT/timings.json).
/usr/bin/time's "maximum resident set size" is the largest single process only.
Run it on a quiet machine (load < 1): the timing is the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchlib import checkout_env, machine_facts


def command_line(pid: int, width: int = 160) -> str:
    """A process's command without its interpreter path ("" once it has ended), at most `width` characters: its
    start and its end, where a lane's `train sweep` names what it trains (--out, --subset, --seed)."""
    try:
        argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return ""
    interpreter = Path(argv[0]).name.startswith("python")
    line = " ".join(argv[1:] if interpreter else argv).strip()
    return line if len(line) <= width else f"{line[:40]} … {line[43 - width:]}"


def tree_memory_kb(root: int) -> tuple[int, int, int, list[tuple[int, int]]]:
    """(summed PSS, summed RSS, largest RSS, [(pid, PSS)]) in kB of `root` and every descendant, from /proc. PSS
    splits each shared page among the processes that map it (a forked loader worker shares the trainer's
    libraries and weights), so summed PSS is what the tree holds; summed RSS counts shared pages once per process."""
    parents, sizes = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
                rollup = (entry / "smaps_rollup").read_text()
            except OSError:  # the process ended while we looked
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            rolled = dict(line.split(":", 1) for line in rollup.splitlines()[1:] if ":" in line)
            parents[int(entry.name)] = int(fields["PPid"])
            sizes[int(entry.name)] = (int(rolled.get("Pss", "0 kB").split()[0]), int(fields.get("VmRSS", "0 kB").split()[0]))
    tree, grew = {root}, True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= children
        grew = bool(children)
    members = [(pid, *sizes[pid]) for pid in tree if pid in sizes]
    return (sum(p for _, p, _ in members), sum(r for _, _, r in members), max((r for _, _, r in members), default=0),
            [(pid, pss) for pid, pss, _ in members])


def measure(argv: list[str], interval: float) -> dict:
    """Run `argv`, sampling its tree's memory every `interval` seconds; wall time and the peaks."""
    load_before, start = os.getloadavg()[0], time.perf_counter()
    process = subprocess.Popen(argv, env=checkout_env())  # offline, this checkout first (benchlib.CLI_ENV included)
    peaks, at_peak = [0, 0, 0], []
    while process.poll() is None:
        *now, members = tree_memory_kb(process.pid)
        if now[0] > peaks[0]:
            at_peak = [{"command": command_line(pid), "pss_mb": round(pss / 1024)} for pid, pss in members if pss > 50 * 1024]
        peaks = [max(peak, value) for peak, value in zip(peaks, now, strict=True)]
        time.sleep(interval)
    if process.returncode:
        raise SystemExit(f"bench_demo: {' '.join(argv)} exited {process.returncode}")
    return {"wall_s": round(time.perf_counter() - start, 1), "peak_pss_total_mb": round(peaks[0] / 1024),
            "peak_rss_total_mb": round(peaks[1] / 1024), "peak_rss_process_mb": round(peaks[2] / 1024),
            "at_peak": sorted(at_peak, key=lambda p: -p["pss_mb"]),
            "load_before": round(load_before, 2),
            "load_after": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the demo's --out folder (a finished demo there is skipped)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between memory samples")
    parser.add_argument("--command", help="measure this command line instead of the demo (tests)")
    parser.add_argument("demo_args", nargs="*", help="options for `python -m tierclip.demo`, after --")
    args = parser.parse_args()
    argv = args.command.split() if args.command else [sys.executable, "-m", "tierclip.demo", "--out", str(args.out),
                                                      *args.demo_args]
    result = {"command": " ".join(argv[1:] if not args.command else argv), **measure(argv, args.interval)}
    timings = args.out / "timings.json"
    if not args.command and timings.exists():
        result["timings"] = json.loads(timings.read_text())
    print(json.dumps({**result, "machine": machine_facts()}))


if __name__ == "__main__":
    main()
