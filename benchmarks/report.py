"""Shared benchmark plumbing: the row schema, timing, peak memory, machine info and the writers.

Every benchmark returns :class:`Row` objects (or plain dicts with the same keys). A row compares
*ours* with a *peer* measured in the same process and run, gives the ratio (always oriented so
that > 1 means ours is better: throughput ours/peer, time peer/ours), the number of repetitions
the median is taken over, the peak memory of each side and the target with whether it was met.

Peak memory (:class:`PeakMemory`):

* CPU: the increase of the process's peak resident set size over the measured call. The kernel's
  high-water mark is reset first (``/proc/self/clear_refs`` <- ``5``, Linux >= 4.0), so the number
  is exact; where that is not allowed a 2 ms polling thread is used instead. Freed heap is handed
  back to the OS (``malloc_trim``) before each measurement so that one side's cached arenas do not
  hide the other side's allocations. The process is shared by ours and the peer, so both numbers
  are *increments over the same warm process*, not whole-process footprints.
* CUDA: ``torch.cuda.max_memory_allocated`` above the allocation at the start.
* ``tracemalloc`` (numpy allocations only) is available through ``trace_python=True``; it is
  only used for NumPy-only code since it does not see torch's or FAISS's allocator.
"""

from __future__ import annotations

import ctypes
import dataclasses
import gc
import json
import math
import os
import platform
import subprocess
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from vidsage_core import paths

MIB = 1024 * 1024


# ---------------------------------------------------------------------------------------------
# The row schema
# ---------------------------------------------------------------------------------------------
@dataclass
class Row:
    """One comparison line of results/benchmarks.md.

    Attributes:
        group: benchmark family: "reader", "knn", "train", "infer", "scale".
        name: what is measured, e.g. "training throughput (sampled 25/10)".
        size: the problem size in words, e.g. "13,998 videos (real), 1152-d".
        metric: unit of ``ours``/``peer``, e.g. "nodes/s", "ms (p50)".
        higher_is_better: orientation of the metric.
        ours_label, peer_label: what each side is, precisely.
        ours, peer: medians (None when that side could not run).
        repeats: how many measurements each median is over (and how they were taken: ``notes``).
        ours_mem_mb, peer_mem_mb: peak memory increase (MiB) of each side (see module doc).
        mem_method: how memory was measured.
        target: the target in words ("ours/peer >= 1.0", "<= 5 ms p50").
        target_met: True / False / None (None: not applicable or not measurable here).
        status: "ok", or why a side did not run ("peer unavailable: ...").
        extra: any further measured values (p99, recall, per-stage seconds ...).
        notes: caveats in words.
        device: where it ran ("cpu", "cuda:0 (NVIDIA H100)").
        measured_at: ISO time stamp.
        command: the command that produced the row (rows of several runs can be merged).
    """

    group: str
    name: str
    size: str
    metric: str
    higher_is_better: bool
    ours_label: str
    peer_label: str
    ours: float | None
    peer: float | None
    repeats: int
    ours_mem_mb: float | None = None
    peer_mem_mb: float | None = None
    mem_method: str = "peak RSS increase"
    target: str = ""
    target_met: bool | None = None
    status: str = "ok"
    extra: dict = field(default_factory=dict)
    notes: str = ""
    device: str = "cpu"
    measured_at: str = ""
    command: str = ""  # the command line that measured this row (set by write_results)

    def __post_init__(self) -> None:
        if not self.measured_at:
            self.measured_at = now_iso()

    @property
    def ratio(self) -> float | None:
        """ours vs peer, > 1 means ours is better (faster / higher throughput)."""
        return ratio(self.ours, self.peer, self.higher_is_better)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["ratio"] = self.ratio
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Row":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def ratio(ours: float | None, peer: float | None, higher_is_better: bool) -> float | None:
    """``ours / peer`` for higher-is-better metrics, ``peer / ours`` otherwise; None if missing."""
    if ours is None or peer is None:
        return None
    if not (math.isfinite(ours) and math.isfinite(peer)) or ours <= 0 or peer <= 0:
        return None
    return ours / peer if higher_is_better else peer / ours


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


# ---------------------------------------------------------------------------------------------
# Machine
# ---------------------------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, load, library versions and the accelerator, for the report header."""
    import psutil
    import torch

    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "ram_available_gib": round(psutil.virtual_memory().available / 2**30, 1),
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "cuda": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    for mod in ("torch_geometric", "faiss", "sklearn", "tensorflow"):
        info[mod] = _version(mod)
    info["git_commit"] = _git_commit()
    return info


