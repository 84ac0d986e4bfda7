"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidsage_core import paths

REAL_SHARD = paths.YT8M / "video_level_2018" / "validate0000.tfrecord"
REAL_2017_SHARD = paths.YT8M / "video_level_2017_v1" / "validatea0.tfrecord"


@pytest.fixture(scope="session")
def real_shard() -> Path:
    """One real YouTube-8M 2018 video-level shard (284 videos; read-only, copy before damaging)."""
    if not REAL_SHARD.exists():
        pytest.skip(f"real shard {REAL_SHARD} not present")
    return REAL_SHARD


@pytest.fixture(scope="session")
def real_2017_shard() -> Path:
    """The real YouTube-8M 2017 video-level shard (368 videos, key ``video_id``, 4716 classes)."""
    if not REAL_2017_SHARD.exists():
        pytest.skip(f"real 2017 shard {REAL_2017_SHARD} not present")
    return REAL_2017_SHARD


@pytest.fixture(scope="session")
def tiny_videoset():
    """A small synthetic VideoSet (200 videos, 50 classes, 8 topics, 40 objects; synthetic=True)."""
    from vidsage_core.data import make_synthetic

    return make_synthetic(200, num_classes=50, num_topics=8, num_objects=40, seed=0)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models: OpenMP's thread hand-offs cost more than the work (badly so on a shared CPU)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
