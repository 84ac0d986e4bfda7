"""Smoke test of the benchmark harness (``python -m benchmarks --quick``) plus exact checks of its parts.

No timing assertions: benchmarks are measurements, not tests. The harness runs on tiny inputs in a
temporary directory; the checks are that every group writes its rows, that the Markdown and JSON
carry the ratio and memory columns, and that the pieces with a right answer (the ratio
orientation, the layer-wise embedding, the brute-force kNN) give it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.report import PeakMemory, Row, ratio, render_markdown, write_results


def test_ratio_is_oriented_so_that_above_one_means_ours_is_better():
    assert ratio(200.0, 100.0, higher_is_better=True) == pytest.approx(2.0)  # throughput
    assert ratio(1.0, 4.0, higher_is_better=False) == pytest.approx(4.0)  # time: peer / ours
    assert ratio(None, 4.0, True) is None and ratio(1.0, 0.0, True) is None


def test_peak_memory_sees_a_large_allocation():
    with PeakMemory() as m:
        a = np.ones(32 * 2**20 // 8)  # 32 MiB, touched
        a.sum()
    del a
    assert m.rss_mb is not None and m.rss_mb >= 24  # allocator and page granularity leave slack


def test_write_results_merges_groups_not_run(tmp_path):
    out = tmp_path / "b.md"
    machine = {"cpu": "x", "logical_cores": 1, "physical_cores": 1, "ram_gib": 1, "ram_available_gib": 1,
               "load_average_1m": 0, "platform": "p", "python": "3", "torch": "t", "torch_threads": 1,
               "torch_geometric": "g", "faiss": "f", "sklearn": "s", "numpy": "n", "tensorflow": "tf", "cuda": False}
    a = Row(group="train", name="a", size="s", metric="nodes/s", higher_is_better=True, ours_label="o",
            peer_label="p", ours=2.0, peer=1.0, repeats=3, target="ours/peer >= 1.0", target_met=True)
    b = Row(group="infer", name="b", size="s", metric="ms (p50)", higher_is_better=False, ours_label="o",
            peer_label="p", ours=1.0, peer=3.0, repeats=5)
    write_results([a, b], out, "cmd", quick=True, machine=machine)
    a2 = Row.from_dict({**a.to_dict(), "ours": 4.0})  # the train group re-run: replaces, infer kept
    write_results([a2], out, "cmd2", quick=True, machine=machine)
    payload = json.loads(out.with_suffix(".json").read_text())
    assert [(r["group"], r["ours"]) for r in payload["rows"]] == [("train", 4.0), ("infer", 1.0)]
    assert payload["rows"][1]["ratio"] == pytest.approx(3.0)
    md = render_markdown(payload)
    assert "| 2.00×" not in md and "4.00×" in md and "3.00×" in md


def test_quick_harness_writes_every_group(tmp_path):
    from benchmarks.__main__ import main

    out = tmp_path / "benchmarks.md"
    code = main(["--quick", "--threads", "1", "--out", str(out)])
    payload = json.loads(out.with_suffix(".json").read_text())
    assert code == 0, payload["errors"]
    groups = {r["group"] for r in payload["rows"]}
    assert groups == {"reader", "knn", "train", "infer", "finetune", "scale"}
    for r in payload["rows"]:
        assert {"ours", "peer", "ratio", "repeats", "ours_mem_mb", "peer_mem_mb", "target", "target_met"} <= set(r)
        if r["group"] in ("reader", "infer", "finetune") or (r["group"] == "train" and r["status"] == "ok"):
            assert r["ours"] > 0 and r["peer"] > 0 and r["ratio"] > 0 and r["repeats"] >= 1
    names = [r["name"] for r in payload["rows"] if r["group"] == "train"]
    assert any("NeighborLoader" in n for n in names) or all(r["status"] == "ok" for r in payload["rows"])
    md = out.read_text()
    for title in ("TFRecord reading", "k-nearest-neighbour graph", "Training throughput", "Inductive embedding",
                  "Fine-tuning cost", "YouTube-8M scale"):
        assert f"## {title}" in md
    assert "| Ratio |" in md and "Peak mem ours / peer (MiB)" in md and "quick mode" in md
    saved = tmp_path / "scale" / "scale-2000.json"
    assert saved.exists()
    # The saved scale run re-renders to the same measurements without running again.
    before = [r for r in payload["rows"] if r["group"] == "scale"]
    assert main(["--only", "scale", "--scale-json", str(saved), "--out", str(out)]) == 0
    after = [r for r in json.loads(out.with_suffix(".json").read_text())["rows"] if r["group"] == "scale"]
    assert [(r["name"], r["ours"]) for r in after] == [(r["name"], r["ours"]) for r in before]
    assert all("--num-videos 2000" in r["command"] for r in after)
    # torchrun's two gloo ranks trained over the run's own store (anchors of both ranks per step).
    ddp = next(r for r in before if "torchrun" in r["name"])
    assert ddp["ours"] > 0 and ddp["peer"] > 0 and ddp["extra"]["anchors_per_step"] == 2 * 512
    assert "-m vidsage_core.train --features <work>/run/store/trainval/features.npy" in ddp["ours_label"]


def test_scale_tfrecords_are_reused_only_for_the_same_data(tmp_path):
    import dataclasses

    from benchmarks.scale import ScaleConfig, write_synthetic_tfrecords, written_tfrecords

    cfg = ScaleConfig(num_videos=600, rgb_dim=8, audio_dim=4, num_classes=20, block=256, videos_per_shard=128,
                      num_topics=5, latent_dim=4)
    shards = write_synthetic_tfrecords(tmp_path, cfg)
    assert len(shards) == 5  # ceil(600 / 128)
    stamps = [p.stat().st_mtime_ns for p in shards]
    assert written_tfrecords(tmp_path, cfg)["shards"] == [p.name for p in shards]
    assert write_synthetic_tfrecords(tmp_path, cfg) == shards
    assert [p.stat().st_mtime_ns for p in shards] == stamps  # not written again
    assert written_tfrecords(tmp_path, dataclasses.replace(cfg, noise=0.5)) is None  # other data
    assert written_tfrecords(tmp_path, dataclasses.replace(cfg, train_steps=9)) is not None  # same data
    shards[3].unlink()
    assert written_tfrecords(tmp_path, cfg) is None


def test_scale_step_row_compares_the_trainer_with_the_former_loop_on_the_same_run():
    from benchmarks.scale import PEER_COMMIT, scale_rows

    train = {"seconds": 60.0, "peak_rss_gib": 3.0, "step_s_median": 11.0, "step_seconds": [14.0, 11.0, 10.5, 12.0],
             "steps_timed": 3, "warmup_steps": 1, "fanouts": [25, 10], "batch_size": 512, "subgraph_nodes_median": 9,
             "steps_per_epoch": 10, "epoch_s_extrapolated": 110.0}
    peer = {"seconds": 50.0, "step_s_median": 10.0, "steps_timed": 3, "loop": f"train_on_memmap at {PEER_COMMIT}"}
    result = {"config": {"num_videos": 4_000_000}, "stages": {"train": train, "peer_train": peer}, "status": "ok",
              "peak": {"peak_rss_gib": 3.0}}
    row = next(r for r in scale_rows(result) if "former private loop" in r.name)
    assert (row.ours, row.peer, row.ratio) == (11.0, 10.0, pytest.approx(10.0 / 11.0))
    assert row.target_met is True  # 10 % slower is within the target
    result["stages"]["train"] = dict(train, step_s_median=11.5)
    assert next(r for r in scale_rows(result) if "former private loop" in r.name).target_met is False


def test_knn_rows_compare_sides_too_slow_to_run_on_the_same_sampled_queries():
    # At 1M neither exact side runs in full: both are timed on the same sampled queries and
    # scaled to N, and the row says so; where both ran in full, the full times are used.
    from benchmarks.__main__ import knn_rows

    base = {"n": 1_000_000, "dim": 1024, "k": 25, "data": "synthetic clustered", "synthetic": True}
    res = [dict(base, method="vidsage exact", status="skipped (too slow: est. 18000 s)", seconds=18000.0,
                estimated=True, sample_estimate_seconds=18000.0, probe_queries=2000, repeats=0),
           dict(base, method="faiss flat", status="skipped (too slow: est. 36000 s)", seconds=36000.0,
                estimated=True, sample_estimate_seconds=36000.0, probe_queries=2000, repeats=0),
           dict(base, n=100, method="vidsage exact", status="ok", seconds=1.0, estimated=False,
                sample_estimate_seconds=1.5, probe_queries=100, repeats=3),
           dict(base, n=100, method="faiss flat", status="ok", seconds=3.0, estimated=False,
                sample_estimate_seconds=2.0, probe_queries=100, repeats=3)]
    rows = {r.size.split(" ")[0]: r for r in knn_rows(res) if "FAISS" in r.peer_label}
    big, small = rows["1,000,000"], rows["100"]
    assert (big.ours, big.peer, big.ratio) == (18000.0, 36000.0, pytest.approx(2.0))
    assert "EXTRAPOLATED" in big.metric and "2,000 sampled queries" in big.notes
    assert (small.ours, small.peer, small.ratio) == (1.0, 3.0, pytest.approx(3.0))
    assert "EXTRAPOLATED" not in small.metric


def test_confirm_renders_the_artifacts_tables_for_other_videos(tmp_path):
    # benchmarks.confirm runs the artifact's configuration on held-out TFRecords and writes the
    # same Table 2, label-efficiency table and summary as notebook 05, naming the data as given.
    from benchmarks.confirm import confirm
    from vidsage_core.data import make_synthetic
    from vidsage_core.data.writer import write_video_level_tfrecord

    v = make_synthetic(300, num_classes=30, num_topics=6, num_objects=50, seed=5)
    data = tmp_path / "heldout"
    data.mkdir()
    labels = [list(np.flatnonzero(row)) for row in v.labels.toarray()]
    write_video_level_tfrecord(data / "a.tfrecord", v.ids, v.rgb, v.audio, labels)
    out = tmp_path / "tables"
    summary = confirm(str(data), 1, out, workers=1, device="cpu", run_dir=tmp_path / "run", smoke=True)
    table2 = (out / "table2.md").read_text()
    assert "no choice was made on these videos" in table2
    assert "fine-tuned (paper §4.2)" in table2 and "linear probe (frozen embeddings)" in table2
    efficiency = (out / "label_efficiency.csv").read_text()
    assert "ours GAP @ 0.1 mean" in efficiency and "ours GAP @ 1 mean" in efficiency
    assert summary.strip() and summary in (out / "summary.md").read_text()
