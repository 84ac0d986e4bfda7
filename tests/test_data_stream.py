"""TFRecords streamed into train+val / test feature stores, group by group.

Synthetic data only (random features written as YouTube-8M-schema TFRecords), labelled so.
"""

from __future__ import annotations

import numpy as np

from vidsage_core.data import read_tfrecords, split_by_id, write_video_level_tfrecord
from vidsage_core.data.stream import StoreSet, stream_tfrecords


def _write_shards(directory, n_per_shard=40, shards=3, dim=(12, 4), seed=0):
    """Synthetic YouTube-8M-schema shards; returns the features written, in file order."""
    rng = np.random.default_rng(seed)
    rgb, audio, ids, labels = [], [], [], []
    for s in range(shards):
        r = rng.standard_normal((n_per_shard, dim[0])).astype(np.float32)
        a = rng.standard_normal((n_per_shard, dim[1])).astype(np.float32)
        vid = [f"v{s}_{i}" for i in range(n_per_shard)]
        lab = [[int(c)] for c in rng.integers(0, 20, n_per_shard)]
        write_video_level_tfrecord(directory / f"train{s:02d}.tfrecord", vid, r, a, lab)
        rgb.append(r), audio.append(a), ids.extend(vid), labels.extend(lab)
    return np.concatenate(rgb), np.concatenate(audio), ids


def test_streamed_stores_equal_the_in_memory_read_and_split(tmp_path):
    data = tmp_path / "tfr"
    data.mkdir()
    _write_shards(data)
    res = stream_tfrecords(str(data / "*.tfrecord"), tmp_path / "store", dtype=np.float32, files_per_group=2,
                           progress=False)
    vs = read_tfrecords(str(data / "*.tfrecord"), rgb_dim=None, audio_dim=None, progress=False)
    split = split_by_id(vs.ids)
    tv = np.sort(np.concatenate([split.train, split.val]))
    x = vs.features()
    for part, rows in ((res.trainval, tv), (res.test, np.sort(split.test))):
        np.testing.assert_array_equal(part.ids, vs.ids[rows])
        np.testing.assert_array_equal(np.asarray(part.x), x[rows])
        assert (part.labels != vs.labels[rows]).nnz == 0
    again = StoreSet.load(tmp_path / "store" / "trainval")  # what was written reopens the same
    np.testing.assert_array_equal(again.ids, res.trainval.ids)
    assert isinstance(again.x, np.memmap)


def test_streaming_counts_bad_records_and_repeated_ids(tmp_path):
    data = tmp_path / "tfr"
    data.mkdir()
    _write_shards(data, n_per_shard=30, shards=2)
    # a third shard repeating two ids of the first, and a file with a corrupt tail
    rng = np.random.default_rng(5)
    write_video_level_tfrecord(data / "train02.tfrecord", ["v0_0", "v0_1", "new"],
                               rng.standard_normal((3, 12)), rng.standard_normal((3, 4)), [[1], [2], [3]])
    with open(data / "train02.tfrecord", "ab") as f:
        f.write(b"\x07" * 40)  # not a TFRecord frame
    res = stream_tfrecords(str(data / "*.tfrecord"), tmp_path / "store", progress=False, files_per_group=1)
    counts = res.skipped.counts()
    assert counts["duplicate id"] == 2
    assert sum(counts.values()) == 3  # the two repeats and the corrupt tail
    assert len(res.trainval) + len(res.test) == 61  # 60 + "new"
    assert res.trainval.x.dtype == np.float16


def test_max_videos_stops_the_stream(tmp_path):
    data = tmp_path / "tfr"
    data.mkdir()
    _write_shards(data)
    res = stream_tfrecords(str(data / "*.tfrecord"), tmp_path / "store", max_videos=50, files_per_group=1,
                           progress=False)
    assert len(res.trainval) + len(res.test) == 50
    assert set(res.trainval.ids) | set(res.test.ids) == {f"v0_{i}" for i in range(40)} | {f"v1_{i}" for i in range(10)}
