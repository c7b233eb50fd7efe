"""Shared helpers of the benchmark scripts: machine facts, package versions, result files."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine_info() -> dict:
    """Date, CPU count (`nproc`), CPU model, Python and the thread-related environment."""
    try:
        nproc = int(subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout)
    except (OSError, subprocess.CalledProcessError, ValueError):
        nproc = os.cpu_count()
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": nproc,
        "cpu": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS",
                                           "XLA_FLAGS", "NUMBA_CACHE_DIR") if k in os.environ},
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_versions(names) -> dict:
    """Installed distribution versions; None for a package that is not installed."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def markdown_table(headers, rows) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(headers, rows) -> str:
    """A fixed-width table for the terminal."""
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    fmt = lambda r: "  ".join(c.rjust(w) for c, w in zip(r, widths))
    return "\n".join([fmt(cells[0]), "  ".join("-" * w for w in widths)] + [fmt(r) for r in cells[1:]])


def environment_markdown(machine: dict, versions: dict) -> str:
    pkgs = ", ".join(f"{k} {v}" for k, v in versions.items() if v is not None)
    missing = [k for k, v in versions.items() if v is None]
    text = (f"- date: {machine['date']}\n"
            f"- machine: `nproc` = {machine['nproc']}, {machine['cpu']}, {machine['platform']}\n"
            f"- Python {machine['python']}; packages: {pkgs}\n")
    if missing:
        text += f"- not installed: {', '.join(missing)}\n"
    if machine["env"]:
        text += "- environment: " + ", ".join(f"{k}={v}" for k, v in machine["env"].items()) + "\n"
    return text


def write_results(stem: str, data: dict, markdown: str, out_dir: Path = RESULTS_DIR) -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{stem}.json"
    md_path = out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n")
    md_path.write_text(markdown if markdown.endswith("\n") else markdown + "\n")
    return json_path, md_path


def _jsonable(obj):
    try:
        import numpy as np
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:
        pass
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# -- load from other processes -----------------------------------------------------------------
# The machine may be shared (tests running alongside): each timed run records how many cores
# other processes kept busy meanwhile, and waits for a quiet machine first.

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_snapshot():
    """(machine busy jiffies, this process's jiffies incl. waited-for children, monotonic time);
    None where /proc is not available."""
    try:
        cpu = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
        own = [int(v) for v in Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[11:15]]
    except (OSError, ValueError, IndexError):
        return None
    busy = sum(cpu) - cpu[3] - cpu[4]  # all but idle and iowait
    return busy, sum(own), time.monotonic()


def others_load(start, end) -> float | None:
    """Average number of cores busy with other processes between two snapshots."""
    if start is None or end is None or end[2] <= start[2]:
        return None
    return max(0.0, ((end[0] - start[0]) - (end[1] - start[1])) / _CLK_TCK / (end[2] - start[2]))


def wait_for_quiet(threshold: float = 0.2, max_wait: float = 60.0, window: float = 1.0) -> float | None:
    """Wait until other processes use fewer than ``threshold`` cores over a ``window``, at most
    ``max_wait`` seconds; returns the last measured load (None without /proc)."""
    deadline = time.monotonic() + max_wait
    while True:
        start = cpu_snapshot()
        time.sleep(window)
        load = others_load(start, cpu_snapshot())
        if load is None or load < threshold or time.monotonic() > deadline:
            return load


def write_perf_map(dispatchers) -> int:
    """For ``perf report`` (nuts_profile.py, gpss_profile.py): ``/tmp/perf-<pid>.map`` naming
    the functions of the dispatchers' compiled modules, each assumed to run to the next one's
    address; returns how many were named."""
    names = {}
    for dispatcher in dispatchers:
        for cres in dispatcher.overloads.values():
            library = cres.library
            for f in library._final_module.functions:
                if f.is_declaration:
                    continue
                address = library.get_pointer_to_function(f.name)
                if address:
                    names[address] = f.name
    addresses = sorted(names)
    with open(f"/tmp/perf-{os.getpid()}.map", "w") as fh:
        for a, b in zip(addresses, addresses[1:] + [addresses[-1] + 4096]):
            fh.write(f"{a:x} {min(b - a, 1 << 20):x} {names[a][:200]}\n")
    return len(addresses)
