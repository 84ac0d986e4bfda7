"""``vidsage ingest``: a directory of videos -> YouTube-8M TFRecords + a detections file."""

from __future__ import annotations

import argparse
import csv
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vidsage_core.utils import save_json
from vidsage_core.video.decode import (FRAME_SIZE, VIDEO_EXTENSIONS, VideoDecodeError, find_videos, probe_video,
                                       sample_frames)
from vidsage_core.video.encoder import (ENCODER_NAME, FEATURE_DIM, INPUT_MEAN, INPUT_STD, FrameEncoder,
                                        video_level_feature)
from vidsage_core.video.tagging import (ImageNetTagger, ObjectTagger, Tags, detections_from_tags, get_tagger,
                                        object_set)

AUDIO_DIM = 128  # YouTube-8M's audio width; written as zeros (audio is not extracted)
AUDIO_NOTE = "zeros (not extracted)"
# Pooled ReLU6 features lie in [0, 6]; x / 3 fits YouTube-8M's [-2, 2] quantisation range
# without clipping (0.8% of raw values exceed 2 on scikit-image photos). Linear, so mean pooling
# + L2 normalisation of the dequantised frames points the same way as f_v.
FRAME_FEATURE_SCALE = 1.0 / 3.0


# --------------------------------------------------------------------------------------------
# one video
# --------------------------------------------------------------------------------------------
@dataclass
class VideoFeatures:
    """Everything ingestion derives from one video.

    Attributes:
        frame_features: float32 ``[F, 1280]`` pooled EfficientNet-Lite0 features (unscaled).
        timestamps: float64 ``[F]`` seconds of the sampled frames.
        feature: float32 ``[1280]`` ``f_v`` (mean over frames, then L2 normalisation).
        tags: per frame ``(label, score)`` pairs.
        objects: ``O_u`` (empty when no tagger ran).
        timings: seconds spent in ``decode``, ``features``, ``objects``.
    """

    frame_features: np.ndarray
    timestamps: np.ndarray
    feature: np.ndarray
    tags: Tags
    objects: frozenset[str]
    timings: dict[str, float] = field(default_factory=dict)


