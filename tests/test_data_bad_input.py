"""Bad input: each case is a REAL shard copied into tmp_path and damaged in one way.

For every case: ``on_error="raise"`` raises a TFRecordError naming the file and the record index,
and ``on_error="skip"`` drops exactly the bad record(s), keeps every good one (also those after the
bad one) and lists the drop in ``VideoSet.skipped``.
"""

from __future__ import annotations

import struct
import warnings

import numpy as np
import pytest

from vidsage_core.data import TFRecordError, read_tfrecords
from vidsage_core.data.tfrecord import encode_record, frame_records, masked_crc32c
from vidsage_core.data.tfrecord import tensorflow
from vidsage_core.data.writer import frame_sequence_example, video_example


@pytest.fixture(scope="module")
def original(real_shard):
    """The undamaged shard: bytes, record spans, and its VideoSet."""
    buf = real_shard.read_bytes()
    spans, errors = frame_records(buf)
    assert not errors and len(spans) == 284
    return buf, spans, read_tfrecords(real_shard, progress=False)


def _record(buf, spans, i):
    _, start, length = spans[i]
    return start - 12, start + length + 4  # header offset, end of footer


def _replace(buf, spans, i, payload: bytes) -> bytes:
    """The shard with record ``i`` replaced by a correctly framed ``payload``."""
    s, e = _record(buf, spans, i)
    return buf[:s] + encode_record(payload) + buf[e:]


def _payload(buf, spans, i) -> bytes:
    _, start, length = spans[i]
    return buf[start : start + length]


def _reencode(videos, i, **change) -> bytes:
    """Record ``i`` of the real shard re-serialised with one field changed."""
    fields = {"vid": videos.ids[i], "rgb": videos.rgb[i], "audio": videos.audio[i],
              "labels": videos.labels.indices[videos.labels.indptr[i]:videos.labels.indptr[i + 1]].tolist()}
    fields.update(change)
    return video_example(**fields)


def _check(tmp_path, data: bytes, bad_index: int | list[int], reason: str, original_videos, name="bad.tfrecord",
           kept_expected=None):
    """Assert the raise and skip behaviour for a damaged copy written from ``data``."""
    path = tmp_path / name
    path.write_bytes(data)
    first_bad = bad_index if isinstance(bad_index, int) else bad_index[0]
    with pytest.raises(TFRecordError, match=rf"{name}: record {first_bad} \(byte offset \d+\): {reason}") as info:
        read_tfrecords(path, progress=False)
    assert info.value.file == str(path) and info.value.index == first_bad and info.value.reason == reason
    with pytest.warns(UserWarning, match=rf"{reason}: "):
        v = read_tfrecords(path, on_error="skip", progress=False)
    bad = [bad_index] if isinstance(bad_index, int) else bad_index
    assert [(r["index"], r["reason"]) for r in v.skipped.records] == [(b, reason) for b in bad]
    assert v.skipped.counts() == {reason: len(bad)}
    assert f"{reason}: {len(bad)}" in v.skipped.summary()
    if kept_expected is None:
        kept_expected = [i for i in range(len(original_videos)) if i not in bad]
    # every good record kept, in order, with its exact features
    expected = original_videos.subset(np.array(kept_expected, dtype=np.int64))
    assert v.ids.tolist() == expected.ids.tolist()
    np.testing.assert_array_equal(v.rgb, expected.rgb)
    np.testing.assert_array_equal(v.audio, expected.audio)
    assert (v.labels != expected.labels).nnz == 0
    return v


