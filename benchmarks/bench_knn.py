"""Benchmark: building the k-nearest-neighbour graph that LiteVidSage and VidSage start from.

Compares, at each size ``n``, over all ``n`` videos as queries (the full kNN graph):

* ``vidsage exact`` — :func:`vidsage_core.graph.knn` (FAISS flat index, blocked queries,
  self-exclusion by index);
* ``faiss flat`` — FAISS ``IndexFlatIP`` called directly (one ``search`` of ``k + 1``);
* ``sklearn brute`` — scikit-learn ``NearestNeighbors(algorithm="brute", n_jobs=-1)``;
* ``vidsage hnsw`` / ``vidsage ivf`` — the approximate modes, with recall@k against exact
  search on a sample of queries and the speed-up over the exact graph.

Data: the real YouTube-8M videos (rgb+audio, L2-normalised, 1152-D) where ``n`` does not exceed
them (13,998), otherwise synthetic unit vectors (labelled ``synthetic``). The synthetic default
is *clustered* (a 64-D Gaussian mixture lifted to ``dim`` dimensions plus isotropic noise),
because real features have low intrinsic dimension; i.i.d. uniform directions in 1024-D
(``synthetic="uniform"``) are a degenerate case for any approximate index (all distances
concentrate near sqrt(2)), so recall on them says nothing about video features.

A method whose estimated time (from timing a sample of queries and extrapolating linearly)
exceeds ``time_budget_s`` is reported as ``skipped (too slow: est. X s)`` instead of run; the
exact baseline at sizes too large to run has ``seconds`` estimated the same way
(``estimated: True``). Wall time depends on what else runs on the machine, so every row also
records the process CPU time and the 1-minute load average. Peak memory is the peak process RSS (psutil, sampled every 20 ms) above
the RSS before the method started: it includes FAISS's C++ allocations, which ``tracemalloc``
cannot see.

Run: ``python benchmarks/bench_knn.py`` (prints a table; see ``--help``).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidsage_core.graph import build_index, knn, knn_recall  # noqa: E402

REAL_N = 13998


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
def real_features(n: int | None = None) -> np.ndarray:
    """The real YouTube-8M video-level features (rgb+audio, L2-normalised), first ``n`` rows."""
    from vidsage_core import paths
    from vidsage_core.data import read_tfrecords

    vs = read_tfrecords(paths.YT8M_2018_GLOB, progress=False)
    x = vs.features("rgb+audio", normalize=True)
    return x if n is None else x[:n]


def synthetic_unit_vectors(n: int, dim: int, seed: int = 0, kind: str = "clustered",
                           clusters: int = 1000, latent_dim: int = 64, noise: float = 2.5,
                           chunk: int = 65536) -> np.ndarray:
    """Synthetic L2-normalised float32 vectors ``[n, dim]``, generated in chunks.

    Args:
        kind: "clustered": ``z = center[c] + N(0, 1)`` in ``latent_dim`` dimensions,
            ``x = z @ P / sqrt(latent_dim) + noise * N(0, 1)^dim`` with ``clusters`` centres of
            scale 2; "uniform": i.i.d. Gaussian directions. The default ``noise = 2.5`` makes
            the median distance to the 1st / 25th neighbour at n = 20,000 (1.09 / 1.25) match
            the real 13,998 YouTube-8M features (1.09 / 1.24); i.i.d. directions give 1.32 /
            1.35 (and IVF recall@25 0.33 at nprobe 64, against 0.98 clustered).
    """
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32)
    if kind == "clustered":
        centers = rng.normal(scale=2.0, size=(clusters, latent_dim)).astype(np.float32)
        proj = (rng.normal(size=(latent_dim, dim)) / math.sqrt(latent_dim)).astype(np.float32)
    elif kind != "uniform":
        raise ValueError(f"kind must be 'clustered' or 'uniform', got {kind!r}")
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        if kind == "clustered":
            z = centers[rng.integers(clusters, size=m)] + rng.normal(
                size=(m, latent_dim)).astype(np.float32)
            block = z @ proj + noise * rng.normal(size=(m, dim)).astype(np.float32)
        else:
            block = rng.normal(size=(m, dim)).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[s:s + m] = block
    return out


# ---------------------------------------------------------------------------------------------
# measurement helpers
# ---------------------------------------------------------------------------------------------
class PeakRSS:
    """Peak resident set size above the starting RSS, sampled by a background thread."""

    def __init__(self, interval: float = 0.02) -> None:
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> "PeakRSS":
        gc.collect()
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def peak_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def _timed(fn: Callable[[], Any]) -> tuple[float, float, float, Any]:
    """Wall seconds, CPU seconds (all threads of this process), peak RSS MB, result."""
    with PeakRSS() as mem:
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        sec, cpu = time.perf_counter() - t0, time.process_time() - c0
    return sec, cpu, mem.peak_mb, out


def _faiss_flat(x: np.ndarray, k: int, queries: np.ndarray | None = None):
    import faiss

    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    return index.search(x if queries is None else queries, k + 1)


def _sklearn_brute(x: np.ndarray, k: int, queries: np.ndarray | None = None):
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k + 1, algorithm="brute", n_jobs=-1).fit(x)
    return nn.kneighbors(x if queries is None else queries)


def _estimate(run_sample: Callable[[np.ndarray], Any], x: np.ndarray, probe: int,
              seed: int) -> float:
    """Seconds for all ``n`` queries, extrapolated from ``probe`` sampled queries."""
    n = x.shape[0]
    if probe >= n:
        return 0.0  # small enough: just run it
    rows = np.sort(np.random.default_rng(seed).choice(n, probe, replace=False))
    t0 = time.perf_counter()
    run_sample(x[rows])
    return (time.perf_counter() - t0) * n / probe


# ---------------------------------------------------------------------------------------------
# benchmark
# ---------------------------------------------------------------------------------------------
def bench_knn(
    n_list: tuple[int, ...] = (13998, 100_000, 1_000_000),
    dim: int = 1024,
    k: int = 25,
    repeats: int = 3,
    time_budget_s: float = 300.0,
    approx_modes: tuple[str, ...] = ("hnsw", "ivf"),
    approx_min_n: int = 13998,
    recall_sample: int = 1000,
    probe_queries: int = 2000,
    synthetic: str = "clustered",
    seed: int = 0,
    index_kwargs: dict | None = None,
    verbose: bool = True,
) -> list[dict]:
    """Time exact and approximate kNN-graph construction at several sizes.

    Args:
        n_list: numbers of videos; sizes up to 13,998 use the real features.
        dim: dimension of the synthetic vectors (real ones are 1152-D).
        k: neighbours per video (self excluded).
        repeats: timed runs per method (fewer when they would exceed the budget).
        time_budget_s: per method and size; longer runs are skipped with their estimate.
        approx_modes: approximate modes to run ("hnsw", "ivf").
        approx_min_n: run the approximate modes at sizes ``>= approx_min_n``.
        recall_sample: queries for recall@k against exact search.
        probe_queries: queries timed to estimate a full run.
        synthetic: "clustered" or "uniform" (see the module docstring).
        seed: data, sample and IVF seed.
        index_kwargs: extra :func:`vidsage_core.graph.build_index` arguments for approximate
            modes, per mode: ``{"hnsw": {...}, "ivf": {...}}``.
        verbose: print each row as it is measured.

    Returns:
        One dict per (size, method): ``n``, ``dim``, ``data``, ``synthetic``, ``method``,
        ``status``, ``seconds`` (mean of the runs, or the estimate), ``seconds_min``,
        ``repeats``, ``estimated``, ``peak_rss_mb``, and for approximate modes
        ``build_seconds``, ``recall_at_k``, ``speedup_vs_exact``, ``params``; for the exact
        baselines ``agree_with_vidsage`` (fraction of identical neighbour ids).
    """
    import faiss

    index_kwargs = index_kwargs or {}
    rows: list[dict] = []

    def emit(row: dict) -> None:
        rows.append(row)
        if verbose:
            print(_fmt_row(row), flush=True)

    for n in n_list:
        gc.collect()
        if n <= REAL_N:
            x = real_features(n)
            data, is_syn = "real YouTube-8M 2018 video-level (rgb+audio, normalised)", False
        else:
            x = synthetic_unit_vectors(n, dim, seed=seed, kind=synthetic)
            data, is_syn = f"synthetic {synthetic} unit vectors (seed {seed})", True
        base = {"n": int(n), "dim": int(x.shape[1]), "k": k, "data": data, "synthetic": is_syn,
                "threads": faiss.omp_get_max_threads()}
        exact_idx = None
        exact_seconds = None
        exact_estimated = False

        exact_methods: list[tuple[str, Callable[[], Any], Callable[[np.ndarray], Any]]] = [
            ("vidsage exact", lambda: knn(x, k, device="cpu"),
             lambda q: knn(x, k, queries=q, exclude_self=False, device="cpu")),
            ("faiss flat", lambda: _faiss_flat(x, k), lambda q: _faiss_flat(x, k, q)),
            ("sklearn brute", lambda: _sklearn_brute(x, k), lambda q: _sklearn_brute(x, k, q)),
        ]
        for name, full, sample in exact_methods:
            est = _estimate(sample, x, probe_queries, seed)
            row = dict(base, method=name, params={}, estimated=False)
            if est > time_budget_s:
                row.update(status=f"skipped (too slow: est. {est:.0f} s)", seconds=est,
                           estimated=True, repeats=0)
                if name == "vidsage exact":
                    exact_seconds, exact_estimated = est, True
                emit(row)
                continue
            n_rep = max(1, min(repeats, int(time_budget_s // max(est, 1e-9))))
            times, cpus, mems = [], [], []
            out = None
            for _ in range(n_rep):
                out = None
                gc.collect()
                sec, cpu, mem, out = _timed(full)
                times.append(sec)
                cpus.append(cpu)
                mems.append(mem)
            ids = _neighbour_ids(name, out, k)
            row.update(status="ok", seconds=float(np.mean(times)), seconds_min=float(min(times)),
                       cpu_seconds=float(np.mean(cpus)), repeats=n_rep,
                       peak_rss_mb=float(max(mems)), load_avg_1min=os.getloadavg()[0])
            if name == "vidsage exact":
                exact_idx, exact_seconds = ids, float(np.mean(times))
            elif exact_idx is not None:
                row["agree_with_vidsage"] = float(np.mean(np.sort(ids, 1) == np.sort(exact_idx, 1)))
            del out
            emit(row)

        if n < approx_min_n:
            continue
        exact_index = build_index(x, mode="exact", device="cpu")
        for mode in approx_modes:
            gc.collect()
            kw = dict(index_kwargs.get(mode, {}))
            if mode == "ivf":
                kw.setdefault("seed", seed)

            def run() -> tuple:
                index = build_index(x, mode=mode, device="cpu", **kw)
                return index, knn(x, k, index=index)

            sec, cpu, mem, (index, (_, idx)) = _timed(run)
            rec = knn_recall(x, k, mode, sample=recall_sample, seed=seed, index=index,
                             exact_index=exact_index)
            if exact_idx is not None:
                full_recall = float(np.mean([len(np.intersect1d(a, b)) for a, b in
                                             zip(idx, exact_idx)]) / k)
            else:
                full_recall = None
            row = dict(base, method=f"vidsage {mode}", status="ok", seconds=sec, seconds_min=sec,
                       cpu_seconds=cpu, repeats=1, estimated=False, peak_rss_mb=mem,
                       load_avg_1min=os.getloadavg()[0],
                       build_seconds=index.build_seconds, params=index.params,
                       recall_at_k=rec["recall"], recall_sample=rec["sample"],
                       recall_all_queries=full_recall,
                       speedup_vs_exact=(exact_seconds / sec) if exact_seconds else None,
                       exact_seconds=exact_seconds, exact_estimated=exact_estimated)
            del index, idx
            emit(row)
        del x, exact_index, exact_idx
    return rows


def _neighbour_ids(name: str, out: Any, k: int) -> np.ndarray:
    """Neighbour ids ``[n, k]`` without the query itself, from any method's output."""
    if name == "vidsage exact":
        return out[1]
    ids = np.asarray(out[1])  # faiss: (D, I); scikit-learn: (dist, ind)
    n = ids.shape[0]
    self_hit = ids == np.arange(n)[:, None]
    drop = np.where(self_hit.any(1), self_hit.argmax(1), ids.shape[1] - 1)
    keep = np.ones_like(self_hit)
    keep[np.arange(n), drop] = False
    return ids[keep].reshape(n, k)