def sync_device(device: str) -> None:
    """Wait for queued GPU work so wall-clock timings are true."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def process_video(path: str | Path, encoder: FrameEncoder, tagger: ObjectTagger | None = None,
                  rate: float = 1.0, max_frames: int | None = 300) -> VideoFeatures:
    """Decode, encode and tag one video (shared by ``ingest``, ``similar`` and the latency timer).

    An :class:`ImageNetTagger` on the same encoder tags from the logits of the feature pass (no
    second forward); ``tagger=None`` skips objects (LiteVidSage needs none).

    Raises:
        VideoDecodeError: see :func:`~vidsage_core.video.decode.sample_frames`.
    """
    t0 = time.perf_counter()
    frames, ts = sample_frames(path, rate=rate, max_frames=max_frames, size=FRAME_SIZE)
    t1 = time.perf_counter()
    feats, logits = encoder.encode(frames)
    sync_device(encoder.device)
    t2 = time.perf_counter()
    if tagger is None:
        tags: Tags = [[] for _ in range(len(frames))]
    elif isinstance(tagger, ImageNetTagger) and tagger.encoder is encoder:
        tags = tagger.tag_logits(logits)
    else:
        tags = tagger.tag(frames)
    t3 = time.perf_counter()
    return VideoFeatures(feats, ts, video_level_feature(feats), tags, object_set(tags),
                         {"decode": t1 - t0, "features": t2 - t1, "objects": t3 - t2})


# --------------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------------
def write_frame_level_records(path: str | Path, ids: Sequence[str], rgb_frames: Sequence[np.ndarray],
                              labels: Sequence[Sequence[int]]) -> Path:
    """Frame-level YouTube-8M records of any rgb width, with zero audio (``data.write_frame_level_tfrecord``).

    Args:
        path: output file.
        ids: ``[N]`` video ids.
        rgb_frames: per video float ``[F_i, D]`` (already scaled into ``[-2, 2]``).
        labels: per video class indices.
    """
    from vidsage_core.data import write_frame_level_tfrecord

    width = rgb_frames[0].shape[1] if len(rgb_frames) else FEATURE_DIM
    silence = [np.zeros((len(f), AUDIO_DIM), np.float32) for f in rgb_frames]  # quantised to the level nearest 0
    return write_frame_level_tfrecord(path, ids, rgb_frames, silence, labels, rgb_dim=width)


class _ShardWriter:
    """Buffers ingested videos and writes matching video- and frame-level shards."""

    def __init__(self, out_dir: Path, shard_size: int) -> None:
        self.dirs = {"video_level": out_dir / "video_level", "frame_level": out_dir / "frame_level"}
        self.shard_size = max(1, int(shard_size))
        self.buf: list[tuple[str, np.ndarray, np.ndarray, list[int]]] = []
        self.written: dict[str, list[str]] = {"video_level": [], "frame_level": []}

    def add(self, vid: str, feature: np.ndarray, frame_features: np.ndarray, labels: list[int]) -> None:
        # float16 halves the buffer; the frames are quantised to 8 bits on write anyway.
        self.buf.append((vid, feature, (frame_features * FRAME_FEATURE_SCALE).astype(np.float16), labels))
        if len(self.buf) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self.buf:
            return
        from vidsage_core.data import write_video_level_tfrecord

        name = f"ingest{len(self.written['video_level']):04d}.tfrecord"
        ids, feats, frames, labels = (list(x) for x in zip(*self.buf))
        rgb = np.stack(feats).astype(np.float32)
        audio = np.zeros((len(ids), AUDIO_DIM), np.float32)
        p = write_video_level_tfrecord(self.dirs["video_level"] / name, ids, rgb, audio, labels)
        self.written["video_level"].append(str(p))
        p = write_frame_level_records(self.dirs["frame_level"] / name, ids, [f.astype(np.float32) for f in frames],
                                      labels)
        self.written["frame_level"].append(str(p))
        self.buf = []


# --------------------------------------------------------------------------------------------
# ingest
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IngestConfig:
    """Settings of ``vidsage ingest`` (saved in ``ingest_report.json``)."""

    rate: float = 1.0  # sampled frames per second; YouTube-8M decodes at 1 fps
    max_frames: int = 300  # YouTube-8M keeps the first 300 s (300 frames at 1 fps)
    device: str = "auto"
    batch_size: int = 32  # frames per CNN pass: 32 x 3 x 224^2 floats = 19 MB of input
    tagger: str = "imagenet"  # see tagging.get_tagger
    top_k: int = 3  # labels kept per frame: a photo's top-3 ImageNet classes are usually near-synonyms
    min_score: float = 0.1  # softmax floor per label: below it ImageNet classes are mostly noise
    shard_size: int = 256  # videos per TFRecord file; bounds memory to ~256 x 300 x 1280 x 2 bytes


def read_labels_csv(path: str | Path) -> dict[str, list[int]]:
    """Labels for ingested videos from a CSV with a header.

    The video column is the first of ``video``, ``filename``, ``file``, ``video_id``, ``id``
    (file name with or without extension); the ``labels`` column holds integer class indices
    separated by spaces, ``;`` or ``|`` (empty: no label).

    Returns:
        ``{key: [label, ...]}`` with keys as written in the file.

    Raises:
        ValueError: missing columns or a non-integer label (names the file and line).
    """
    path = Path(path)
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        raw = {c.strip().lower(): c for c in (reader.fieldnames or [])}
        key_col = next((c for c in ("video", "filename", "file", "video_id", "id") if c in raw), None)
        if key_col is None or "labels" not in raw:
            raise ValueError(f"labels CSV {path}: need a header with a video column "
                             f"(video/filename/file/video_id/id) and 'labels'; got {reader.fieldnames}")
        out: dict[str, list[int]] = {}
        for line, row in enumerate(reader, start=2):
            cell = (row[raw["labels"]] or "").strip()
            try:
                out[(row[raw[key_col]] or "").strip()] = [int(v) for v in re.split(r"[\s;|]+", cell) if v]
            except ValueError as e:
                raise ValueError(f"labels CSV {path} line {line}: {e}") from None
    return out


def _video_ids(files: Sequence[Path], root: Path) -> list[str]:
    """File stems as video ids; the relative path (``/`` -> ``__``) where stems collide."""
    stems = [p.stem for p in files]
    dup = {s for s in stems if stems.count(s) > 1}
    return [p.relative_to(root).as_posix().replace("/", "__") if p.stem in dup else p.stem for p in files]


@dataclass
class IngestResult:
    """What :func:`ingest` did; ``report`` is also ``OUT_DIR/ingest_report.json``."""

    out_dir: Path
    videos: list[dict[str, Any]]  # one per ingested video
    errors: list[dict[str, Any]]  # one per skipped file: file, video_id, error, reason
    files: dict[str, list[str]]  # video_level / frame_level shards written
    report: dict[str, Any]

    def summary(self) -> str:
        s = self.report["summary"]
        lines = [f"ingested {s['ingested']} of {s['files']} video files ({s['frames']} frames) into "
                 f"{self.out_dir} in {s['seconds']:.1f} s on {self.report['device']}; skipped {s['skipped']}"]
        lines += [f"  skipped {e['file']}: {e['error']}: {e['reason']}" for e in self.errors]
        return "\n".join(lines)


def ingest(video_dir: str | Path, out_dir: str | Path, config: IngestConfig = IngestConfig(),
           labels_csv: str | Path | None = None, overwrite: bool = False,
           progress: bool = True) -> IngestResult:
    """Turn a directory of videos into YouTube-8M TFRecords and a detections file.

    Writes, under ``out_dir``:

    * ``video_level/ingest*.tfrecord``: ``id``, ``labels``, ``mean_rgb`` (1280 floats, ``f_v``:
      mean over frames then L2 norm), ``mean_audio`` (128 zeros);
    * ``frame_level/ingest*.tfrecord``: ``rgb`` (per frame 1280 bytes: pooled features
      ``x FRAME_FEATURE_SCALE`` quantised like YouTube-8M), ``audio`` (128 bytes of ~0);
    * ``detections.json``: ``{video_id: [{"label", "frame", "score"}, ...]}``;
    * ``ingest_report.json``: config, model, storage choices, per-video facts, per-file errors.

    An unreadable or empty video is reported and skipped; the others are kept.

    Args:
        video_dir: directory searched recursively for video files.
        out_dir: output directory.
        config: see :class:`IngestConfig`.
        labels_csv: optional labels (:func:`read_labels_csv`), matched by file name or stem.
        overwrite: replace TFRecords left in ``out_dir`` by an earlier ingest.
        progress: tqdm bar over files.

    Raises:
        FileNotFoundError: ``video_dir`` missing or holding no video file.
        FileExistsError: ``out_dir`` holds TFRecords from an earlier ingest and not ``overwrite``.
    """
    from tqdm.auto import tqdm

    video_dir, out_dir = Path(video_dir), Path(out_dir)
    files = find_videos(video_dir)
    if not files:
        raise FileNotFoundError(f"{video_dir}: no video files ({', '.join(VIDEO_EXTENSIONS)})")
    old = [p for sub in ("video_level", "frame_level") for p in (out_dir / sub).glob("*.tfrecord")]
    if old and not overwrite:
        raise FileExistsError(f"{out_dir} already holds {len(old)} TFRecord files from an earlier ingest; "
                              "pass overwrite=True (--overwrite) to replace them")
    labels = read_labels_csv(labels_csv) if labels_csv is not None else {}
    encoder = FrameEncoder(config.device, config.batch_size)
    tagger = get_tagger(config.tagger, config.top_k, config.min_score, config.device, encoder=encoder)
    for p in old:
        p.unlink()
    writer = _ShardWriter(out_dir, config.shard_size)
    videos: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    detections: dict[str, list[dict[str, Any]]] = {}
    used_keys: set[str] = set()
    t_start = time.perf_counter()
    bar = tqdm(list(zip(files, _video_ids(files, video_dir))), desc="ingest", unit="video", disable=not progress)
    for path, vid in bar:
        bar.set_postfix_str(path.name[-30:], refresh=False)
        try:
            info = probe_video(path)
            vf = process_video(path, encoder, tagger, config.rate, config.max_frames)
        except VideoDecodeError as e:
            errors.append({"file": str(path), "video_id": vid, "error": type(e).__name__, "reason": e.reason})
            continue
        key = next((k for k in (path.name, path.stem, vid) if k in labels), None)
        used_keys.add(key)
        video_labels = labels.get(key, [])
        writer.add(vid, vf.feature, vf.frame_features, video_labels)
        detections[vid] = detections_from_tags(vf.tags)
        videos.append({"video_id": vid, "file": str(path), "frames": len(vf.timestamps),
                       "timestamps": [round(t, 4) for t in vf.timestamps.tolist()], "labels": video_labels,
                       "objects": sorted(vf.objects), "audio_features": AUDIO_NOTE, **info,
                       "seconds": {k: round(v, 4) for k, v in vf.timings.items()}})
    bar.close()
    writer.flush()
    save_json(detections, out_dir / "detections.json")
    report = {
        "config": asdict(config),
        "video_dir": str(video_dir),
        "labels_csv": None if labels_csv is None else str(labels_csv),
        "labels_unmatched": sorted(set(labels) - used_keys),
        "device": encoder.device,
        "encoder": ENCODER_NAME,
        "input": f"RGB frames {FRAME_SIZE}x{FRAME_SIZE} (shorter side resized, centre crop), "
                 f"(pixel - {INPUT_MEAN:g}) / {INPUT_STD:g}",
        "tagger": getattr(tagger, "name", config.tagger),
        "feature_dim": FEATURE_DIM,
        "video_level_feature": "mean_rgb = mean over the sampled frames, then L2 normalisation (float32)",
        "frame_level_feature": f"rgb = pooled features x {FRAME_FEATURE_SCALE:.6g}, quantised to uint8 like "
                               "YouTube-8M (clip to [-2, 2]; dequantise q * 4/255 + 4/512 - 2)",
        "audio": f"{AUDIO_DIM}-d {AUDIO_NOTE} for every video; has_audio_stream per video says whether "
                 "the file had sound",
        "files": writer.written,
        "detections": str(out_dir / "detections.json"),
        "summary": {"files": len(files), "ingested": len(videos), "skipped": len(errors),
                    "frames": int(sum(v["frames"] for v in videos)),
                    "seconds": round(time.perf_counter() - t_start, 3)},
        "videos": videos,
        "errors": errors,
    }
    save_json(report, out_dir / "ingest_report.json")
    return IngestResult(out_dir, videos, errors, writer.written, report)


def add_ingest_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``vidsage ingest VIDEO_DIR --out OUT_DIR``."""
    d = IngestConfig()
    parser.add_argument("video_dir", metavar="VIDEO_DIR", help="directory of video files (searched recursively)")
    parser.add_argument("--out", required=True, metavar="OUT_DIR",
                        help="writes video_level/, frame_level/, detections.json, ingest_report.json")
    parser.add_argument("--rate", type=float, default=d.rate, help="sampled frames per second (default %(default)s)")
    parser.add_argument("--max-frames", type=int, default=d.max_frames,
                        help="frames kept per video (default %(default)s)")
    parser.add_argument("--device", default=d.device, help="auto, cpu or cuda (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=d.batch_size,
                        help="frames per CNN pass (default %(default)s)")
    parser.add_argument("--tagger", default=d.tagger,
                        help="imagenet | torchvision:PATH | ultralytics:PATH (default %(default)s)")
    parser.add_argument("--top-k", type=int, default=d.top_k, help="labels kept per frame (default %(default)s)")
    parser.add_argument("--min-score", type=float, default=d.min_score,
                        help="minimum label score per frame (default %(default)s)")
    parser.add_argument("--labels", metavar="CSV", default=None,
                        help="optional CSV with columns video,labels (file name -> label indices)")
    parser.add_argument("--shard-size", type=int, default=d.shard_size,
                        help="videos per TFRecord file (default %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace TFRecords of an earlier ingest")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def ingest_command(args: argparse.Namespace) -> int:
    """``vidsage ingest``; exit status 0 when at least one video was ingested, else 1."""
    config = IngestConfig(rate=args.rate, max_frames=args.max_frames, device=args.device,
                          batch_size=args.batch_size, tagger=args.tagger, top_k=args.top_k,
                          min_score=args.min_score, shard_size=args.shard_size)
    result = ingest(args.video_dir, args.out, config, labels_csv=args.labels, overwrite=args.overwrite,
                    progress=not args.no_progress)
    print(result.summary())
    print(f"report: {Path(args.out) / 'ingest_report.json'}")
    return 0 if result.videos else 1


