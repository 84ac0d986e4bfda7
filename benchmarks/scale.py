"""YouTube-8M scale on one machine, through the product: ``vidsage run --stream`` on millions of videos.

``python -m benchmarks --only scale --num-videos 4000000`` (or ``python -m benchmarks.scale
--num-videos 4000000``) runs, for ``N`` synthetic videos with YouTube-8M's shapes (1024 rgb + 128
audio dimensions, labelled *synthetic*):

1. **features**: written as YouTube-8M video-level TFRecords (``data.write_video_level_tfrecord``,
   ``videos_per_shard`` per shard), generated block by block (a Zipf mixture of topics in a
   latent space lifted to 1152-D plus noise; each video's label is its topic's class);
2. then exactly what a user runs, :func:`vidsage_core.pipeline.run_streamed`
   (``vidsage run --stream --variant lite --knn-mode ivf-gemm --max-steps S --head-sample H``):
   **read** (the TFRecords streamed group by group into float16 train+val / test stores),
   **graph** (LiteVidSage over the train+val store, ivf-gemm neighbour search reading the memmap
   list by list), **train** (``vidsage_core.train.train`` from the store: each step reads only
   its sampled subgraph's rows; ``warmup_steps + train_steps`` steps of the paper's recipe),
   **embed** (``VidSage.inference``: layer by layer over every train+val video into a float16
   ``.npy``), **embed_test** (test videos attached inductively in blocks) and **heads** (one
   logistic head fitted and scored on ``head_sample`` videos per split).

This module only orchestrates: it generates the data, polls memory per stage (peak RSS from the
kernel's high-water mark, reset per stage, and the polled anonymous / file-backed split: the
file-backed pages of the memmaps are page cache the kernel may drop), reads the per-step times
from the run's ``history.json``, and extrapolates to 4M videos where the run was smaller (every
extrapolated value is labelled EXTRAPOLATED). It defines no model, optimiser or search of its own.

GPU: every tensor stage runs on CUDA when present (``device="auto"``), with bf16 autocast in
training; the brief's GPU target is one epoch in <= 5 min on an H100. Where no GPU was available,
the JSON and the report say so.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from benchmarks.report import Row, _reset_peak_rss, _status_kib, device_label, machine_info, malloc_trim, now_iso
from vidsage_core import paths

RGB_DIM, AUDIO_DIM = 1024, 128
GIB = 2**30
TARGET_RAM_GIB = 24.0
TARGET_GPU_EPOCH_S = 300.0
YT8M_SIZE = 4_000_000  # the brief's target size (YouTube-8M 2018: ~6.1M videos in train+validate)


@dataclass(frozen=True)
class ScaleConfig:
    """One scale run. Defaults are the brief's 4M-video case and the paper's training recipe."""

    num_videos: int = YT8M_SIZE
    rgb_dim: int = RGB_DIM  # YouTube-8M mean_rgb
    audio_dim: int = AUDIO_DIM  # YouTube-8M mean_audio
    num_classes: int = 3862  # YouTube-8M 2018 vocabulary
    seed: int = 0
    block: int = 65_536  # rows generated per block: bounds every temporary of the generator
    videos_per_shard: int = 4_096  # YouTube-8M's own shards hold ~1,000-1,200 videos; fewer files here
    # Synthetic model: a Zipf mixture of `num_topics` clusters in a `latent_dim`-D space, lifted to
    # 1152-D, plus isotropic noise (the same family as benchmarks/bench_knn.py's "clustered" data).
    num_topics: int = 1000
    latent_dim: int = 64
    centre_scale: float = 2.0
    noise: float = 0.35
    knn_mode: str = "ivf-gemm"  # vidsage_core.knn's IVF-as-GEMM: no float32 copy of the store
    # Training (paper §3.4; TrainConfig otherwise). A CPU cannot run an epoch (minutes per step at 4M).
    train_steps: int = 3  # timed steps
    warmup_steps: int = 1  # untimed first step (allocations, lazy initialisation)
    batch_size: int = 512
    fanouts: tuple[int, ...] = (25, 10)
    hidden_dim: int = 256
    out_dim: int = 256
    lr: float = 1e-3
    head_sample: int = 100_000  # videos per split for the logistic head (dense scores: N_test x 3862)
    device: str = "auto"
    ram_budget_gib: float = TARGET_RAM_GIB
    work_dir: str | None = None  # default results/cache/scale-<N> (git-ignored)
    keep_work: bool = False  # keep the TFRecords, stores and embeddings afterwards
    # After the run, `torchrun --nproc_per_node ddp_procs -m vidsage_core.train` over the same store
    # and graph for the same steps (gloo on CPU, cores / ddp_procs threads per rank); 0: skip.
    ddp_procs: int = 2
    # A checkout of PEER_COMMIT (`git worktree add DIR 59e28ae`): its private training loop runs the
    # same steps on the same store and graph, the per-step peer of the product's trainer. None: skip.
    peer_tree: str | None = None


# ---------------------------------------------------------------------------------------------
# memory monitoring
# ---------------------------------------------------------------------------------------------
class StageMemory:
    """Per-stage peak RSS (kernel VmHWM, reset at each stage) plus polled anon/file peaks."""

    def __init__(self, poll_s: float = 0.5) -> None:
        self.poll_s = poll_s
        self.stages: dict[str, dict[str, float]] = {}
        self._cur: str | None = None
        self._peak_anon = 0
        self._peak_file = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            a = (_status_kib("RssAnon") or 0) * 1024
            f = (_status_kib("RssFile") or 0) * 1024 + (_status_kib("RssShmem") or 0) * 1024
            self._peak_anon = max(self._peak_anon, a)
            self._peak_file = max(self._peak_file, f)
            time.sleep(self.poll_s)

    def start(self, name: str) -> None:
        gc.collect()
        malloc_trim()
        self._cur = name
        self._kernel = _reset_peak_rss()
        self._peak_anon = (_status_kib("RssAnon") or 0) * 1024
        self._peak_file = (_status_kib("RssFile") or 0) * 1024
        self._t0 = time.perf_counter()

    def stop(self) -> dict[str, float]:
        hwm = (_status_kib("VmHWM") or 0) * 1024 if self._kernel else 0
        rss = (_status_kib("VmRSS") or 0) * 1024
        # Without the kernel high-water mark the polled anon + file peaks bound it from below.
        polled = 0 if self._kernel else self._peak_anon + self._peak_file
        out = {"seconds": time.perf_counter() - self._t0,
               "peak_rss_gib": max(hwm, rss, polled) / GIB,
               "peak_anon_gib": self._peak_anon / GIB, "peak_file_gib": self._peak_file / GIB}
        self.stages[self._cur or "?"] = out
        self._cur = None
        return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def peak(self) -> dict[str, float]:
        return {k: max((s[k] for s in self.stages.values()), default=0.0)
                for k in ("peak_rss_gib", "peak_anon_gib", "peak_file_gib")}


# ---------------------------------------------------------------------------------------------
# 1. synthetic YouTube-8M TFRecords
# ---------------------------------------------------------------------------------------------
def write_synthetic_tfrecords(directory: str | Path, config: ScaleConfig, progress: bool = False) -> list[Path]:
    """Write ``N`` synthetic videos as YouTube-8M video-level TFRecords (``id``, ``labels``,
    ``mean_rgb``, ``mean_audio``), ``config.videos_per_shard`` per file.

    Row ``i``: topic ``c ~ Zipf``, latent ``z = centre[c] + N(0, I_latent)``,
    ``x = z @ P + noise * N(0, I_1152)`` (``P`` a fixed random lift; columns 0-1023 are "rgb",
    1024-1151 "audio"), label = the topic's class. Block ``b`` draws from
    ``default_rng([seed, 1, b])``, so the data depends only on the config: a directory whose
    ``manifest.json`` records the same data fields and whose shards all exist is reused as it is
    (``--keep-work``: writing 4M videos takes ~25 min on a 2-core CPU).

    Returns:
        The shard paths, in order.
    """
    from tqdm.auto import tqdm

    from vidsage_core.data import write_video_level_tfrecord

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    n, d = config.num_videos, config.rgb_dim + config.audio_dim
    g = np.random.default_rng([config.seed, 0])
    w = 1.0 / np.arange(1, config.num_topics + 1) ** 0.5
    topic_cdf = np.cumsum(g.permutation(w / w.sum()))
    topic_cdf[-1] = 1.0
    centres = (g.standard_normal((config.num_topics, config.latent_dim)) * config.centre_scale).astype(np.float32)
    lift = (g.standard_normal((config.latent_dim, d)) / math.sqrt(config.latent_dim)).astype(np.float32)
    topic_class = g.permutation(config.num_classes)[np.arange(config.num_topics) % config.num_classes]
    made = written_tfrecords(directory, config)
    if made is not None:  # deterministic in the config: the same bytes again
        return [directory / name for name in made["shards"]]
    manifest = directory / "manifest.json"
    manifest.unlink(missing_ok=True)
    t0 = time.perf_counter()
    shards: list[Path] = []
    per = config.videos_per_shard
    block = max(per, config.block // per * per)  # whole shards per generated block
    for b, s in enumerate(tqdm(range(0, n, block), desc="synthetic TFRecords", unit="block", disable=not progress)):
        e = min(n, s + block)
        r = np.random.default_rng([config.seed, 1, b])
        topic = np.searchsorted(topic_cdf, r.random(e - s), "right")
        x = (centres[topic] + r.standard_normal((e - s, config.latent_dim), dtype=np.float32)) @ lift
        x += config.noise * r.standard_normal((e - s, d), dtype=np.float32)
        for t in range(s, e, per):
            u = min(e, t + per)
            path = directory / f"train{len(shards):05d}.tfrecord"
            rows = slice(t - s, u - s)
            write_video_level_tfrecord(path, [f"syn{i:08d}" for i in range(t, u)], x[rows, :config.rgb_dim],
                                       x[rows, config.rgb_dim:], [[int(c)] for c in topic_class[topic[rows]]])
            shards.append(path)
    manifest.write_text(json.dumps({"data": _data_fields(config), "shards": [p.name for p in shards],
                                    "seconds": time.perf_counter() - t0}, indent=1))
    return shards


def written_tfrecords(directory: Path, config: ScaleConfig) -> dict[str, Any] | None:
    """The manifest of ``directory``'s TFRecords if they are this config's data and all exist."""
    manifest = Path(directory) / "manifest.json"
    if not manifest.exists():
        return None
    made = json.loads(manifest.read_text())
    ok = made.get("data") == _data_fields(config) and all((Path(directory) / f).exists() for f in made["shards"])
    return made if ok else None


def _data_fields(config: ScaleConfig) -> dict[str, Any]:
    """The ScaleConfig fields that determine the synthetic TFRecords' bytes."""
    keep = ("num_videos", "rgb_dim", "audio_dim", "num_classes", "seed", "block", "videos_per_shard",
            "num_topics", "latent_dim", "centre_scale", "noise")
    return {k: getattr(config, k) for k in keep}


