"""Synthetic YouTube-8M-like data (always flagged ``synthetic=True``), for tests and scale work.

Generative model (all draws vectorised, in fixed-size chunks so that memory stays bounded and the
result depends only on the arguments and the seed):

* ``num_topics`` latent topics with mildly Zipf-distributed popularity. Each topic has a centre
  in rgb space and in audio space.
* A video has a primary topic ``z``, a secondary topic ``z2`` and a weight ``a`` in [0.6, 1];
  its features are ``a * centre[z] + (1 - a) * centre[z2] + noise``, clipped to YouTube-8M's
  value range [-2, 2].
* Classes have Zipf popularity (class 0 the most frequent, as in the YouTube-8M vocabulary) and a
  home topic each. A video draws ``1 + Poisson(mean_labels - 1)`` labels; each comes from its
  primary topic's classes (weighted by popularity) with probability ``topic_label_share``, else
  from all classes, so label frequencies are Zipf-like and correlated with the topics (and with
  the features).
* Objects ``obj_0 .. obj_{M-1}`` have a Zipf background distribution; each topic favours
  ``objects_per_topic`` objects. A video draws ``1 + Poisson(mean_objects - 1)`` objects; each
  comes from the primary (prob ``a``) or secondary topic's favourites with probability
  ``topic_object_share``, else from the background.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from vidsage_core.data.reader import AUDIO_DIM, QUANT_MAX, QUANT_MIN, RGB_DIM, quantize
from vidsage_core.data.tfrecord import write_tfrecord
from vidsage_core.data.videoset import VideoSet
from vidsage_core.data.writer import frame_sequence_example

CHUNK = 32768  # rows generated per random stream; fixed so results never depend on anything else
MAX_LABELS = 15  # YouTube-8M 2018 videos carry 1..15 labels (SOURCES.md); keep the synthetic ones alike


def _zipf(n: int, exponent: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    return w / w.sum()


def _grouped_sampler(group: np.ndarray, weight: np.ndarray,
                     num_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tables to draw an item of a given group with probability proportional to its weight.

    Returns ``(order, keys, has_items)``: items sorted by group, keys ``group + within-group CDF``
    (strictly inside ``(g, g + 1]``), and which groups have items. Draw for group ``g`` with
    ``order[searchsorted(keys, g + u, "right")]``, ``u ~ U[0, 1)``.
    """
    order = np.lexsort((np.arange(len(group)), group))
    g = group[order]
    w = weight[order]
    cum = np.cumsum(w)
    starts = np.searchsorted(g, np.arange(num_groups), "left")
    ends = np.searchsorted(g, np.arange(num_groups), "right")
    base = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0.0)
    total = np.where(ends > starts, cum[np.maximum(ends - 1, 0)] - base, 1.0)
    keys = g + (cum - base[g]) / total[g]
    keys[ends[ends > starts] - 1] = g[ends[ends > starts] - 1] + 1.0  # exact group ends despite rounding
    return order, keys, ends > starts


