"""``vidsage inspect`` through the real CLI dispatcher."""

from __future__ import annotations

import shutil

from vidsage_core.cli import main
from vidsage_core.data.tfrecord import frame_records


def test_inspect_real_shard(real_shard, capsys):
    assert main(["inspect", str(real_shard)]) == 0
    out = capsys.readouterr().out
    assert "videos:        284" in out
    assert "rgb:           [284, 1024] float32" in out and "audio:         [284, 128] float32" in out
    assert "of 3862 used" in out and "labels/video:" in out
    assert "Game" in out  # class names from the vocabulary
    assert "skip report:" in out and "skipped 0" in out


def test_inspect_skip_mode_reports_bad_records(tmp_path, real_shard, capsys):
    buf = bytearray(real_shard.read_bytes())
    spans, _ = frame_records(bytes(buf))
    buf[spans[3][1] + 50] ^= 0xFF  # data CRC failure in record 3
    bad = tmp_path / "bad.tfrecord"
    bad.write_bytes(bytes(buf))
    assert main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "record 3" in err and "--on-error skip" in err
    assert main(["inspect", str(bad), "--on-error", "skip"]) == 0
    out = capsys.readouterr().out
    assert "videos:        283" in out and "data_crc: 1" in out


def test_inspect_store_and_frame_level(tmp_path, tiny_videoset, capsys):
    tiny_videoset.save(tmp_path / "store")
    assert main(["inspect", str(tmp_path / "store")]) == 0
    out = capsys.readouterr().out
    assert "[SYNTHETIC]" in out and "videos:        200" in out and "objects:" in out

    from vidsage_core.data import write_synthetic_frame_level

    path = write_synthetic_frame_level(tmp_path / "f.tfrecord", 4, 6, seed=0)
    assert main(["inspect", str(path), "--level", "frame", "--pooling", "mean+std"]) == 0
    out = capsys.readouterr().out
    assert "rgb:           [4, 2048]" in out and "pooling:       mean+std" in out


def test_inspect_missing_input(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "none-*.tfrecord")]) == 2
    assert "matched no files" in capsys.readouterr().err


def test_inspect_directory(tmp_path, real_shard, capsys):
    shutil.copy(real_shard, tmp_path / "x.tfrecord")
    assert main(["inspect", str(tmp_path)]) == 0
    assert "videos:        284" in capsys.readouterr().out