# ---------------------------------------------------------------------------------------------
# 2. the product's streamed run, with memory polled per stage
# ---------------------------------------------------------------------------------------------
def default_work_dir(num_videos: int) -> Path:
    return paths.RESULTS / "cache" / f"scale-{num_videos}"


def result_path(num_videos: int) -> Path:
    return paths.RESULTS / "scale" / f"scale-{num_videos}.json"


def run_config(config: ScaleConfig, data: str, out: str | Path, device: str):
    """The ``vidsage run --stream`` configuration this benchmark runs (also its CLI equivalent)."""
    from vidsage_core.pipeline import RunConfig

    train = {"max_steps": config.warmup_steps + config.train_steps, "epochs": 1, "hidden_dim": config.hidden_dim,
             "out_dim": config.out_dim, "batch_size": config.batch_size, "fanouts": tuple(config.fanouts),
             "lr": config.lr, "checkpoint_every": 10**9}
    return RunConfig(data=data, out=str(out), dataset=f"synthetic-{config.num_videos}", variants=("lite",),
                     seeds=(config.seed,), device=device, heads=("logistic",), gnn_heads=("logistic",),
                     knn_mode=config.knn_mode, concat_raw=False, baselines=False, stream=True,
                     head_sample=config.head_sample, train_overrides=train)