def make_synthetic(
    num_videos: int,
    num_classes: int = 3862,
    num_topics: int = 64,
    num_objects: int = 500,
    seed: int = 0,
    *,
    rgb_dim: int = RGB_DIM,
    audio_dim: int = AUDIO_DIM,
    dtype: np.dtype | type = np.float32,
    mean_labels: float = 3.0,  # YouTube-8M 2018 averages 3.0 labels per video
    label_zipf: float = 1.0,  # class popularity ~ 1 / rank
    topic_label_share: float = 0.8,  # labels drawn from the video's topic; the rest are global noise
    mean_objects: float = 6.0,
    objects_per_topic: int = 20,
    topic_object_share: float = 0.8,
    centre_scale: float = 0.13,  # per-dimension std of topic centres
    noise_scale: float = 0.4,  # per-dimension std of a video's own noise; with 0.13 about 70 % of a
    # video's 10 nearest neighbours (3,000 videos, rgb+audio) share its topic: learnable, not trivial
    progress: bool = False,
) -> VideoSet:
    """Generate a synthetic video set whose features, labels and objects share latent topics.

    Args:
        num_videos: N.
        num_classes: label vocabulary size C.
        num_topics: latent topics T.
        num_objects: object vocabulary size M (names ``obj_0`` .. ``obj_{M-1}``).
        seed: everything is a function of the arguments and this seed.
        rgb_dim, audio_dim: feature sizes (1024 / 128 like YouTube-8M).
        dtype: float32, or float16 to halve memory for millions of videos (4M x 1152 x 2 B = 9.2 GB).
        mean_labels .. noise_scale: the generative model's knobs (see the module docstring).
        progress: tqdm bar over chunks.

    Returns:
        VideoSet with ``synthetic=True``, ``objects`` and ``topics`` (primary topic) filled,
        ids ``syn00000000``.., rgb ``[N, rgb_dim]`` and audio ``[N, audio_dim]`` of ``dtype``.
    """
    import torch  # only for fast normal draws and the fused topic mixture; slow to import

    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float16):
        raise ValueError(f"dtype must be float32 or float16, got {dtype}")
    if num_videos < 0 or num_classes < 1 or num_topics < 1 or num_objects < 1:
        raise ValueError("num_videos must be >= 0 and num_classes, num_topics, num_objects >= 1")
    if mean_labels < 1 or mean_objects < 1:
        raise ValueError("mean_labels and mean_objects must be >= 1 (every video has one label and object)")
    objects_per_topic = min(objects_per_topic, num_objects)
    g = np.random.default_rng([seed, 0xC0DE])  # the model's parameters; chunks use their own streams
    topic_p = _zipf(num_topics, 0.5)[g.permutation(num_topics)]
    topic_cdf = np.cumsum(topic_p)
    topic_cdf[-1] = 1.0
    centre_rgb = torch.from_numpy((g.standard_normal((num_topics, rgb_dim)) * centre_scale).astype(np.float32))
    centre_audio = torch.from_numpy((g.standard_normal((num_topics, audio_dim)) * centre_scale).astype(np.float32))
    class_p = _zipf(num_classes, label_zipf)
    class_cdf = np.cumsum(class_p)
    class_cdf[-1] = 1.0
    # Every topic gets classes when C >= T (a round-robin permuted), so no topic is label-less.
    home = g.permutation(np.arange(num_classes) % num_topics)
    cls_order, cls_keys, topic_has_classes = _grouped_sampler(home, class_p, num_topics)
    object_cdf = np.cumsum(_zipf(num_objects, 1.0))
    object_cdf[-1] = 1.0
    favourites = np.stack([g.choice(num_objects, objects_per_topic, replace=False) for _ in range(num_topics)])
    favourite_cdf = np.cumsum(_zipf(objects_per_topic, 0.7))
    favourite_cdf[-1] = 1.0

    rgb = np.empty((num_videos, rgb_dim), dtype)
    audio = np.empty((num_videos, audio_dim), dtype)
    topics = np.empty(num_videos, np.int32)
    label_rows, label_cols, obj_rows, obj_cols = [], [], [], []
    chunks = range(0, num_videos, CHUNK)
    for c, s in enumerate(tqdm(chunks, desc="synthetic videos", unit="chunk", disable=not progress)):
        e = min(s + CHUNK, num_videos)
        n = e - s
        r = np.random.default_rng([seed, c])
        z = np.searchsorted(topic_cdf, r.random(n), "right").astype(np.int32)
        z2 = np.searchsorted(topic_cdf, r.random(n), "right").astype(np.int32)
        a = r.uniform(0.6, 1.0, n).astype(np.float32)[:, None]
        # Topic mixture as a matmul: row i of `mix` holds a_i at z_i and 1 - a_i at z2_i, so
        # mix @ centres = a * centre[z] + (1 - a) * centre[z2]; addmm fuses it with the noise.
        mix = torch.zeros((n, num_topics))
        mix[torch.arange(n), torch.from_numpy(z2).long()] = torch.from_numpy(1 - a[:, 0])
        mix[torch.arange(n), torch.from_numpy(z).long()] += torch.from_numpy(a[:, 0])
        # torch's normal sampler is ~2.5x numpy's and gives the same stream for any thread count.
        tg = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, c]).generate_state(1, np.uint64)[0] >> 1))
        for out, centres, dim in ((rgb, centre_rgb, rgb_dim), (audio, centre_audio, audio_dim)):
            x = torch.addmm(torch.randn((n, dim), generator=tg), mix, centres, beta=noise_scale)
            x.clamp_(QUANT_MIN, QUANT_MAX)
            out[s:e] = x.numpy()
        topics[s:e] = z

        k = np.minimum(1 + r.poisson(mean_labels - 1, n), MAX_LABELS)
        rows = np.repeat(np.arange(s, e), k)
        zt = np.repeat(z, k)
        from_topic = (r.random(len(rows)) < topic_label_share) & topic_has_classes[zt]
        cols = np.searchsorted(class_cdf, r.random(len(rows)), "right")
        u = r.random(int(from_topic.sum()))
        cols[from_topic] = cls_order[np.searchsorted(cls_keys, zt[from_topic] + u, "right")]
        label_rows.append(rows)
        label_cols.append(np.minimum(cols, num_classes - 1))

        m = 1 + r.poisson(mean_objects - 1, n)
        rows = np.repeat(np.arange(s, e), m)
        zo = np.where(r.random(len(rows)) < np.repeat(a[:, 0], m), np.repeat(z, m), np.repeat(z2, m))
        from_topic = r.random(len(rows)) < topic_object_share
        cols = np.searchsorted(object_cdf, r.random(len(rows)), "right")
        fav = np.minimum(np.searchsorted(favourite_cdf, r.random(len(rows)), "right"), objects_per_topic - 1)
        cols[from_topic] = favourites[zo[from_topic], fav[from_topic]]
        obj_rows.append(rows)
        obj_cols.append(np.minimum(cols, num_objects - 1))

    def to_csr(rows: list[np.ndarray], cols: list[np.ndarray], width: int) -> sp.csr_matrix:
        rr = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        cc = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        m = sp.csr_matrix((np.ones(len(rr), np.float32), (rr, cc)), shape=(num_videos, width))
        m.sum_duplicates()
        m.data[:] = 1.0  # a label/object drawn twice is still just present
        return m

    labels = to_csr(label_rows, label_cols, num_classes)
    obj = to_csr(obj_rows, obj_cols, num_objects)
    names = [f"obj_{j}" for j in range(num_objects)]
    flat = [names[j] for j in obj.indices.tolist()]
    bounds = obj.indptr.tolist()
    objects = [frozenset(flat[p:q]) for p, q in zip(bounds[:-1], bounds[1:])]
    ids = np.char.mod("syn%08d", np.arange(num_videos)) if num_videos else np.zeros(0, "<U11")
    source = (f"synthetic(num_videos={num_videos}, num_classes={num_classes}, num_topics={num_topics}, "
              f"num_objects={num_objects}, seed={seed}, dtype={dtype.name})")
    return VideoSet(ids=np.asarray(ids, dtype=str), rgb=rgb, audio=audio, labels=labels, num_classes=num_classes,
                    source=source, synthetic=True, skipped=None, objects=objects, topics=topics)


