"""hash_bucket / split_by_id / classes_with_min_positives, and the label vocabulary."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import scipy.sparse as sp

from vidsage_core import paths
from vidsage_core.data import (
    Split,
    classes_with_min_positives,
    hash_bucket,
    load_vocabulary,
    read_tfrecords,
    split_by_id,
)


def test_hash_bucket_is_md5_mod_n():
    ids = ["02aa", "a0OhZbhxhvk", "", "é"]
    expect = [int(hashlib.md5(i.encode()).hexdigest(), 16) % 5 for i in ids]
    assert hash_bucket(ids).tolist() == expect
    # one hand-checked value: md5("02aa") ends in ...; the decimal value mod 7
    assert hash_bucket(["02aa"], 7)[0] == int(hashlib.md5(b"02aa").hexdigest(), 16) % 7
    assert hash_bucket(np.array(ids)).dtype == np.int64


def test_split_partitions_rows_by_bucket():
    ids = [f"v{i}" for i in range(1000)]
    bucket = np.array([int(hashlib.md5(i.encode()).hexdigest(), 16) % 5 for i in ids])
    s = split_by_id(ids)
    assert isinstance(s, Split)
    np.testing.assert_array_equal(s.test, np.flatnonzero(bucket == 0))
    np.testing.assert_array_equal(s.val, np.flatnonzero(bucket == 1))
    np.testing.assert_array_equal(s.train, np.flatnonzero(bucket >= 2))
    np.testing.assert_array_equal(np.sort(np.concatenate([s.train, s.val, s.test])), np.arange(1000))
    np.testing.assert_array_equal(s.train_val, np.flatnonzero(bucket != 0))
    assert s.sizes() == {"train": len(s.train), "val": len(s.val), "test": len(s.test)}
    no_val = split_by_id(ids, val_bucket=None)
    assert len(no_val.val) == 0 and len(no_val.train) == len(s.train) + len(s.val)
    with pytest.raises(ValueError, match="differ"):
        split_by_id(ids, test_bucket=1, val_bucket=1)


def test_classes_with_min_positives_hand_example():
    # rows x classes:   c0 c1 c2 c3
    dense = np.array([[1, 0, 1, 0],
                      [1, 1, 0, 0],
                      [0, 1, 0, 0],
                      [1, 0, 0, 1]], np.float32)
    m = sp.csr_matrix(dense)
    assert classes_with_min_positives(m, None, 2).tolist() == [0, 1]
    assert classes_with_min_positives(m, np.array([0, 3]), 2).tolist() == [0]
    assert classes_with_min_positives(m, np.array([0, 3]), 1).tolist() == [0, 2, 3]
    assert classes_with_min_positives(m, np.array([True, False, True, False]), 1).tolist() == [0, 1, 2]
    assert classes_with_min_positives(m, None, 0).tolist() == [0, 1, 2, 3]


@pytest.mark.slow
def test_shared_data_split_sizes():
    """The brief's numbers: 13,998 videos; test bucket 2,817; train+val 11,181."""
    v = read_tfrecords(paths.YT8M_2018_GLOB, progress=False)
    assert len(v) == 13998
    s = split_by_id(v.ids)
    assert len(s.test) == 2817 and len(s.train_val) == 11181


def test_vocabulary():
    voc = load_vocabulary()
    assert len(voc) == 3862
    assert list(voc.columns) == ["Index", "TrainVideoCount", "KnowledgeGraphId", "Name", "WikiUrl",
                                 "Vertical1", "Vertical2", "Vertical3", "WikiDescription"]
    np.testing.assert_array_equal(voc["Index"].to_numpy(), np.arange(3862))
    assert voc.loc[0, "Name"] == "Game" and voc.loc[3861, "Name"] == "Gamblerz"
    # descriptions hold commas and quotes, which a naive split would break on (embedded newlines:
    # none in this file, covered by test_vocabulary_checks)
    desc = voc["WikiDescription"]
    assert desc.str.contains(",").sum() > 1000 and desc.str.contains('"').any()
    assert voc["Vertical1"].nunique() == 25


def test_vocabulary_checks(tmp_path):
    bad = tmp_path / "v.csv"
    bad.write_text("Index,Name\n0,a\n")
    with pytest.raises(ValueError, match="missing vocabulary columns"):
        load_vocabulary(bad)
    cols = "Index,TrainVideoCount,KnowledgeGraphId,Name,WikiUrl,Vertical1,Vertical2,Vertical3,WikiDescription"
    bad.write_text(cols + '\n0,5,/m/x,A,u,V,,,"say ""hi"", then\nleave"\n2,3,/m/y,B,u,V,,,d\n')
    with pytest.raises(ValueError, match="2 classes, expected 3862"):
        load_vocabulary(bad)
    with pytest.raises(ValueError, match=r"not 0\.\.1"):
        load_vocabulary(bad, expected_rows=None)
    bad.write_text(cols + '\n1,3,/m/y,B,u,V,,,d\n0,5,/m/x,A,u,V,,,"say ""hi"", then\nleave"\n')
    voc = load_vocabulary(bad, expected_rows=2)
    assert voc.loc[0, "WikiDescription"] == 'say "hi", then\nleave'
