"""The feature store: a .npy written in appended blocks, opened memory-mapped, rows gathered.

Synthetic data only (random arrays), labelled so.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidsage_core.store import StoreWriter, gather_rows, open_store


def test_store_writer_appends_and_finalises_the_header(tmp_path):
    rng = np.random.default_rng(0)
    blocks = [rng.standard_normal((n, 6)).astype(np.float32) for n in (5, 0, 7)]
    path = tmp_path / "x.npy"
    w = StoreWriter(path, 6, np.float16)
    w.append(blocks[0])
    assert np.load(path, mmap_mode="r").shape == (0, 6)  # unfinished: the header still says 0 rows
    w.append(blocks[1])
    w.append(blocks[2])
    w.close()
    x = open_store(path)
    assert isinstance(x, np.memmap) and x.dtype == np.float16 and x.shape == (12, 6)
    np.testing.assert_array_equal(x, np.concatenate(blocks).astype(np.float16))
    assert np.load(path).shape == (12, 6)  # a plain .npy for every reader
    with pytest.raises(ValueError, match="3 columns"):
        StoreWriter(tmp_path / "y.npy", 3).append(np.zeros((2, 4)))


def test_open_store_names_the_bad_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npy"):
        open_store(tmp_path / "nope.npy")
    np.save(tmp_path / "ints.npy", np.zeros((3, 2), np.int64))
    with pytest.raises(ValueError, match="ints.npy"):
        open_store(tmp_path / "ints.npy")


def test_gather_rows_equals_fancy_indexing_for_every_backing(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 4)).astype(np.float16)
    np.save(tmp_path / "x.npy", x)
    ids = torch.tensor([7, 3, 3, 49, 0, 7])  # unsorted, repeated
    ref = torch.from_numpy(x[ids.numpy()].astype(np.float32))
    for store in (x, open_store(tmp_path / "x.npy"), torch.from_numpy(x)):
        got = gather_rows(store, ids)
        assert got.dtype == torch.float32
        assert torch.equal(got, ref)