def _fmt_row(r: dict) -> str:
    s = (f"n={r['n']:>9,d} dim={r['dim']:>4d} {r['method']:<14s} {r['status']:<34s} "
         f"{r['seconds']:9.1f} s{' (est.)' if r.get('estimated') else ''}")
    if r.get("repeats"):
        s += f" x{r['repeats']} (cpu {r['cpu_seconds']:.1f} s, load {r['load_avg_1min']:.1f})"
    if r.get("peak_rss_mb") is not None:
        s += f"  peak +{r['peak_rss_mb']:.0f} MB"
    if r.get("agree_with_vidsage") is not None:
        s += f"  same ids {r['agree_with_vidsage']:.4f}"
    if r.get("recall_at_k") is not None:
        s += f"  recall@{r['k']} {r['recall_at_k']:.3f} (n={r['recall_sample']})"
        if r.get("speedup_vs_exact"):
            s += f"  speed-up {r['speedup_vs_exact']:.1f}x" + \
                (" vs est. exact" if r.get("exact_estimated") else "")
        s += f"  build {r['build_seconds']:.1f} s {r['params']}"
    return s


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one line per (size, method); optionally write JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[13998, 100_000, 1_000_000])
    p.add_argument("--dim", type=int, default=1024)
    p.add_argument("--k", type=int, default=25)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--time-budget", type=float, default=300.0)
    p.add_argument("--modes", nargs="*", default=["hnsw", "ivf"])
    p.add_argument("--approx-min-n", type=int, default=13998)
    p.add_argument("--recall-sample", type=int, default=1000)
    p.add_argument("--synthetic", choices=["clustered", "uniform"], default="clustered")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = p.parse_args(argv)
    rows = bench_knn(tuple(args.n), dim=args.dim, k=args.k, repeats=args.repeats,
                     time_budget_s=args.time_budget, approx_modes=tuple(args.modes),
                     approx_min_n=args.approx_min_n, recall_sample=args.recall_sample,
                     synthetic=args.synthetic, seed=args.seed)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
