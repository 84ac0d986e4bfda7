"""Write YouTube-8M TFRecords (video- and frame-level) in the dataset's exact schema, with TensorFlow.

Video level: ``tf.train.Example`` with ``id`` (bytes), ``labels`` (int64 list), ``mean_rgb``
(1024 floats), ``mean_audio`` (128 floats). Frame level: ``tf.train.SequenceExample`` with context
``id``/``labels`` and feature lists ``rgb``/``audio``, one uint8 string per frame (features
quantised as YouTube-8M does, see :func:`vidsage_core.data.reader.quantize`). The messages are
``tf.train.Example`` / ``tf.train.SequenceExample`` and the files are written by
``tf.io.TFRecordWriter`` (:func:`.tfrecord.write_tfrecord`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vidsage_core.data.reader import AUDIO_DIM, RGB_DIM, quantize
from vidsage_core.data.tfrecord import tensorflow, write_tfrecord


def _check_ids(ids: Sequence[str], n: int, what: str) -> None:
    if len(ids) != n:
        raise ValueError(f"{what}: {len(ids)} ids for {n} videos")


def _context(tf, vid: str, labels: Sequence[int], id_key: str) -> dict:
    return {id_key: tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(vid).encode("utf-8")])),
            "labels": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(x) for x in labels]))}


def video_example(vid: str, rgb: np.ndarray, audio: np.ndarray, labels: Sequence[int], id_key: str = "id") -> bytes:
    """Serialized video-level ``tf.train.Example`` of one video.

    Args:
        vid: video id.
        rgb, audio: float ``[D_rgb]`` / ``[D_audio]`` features (stored as float32).
        labels: class indices (may be empty).
        id_key: ``"id"`` (2018 schema) or ``"video_id"`` (2017 schema).
    """
    tf = tensorflow()
    feature = _context(tf, vid, labels, id_key)
    for name, x in (("mean_rgb", rgb), ("mean_audio", audio)):
        feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=np.asarray(x, np.float32).ravel()))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def frame_sequence_example(vid: str, rgb_q: np.ndarray, audio_q: np.ndarray, labels: Sequence[int],
                           id_key: str = "id") -> bytes:
    """Serialized frame-level ``tf.train.SequenceExample`` from already quantised frames.

    Args:
        vid: video id.
        rgb_q, audio_q: uint8 ``[F, D_rgb]`` / ``[F, D_audio]``; each row becomes one time step (bytes).
        labels: class indices.
        id_key: ``"id"`` or ``"video_id"``.
    """
    tf = tensorflow()
    lists = {}
    for name, q in (("rgb", rgb_q), ("audio", audio_q)):
        q = np.ascontiguousarray(q, np.uint8)
        lists[name] = tf.train.FeatureList(feature=[
            tf.train.Feature(bytes_list=tf.train.BytesList(value=[row.tobytes()])) for row in q])
    return tf.train.SequenceExample(context=tf.train.Features(feature=_context(tf, vid, labels, id_key)),
                                    feature_lists=tf.train.FeatureLists(feature_list=lists)).SerializeToString()


def write_video_level_tfrecord(
    path: str | os.PathLike,
    ids: Sequence[str],
    rgb: np.ndarray,
    audio: np.ndarray,
    labels: Sequence[Sequence[int]],
    id_key: str = "id",
) -> Path:
    """Write a video-level TFRecord in YouTube-8M's schema.

    Args:
        path: output file (written atomically).
        ids: ``[N]`` video ids.
        rgb: float ``[N, D_rgb]`` (1024 for YouTube-8M) mean visual features, stored as float32.
        audio: float ``[N, D_audio]`` (128) mean audio features.
        labels: per-video lists of class indices (may be empty).
        id_key: ``"id"`` (2018 schema) or ``"video_id"`` (2017 schema).

    Returns:
        The path written.
    """
    rgb = np.asarray(rgb, np.float32)
    audio = np.asarray(audio, np.float32)
    n = len(ids)
    _check_ids(ids, n, "write_video_level_tfrecord")
    if rgb.shape[0] != n or audio.shape[0] != n or len(labels) != n:
        raise ValueError(f"write_video_level_tfrecord: {n} ids but rgb {rgb.shape}, audio {audio.shape}, "
                         f"{len(labels)} label lists")
    return write_tfrecord(path, (video_example(ids[i], rgb[i], audio[i], labels[i], id_key) for i in range(n)))


def write_frame_level_tfrecord(
    path: str | os.PathLike,
    ids: Sequence[str],
    rgb_frames: Sequence[np.ndarray],
    audio_frames: Sequence[np.ndarray],
    labels: Sequence[Sequence[int]],
    id_key: str = "id",
    rgb_dim: int = RGB_DIM,
    audio_dim: int = AUDIO_DIM,
) -> Path:
    """Write a frame-level TFRecord in YouTube-8M's schema, quantising float frames to uint8.

    Args:
        path: output file (written atomically).
        ids: ``[N]`` video ids.
        rgb_frames: per video, float ``[F_i, rgb_dim]`` frame features (values in [-2, 2]; outside is
            clipped by the quantiser). uint8 arrays are taken as already quantised.
        audio_frames: per video, ``[F_i, audio_dim]``, same number of frames as ``rgb_frames[i]``.
        labels: per-video lists of class indices.
        id_key: ``"id"`` (2018) or ``"video_id"`` (2017).
        rgb_dim, audio_dim: frame sizes every video must have (YouTube-8M: 1024 and 128).

    Returns:
        The path written.
    """
    n = len(ids)
    _check_ids(ids, n, "write_frame_level_tfrecord")
    if len(rgb_frames) != n or len(audio_frames) != n or len(labels) != n:
        raise ValueError(f"write_frame_level_tfrecord: {n} ids but {len(rgb_frames)} rgb, {len(audio_frames)} "
                         f"audio and {len(labels)} label entries")

    def q(x: np.ndarray, dim: int, what: str, i: int) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != dim:
            raise ValueError(f"write_frame_level_tfrecord: video {i} ({ids[i]!r}) {what} frames have shape "
                             f"{x.shape}, expected [F, {dim}]")
        return x if x.dtype == np.uint8 else quantize(x)

    def records():
        for i in range(n):
            r, a = q(rgb_frames[i], rgb_dim, "rgb", i), q(audio_frames[i], audio_dim, "audio", i)
            if r.shape[0] != a.shape[0]:
                raise ValueError(f"write_frame_level_tfrecord: video {i} ({ids[i]!r}) has {r.shape[0]} rgb "
                                 f"but {a.shape[0]} audio frames")
            yield frame_sequence_example(ids[i], r, a, labels[i], id_key)

    return write_tfrecord(path, records())