def write_synthetic_frame_level(
    path: str | os.PathLike,
    num_videos: int,
    num_frames: int | tuple[int, int],
    seed: int = 0,
    *,
    frame_noise: float = 0.3,  # per-frame deviation from the video's topic-driven vector
    smoothness: float = 0.9,  # AR(1) coefficient: neighbouring frames are alike, as in real video
    progress: bool = False,
    **synthetic_kwargs,
) -> Path:
    """Write a synthetic frame-level TFRecord (YouTube-8M schema) for tests and scale work.

    The videos are ``make_synthetic(num_videos, seed=seed, **synthetic_kwargs)``: same ids, labels
    and topics. Frame ``t`` of a video is its topic-driven video vector plus AR(1) noise, clipped
    to [-2, 2] and quantised to uint8, so the frame mean read back is close to
    ``make_synthetic(...).rgb`` (within the noise's mean and one quantisation step).

    Args:
        path: output ``.tfrecord`` (written atomically).
        num_videos: number of videos.
        num_frames: frames per video, or ``(low, high)`` for lengths drawn uniformly in that range.
        seed: seed of both the videos and the frame noise.
        frame_noise, smoothness: the frame noise model.
        progress: tqdm bar over videos.
        **synthetic_kwargs: passed to :func:`make_synthetic` (e.g. ``num_classes``).

    Returns:
        The path written.
    """
    videos = make_synthetic(num_videos, seed=seed, **synthetic_kwargs)
    if videos.rgb.shape[1] != RGB_DIM or videos.audio.shape[1] != AUDIO_DIM:
        raise ValueError("frame-level YouTube-8M files need rgb_dim=1024 and audio_dim=128")
    r = np.random.default_rng([seed, 0xF4A3E])
    if isinstance(num_frames, int):
        lengths = np.full(num_videos, num_frames)
    else:
        low, high = num_frames
        lengths = r.integers(low, high + 1, num_videos)
    if num_videos and lengths.min() < 1:
        raise ValueError(f"every video needs at least one frame, got num_frames={num_frames}")
    from scipy.signal import lfilter  # only needed here; scipy.signal is slow to import

    innovation = np.sqrt(1 - smoothness**2) * frame_noise  # keeps the stationary std at frame_noise

    def records():
        for i in tqdm(range(num_videos), desc="synthetic frames", unit="video", disable=not progress):
            f = int(lengths[i])
            noise = r.standard_normal((f, RGB_DIM + AUDIO_DIM), dtype=np.float32)
            noise[0] *= frame_noise  # start in the stationary distribution
            noise[1:] *= innovation
            frames = lfilter([1.0], [1.0, -smoothness], noise, axis=0).astype(np.float32)
            frames[:, :RGB_DIM] += videos.rgb[i]
            frames[:, RGB_DIM:] += videos.audio[i]
            q = quantize(frames)  # clips to the quantiser's [-2, 2] range
            yield frame_sequence_example(videos.ids[i], q[:, :RGB_DIM], q[:, RGB_DIM:],
                                         videos.labels.indices[videos.labels.indptr[i]:videos.labels.indptr[i + 1]])

    return write_tfrecord(path, records())