def test_truncated_file(tmp_path, original):
    buf, spans, videos = original
    s, e = _record(buf, spans, 10)
    v = _check(tmp_path, buf[: (s + e) // 2], 10, "truncated", videos, kept_expected=list(range(10)))
    assert v.skipped.records[0]["offset"] == s


def test_data_crc_failure_skips_one_record_and_reads_on(tmp_path, original):
    buf, spans, videos = original
    _, start, _ = spans[5]
    bad = bytearray(buf)
    bad[start + 2000] ^= 0x10  # inside mean_rgb's floats; the length header stays valid
    _check(tmp_path, bytes(bad), 5, "data_crc", videos)


def test_length_crc_failure_stops_the_file_with_offset(tmp_path, original):
    buf, spans, videos = original
    s, _ = _record(buf, spans, 7)
    bad = bytearray(buf)
    bad[s + 1] ^= 0x01  # the length field of record 7
    v = _check(tmp_path, bytes(bad), 7, "length_crc", videos, kept_expected=list(range(7)))
    rec = v.skipped.records[0]
    assert rec["offset"] == s and "framing lost" in rec["detail"]
    assert f"@ byte {s}" in v.skipped.summary()


def test_feature_of_wrong_length(tmp_path, original):
    buf, spans, videos = original
    data = _replace(buf, spans, 3, _reencode(videos, 3, rgb=videos.rgb[3][:1000]))
    v = _check(tmp_path, data, 3, "wrong_length", videos)
    assert "1000 floats, expected 1024" in v.skipped.records[0]["detail"]


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_values(tmp_path, original, value):
    buf, spans, videos = original
    audio = videos.audio[12].copy()
    audio[40] = value
    data = _replace(buf, spans, 12, _reencode(videos, 12, audio=audio))
    v = _check(tmp_path, data, 12, "non_finite", videos)
    assert "mean_audio" in v.skipped.records[0]["detail"]


def test_duplicate_id_within_file_keeps_the_first(tmp_path, original):
    buf, spans, videos = original
    data = _replace(buf, spans, 9, _reencode(videos, 9, vid=videos.ids[2]))
    v = _check(tmp_path, data, 9, "duplicate_id", videos)
    assert "record 2" in v.skipped.records[0]["detail"]


def test_duplicate_id_across_files(tmp_path, original, real_shard):
    buf, spans, videos = original
    other = (real_shard.parent / "validate0001.tfrecord").read_bytes()
    other_spans, _ = frame_records(other)
    # file b = validate0001 with its record 4 replaced by record 0 of file a
    (tmp_path / "a.tfrecord").write_bytes(buf)
    (tmp_path / "b.tfrecord").write_bytes(_replace(other, other_spans, 4, _payload(buf, spans, 0)))
    with pytest.raises(TFRecordError, match=r"b\.tfrecord: record 4 .*duplicate_id.*a\.tfrecord record 0"):
        read_tfrecords(tmp_path, progress=False)
    with pytest.warns(UserWarning, match="duplicate_id: 1"):
        v = read_tfrecords(tmp_path, on_error="skip", progress=False)
    assert len(v) == 284 + len(other_spans) - 1 and len(set(v.ids.tolist())) == len(v)
    assert v.skipped.records[0]["file"].endswith("b.tfrecord")


def test_label_out_of_range(tmp_path, original):
    buf, spans, videos = original
    data = _replace(buf, spans, 20, _reencode(videos, 20, labels=[1, 3862]))
    v = _check(tmp_path, data, 20, "label_out_of_range", videos)
    assert "3862 outside [0, 3862)" in v.skipped.records[0]["detail"]
    # with a larger vocabulary the same record is fine
    path = tmp_path / "bad.tfrecord"
    assert len(read_tfrecords(path, num_classes=4000, progress=False)) == 284


def test_record_without_labels_is_valid_unless_required(tmp_path, original):
    buf, spans, videos = original
    tf = tensorflow()
    no_labels = tf.train.Example(features=tf.train.Features(feature={
        "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[videos.ids[6].encode()])),
        "mean_rgb": tf.train.Feature(float_list=tf.train.FloatList(value=videos.rgb[6])),
        "mean_audio": tf.train.Feature(float_list=tf.train.FloatList(value=videos.audio[6])),
    })).SerializeToString()
    path = tmp_path / "unlabelled.tfrecord"
    path.write_bytes(_replace(buf, spans, 6, no_labels))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing was skipped, so no warning either
        v = read_tfrecords(path, progress=False)
    assert len(v) == 284 and v.labels[6].nnz == 0 and len(v.skipped) == 0
    assert v.skipped.info == {"unlabelled": 1} and "info: unlabelled: 1" in v.skipped.summary()
    np.testing.assert_array_equal(v.rgb, videos.rgb)
    with pytest.raises(TFRecordError, match="record 6 .*no_labels"):
        read_tfrecords(path, require_labels=True, progress=False)
    with pytest.warns(UserWarning):
        v = read_tfrecords(path, require_labels=True, on_error="skip", progress=False)
    assert len(v) == 283 and v.skipped.counts() == {"no_labels": 1}


@pytest.mark.parametrize("payload", [b"\xff" * 64, b'{"id": "not protobuf"}', b""])
def test_non_example_payload(tmp_path, original, payload):
    buf, spans, videos = original
    _check(tmp_path, _replace(buf, spans, 30, payload), 30, "not_example", videos)


def test_several_damages_in_one_file_are_all_counted(tmp_path, original):
    buf, spans, videos = original
    data = _replace(buf, spans, 40, b"\xff" * 10)
    data = _replace(data, frame_records(data)[0], 50, _reencode(videos, 50, labels=[99999]))
    bad = bytearray(data)
    _, start, _ = frame_records(data)[0][60]
    bad[start + 100] ^= 0xFF
    path = tmp_path / "many.tfrecord"
    path.write_bytes(bytes(bad))
    with pytest.raises(TFRecordError, match="record 40 "):  # the first bad record in file order
        read_tfrecords(path, progress=False)
    with pytest.warns(UserWarning) as caught:
        v = read_tfrecords(path, on_error="skip", progress=False)
    assert v.skipped.counts() == {"not_example": 1, "label_out_of_range": 1, "data_crc": 1}
    assert [r["index"] for r in v.skipped.records] == [40, 50, 60]
    assert len(v) == 281 and v.skipped.records_read == 284
    assert "skipped 3" in str(caught[0].message)


def test_empty_file_warns_and_reads_zero_records(tmp_path, original):
    buf, _, videos = original
    (tmp_path / "a_empty.tfrecord").write_bytes(b"")
    (tmp_path / "b.tfrecord").write_bytes(buf)
    with pytest.warns(UserWarning, match=r"a_empty\.tfrecord: empty"):
        v = read_tfrecords(tmp_path, progress=False)
    assert len(v) == 284 and v.skipped.info == {"empty_files": 1}
    with pytest.warns(UserWarning, match="empty"):
        v = read_tfrecords(tmp_path / "a_empty.tfrecord", progress=False)
    assert len(v) == 0 and v.rgb.shape == (0, 1024) and v.labels.shape == (0, 3862)


def test_frame_record_with_wrong_frame_size(tmp_path):
    from vidsage_core.data import write_frame_level_tfrecord

    good = [np.zeros((3, 1024), np.uint8)], [np.zeros((3, 128), np.uint8)]
    path = write_frame_level_tfrecord(tmp_path / "f.tfrecord", ["a"], *good, [[1]])
    seq = frame_sequence_example("b", np.zeros((3, 1000), np.uint8), np.zeros((3, 128), np.uint8), [])
    path.write_bytes(path.read_bytes() + encode_record(seq))
    with pytest.raises(TFRecordError, match=r"record 1 .*wrong_length: 'rgb' frames of 1000 bytes"):
        read_tfrecords(path, level="frame", progress=False)
    with pytest.warns(UserWarning):
        v = read_tfrecords(path, level="frame", on_error="skip", progress=False)
    assert v.ids.tolist() == ["a"]


def test_crc_helper_is_the_tfrecord_mask():
    # sanity of the test's own tool: a valid header re-computed by hand
    header = struct.pack("<Q", 5)
    assert encode_record(b"abcde")[:12] == header + struct.pack("<I", masked_crc32c(header))


# Batches: within a file and across a file boundary; ending exactly with file 0 (284 records); all three files.
@pytest.mark.parametrize("batch", [7, 284, 1024])
def test_bad_records_in_a_stream_of_files_are_named_by_their_own_file(tmp_path, real_shard, monkeypatch, batch):
    """Files are parsed as one stream in batches that span files; each bad record must still be named by
    its own file, record and byte offset, and every good record around it kept, in order, bit for bit."""
    import scipy.sparse as sp

    from vidsage_core.data import reader

    monkeypatch.setattr(reader, "VIDEO_BATCH", batch)
    originals = [real_shard.parent / f"validate000{k}.tfrecord" for k in range(3)]
    sets = [read_tfrecords(p, progress=False) for p in originals]
    last = len(sets[0]) - 1
    # (file, record, reason): a NaN in file 0's last record (batch 7: its batch goes on into file 1); bad
    # values in file 1; file 0's record 5 again in file 2; a data-CRC failure in file 2, where TensorFlow
    # stops: with batch 7 after files 0 and 1 are kept, with 284 after file 0 (file 1 is read again,
    # file by file), with 1024 at once.
    expected = [(0, last, "non_finite"), (1, 3, "label_out_of_range"), (1, 10, "non_finite"),
                (2, 50, "duplicate_id"), (2, 100, "data_crc")]
    damaged = []
    for k, original in enumerate(originals):
        buf = original.read_bytes()
        for f, i, reason in expected:
            if f != k:
                continue
            if reason == "non_finite":
                audio = sets[k].audio[i].copy()
                audio[7] = np.nan
                buf = _replace(buf, frame_records(buf)[0], i, _reencode(sets[k], i, audio=audio))
            elif reason == "label_out_of_range":
                buf = _replace(buf, frame_records(buf)[0], i, _reencode(sets[k], i, labels=[2, 5000]))
            elif reason == "duplicate_id":
                buf = _replace(buf, frame_records(buf)[0], i, _reencode(sets[k], i, vid=sets[0].ids[5]))
            else:
                bad = bytearray(buf)
                bad[frame_records(buf)[0][i][1] + 300] ^= 0x04  # inside the payload: its CRC fails
                buf = bytes(bad)
        damaged.append(buf)
    paths = [tmp_path / f"{k}.tfrecord" for k in range(3)]
    for path, buf in zip(paths, damaged):
        path.write_bytes(buf)
    headers = []  # record index -> byte offset of its header, in each damaged file (by our own framing)
    for buf in damaged:
        spans, errors = frame_records(buf)
        headers.append({**{i: start - 12 for i, start, _ in spans}, **{e.index: e.offset for e in errors}})
    offsets = [headers[f][i] for f, i, _ in expected]

    with pytest.raises(TFRecordError, match=rf"0\.tfrecord: record {last} \(byte offset {offsets[0]}\): non_finite"):
        read_tfrecords(tmp_path, progress=False)
    with pytest.warns(UserWarning, match="skipped 5"):
        v = read_tfrecords(tmp_path, on_error="skip", progress=False)
    got = [(r["file"], r["index"], r["reason"], r["offset"]) for r in v.skipped.records]
    assert got == [(str(paths[f]), i, reason, off) for (f, i, reason), off in zip(expected, offsets)]
    assert f"already read from {paths[0]} record 5;" in v.skipped.records[3]["detail"]
    assert v.skipped.records_read == sum(len(s) for s in sets) and v.skipped.files_read == 3
    good = [s.subset(np.array([i for i in range(len(s)) if (k, i) not in {(f, j) for f, j, _ in expected}]))
            for k, s in enumerate(sets)]
    assert v.ids.tolist() == [x for s in good for x in s.ids.tolist()]
    np.testing.assert_array_equal(v.rgb.view(np.uint32), np.concatenate([s.rgb for s in good]).view(np.uint32))
    np.testing.assert_array_equal(v.audio.view(np.uint32), np.concatenate([s.audio for s in good]).view(np.uint32))
    assert (v.labels != sp.vstack([s.labels for s in good]).tocsr()).nnz == 0
