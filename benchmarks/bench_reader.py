"""Benchmark: ``read_tfrecords`` against bare ``tf.data`` + ``tf.io.parse_example`` on the same shards.

Our reader is TensorFlow underneath, so this row shows what it adds on top (per-file error
attribution, validation, the complete :class:`VideoSet`). Two measurements:

* **One core.** ``read_tfrecords(num_parallel_reads=1)`` against ``TFRecordDataset(files,
  num_parallel_reads=1) -> batch(1024) -> parse_example`` with ``.numpy()`` on every output.
  TensorFlow runs with ``intra_op = inter_op = 1`` thread, a private tf.data pool of 1 thread and
  autotuning off; tf.data still runs its pipeline on a thread beside the consumer, so the whole
  process (every thread) is pinned to one CPU core while measuring. Targets: >= 20,000 records/s
  and >= 0.8x the bare pipeline.
* **Reader threads.** ``read_tfrecords`` with ``num_parallel_reads`` 1 and 2 on every core the
  process may use: how reading scales with threads.

Both read from the page cache (untimed warm-up runs first). The runs alternate (a, b, a, b, ...)
so that noise from other work on the machine hits every side alike; the rates are medians over
``repeats``.

Run: ``python benchmarks/bench_reader.py [--repeats 7] [--glob PATTERN]``.
"""

from __future__ import annotations

import argparse
import glob as globlib
import os
import statistics
import sys
import time
from collections.abc import Callable

from vidsage_core import paths
from vidsage_core.data import read_tfrecords
from vidsage_core.data.reader import VIDEO_BATCH
from vidsage_core.data.tfrecord import tensorflow

TF_BATCH = 1024  # records per parse_example call: TensorFlow's fast, vectorised path
TARGET_RECORDS_PER_S = 20_000  # the single-core target
TARGET_RATIO = 0.8  # ours / bare tf.data on one core


def _tf_reader(files: list[str]) -> tuple[Callable[[], int], tuple[int, int]]:
    """A callable that reads all ``files`` with bare tf.data (single-threaded) and returns the count."""
    tf = tensorflow()
    try:  # must happen before TensorFlow's runtime starts; fails if it already ran in this process
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass
    threads = (tf.config.threading.get_intra_op_parallelism_threads(),
               tf.config.threading.get_inter_op_parallelism_threads())
    spec = {
        "id": tf.io.FixedLenFeature([], tf.string),
        "labels": tf.io.VarLenFeature(tf.int64),
        "mean_rgb": tf.io.FixedLenFeature([1024], tf.float32),
        "mean_audio": tf.io.FixedLenFeature([128], tf.float32),
    }
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    options.autotune.enabled = False

    def run() -> int:
        ds = (tf.data.TFRecordDataset(files, num_parallel_reads=1)
              .batch(TF_BATCH)
              .map(lambda x: tf.io.parse_example(x, spec))
              .with_options(options))
        n = 0
        for batch in ds:
            ids = batch["id"].numpy()
            batch["labels"].values.numpy()
            batch["mean_rgb"].numpy()
            batch["mean_audio"].numpy()
            n += len(ids)
        return n

    return run, threads


def _ours(files: list[str], threads: int) -> Callable[[], int]:
    return lambda: len(read_tfrecords(files, progress=False, num_parallel_reads=threads))


def _set_affinity(cores: set[int]) -> None:
    """Pin every thread of this process (and so every thread it starts) to ``cores``."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cores)
        except OSError:  # a thread that just exited
            pass


def _alternate(fns: dict[str, Callable[[], int]], repeats: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and CPU seconds of each callable over ``repeats`` alternating rounds (after one warm-up each)."""
    counts = {name: fn() for name, fn in fns.items()}
    if len(set(counts.values())) != 1:
        raise RuntimeError(f"readers disagree on the record count: {counts}")
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return wall, cpu