def run_scale(config: ScaleConfig = ScaleConfig(), progress: bool = True, out_json: str | Path | None = None,
              log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Generate the TFRecords, run ``vidsage run --stream`` on them, write ``results/scale/scale-<N>.json``.

    Args:
        config: the run.
        progress: tqdm bars.
        out_json: where to write the result (default ``result_path(N)``).
        log: line logger (default: print, flushed).

    Returns:
        The result dict written to ``out_json``.
    """
    from vidsage_core.pipeline import run_streamed
    from vidsage_core.utils import resolve_device, save_json

    log = log or (lambda line: print(line, flush=True))
    device = resolve_device(config.device)
    n = config.num_videos
    work = Path(config.work_dir) if config.work_dir else default_work_dir(n)
    work.mkdir(parents=True, exist_ok=True)
    out_json = Path(out_json) if out_json else result_path(n)
    mem = StageMemory()
    rc = run_config(config, str(work / "tfrecords" / "*.tfrecord"), work / "run", device)
    result: dict[str, Any] = {
        "created": now_iso(), "synthetic": True,
        "data": (f"synthetic: {n:,} videos with {config.rgb_dim} rgb + {config.audio_dim} audio dimensions "
                 f"(YouTube-8M 2018: 1024 + 128) written as video-level TFRecords, Zipf mixture of "
                 f"{config.num_topics} topics in a {config.latent_dim}-D latent space + isotropic noise; "
                 "label = the topic's class"),
        "config": {**dataclasses.asdict(config), "work_dir": _portable(work)},
        "run_config": {**dataclasses.asdict(rc), "data": "<work_dir>/tfrecords/*.tfrecord", "out": "<work_dir>/run"},
        "command": (f"vidsage run --stream --data '<work>/tfrecords/*.tfrecord' --variant lite --knn-mode "
                    f"{config.knn_mode} --max-steps {config.warmup_steps + config.train_steps} --head-sample "
                    f"{config.head_sample} --no-baselines (+ TrainConfig width/batch overrides)"),
        "device": device_label(device), "gpu_available": torch.cuda.is_available(),
        "machine": machine_info(), "stages": {}, "status": "running",
    }
    if not torch.cuda.is_available():
        result["gpu_note"] = ("no GPU on this machine: every stage ran on the CPU; the H100 target (one epoch "
                              "<= 5 min) is not measured here")
    current: list[str | None] = [None]

    def on_stage(name: str) -> None:
        if current[0] is not None:
            m = mem.stop()
            result["stages"][current[0]] = {**m, **result["stages"].get(current[0], {})}
            log(f"[scale N={n:,}] {current[0]}: {m['seconds']:.1f} s, peak RSS {m['peak_rss_gib']:.2f} GiB "
                f"(anon {m['peak_anon_gib']:.2f}, file {m['peak_file_gib']:.2f})")
            save_json(result, out_json)
        current[0] = None if name == "done" else name
        if name != "done":
            log(f"[scale N={n:,}] {name} ...")
            mem.start(name)

    try:
        on_stage("features")
        before = written_tfrecords(work / "tfrecords", config)
        shards = write_synthetic_tfrecords(work / "tfrecords", config, progress)
        result["stages"]["features"] = {"shards": len(shards),
                                        "gib_on_disk": sum(p.stat().st_size for p in shards) / GIB}
        if before is not None:  # kept from an earlier run (--keep-work): its writing time is recorded
            result["stages"]["features"].update(reused=True, written_seconds=before["seconds"])
        metrics = run_streamed(rc, progress=progress, on_stage=on_stage)
        result["stages"]["train"].update(train_record(work / "run" / "lite" / f"seed{config.seed}", config))
        head = metrics["rows"][0] if metrics["rows"] else {}
        result["stages"]["heads"].update({k: head.get(k) for k in ("method", "gap", "hit_at_one", "fit_seconds")})
        result["stages"]["heads"]["sample"] = metrics["provenance"]["head_sample"]
        result["stages"]["graph"].update(metrics["provenance"].get("lite_graph", {}))
        result["stages"]["read"].update(split=metrics["provenance"]["split"],
                                        skipped=metrics["provenance"]["skipped"])
        after: dict[str, dict[str, Any]] = {}  # a stage's record exists once the next one starts
        if config.ddp_procs > 1:
            on_stage("ddp")
            after["ddp"] = ddp_steps(work, config)
        if config.peer_tree:
            on_stage("peer_train")
            after["peer_train"] = peer_steps(work, config)
        on_stage("done")
        for name, record in after.items():
            result["stages"][name].update(record)
        result["status"] = "ok"
        if n < YT8M_SIZE:
            result["extrapolated_to_4M"] = extrapolate(result, YT8M_SIZE)
    except BaseException as exc:  # record what happened, then re-raise
        result["status"] = f"failed: {type(exc).__name__}: {exc}"
        raise
    finally:
        mem.close()
        result["peak"] = mem.peak()
        result["total_seconds"] = sum(s.get("seconds", 0.0) for s in result["stages"].values())
        result["within_ram_target"] = result["peak"]["peak_rss_gib"] <= TARGET_RAM_GIB
        result["finished"] = now_iso()
        save_json(result, out_json)
        if not config.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    log(f"[scale N={n:,}] done in {result['total_seconds']:.0f} s; peak RSS {result['peak']['peak_rss_gib']:.2f} GiB; "
        f"wrote {_portable(out_json)}")
    return result


def _train_flags(config: ScaleConfig) -> list[str]:
    """``python -m vidsage_core.train`` flags of the run's TrainConfig overrides (run_config's, so
    the ranks train exactly what the run's train stage did)."""
    fields = {**run_config(config, "", "", "cpu").train_overrides, "seed": config.seed}
    flags: list[str] = []
    for key, value in fields.items():
        flags += [f"--{key.replace('_', '-')}", *map(str, value if isinstance(value, tuple) else (value,))]
    return flags


def ddp_steps(work: Path, config: ScaleConfig) -> dict[str, Any]:
    """``torchrun --standalone --nproc_per_node P -m vidsage_core.train`` over the run's own store
    and graph (the documented multi-process path; gloo on CPU), ``warmup + train`` steps.

    Each rank memory-maps the one float16 store and loads the graph; ``batch_size`` anchors per
    rank, so a step trains on ``P x batch_size`` anchors. Returns the step times (rank 0's
    ``history.json``), the command, and the largest rank's peak RSS (``RUSAGE_CHILDREN``).
    """
    out = work / "ddp"
    shutil.rmtree(out, ignore_errors=True)
    procs = config.ddp_procs
    threads = max(1, (os.cpu_count() or 1) // procs)
    args = ["--standalone", f"--nproc_per_node={procs}", "-m", "vidsage_core.train",
            "--features", str(work / "run" / "store" / "trainval" / "features.npy"),
            "--graph", str(work / "run" / "lite" / "graph.pt"), "--out", str(out),
            *_train_flags(config), "--device", "cpu", "--no-embed", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "torch.distributed.run", *args], check=True, env=env)
    seconds = time.perf_counter() - t0
    rec = train_record(out, config)
    return {**{k: rec[k] for k in ("steps_run", "steps_timed", "step_seconds", "step_s_median",
                                   "subgraph_nodes_median", "loss_first", "loss_last")},
            "procs": procs, "threads_per_rank": threads, "backend": "gloo",
            "anchors_per_step": procs * config.batch_size, "process_seconds": seconds,
            "largest_rank_peak_rss_gib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / GIB,
            "command": "torchrun " + " ".join(a if not a.startswith(str(work)) else
                                              "<work>" + a[len(str(work)):] for a in args)}


#: The commit whose benchmarks/scale.py held the private training loop (``train_on_memmap``) that
#: measured the 4M rows before the product's trainer read stores: the per-step peer.
PEER_COMMIT = "59e28ae"

# Run in a subprocess whose working directory is a checkout of PEER_COMMIT, so that it imports
# that commit's benchmarks and vidsage_core (this module defines no training loop of its own).
_PEER_SCRIPT = """
import json, sys, time
import numpy as np
from benchmarks.scale import ScaleConfig, train_on_memmap
from vidsage_core.graph import VideoGraph
work, steps, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
feats = np.load(work + "/run/store/trainval/features.npy", mmap_mode="r")
graph = VideoGraph.load(work + "/run/lite/graph.pt")
cfg = ScaleConfig(num_videos=feats.shape[0], train_steps=steps, warmup_steps=warmup)
out = train_on_memmap(feats, graph, cfg, "cpu")
out.pop("_model")
print("PEER " + json.dumps(out))
"""


def peer_steps(work: Path, config: ScaleConfig) -> dict[str, Any]:
    """The former private loop (``PEER_COMMIT``'s ``train_on_memmap``: same model, sampler,
    negatives and batch) for the same steps on the run's own store and graph, in a subprocess
    run from ``config.peer_tree``."""
    tree = Path(config.peer_tree)
    if not (tree / "benchmarks" / "scale.py").exists():
        raise FileNotFoundError(f"--peer-tree {tree}: not a checkout (git worktree add {tree} {PEER_COMMIT})")
    done = subprocess.run([sys.executable, "-c", _PEER_SCRIPT, str(work.resolve()), str(config.train_steps),
                           str(config.warmup_steps)], cwd=tree, check=True, capture_output=True, text=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("PEER "))
    out = json.loads(line[5:])
    return {"step_s_median": out["median"]["step_s"], "median": out["median"], "steps_timed": out["steps_timed"],
            "loss_first": out["loss_first"], "loss_last": out["loss_last"],
            "loop": f"benchmarks.scale.train_on_memmap at commit {PEER_COMMIT}"}


def _portable(path: Path) -> str:
    """``path`` relative to the repository root when inside it (results carry no machine paths)."""
    try:
        return str(Path(path).resolve().relative_to(paths.ROOT))
    except ValueError:
        return "<outside the repository>"


def train_record(run_dir: Path, config: ScaleConfig) -> dict[str, Any]:
    """Per-step times and subgraph sizes from the trainer's own ``history.json`` / ``config.json``."""
    hist = json.loads((run_dir / "history.json").read_text())
    resolved = json.loads((run_dir / "config.json").read_text())["resolved"]
    times = np.diff([0.0] + [h["time"] for h in hist])
    timed = times[config.warmup_steps:]
    step_s = float(np.median(timed)) if timed.size else float("nan")
    nodes = float(np.median([h["nodes"] for h in hist[config.warmup_steps:]] or [float("nan")]))
    spe = int(resolved["steps_per_epoch"])
    return {"steps_run": len(hist), "steps_timed": int(timed.size), "warmup_steps": config.warmup_steps,
            "step_seconds": [round(float(t), 3) for t in times], "step_s_median": step_s,
            "subgraph_nodes_median": nodes, "seeds_per_step": min(resolved["num_nodes"],
                                                                  config.batch_size * (2 + 5)),
            "steps_per_epoch": spe, "epoch_s_extrapolated": spe * step_s, "batch_size": config.batch_size,
            "fanouts": list(config.fanouts), "num_nodes": resolved["num_nodes"],
            "full_graph": resolved["full_graph"], "sampler": resolved["sampler_backend"],
            "loss_first": hist[0]["loss"], "loss_last": hist[-1]["loss"],
            "trainer": "vidsage_core.train.train (features read per step from the float16 memmap store)"}


def expected_subgraph_nodes(num_nodes: int, seeds: float, fanouts: tuple[int, ...] | list[int]) -> float:
    """Expected distinct nodes of a fan-out neighbour sample, modelling draws as uniform over nodes.

    Hop ``h`` draws ``frontier * fanout`` nodes; the new ones are the draws that land outside the
    current set: ``(N - total) * (1 - exp(-draws / N))``. A crude model (real graphs are not
    uniform), used only to scale a measured step time to another ``N``.
    """
    total = frontier = float(seeds)
    for f in fanouts:
        new = (num_nodes - total) * (1.0 - math.exp(-frontier * f / num_nodes))
        total += new
        frontier = new
    return total


def extrapolate(result: dict[str, Any], target_n: int = YT8M_SIZE) -> dict[str, Any]:
    """Scale a measured run to ``target_n`` videos. EXTRAPOLATION, not measurement.

    Assumptions (stated in the output): writing, reading, embedding and the heads scale with N;
    the ivf-gemm graph scales with N^1.5 (each video meets ~nprobe * N / nlist ~ sqrt(N) others);
    one training step scales with the expected sampled-subgraph size (expected_subgraph_nodes) and
    an epoch has ceil(0.8 N / batch) steps (the train+val share of the hash split). Memory: an
    analytic estimate of the largest anonymous (non page-cache) footprint, from the array sizes.
    """
    st = result["stages"]
    cfg = result["config"]
    n = int(cfg["num_videos"])
    r = target_n / n
    out: dict[str, Any] = {"target_videos": target_n, "from_videos": n, "EXTRAPOLATED": True,
                           "assumptions": extrapolate.__doc__.split("Assumptions (stated in the output): ")[1]
                           .split("\n\n")[0].replace("\n    ", " ").strip()}
    sec: dict[str, float] = {}
    for name in ("features", "read", "embed", "embed_test", "heads"):
        if name in st and "seconds" in st[name]:
            sec[name] = st[name]["seconds"] * (r if name != "heads" else 1.0)  # heads: a fixed-size sample
    if "graph" in st:
        sec["graph"] = st["graph"]["seconds"] * r**1.5
    tv = int(round(0.8 * target_n))
    if "train" in st and "step_s_median" in st["train"]:
        tr = st["train"]
        grow = expected_subgraph_nodes(tv, tr["seeds_per_step"], tr["fanouts"]) / max(1.0, tr["subgraph_nodes_median"])
        step = tr["step_s_median"] * grow
        out["train_step_s"] = step
        out["train_subgraph_nodes_expected"] = expected_subgraph_nodes(tv, tr["seeds_per_step"], tr["fanouts"])
        out["train_epoch_s"] = math.ceil(tv / tr["batch_size"]) * step
        sec["train_one_epoch"] = out["train_epoch_s"]
    out["stage_seconds"] = sec
    out["total_seconds"] = sum(sec.values())
    d = cfg.get("rgb_dim", RGB_DIM) + cfg.get("audio_dim", AUDIO_DIM)
    deg = st.get("graph", {}).get("num_edges", 25 * n) * 2 / max(1, st.get("graph", {}).get("num_nodes", n))
    e_dir = deg * tv
    sub = out.get("train_subgraph_nodes_expected", 0.0)
    hidden = int(cfg.get("hidden_dim", 256))
    k, nprobe = 25, 4
    gib = {
        "features_store_file_backed": target_n * d * 2 / GIB,
        "ids_and_labels": target_n * (60 + 12) / GIB,
        # ivf-gemm: probe lists, norms and list members per row; the running top-k, the returned
        # dist/idx and the candidates (N * k each)
        "knn_index": tv * (4 * nprobe + 12) / GIB,
        "knn_candidates": tv * k * (12 + 12 + 8) / GIB,
        # build_graph: int64 rows/cols of both directions, keys, unique's sort and inverse, weights
        "graph_build_temporaries": e_dir * 44 / GIB,
        "graph_tensors": e_dir * 20 / GIB,
        # one step: gathered rows (float16 + float32), then ~8 hidden-width activations per node
        "train_step": sub * (d * 6 + hidden * 4 * 8) / GIB,
        # layer-wise inference: messages of one layer in RAM (float32) for the CSR product
        "embed": tv * hidden * 4 / GIB,
        # inductive test embedding: two layers of cached messages in RAM
        "embed_test": 2 * tv * hidden * 4 / GIB,
    }
    gib["anon_peak_estimate"] = 1.0 + gib["ids_and_labels"] + max(
        gib["knn_index"] + gib["knn_candidates"], gib["graph_build_temporaries"],
        gib["graph_tensors"] + gib["train_step"], gib["graph_tensors"] + gib["embed"],
        gib["graph_tensors"] + gib["embed_test"])
    out["memory_gib_estimate"] = gib
    return out


# ---------------------------------------------------------------------------------------------
# report rows
# ---------------------------------------------------------------------------------------------
def scale_rows(result: dict[str, Any], source: str = "") -> list[Row]:
    """Report rows from a scale result dict (``run_scale``'s return value or its JSON).

    Values are measured at the run's own size; the ``*_at_4M`` extras (and the notes saying so) are
    EXTRAPOLATED with :func:`extrapolate` when the run was smaller than 4M.
    """
    st = result.get("stages", {})
    c = result["config"]
    n = int(c["num_videos"])
    dev = result.get("device", "cpu")
    size = (f"{n:,} videos (synthetic, {c.get('rgb_dim', RGB_DIM)}+{c.get('audio_dim', AUDIO_DIM)}-d"
            f"{', YT-8M shapes' if c.get('rgb_dim', RGB_DIM) == RGB_DIM else ''}), TFRecords -> float16 stores")
    src = f" Source: {source}." if source else ""
    ex = result.get("extrapolated_to_4M") or (extrapolate(result) if n < YT8M_SIZE and
                                                result.get("status") == "ok" else None)
    ex_note = f" Values at 4M are EXTRAPOLATED from this {n:,}-video run ({ex['assumptions']})" if ex else ""
    common = dict(group="scale", size=size, device=dev, measured_at=result.get("finished") or result.get("created"),
                  mem_method="peak RSS of the whole process during the stage (kernel VmHWM)")
    rows: list[Row] = []
    peak = result.get("peak", {})
    extra = {"peak_anon_gib": peak.get("peak_anon_gib"), "peak_file_backed_gib": peak.get("peak_file_gib"),
             "stage_seconds": {name: round(v.get("seconds", 0.0), 1) for name, v in st.items()},
             "stage_peak_rss_gib": {name: round(v["peak_rss_gib"], 2) for name, v in st.items() if "peak_rss_gib" in v},
             "stage_peak_anon_gib": {name: round(v["peak_anon_gib"], 2) for name, v in st.items()
                                     if "peak_anon_gib" in v},
             "total_seconds": result.get("total_seconds"), "command": result.get("command")}
    if ex:
        extra["anon_peak_gib_at_4M_estimate"] = ex["memory_gib_estimate"]["anon_peak_estimate"]
        extra["stage_seconds_at_4M_extrapolated"] = {k: round(v) for k, v in ex["stage_seconds"].items()}
    rows.append(Row(name="whole pipeline peak RAM (TFRecords -> stores -> graph -> train steps -> embed -> head)",
                    metric="GiB", higher_is_better=False, ours_label="vidsage run --stream (pipeline.run_streamed)",
                    peer_label="—", ours=peak.get("peak_rss_gib"), peer=None, repeats=1,
                    ours_mem_mb=(peak.get("peak_rss_gib") or 0) * 1024,
                    target=f"<= {TARGET_RAM_GIB:g} GiB RAM on CPU", target_met=result.get("within_ram_target"),
                    status=result.get("status", "?"), extra=extra,
                    notes=("measured at this size; file-backed pages of the memmaps count in RSS (page cache the "
                           "kernel may drop), the anon peak is the part that must fit."
                           + (" At 4M the anon peak is an analytic ESTIMATE from array sizes (see the JSON's "
                              "memory_gib_estimate)." if ex else "") + src + ex_note),
                    **common))
    if "train" in st and "step_s_median" in st["train"]:
        tr = st["train"]
        gpu = "cuda" in dev
        tx = {k: tr.get(k) for k in ("step_s_median", "step_seconds", "subgraph_nodes_median", "steps_per_epoch",
                                     "steps_timed", "loss_first", "loss_last", "full_graph", "sampler")}
        if ex and "train_epoch_s" in ex:
            tx["step_s_at_4M_extrapolated"] = ex["train_step_s"]
            tx["epoch_s_at_4M_extrapolated"] = ex["train_epoch_s"]
        rows.append(Row(name="training: one epoch (time per step x steps per epoch)",
                        metric="s per epoch (EXTRAPOLATED)", higher_is_better=False,
                        ours_label=f"vidsage_core.train.train: VidSage, fan-outs {tr['fanouts']}, batch "
                                   f"{tr['batch_size']}, rows read per step from the float16 store",
                        peer_label="—", ours=tr["epoch_s_extrapolated"], peer=None, repeats=tr["steps_timed"],
                        ours_mem_mb=st["train"].get("peak_rss_gib", 0.0) * 1024,
                        target="one epoch <= 5 min on an H100" + ("" if gpu else " (no GPU here: not measurable)"),
                        target_met=(tr["epoch_s_extrapolated"] <= TARGET_GPU_EPOCH_S) if gpu else None, extra=tx,
                        notes=(f"EXTRAPOLATED: {tr['steps_timed']} timed steps (after {tr['warmup_steps']} warm-up), "
                               f"epoch = {tr['steps_per_epoch']:,} steps x median step time (from the trainer's "
                               "history.json)." + src + ex_note), **common))
    if "step_s_median" in st.get("peer_train", {}) and "step_s_median" in st.get("train", {}):
        tr, pe = st["train"], st["peer_train"]
        ours, peer = tr["step_s_median"], pe["step_s_median"]
        rows.append(Row(name="training step time: the product's trainer vs the former private loop",
                        metric="s per step (median)", higher_is_better=False,
                        ours_label="vidsage_core.train.train (rows read per step from the float16 store)",
                        peer_label=pe["loop"] + " (same store, graph, machine and run)", ours=ours, peer=peer,
                        repeats=tr["steps_timed"], ours_mem_mb=tr.get("peak_rss_gib", 0.0) * 1024,
                        peer_mem_mb=None, target="per-step time within +10 % of the former private loop",
                        target_met=ours <= 1.10 * peer,
                        extra={"ours_step_seconds": tr.get("step_seconds"), "peer_median": pe.get("median"),
                               "ours_subgraph_nodes_median": tr.get("subgraph_nodes_median")},
                        notes=(f"both after {tr['warmup_steps']} untimed warm-up step; the same batch size, "
                               f"fan-outs {tr['fanouts']}, model width and negatives (the former loop keeps "
                               f"{PEER_COMMIT}'s final ReLU, one elementwise op on the output rows); the former "
                               f"loop runs in a fresh process after the run." + src), **common))
    if "step_s_median" in st.get("ddp", {}) and "step_s_median" in st.get("train", {}):
        dd, tr = st["ddp"], st["train"]
        ours = dd["anchors_per_step"] / dd["step_s_median"]
        peer = tr["batch_size"] / tr["step_s_median"]
        rows.append(Row(name=f"{dd['procs']}-process torchrun (DDP, gloo) over the same store",
                        metric="anchor videos/s", higher_is_better=True,
                        ours_label=f"{dd['command']} ({dd['threads_per_rank']} thread(s) per rank)",
                        peer_label="the same trainer in one process (the run's train stage)", ours=ours, peer=peer,
                        repeats=dd["steps_timed"], ours_mem_mb=dd["largest_rank_peak_rss_gib"] * 1024,
                        peer_mem_mb=tr.get("peak_rss_gib", 0.0) * 1024,
                        target="runs over the store with identical parameters on every rank (tests/test_ddp.py)",
                        target_met=None,
                        extra={k: dd.get(k) for k in ("step_seconds", "step_s_median", "anchors_per_step",
                                                      "process_seconds", "largest_rank_peak_rss_gib",
                                                      "loss_first", "loss_last")},
                        notes=(f"{dd['procs']} ranks x {dd['anchors_per_step'] // dd['procs']} anchors per step; "
                               "memory is the largest rank's peak RSS (each rank maps the store and loads "
                               "the graph)." + src), **common))
    if "embed" in st and "seconds" in st["embed"]:
        em = st["embed"]
        nodes = int(st.get("graph", {}).get("num_nodes", 0) or st.get("train", {}).get("num_nodes", 0))
        ey = {"seconds": em["seconds"], "videos": nodes}
        if ex:
            ey["seconds_at_4M_extrapolated"] = ex["stage_seconds"].get("embed")
        rows.append(Row(name="embedding every train+val video (layer-wise, whole graph)", metric="videos/s",
                        higher_is_better=True, ours_label="vidsage_core.embed.embed -> VidSage.inference (eval mode)",
                        peer_label="—", ours=nodes / max(1e-9, em["seconds"]), peer=None, repeats=1,
                        ours_mem_mb=em.get("peak_rss_gib", 0.0) * 1024, extra=ey,
                        notes="all train+val videos, one pass per layer, into a float16 .npy." + src, **common))
    return rows


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.scale --num-videos N``: one scale run (same as ``python -m benchmarks
    --only scale --num-videos N``, without the report)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-videos", type=int, default=YT8M_SIZE)
    parser.add_argument("--steps", type=int, default=ScaleConfig.train_steps, help="timed training steps")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--work-dir", default=None, help="TFRecords, stores and embeddings (default results/cache)")
    parser.add_argument("--keep-work", action="store_true")
    parser.add_argument("--out-json", default=None)
    parser.add_argument("--ddp-procs", type=int, default=ScaleConfig.ddp_procs,
                        help="torchrun ranks over the same store afterwards (0: skip)")
    parser.add_argument("--peer-tree", default=None, metavar="DIR",
                        help=f"a checkout of {PEER_COMMIT} (git worktree add DIR {PEER_COMMIT}): time its private "
                             "training loop on the same store and graph")
    args = parser.parse_args(argv)
    cfg = ScaleConfig(num_videos=args.num_videos, train_steps=args.steps, device=args.device, work_dir=args.work_dir,
                      keep_work=args.keep_work, ddp_procs=args.ddp_procs, peer_tree=args.peer_tree)
    run_scale(cfg, out_json=args.out_json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
