"""Benchmark: our TFRecord reader vs TensorFlow's, on the shared YouTube-8M shards.

Both sides are single-threaded, for a fair per-core comparison: TensorFlow runs with
``intra_op_parallelism_threads = inter_op_parallelism_threads = 1``, ``num_parallel_reads=1``,
a private tf.data thread pool of 1 thread and autotuning off; ours is plain Python + NumPy in one
thread. tf.data still runs its pipeline on a thread of its own beside the consumer, so the whole
process (every thread) is pinned to one CPU core while measuring. Both read from the page cache
(one untimed warm-up run each) and both deliver NumPy arrays: ours a complete :class:`VideoSet`
(ids, CSR labels, features, CRCs checked), TensorFlow ``TFRecordDataset -> batch(1024) ->
parse_example`` tensors converted with ``.numpy()``. The runs alternate (ours, tf, ours, tf, ...)
so that machine noise hits both alike; the reported rate is the median over ``repeats``.

Run: ``python benchmarks/bench_reader.py [--repeats 5] [--glob PATTERN]``.
"""

from __future__ import annotations

import argparse
import glob as globlib
import os
import statistics
import sys
import time

from vidsage_core import paths
from vidsage_core.data import read_tfrecords

TF_BATCH = 1024  # records per parse_example call: TensorFlow's fast, vectorised path
TARGET_RECORDS_PER_S = 20_000  # the single-core target


def _tf_reader(files: list[str]):
    """A callable that reads all ``files`` with TensorFlow (single-threaded) and returns the count."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

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


def _pin_to_one_core() -> set[int] | None:
    """Pin every thread of this process (and so every thread it starts) to one CPU core.

    TensorFlow's tf.data runs its pipeline on its own threads even with one intra/inter-op
    thread, overlapping parsing with the consumer; pinning makes "single-threaded" mean one core
    for both readers. Returns the previous CPU set (``None`` where affinity is unsupported).
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    before = os.sched_getaffinity(0)
    core = {min(before)}
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), core)
        except OSError:  # a thread that just exited
            pass
    return before


def _unpin(before: set[int] | None) -> None:
    if before is None:
        return
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), before)
        except OSError:
            pass


def bench_reader(glob: str = paths.YT8M_2018_GLOB, repeats: int = 5) -> dict:
    """Records per second of our reader and of TensorFlow's, single-threaded, on ``glob``.

    Args:
        glob: the TFRecord files (video-level, 2018 schema).
        repeats: timed runs of each reader (the median is reported).

    Returns:
        dict with ``records``, ``files``, ``repeats``, ``ours_records_per_s``,
        ``tf_records_per_s``, ``ratio`` (ours / tf), the raw ``ours_seconds`` / ``tf_seconds``,
        CPU-time based rates (``*_cpu_records_per_s``), ``tf_threads``, ``tf_batch_size``,
        ``meets_target`` (>= 20,000 records/s) and ``meets_tf_parity`` (ratio >= 1), and ``note``.
    """
    files = sorted(globlib.glob(glob))
    if not files:
        raise FileNotFoundError(f"glob pattern {glob!r} matched no files")
    affinity = _pin_to_one_core()
    try:
        return _bench(files, glob, repeats, pinned=affinity is not None)
    finally:
        _unpin(affinity)


def _bench(files: list[str], glob: str, repeats: int, pinned: bool) -> dict:
    tf_run, tf_threads = _tf_reader(files)

    def ours() -> int:
        return len(read_tfrecords(files, progress=False))

    counts = {"ours": ours(), "tf": tf_run()}  # warm-up: page cache, TF graph tracing, imports
    if counts["ours"] != counts["tf"]:
        raise RuntimeError(f"readers disagree on the record count: ours {counts['ours']}, tf {counts['tf']}")
    wall: dict[str, list[float]] = {"ours": [], "tf": []}
    cpu: dict[str, list[float]] = {"ours": [], "tf": []}
    for _ in range(repeats):
        for name, fn in (("ours", ours), ("tf", tf_run)):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    n = counts["ours"]
    rate = {k: n / statistics.median(v) for k, v in wall.items()}
    cpu_rate = {k: n / statistics.median(v) for k, v in cpu.items()}
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
        "pinned_to_one_core": pinned,
        "tf_batch_size": TF_BATCH,
        "meets_target": rate["ours"] >= TARGET_RECORDS_PER_S,
        "meets_tf_parity": rate["ours"] >= rate["tf"],
        "note": ("single-threaded on both sides (TF intra/inter-op threads 1, num_parallel_reads=1, "
                 "private thread pool 1, autotune off; the whole process pinned to one CPU core"
                 + ("" if pinned else " [pinning unsupported here]") + "); median wall-clock over "
                 "alternating runs, page cache warm; ours returns a full VideoSet with CRCs checked"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--glob", default=paths.YT8M_2018_GLOB)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    r = bench_reader(args.glob, args.repeats)
    print(f"TFRecord reader benchmark: {r['records']} records in {r['files']} files, median of {r['repeats']} runs")
    print(f"  {r['note']}")
    for name, label in (("ours", "ours:      "), ("tf", "tensorflow:")):
        print(f"  {label} {r[f'{name}_records_per_s']:>10,.0f} records/s  "
              f"(CPU-time rate {r[f'{name}_cpu_records_per_s']:,.0f})")
    print(f"  ratio ours/tf: {r['ratio']:.2f}x   target >= {TARGET_RECORDS_PER_S:,} records/s: "
          f"{'met' if r['meets_target'] else 'NOT met'};  >= 1.0x tf: {'met' if r['meets_tf_parity'] else 'NOT met'}")
    print(f"  runs (s): ours {[round(s, 3) for s in r['ours_seconds']]}  tf {[round(s, 3) for s in r['tf_seconds']]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
