"""``vidsage inspect DATA``: read TFRecords (or a saved VidSage store) and report what is in them."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from vidsage_core.data.reader import LEVELS, ON_ERROR, read_tfrecords
from vidsage_core.data.tfrecord import TFRecordError
from vidsage_core.data.videoset import VideoSet


def add_inspect_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``vidsage inspect``."""
    parser.add_argument("data", metavar="DATA",
                        help="TFRecord file, directory, glob (quote it), or a saved VidSage store directory")
    parser.add_argument("--on-error", choices=ON_ERROR, default="raise",
                        help="raise on the first bad record (default) or skip and report bad records")
    parser.add_argument("--level", choices=LEVELS, default="video", help="video- or frame-level records")
    parser.add_argument("--num-classes", type=int, default=None,
                        help="label vocabulary size (default: 3862 for 'id' files, 4716 for 'video_id' files)")
    parser.add_argument("--max-frames", type=int, default=300, help="frame level: frames kept per video")
    parser.add_argument("--pooling", default="mean", help="frame level: mean, mean+std, topk, ...")
    parser.add_argument("--rgb-dim", type=int, default=1024, help="rgb feature size (1280 for `vidsage ingest` output)")
    parser.add_argument("--audio-dim", type=int, default=128, help="audio feature size")
    parser.add_argument("--top", type=int, default=10, help="most frequent classes to list")


def describe(videos: VideoSet, top: int = 10) -> str:
    """Multi-line report: counts, dimensions, label statistics, skip report."""
    n = len(videos)
    labels = videos.labels
    per_video = np.diff(labels.indptr) if n else np.zeros(0, np.int64)
    per_class = np.asarray(labels.sum(axis=0)).ravel().astype(np.int64)
    used = int((per_class > 0).sum())
    lines = [
        f"source:        {videos.source}" + ("  [SYNTHETIC]" if videos.synthetic else ""),
        f"videos:        {n}",
        f"rgb:           {list(videos.rgb.shape)} {videos.rgb.dtype}",
        f"audio:         {list(videos.audio.shape)} {videos.audio.dtype}",
        f"pooling:       {videos.pooling}",
    ]
    if videos.frames is not None:
        lines.append(f"frames:        {list(videos.frames.shape)} {videos.frames.dtype}; "
                     f"frames per video min/median/max {int(videos.num_frames.min())}/"
                     f"{float(np.median(videos.num_frames)):g}/{int(videos.num_frames.max())}")
    lines.append(f"ids unique:    {len(np.unique(videos.ids)) == n}")
    lines.append(f"classes:       {used} of {videos.num_classes} used; {labels.nnz} labels")
    if n:
        hist = np.bincount(per_video)
        lines.append(f"labels/video:  mean {per_video.mean():.2f}, median {float(np.median(per_video)):g}, "
                     f"min {int(per_video.min())}, max {int(per_video.max())}; "
                     f"unlabelled {int((per_video == 0).sum())}")
        lines.append("  histogram:   " + ", ".join(f"{k}:{int(c)}" for k, c in enumerate(hist) if c))
        for t in (1, 5, 10, 50, 100):
            lines.append(f"  classes with >= {t:>3} videos: {int((per_class >= t).sum())}")
        order = np.argsort(-per_class, kind="stable")[:top]
        names = _class_names(videos.num_classes)
        lines.append(f"most frequent classes (top {len(order)}):")
        for c in order:
            if per_class[c]:
                name = f" {names[c]}" if names is not None else ""
                lines.append(f"  {int(c):>5}{name}: {int(per_class[c])}")
    if videos.objects is not None:
        sizes = np.array([len(s) for s in videos.objects])
        vocab = set().union(*videos.objects) if videos.objects else set()
        lines.append(f"objects:       {len(vocab)} distinct; per video mean {sizes.mean() if n else 0:.2f}")
    if videos.skipped is not None:
        lines.append("skip report:")
        lines.extend("  " + line for line in videos.skipped.summary().splitlines())
    return "\n".join(lines)


def _class_names(num_classes: int) -> list[str] | None:
    """Names from the 2018 vocabulary when the label space is the 2018 one."""
    if num_classes != 3862:
        return None
    try:
        from vidsage_core.data.vocabulary import load_vocabulary

        return load_vocabulary()["Name"].tolist()
    except (OSError, ValueError):
        return None


def inspect_command(args: argparse.Namespace) -> int:
    """Run ``vidsage inspect``; exit code 0 on success, 2 when reading failed."""
    path = Path(args.data)
    try:
        if path.is_dir() and (path / "meta.json").exists():
            videos = VideoSet.load(path)
        else:
            with warnings.catch_warnings():
                # The skip report is printed in full below; no need for the warning copy of it.
                warnings.filterwarnings("ignore", message="read_tfrecords skipped")
                videos = read_tfrecords(args.data, level=args.level, on_error=args.on_error,
                                        num_classes=args.num_classes, max_frames=args.max_frames,
                                        pooling=args.pooling, progress=sys.stderr.isatty(),
                                        rgb_dim=args.rgb_dim, audio_dim=args.audio_dim)
    except (TFRecordError, FileNotFoundError, ValueError) as e:
        hint = " (use --on-error skip to skip bad records and report them)" if isinstance(e, TFRecordError) else ""
        print(f"vidsage inspect: error: {e}{hint}", file=sys.stderr)  # one line: see cli.py
        return 2
    print(describe(videos, top=args.top))
    return 0