def bench_reader(glob: str = paths.YT8M_2018_GLOB, repeats: int = 7) -> dict:
    """Records per second of ``read_tfrecords`` and of bare tf.data on ``glob``.

    Args:
        glob: the TFRecord files (video-level, 2018 schema).
        repeats: timed runs of each side (medians are reported).

    Returns:
        dict with ``records``, ``files``, ``repeats``; one core: ``ours_records_per_s``,
        ``tf_records_per_s``, ``ratio`` (ours / tf), CPU-time rates ``*_cpu_records_per_s``, raw
        ``ours_seconds`` / ``tf_seconds``, ``meets_target`` (>= 20,000 records/s),
        ``meets_tf_ratio`` (ratio >= 0.8); threads: ``threads_records_per_s`` ({1: ..., 2: ...}),
        ``threads_seconds``, ``threads_cores`` (cores the process may use); ``load_average``
        (1-minute, before and after) and ``note``.
    """
    files = sorted(globlib.glob(glob))
    if not files:
        raise FileNotFoundError(f"glob pattern {glob!r} matched no files")
    tf_run, tf_threads = _tf_reader(files)
    load_before = os.getloadavg()[0]
    cores = os.sched_getaffinity(0)
    _set_affinity({min(cores)})
    try:
        wall, cpu = _alternate({"ours": _ours(files, 1), "tf": tf_run}, repeats)
    finally:
        _set_affinity(cores)
    t_wall, _ = _alternate({1: _ours(files, 1), 2: _ours(files, 2)}, repeats)
    n = len(read_tfrecords(files, progress=False))
    rate = {k: n / statistics.median(v) for k, v in wall.items()}
    cpu_rate = {k: n / statistics.median(v) for k, v in cpu.items()}
    load = (load_before, os.getloadavg()[0])
    return {
        "records": n,
        "files": len(files),
        "glob": glob,
        "repeats": repeats,
        "ours_records_per_s": rate["ours"],
        "tf_records_per_s": rate["tf"],
        "ratio": rate["ours"] / rate["tf"],
        "ours_cpu_records_per_s": cpu_rate["ours"],
        "tf_cpu_records_per_s": cpu_rate["tf"],
        "ours_seconds": wall["ours"],
        "tf_seconds": wall["tf"],
        "tf_threads": {"intra_op": tf_threads[0], "inter_op": tf_threads[1], "num_parallel_reads": 1,
                       "private_threadpool_size": 1},
        "tf_batch_size": TF_BATCH,
        "ours_batch_size": VIDEO_BATCH,
        "threads_records_per_s": {k: n / statistics.median(v) for k, v in t_wall.items()},
        "threads_seconds": t_wall,
        "threads_cores": len(cores),
        "load_average": load,
        "meets_target": rate["ours"] >= TARGET_RECORDS_PER_S,
        "meets_tf_ratio": rate["ours"] / rate["tf"] >= TARGET_RATIO,
        "note": (f"one core: the whole process pinned to one CPU core, TF intra/inter-op threads 1, "
                 f"num_parallel_reads=1 on both sides, private tf.data pool 1, autotune off; threads: "
                 f"num_parallel_reads 1 vs 2 on {len(cores)} cores; median wall-clock over alternating runs, "
                 f"page cache warm; 1-min load average {load[0]:.1f} before, {load[1]:.1f} after (other "
                 f"work on the machine)"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--glob", default=paths.YT8M_2018_GLOB)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    r = bench_reader(args.glob, args.repeats)
    print(f"TFRecord reader benchmark: {r['records']} records in {r['files']} files, median of {r['repeats']} runs")
    print(f"  {r['note']}")
    for name, label in (("ours", "read_tfrecords:"), ("tf", "bare tf.data:  ")):
        print(f"  {label} {r[f'{name}_records_per_s']:>10,.0f} records/s on one core "
              f"(CPU-time rate {r[f'{name}_cpu_records_per_s']:,.0f})")
    print(f"  ratio ours/tf: {r['ratio']:.2f}x (target >= {TARGET_RATIO}: {'met' if r['meets_tf_ratio'] else 'NOT met'}); "
          f">= {TARGET_RECORDS_PER_S:,} records/s: {'met' if r['meets_target'] else 'NOT met'}")
    for k, v in r["threads_records_per_s"].items():
        print(f"  read_tfrecords, {k} reader thread(s): {v:>10,.0f} records/s")
    print(f"  runs (s): ours {[round(s, 3) for s in r['ours_seconds']]}  tf {[round(s, 3) for s in r['tf_seconds']]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