def _version(module: str) -> str | None:
    import importlib.metadata as md

    dist = {"sklearn": "scikit-learn", "tensorflow": "tensorflow-cpu", "faiss": "faiss-cpu",
            "torch_geometric": "torch-geometric"}.get(module, module)
    for name in (dist, module):
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            continue
    return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=paths.ROOT,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def device_label(device: str) -> str:
    """"cpu" or "cuda:0 (NVIDIA H100 ...)"."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        idx = int(device.split(":")[1]) if ":" in device else 0
        return f"cuda:{idx} ({torch.cuda.get_device_name(idx)})"
    return "cpu"


# ---------------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------------
def _status_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_bytes() -> int:
    """Current resident set size of this process."""
    import psutil

    return int(psutil.Process().memory_info().rss)


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # Linux >= 4.0: reset VmHWM to the current RSS
        return True
    except OSError:
        return False


def malloc_trim() -> None:
    """Give freed heap back to the OS so the next RSS baseline is honest (glibc only)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Context manager measuring the peak memory increase of the block.

    Attributes (after exit):
        rss_mb: peak RSS increase in MiB (CPU side, always measured).
        cuda_mb: peak CUDA allocation increase in MiB (when ``device`` is CUDA), else None.
        python_mb: tracemalloc peak in MiB when ``trace_python`` (NumPy/Python allocations), else None.
        method: how ``rss_mb`` was obtained.
    """

    def __init__(self, device: str = "cpu", trace_python: bool = False, poll_s: float = 0.002) -> None:
        self.device = device
        self.trace_python = trace_python
        self.poll_s = poll_s
        self.rss_mb: float | None = None
        self.cuda_mb: float | None = None
        self.python_mb: float | None = None
        self.method = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._polled_peak = 0

    def __enter__(self) -> "PeakMemory":
        gc.collect()
        malloc_trim()
        self._base = rss_bytes()
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._cuda_base = torch.cuda.memory_allocated()
        self._kernel = _reset_peak_rss() and _status_kib("VmHWM") is not None
        if self._kernel:
            self.method = "peak RSS increase (kernel VmHWM, reset before the call)"
        else:
            self.method = f"peak RSS increase (polled every {self.poll_s * 1000:.0f} ms)"
            self._polled_peak = self._base
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        if self.trace_python:
            tracemalloc.start()
        return self

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._polled_peak = max(self._polled_peak, rss_bytes())
            time.sleep(self.poll_s)

    def __exit__(self, *exc) -> None:
        if self.trace_python:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            self.python_mb = peak / MIB
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
            self.cuda_mb = (torch.cuda.max_memory_allocated() - self._cuda_base) / MIB
        if self._kernel:
            peak = (_status_kib("VmHWM") or 0) * 1024
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            peak = max(self._polled_peak, rss_bytes())
        self.rss_mb = max(0, peak - self._base) / MIB

    @property
    def mb(self) -> float | None:
        """The headline number: CUDA peak on a GPU, else the RSS increase."""
        return self.cuda_mb if self.cuda_mb is not None else self.rss_mb

    def describe(self) -> str:
        if self.cuda_mb is not None:
            return "torch.cuda.max_memory_allocated increase"
        return self.method


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------
def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def time_calls(fn: Callable[[], Any], repeats: int, warmup: int = 1, device: str = "cpu") -> list[float]:
    """Wall seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return times


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1,
                device: str = "cpu") -> dict[str, list[float]]:
    """Time several callables in alternating rounds (A, B, A, B, ...).

    On a shared machine the background load drifts; alternating the sides spreads that drift
    evenly over both instead of penalising whichever ran second.

    Returns:
        name -> ``repeats`` wall times in seconds.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            synchronize(device)
            t0 = time.perf_counter()
            fn()
            synchronize(device)
            out[name].append(time.perf_counter() - t0)
    return out


def median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64))) if len(values) else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------
def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "—"
        a = abs(v)
        if a >= 1000:
            return f"{v:,.0f}"
        if a >= 100:
            return f"{v:.1f}"
        if a >= 1:
            return f"{v:.2f}"
        return f"{v:.3g}"
    return str(v)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


GROUP_TITLES = {
    "reader": "TFRecord reading",
    "knn": "k-nearest-neighbour graph",
    "train": "Training throughput",
    "infer": "Inductive embedding",
    "finetune": "Fine-tuning cost (paper §4.2 protocol)",
    "scale": "YouTube-8M scale on one machine",
}


def render_markdown(payload: dict[str, Any]) -> str:
    """results/benchmarks.md from the payload written to results/benchmarks.json."""
    m = payload["machine"]
    rows = [Row.from_dict(r) for r in payload["rows"]]
    lines = [
        "# Benchmarks",
        "",
        f"Last written by `{payload['command']}` on {payload['created']}; rows of groups not re-run are kept from "
        "earlier runs, and each row names the command and time that measured it"
        + (" — **quick mode (tiny sizes, smoke test only; do not quote)**" if payload.get("quick") else "")
        + ". Regenerate with `./reproduce.sh bench` (= `python -m benchmarks`).",
        "",
        f"**Machine:** {m['cpu']}, {m['logical_cores']} logical / {m['physical_cores']} physical cores, "
        f"{m['ram_gib']} GiB RAM ({m['ram_available_gib']} GiB available at start), 1-min load average "
        f"{m['load_average_1m']} at start (the cores are shared with other jobs: absolute numbers are "
        f"pessimistic, ratios are measured side by side). {m['platform']}, Python {m['python']}, "
        f"torch {m['torch']} ({m['torch_threads']} threads), torch_geometric {m['torch_geometric']}, "
        f"faiss {m['faiss']}, scikit-learn {m['sklearn']}, numpy {m['numpy']}, tensorflow {m['tensorflow']}.",
        "",
        "**Device:** " + (f"CUDA: {m['gpu']}" if m.get("cuda") else
                          "CPU only — no GPU on this machine; every row ran on the CPU. The code paths use CUDA "
                          "when `torch.cuda.is_available()` (GPU targets are not measured here)."),
        "",
        "**How to read a row.** *Ours* and the *peer* are measured in the same process, in the same run, on "
        "the same inputs. Each value is a median over *Reps* repetitions (how they are taken is in the "
        "row's note). **Ratio > 1 means ours is better** (throughput ours/peer, or time peer/ours). Peak "
        "memory is the increase of the process's peak RSS during one call of each side (kernel high-water "
        "mark reset before the call; freed heap returned to the OS first), or the CUDA peak allocation "
        "on a GPU. kNN rows use bench_knn's own RSS polling.",
        "",
    ]
    order = [g for g in GROUP_TITLES if any(r.group == g for r in rows)]
    order += sorted({r.group for r in rows} - set(order))
    for g in order:
        grows = [r for r in rows if r.group == g]
        lines += [f"## {GROUP_TITLES.get(g, g)}", ""]
        lines.append("| # | Benchmark | Size | Ours | Peer | Metric | Ours value | Peer value | Ratio | Reps "
                     "| Peak mem ours / peer (MiB) | Target | Met |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for i, r in enumerate(grows, 1):
            mem = f"{_fmt(r.ours_mem_mb)} / {_fmt(r.peer_mem_mb)}"
            rt = r.ratio
            lines.append("| " + " | ".join(_cell(c) for c in [
                f"{g}-{i}", r.name, r.size, r.ours_label, r.peer_label, r.metric, _fmt(r.ours), _fmt(r.peer),
                (f"{rt:.2f}×" if rt is not None else "—"), _fmt(r.repeats), mem, r.target or "—",
                _fmt(r.target_met) if r.target else "—"]) + " |")
        lines.append("")
        for i, r in enumerate(grows, 1):
            bits = []
            if r.status != "ok":
                bits.append(f"**status:** {r.status}")
            if r.notes:
                bits.append(r.notes)
            if r.extra:
                bits.append("measured: " + ", ".join(
                    f"{k} = {json.dumps(v) if isinstance(v, (dict, list)) else _fmt(v)}" for k, v in r.extra.items()))
            bits.append(f"device {r.device}; memory: {r.mem_method}; measured {r.measured_at}"
                        + (f" by `{r.command}`" if r.command else ""))
            lines.append(f"- **{g}-{i}** " + " ".join(b if b.endswith(".") else b + "." for b in bits))
        lines.append("")
    if payload.get("errors"):
        lines += ["## Benchmarks that failed", ""]
        for e in payload["errors"]:
            lines.append(f"- `{e['group']}`: {e['error']}")
        lines.append("")
    return "\n".join(lines)


def write_results(rows: Iterable[Row | dict], out_md: str | Path, command: str, quick: bool,
                  machine: dict | None = None, errors: list[dict] | None = None,
                  merge: bool = True) -> tuple[Path, Path]:
    """Write ``out_md`` and the JSON beside it (same stem).

    With ``merge`` the rows of groups not run this time are kept from an existing JSON of the same
    mode (quick or not), so ``--only train`` refreshes the training rows without losing the others.

    Returns:
        (markdown path, json path).
    """
    from vidsage_core.utils import load_json, save_json

    out_md = Path(out_md)
    out_json = out_md.with_suffix(".json")
    new_rows = [r if isinstance(r, Row) else Row.from_dict(r) for r in rows]
    for r in new_rows:
        r.command = r.command or command
    errors = list(errors or [])
    ran = {r.group for r in new_rows} | {e["group"] for e in errors}
    kept: list[Row] = []
    kept_errors: list[dict] = []
    if merge and out_json.exists():
        try:
            old = load_json(out_json)
        except (OSError, ValueError):
            old = None
        if old and bool(old.get("quick")) == bool(quick):
            kept = [Row.from_dict(r) for r in old.get("rows", []) if r.get("group") not in ran]
            kept_errors = [e for e in old.get("errors", []) if e.get("group") not in ran]
    payload = {
        "created": now_iso(),
        "command": command,
        "quick": bool(quick),
        "machine": machine or machine_info(),
        "rows": [r.to_dict() for r in kept + new_rows],
        "errors": kept_errors + errors,
    }
    order = {g: i for i, g in enumerate(GROUP_TITLES)}
    payload["rows"].sort(key=lambda r: order.get(r["group"], len(order)))
    save_json(payload, out_json)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text(render_markdown(payload) + "\n")
    return out_md, out_json