# --------------------------------------------------------------------------------------------
# the "imagenet-tagger" object source (objects.get_object_source)
# --------------------------------------------------------------------------------------------
def _find_ingest_dir(source: str) -> Path | None:
    """The ingest directory behind a VideoSet's provenance string (``.../video_level/*.tfrecord``)."""
    for token in re.split(r"[\s,]+", source):
        p = Path(token.rstrip(":;"))
        for parent in [p, *p.parents][:4]:
            if (parent / "detections.json").is_file() and (parent / "ingest_report.json").is_file():
                return parent
    return None


@dataclass
class IngestedDetections:
    """Object sets written by ``vidsage ingest`` (the ImageNet tagger's ``detections.json``).

    Args:
        path: the ingest ``OUT_DIR`` or its ``detections.json``; ``None``: found from the
            VideoSet's provenance (the TFRecords it was read from).
        min_score, min_frames: as in ``objects.DetectionsFile``.
    """

    path: str | Path | None = None
    min_score: float = 0.0
    min_frames: int = 1

    @property
    def name(self) -> str:
        return f"imagenet-tagger:{self.path}" if self.path else "imagenet-tagger"

    def object_sets(self, videoset: Any) -> list[frozenset[str]]:
        from vidsage_core.objects import DetectionsFile

        where = Path(self.path) if self.path else _find_ingest_dir(str(getattr(videoset, "source", "")))
        if where is None:
            raise FileNotFoundError("object source 'imagenet-tagger': cannot find the ingest directory from the "
                                    f"VideoSet's source {getattr(videoset, 'source', '')!r}; "
                                    "use 'imagenet-tagger:OUT_DIR'")
        path = where / "detections.json" if where.is_dir() else where
        self.path = str(where)
        return DetectionsFile(path, self.min_score, self.min_frames).object_sets(videoset)


def register_object_source() -> None:
    """Make ``objects.get_object_source("imagenet-tagger[:OUT_DIR]")`` return :class:`IngestedDetections`."""
    from vidsage_core.objects import register_object_source as register

    register("imagenet-tagger", lambda arg=None, **opts: IngestedDetections(arg, **opts), overwrite=True)
