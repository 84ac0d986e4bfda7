"""Benchmark: building the k-nearest-neighbour graph that LiteVidSage and VidSage start from.

Compares, at each size ``n``, over all ``n`` videos as queries (the full kNN graph):

* ``vidsage exact`` — :func:`vidsage_core.knn.knn` (FAISS flat index, blocked queries,
  self-exclusion by index);
* ``faiss flat`` — FAISS ``IndexFlatIP`` called directly (one ``search`` of ``k + 1``);
* ``sklearn brute`` — scikit-learn ``NearestNeighbors(algorithm="brute", n_jobs=-1)``;
* ``vidsage hnsw`` / ``vidsage ivf`` / ``vidsage ivf-gemm`` — the approximate modes, with
  recall@k against exact search on a sample of queries and the speed-up over the exact graph.
  The FAISS modes (hnsw, ivf) run only up to ``faiss_modes_max_n`` videos: at 500k their graph
  already takes ~20 minutes or more on 2 cores (results/benchmarks.md, scale-2), while
  ``ivf-gemm`` (IVF probing as one matrix product per list) is the mode meant for large ``n``.

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
records the process CPU time and the 1-minute load average. Peak memory is the peak process
RSS (psutil, sampled every 20 ms) above the RSS before the method started: it includes FAISS's
C++ allocations, which ``tracemalloc`` cannot see.

The same file regenerates the measurements behind the graph defaults of
``vidsage_core.graph`` (k, tau) and ``vidsage_core.objects`` (proxy concepts):
:func:`sweep_graph_defaults` (``--sweep-graph-defaults``), on train/validation labels only.

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

from benchmarks.knn_recall import knn_recall  # noqa: E402
from vidsage_core.knn import build_index, knn  # noqa: E402

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
    """Peak resident set size above the starting RSS, sampled by a background thread, and
    the peak of ``tracemalloc`` (numpy / Python allocations only).

    RSS growth is a lower bound when the method reuses memory an earlier run freed but the
    allocator kept (then it can read ~0); ``tracemalloc`` misses FAISS and torch buffers.
    Rows report both.
    """

    def __init__(self, interval: float = 0.02) -> None:
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> "PeakRSS":
        import tracemalloc

        gc.collect()
        tracemalloc.start()
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
        import tracemalloc

        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)
        self.traced_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()

    @property
    def peak_mb(self) -> float:
        return (self.peak - self.base) / 2**20

    @property
    def traced_mb(self) -> float:
        return self.traced_peak / 2**20


def _timed(fn: Callable[[], Any]) -> tuple[float, float, tuple[float, float], Any]:
    """Wall seconds, CPU seconds (all threads of this process), (peak RSS growth MB, peak
    traced MB), result."""
    with PeakRSS() as mem:
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        sec, cpu = time.perf_counter() - t0, time.process_time() - c0
    return sec, cpu, (mem.peak_mb, mem.traced_mb), out


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
    approx_modes: tuple[str, ...] = ("hnsw", "ivf", "ivf-gemm"),
    approx_min_n: int = 13998,
    faiss_modes_max_n: int = 100_000,
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
        approx_modes: approximate modes to run ("hnsw", "ivf", "ivf-gemm").
        approx_min_n: run the approximate modes at sizes ``>= approx_min_n``.
        faiss_modes_max_n: run "hnsw" and "ivf" only at sizes ``<= faiss_modes_max_n``.
        recall_sample: queries for recall@k against exact search.
        probe_queries: queries timed to estimate a full run.
        synthetic: "clustered" or "uniform" (see the module docstring).
        seed: data, sample and IVF seed.
        index_kwargs: extra :func:`vidsage_core.knn.build_index` arguments for approximate
            modes, per mode: ``{"hnsw": {...}, "ivf": {...}, "ivf-gemm": {...}}``.
        verbose: print each row as it is measured.

    Returns:
        One dict per (size, method): ``n``, ``dim``, ``data``, ``synthetic``, ``method``,
        ``status``, ``seconds`` (mean of the runs, or the estimate), ``seconds_min``,
        ``cpu_seconds``, ``load_avg_1min``, ``repeats``, ``estimated``, ``peak_rss_mb``,
        ``peak_traced_mb`` (see :class:`PeakRSS`), and for approximate modes
        ``build_seconds``, ``recall_at_k``, ``speedup_vs_exact``, ``params``, ``exact_seconds``,
        ``exact_estimated`` and ``exact_probe_queries`` (the sampled queries the exact time was
        extrapolated from, when it was); ``ivf-gemm`` rows add ``train_seconds`` (k-means) and
        ``assign_seconds``. For the exact baselines ``agree_with_vidsage`` (fraction of
        identical neighbour ids).
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
            # Every side is timed on the same sampled queries, so sides too slow to run in full
            # can still be compared on one basis (brute-force cost is linear in the queries).
            row = dict(base, method=name, params={}, estimated=False, sample_estimate_seconds=est,
                       probe_queries=min(probe_queries, n))
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
                       peak_rss_mb=float(max(m[0] for m in mems)),
                       peak_traced_mb=float(max(m[1] for m in mems)),
                       load_avg_1min=os.getloadavg()[0])
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
            if mode in ("hnsw", "ivf") and n > faiss_modes_max_n:
                if verbose:
                    print(f"n={n:>9,d} vidsage {mode}: not run above faiss_modes_max_n="
                          f"{faiss_modes_max_n:,} (hours on a small CPU)", flush=True)
                continue
            gc.collect()
            kw = dict(index_kwargs.get(mode, {}))
            if mode in ("ivf", "ivf-gemm"):
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
                       cpu_seconds=cpu, repeats=1, estimated=False, peak_rss_mb=mem[0],
                       peak_traced_mb=mem[1],
                       load_avg_1min=os.getloadavg()[0],
                       build_seconds=index.build_seconds, params=index.params,
                       recall_at_k=rec["recall"], recall_sample=rec["sample"],
                       recall_all_queries=full_recall,
                       speedup_vs_exact=(exact_seconds / sec) if exact_seconds else None,
                       exact_seconds=exact_seconds, exact_estimated=exact_estimated,
                       exact_probe_queries=probe_queries if exact_estimated else None)
            if mode == "ivf-gemm":
                row.update(train_seconds=index.index.train_seconds,
                           assign_seconds=index.index.assign_seconds)
            del index, idx
            emit(row)
        del x, exact_index, exact_idx
    return rows


# ---------------------------------------------------------------------------------------------
# graph defaults (k, tau, proxy concepts) on the real data
# ---------------------------------------------------------------------------------------------
LITE_GRID = (
    [(k, -0.35) for k in (15, 25, 35, 50, 100)]
    + [(25, t) for t in (-0.30, -0.25, -0.20, 0.0, 0.2)]
)
PROXY_GRID = (  # (modality, num_subspaces, num_codewords, top)
    ("rgb+audio", 8, 128, 2), ("rgb+audio", 8, 64, 2), ("rgb+audio", 8, 256, 2),
    ("rgb+audio", 8, 128, 1), ("rgb+audio", 8, 64, 1), ("rgb+audio", 16, 128, 1),
    ("rgb+audio", 16, 64, 1), ("rgb+audio", 4, 64, 1), ("rgb", 8, 64, 1), ("rgb", 16, 64, 1),
    ("audio", 8, 64, 1), ("audio", 4, 64, 1),
)


def neighbour_label_gap(graph: Any, labels: Any, source_rows: np.ndarray,
                        target_rows: np.ndarray) -> tuple[float, float]:
    """GAP of predicting each target video's labels by the edge-weighted average of the labels
    of its neighbours among ``source_rows`` (a non-learned graph baseline).

    Returns:
        (GAP@20 on the targets, fraction of targets without a source neighbour).
    """
    import scipy.sparse as sp

    from vidsage_core.metrics import gap

    a = graph.to_scipy().tocsr()
    keep = np.zeros(a.shape[0], np.float32)
    keep[source_rows] = 1.0
    a = a[target_rows] @ sp.diags(keep)
    deg = np.asarray(a.sum(1)).ravel()
    scores = (sp.diags(1.0 / np.maximum(deg, 1e-12)) @ a @ labels).toarray()
    return gap(scores, labels[target_rows]), float(np.mean(deg == 0))


def sweep_graph_defaults(lite_grid=LITE_GRID, proxy_grid=PROXY_GRID, verbose: bool = True,
                         ) -> dict[str, list[dict]]:
    """Measure LiteVidSage (k, tau) and proxy-concept settings on the real YouTube-8M videos.

    Graphs span all 13,998 videos (features only); labels are used for train (md5 buckets
    2-4) and validation (bucket 1) only, never for the test bucket 0. Per setting: mean/max
    degree, isolated videos, label homophily over train/val edges (and for random pairs),
    validation GAP of :func:`neighbour_label_gap` from the training videos; for proxy concepts
    the Jaccard-only graph (``vidsage_core.graph`` defaults) and the VidSage mix
    (0.7 w1 + 0.3 w2 with the default LiteVidSage graph).

    Returns:
        ``{"lite": [...], "proxy": [...]}`` rows (also printed when ``verbose``).
    """
    from vidsage_core import paths
    from vidsage_core.data import read_tfrecords, split_by_id
    from vidsage_core.graph import VideoGraph, build_graph, lite_graph
    from vidsage_core.graph_stats import graph_stats
    from vidsage_core.jaccard import jaccard_edges
    from vidsage_core.objects import FeatureCodebookProxy

    vs = read_tfrecords(paths.YT8M_2018_GLOB, progress=False)
    split = split_by_id(vs.ids)
    y = vs.labels.tocsr()
    mask = np.zeros(len(vs), bool)
    mask[split.train] = mask[split.val] = True
    x = vs.features("rgb+audio", normalize=True)
    n = len(vs)
    out: dict[str, list[dict]] = {"lite": [], "proxy": []}

    def describe(g: Any) -> dict:
        st = graph_stats(g, y, node_mask=mask)
        val_gap, no_nb = neighbour_label_gap(g, y, split.train, split.val)
        return {"mean_degree": st["degree_mean"], "max_degree": st["degree_max"],
                "isolated": st["isolated_nodes"], "homophily": st["homophily"],
                "weighted_homophily": st["weighted_homophily"],
                "homophily_random_pairs": st["homophily_random_pairs"],
                "val_gap": val_gap, "val_without_train_neighbour": no_nb}

    max_k = max(k for k, _ in lite_grid)
    dist, idx = knn(x, max_k)
    for k, tau in lite_grid:
        keep = (1.0 - dist[:, :k]) >= tau
        rows = np.repeat(np.arange(n), k)[keep.ravel()]
        g = build_graph(rows, idx[:, :k][keep], 1.0, n)
        row = {"k": k, "tau": tau, **describe(g)}
        out["lite"].append(row)
        if verbose:
            print("lite", json.dumps(row), flush=True)

    lite = lite_graph(x)
    for modality, subspaces, codewords, top in proxy_grid:
        src = FeatureCodebookProxy(modality, subspaces, codewords, top).fit(vs, split.train)
        ei, w, info = jaccard_edges(src.object_sets(vs), return_info=True)
        jac = VideoGraph(ei, w, n)
        mix = build_graph(np.concatenate([ei[0].numpy(), lite.edge_index[0].numpy()]),
                          np.concatenate([ei[1].numpy(), lite.edge_index[1].numpy()]),
                          np.concatenate([0.7 * w.numpy(), 0.3 * lite.edge_weight.numpy()]),
                          n, symmetrize=False, reduce="sum")
        row = {"source": src.name, "modality": modality, "num_subspaces": subspaces,
               "num_codewords": codewords, "top": top, **describe(jac),
               "candidate_pairs": info["candidate_pairs"],
               "stop_objects": len(info["stop_objects"]),
               "mix_val_gap": neighbour_label_gap(mix, y, split.train, split.val)[0]}
        out["proxy"].append(row)
        if verbose:
            print("proxy", json.dumps(row), flush=True)
    return out


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
        s += f"  peak RSS +{r['peak_rss_mb']:.0f} MB, traced {r['peak_traced_mb']:.0f} MB"
    if r.get("agree_with_vidsage") is not None:
        s += f"  same ids {r['agree_with_vidsage']:.4f}"
    if r.get("recall_at_k") is not None:
        s += f"  recall@{r['k']} {r['recall_at_k']:.3f} (n={r['recall_sample']})"
        if r.get("speedup_vs_exact"):
            s += f"  speed-up {r['speedup_vs_exact']:.1f}x" + \
                (f" vs exact extrapolated from {r['exact_probe_queries']:,} sampled queries"
                 if r.get("exact_estimated") else "")
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
    p.add_argument("--modes", nargs="*", default=["hnsw", "ivf", "ivf-gemm"])
    p.add_argument("--approx-min-n", type=int, default=13998)
    p.add_argument("--faiss-modes-max-n", type=int, default=100_000,
                   help="run hnsw / ivf only up to this size (ivf-gemm runs at every size)")
    p.add_argument("--recall-sample", type=int, default=1000)
    p.add_argument("--synthetic", choices=["clustered", "uniform"], default="clustered")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the rows here")
    p.add_argument("--sweep-graph-defaults", action="store_true",
                   help="instead: measure LiteVidSage (k, tau) and proxy-concept settings on "
                        "the real data (train/validation labels only)")
    args = p.parse_args(argv)
    if args.sweep_graph_defaults:
        res = sweep_graph_defaults()
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(res, indent=1) + "\n")
        return 0
    rows = bench_knn(tuple(args.n), dim=args.dim, k=args.k, repeats=args.repeats,
                     time_budget_s=args.time_budget, approx_modes=tuple(args.modes),
                     approx_min_n=args.approx_min_n, faiss_modes_max_n=args.faiss_modes_max_n,
                     recall_sample=args.recall_sample,
                     synthetic=args.synthetic, seed=args.seed)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
