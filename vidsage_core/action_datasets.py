"""Action-recognition datasets (paper §4.3): Charades and Moments in Time from precomputed features.

The paper evaluates VidSage on Charades (Table 4, mAP) and Moments in Time (Table 3, top-1/top-5).
Their videos are not redistributable and not in this repository, so VidSage reads *precomputed
per-video features* next to the datasets' *official annotation files*, in the layout below, and
ships writers of a small synthetic stand-in in exactly the same layout (clearly labelled
synthetic) so the same reader, pipeline and tables run end to end without the real data.

Layout
======

Charades (157 action classes ``c000``-``c156``, multi-label, scored by mAP)::

    <annotations_dir>/Charades_v1_train.csv    official, with header
    <annotations_dir>/Charades_v1_test.csv     official, with header
    <annotations_dir>/Charades_v1_classes.txt  optional: "c000 Holding some clothes" per line
    <features_dir>/<id>.npy                    one array per video, e.g. 46GP8.npy

The CSVs have the columns ``id, subject, scene, quality, relevance, verified, script, objects,
descriptions, actions, length``; ``actions`` is a ``;``-separated list of ``"c<class> <start s>
<end s>"`` triples (``"c092 11.90 21.20;c147 0.00 12.60"``), empty for a video without actions.
A video's labels are the set of its action classes (the temporal extents are not used: the task
is video-level classification, as in Charades' ``Charades_v1_classify.m``).

Moments in Time (339 classes, single-label, scored by top-1/top-5 accuracy)::

    <annotations_dir>/moments_categories.txt   "name,index" per line (class index order)
    <annotations_dir>/trainingSet.csv          no header: filename,label,positive,negative
    <annotations_dir>/validationSet.csv        same
    <features_dir>/training/<filename>.npy     e.g. training/blocking/getty-karate-..._4.npy
    <features_dir>/validation/<filename>.npy

``filename`` is the video's path inside the official ``training/`` or ``validation/`` folder
(``blocking/getty-karate-video-id635808620_4.mp4``); its feature file replaces ``.mp4`` by
``.npy`` under the same folder. Video ids are ``"training/<filename without .mp4>"`` and
``"validation/..."``, unique across the two sets. The validation set is the test split (the
official test labels were never released).

Feature files: ``float`` ``[D]`` (video-level) or ``[F, D]`` (frame-level, e.g. one row per
sampled frame from any image CNN); ``D`` must be the same for every video. Frame-level features
are averaged over frames and every video vector is L2-normalised (paper §3.2, Fig. 3). They go
into ``VideoSet.rgb`` with their real ``D``; ``VideoSet.audio`` is empty ``[N, 0]``.

An annotated video without a feature file is not silently dropped: it is recorded in
``VideoSet.skipped`` (reason ``"missing features"``, file, CSV row) and a warning gives the count.

Sources checked for the official formats:

* Charades ``README.txt`` of the official release
  (https://prior.allenai.org/projects/data/charades/README.txt): ``Charades_v1_train.csv`` /
  ``Charades_v1_test.csv`` (train/test annotations), ``Charades_v1_classes.txt``; the column list and the ``actions`` format ("c123 11.0 13.0",
  ``;``-separated, possibly empty) as parsed by the Hugging Face Charades loader
  (https://huggingface.co/datasets/HuggingFaceM4/charades, ``charades.py``).
* Moments in Time ``README.txt`` of the official release (http://moments.csail.mit.edu/):
  ``trainingSet.csv`` / ``validationSet.csv`` are comma-separated with the fields filename,
  label, annotation positive responses, annotation negative responses; ``moments_categories.txt``
  holds "each class label and index used for training". mmaction2's
  ``tools/data/parse_file_list.py`` (``parse_mit_splits``) reads the categories as
  ``name,index`` lines and the set CSVs with ``csv.reader`` (no header row).
* Challenge metric: top-1 and top-5 accuracy (http://moments.csail.mit.edu/challenge.html).
"""

from __future__ import annotations

import csv
import hashlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from vidsage_core.data.splits import Split
from vidsage_core.data.videoset import SkipReport, VideoSet, labels_to_csr

__all__ = [
    "CHARADES_NUM_CLASSES",
    "MOMENTS_NUM_CLASSES",
    "CHARADES_COLUMNS",
    "SYNTHETIC_MARKER",
    "SyntheticLayout",
    "parse_charades_actions",
    "read_charades",
    "read_moments",
    "read_moments_categories",
    "make_synthetic_charades",
    "make_synthetic_moments",
]

CHARADES_NUM_CLASSES = 157  # c000 .. c156
MOMENTS_NUM_CLASSES = 339  # Moments in Time v1
CHARADES_COLUMNS = ("id", "subject", "scene", "quality", "relevance", "verified", "script",
                    "objects", "descriptions", "actions", "length")
CHARADES_FILES = ("Charades_v1_train.csv", "Charades_v1_test.csv")
MOMENTS_FILES = (("trainingSet.csv", "training"), ("validationSet.csv", "validation"))
MOMENTS_CATEGORIES = "moments_categories.txt"
#: Written by the synthetic generators into the root, annotation and feature directories; the
#: readers set ``synthetic=True`` when they find it.
SYNTHETIC_MARKER = "SYNTHETIC.json"
MISSING = "missing features"


class SyntheticLayout(NamedTuple):
    """Where a synthetic stand-in was written (unpacks as ``root, features_dir, annotations_dir``)."""

    root: Path
    features_dir: Path
    annotations_dir: Path


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------

def _synthetic_marker(*dirs: Path) -> dict | None:
    for d in dirs:
        for candidate in (d / SYNTHETIC_MARKER, d.parent / SYNTHETIC_MARKER):
            if candidate.is_file():
                return json.loads(candidate.read_text())
    return None


def _video_vector(path: Path) -> np.ndarray:
    """Load one feature file and aggregate it: mean over frames (if ``[F, D]``), then L2 norm."""
    a = np.load(path, allow_pickle=False)
    if a.ndim == 2:
        if a.shape[0] == 0:
            raise ValueError(f"{path}: frame-level features with 0 frames")
        a = a.astype(np.float64).mean(axis=0)
    elif a.ndim != 1:
        raise ValueError(f"{path}: expected [D] or [F, D] features, got shape {a.shape}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{path}: non-finite feature values")
    norm = np.linalg.norm(a)
    return (a / norm if norm > 0 else a).astype(np.float32)


def _val_mask(ids: Sequence[str], fraction: float) -> np.ndarray:
    """Deterministic per-id draw: ``True`` for about ``fraction`` of ids (md5 of the id)."""
    if fraction <= 0:
        return np.zeros(len(ids), dtype=bool)
    u = np.array([int(hashlib.md5(i.encode()).hexdigest(), 16) / 2.0**128 for i in ids])
    return u < fraction


def _assemble(entries: list[tuple[str, Path, list[int], str, int, str]], num_classes: int,
              source: str, synthetic: bool, val_fraction: float, progress: bool, desc: str,
              on_error: str) -> tuple[VideoSet, Split]:
    """Read the feature files of ``entries`` = (id, feature path, labels, split, csv row, csv name)."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    report = SkipReport()
    report.records_read = len(entries)
    ids, vectors, labels, splits = [], [], [], []
    dim = None
    dim_file = None
    for vid, path, labs, split, row, csv_name in tqdm(entries, desc=desc, disable=not progress):
        if not path.is_file():
            report.add(str(path), row, MISSING, detail=f"{csv_name} row {row}: video {vid!r}")
            continue
        report.files_read += 1
        try:
            vec = _video_vector(path)
            if dim is None:
                dim, dim_file = vec.shape[0], path
            elif vec.shape[0] != dim:
                raise ValueError(f"{path}: feature dimension {vec.shape[0]} differs from {dim} "
                                 f"(first file {dim_file})")
        except (ValueError, OSError) as exc:
            if on_error == "raise":
                raise
            report.add(str(path), row, "bad features", detail=str(exc))
            continue
        ids.append(vid)
        vectors.append(vec)
        labels.append(labs)
        splits.append(split)
        if not labs:
            report.note("unlabelled")
    n = len(ids)
    if n == 0:
        raise ValueError(f"{desc}: none of the {len(entries)} annotated videos has a readable "
                         f"feature file ({report.counts()})")
    counts = report.counts()
    if counts:
        warnings.warn(f"{desc}: {len(report)} of {len(entries)} annotated videos left out "
                      f"({', '.join(f'{k}: {v}' for k, v in counts.items())}); "
                      "see VideoSet.skipped", stacklevel=3)
    rgb = np.stack(vectors).astype(np.float32)
    vs = VideoSet(
        ids=np.asarray(ids, dtype=str),
        rgb=rgb,
        audio=np.zeros((n, 0), np.float32),
        labels=labels_to_csr(labels, num_classes),
        num_classes=num_classes,
        source=source,
        synthetic=synthetic,
        skipped=report,
        pooling="mean",
    )
    split_arr = np.asarray(splits)
    train_all = np.flatnonzero(split_arr == "train")
    val_mask = _val_mask([ids[i] for i in train_all], val_fraction)
    split = Split(train=train_all[~val_mask].astype(np.int64), val=train_all[val_mask].astype(np.int64),
                  test=np.flatnonzero(split_arr == "test").astype(np.int64))
    return vs, split


def _source(kind: str, features_dir: Path, annotations_dir: Path, marker: dict | None) -> str:
    where = f"features={features_dir}, annotations={annotations_dir}"
    if marker is None:
        return f"{kind}({where})"
    params = ", ".join(f"{k}={marker[k]}" for k in ("num_videos", "seed") if k in marker)
    return f"synthetic({kind}-layout stand-in, {params}; {where})"


# ---------------------------------------------------------------------------------------------
# Charades
# ---------------------------------------------------------------------------------------------

def parse_charades_actions(actions: str, num_classes: int = CHARADES_NUM_CLASSES,
                           where: str = "actions") -> list[int]:
    """Class indices of a Charades ``actions`` cell (sorted, duplicates merged).

    Args:
        actions: e.g. ``"c092 11.90 21.20;c147 0.00 12.60"`` (may be empty).
        num_classes: valid classes are ``c000`` .. ``c{num_classes-1}``.
        where: location used in error messages.

    Returns:
        e.g. ``[92, 147]``.
    """
    out = set()
    for item in actions.split(";"):
        item = item.strip()
        if not item:
            continue
        parts = item.split()
        code = parts[0]
        if len(parts) != 3 or not code.startswith("c") or not code[1:].isdigit():
            raise ValueError(f"{where}: malformed action {item!r} (expected 'cNNN start end')")
        idx = int(code[1:])
        if not 0 <= idx < num_classes:
            raise ValueError(f"{where}: action class {code} outside c000..c{num_classes - 1:03d}")
        out.add(idx)
    return sorted(out)


def read_charades(features_dir: str | Path, annotations_dir: str | Path,
                  num_classes: int = CHARADES_NUM_CLASSES, val_fraction: float = 0.0,
                  on_error: str = "raise", progress: bool = True) -> tuple[VideoSet, Split]:
    """Read Charades features with the official train/test split (layout: module docstring).

    Args:
        features_dir: directory of ``<id>.npy`` feature files.
        annotations_dir: directory with ``Charades_v1_train.csv`` and ``Charades_v1_test.csv``.
        num_classes: 157 for Charades v1.
        val_fraction: part of the official train set held out as ``split.val`` (deterministic
            by a hash of the id); 0 leaves ``split.val`` empty.
        on_error: malformed feature files: ``"raise"``, or ``"skip"`` (recorded in
            ``VideoSet.skipped`` as ``"bad features"``). Missing files are always skipped and
            recorded (``"missing features"``) with a warning.
        progress: tqdm bar over videos.

    Returns:
        ``(videoset, split)``: rgb float32 ``[N, D]`` (mean over frames, L2-normalised), audio
        ``[N, 0]``, labels CSR ``[N, num_classes]``; ``split.train``/``split.test`` are the rows
        from the train/test CSV.
    """
    features_dir, annotations_dir = Path(features_dir), Path(annotations_dir)
    entries = []
    for csv_name, split in zip(CHARADES_FILES, ("train", "test")):
        path = annotations_dir / csv_name
        if not path.is_file():
            raise FileNotFoundError(f"Charades annotation file not found: {path}")
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing_cols = {"id", "actions"} - set(reader.fieldnames or [])
            if missing_cols:
                raise ValueError(f"{path}: missing column(s) {sorted(missing_cols)} "
                                 f"(header: {reader.fieldnames})")
            for row_no, row in enumerate(reader):
                vid = row["id"].strip()
                labs = parse_charades_actions(row["actions"] or "", num_classes,
                                              where=f"{path} row {row_no} (id {vid})")
                entries.append((vid, features_dir / f"{vid}.npy", labs, split, row_no, csv_name))
    marker = _synthetic_marker(features_dir, annotations_dir)
    return _assemble(entries, num_classes, _source("charades", features_dir, annotations_dir, marker),
                     marker is not None, val_fraction, progress, "read_charades", on_error)


# ---------------------------------------------------------------------------------------------
# Moments in Time
# ---------------------------------------------------------------------------------------------

def read_moments_categories(path: str | Path) -> list[str]:
    """Class names by index from ``moments_categories.txt`` (``name,index`` per line)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Moments in Time categories file not found: {path}")
    by_index: dict[int, str] = {}
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        name, sep, index = line.strip().rpartition(",")
        if not sep or not index.strip().isdigit():
            raise ValueError(f"{path} line {line_no + 1}: expected 'name,index', got {line!r}")
        idx = int(index)
        if idx in by_index:
            raise ValueError(f"{path} line {line_no + 1}: index {idx} given twice")
        by_index[idx] = name
    if sorted(by_index) != list(range(len(by_index))):
        raise ValueError(f"{path}: class indices are not 0..{len(by_index) - 1}")
    return [by_index[i] for i in range(len(by_index))]


def read_moments(features_dir: str | Path, annotations_dir: str | Path, val_fraction: float = 0.0,
                 on_error: str = "raise", progress: bool = True) -> tuple[VideoSet, Split]:
    """Read Moments in Time features with the official split (layout: module docstring).

    Args:
        features_dir: directory with ``training/`` and ``validation/`` trees of ``.npy`` files.
        annotations_dir: directory with ``moments_categories.txt``, ``trainingSet.csv`` and
            ``validationSet.csv``.
        val_fraction: part of the training set held out as ``split.val`` (hash of the id).
        on_error: malformed feature files: ``"raise"`` or ``"skip"``; missing files are always
            skipped and recorded with a warning.
        progress: tqdm bar over videos.

    Returns:
        ``(videoset, split)``: one label per video over ``len(categories)`` classes (339 for
        v1); ``split.test`` are the validation-set videos.
    """
    features_dir, annotations_dir = Path(features_dir), Path(annotations_dir)
    names = read_moments_categories(annotations_dir / MOMENTS_CATEGORIES)
    index = {n: i for i, n in enumerate(names)}
    entries = []
    for (csv_name, folder), split in zip(MOMENTS_FILES, ("train", "test")):
        path = annotations_dir / csv_name
        if not path.is_file():
            raise FileNotFoundError(f"Moments in Time annotation file not found: {path}")
        with path.open(newline="", encoding="utf-8") as f:
            for row_no, row in enumerate(csv.reader(f)):
                if not row or not "".join(row).strip():
                    continue
                if len(row) < 2:
                    raise ValueError(f"{path} row {row_no}: expected 'filename,label,...', got {row}")
                filename, label = row[0].strip(), row[1].strip()
                if label not in index:
                    raise ValueError(f"{path} row {row_no}: label {label!r} not in {MOMENTS_CATEGORIES}")
                stem = filename[:-4] if filename.lower().endswith(".mp4") else filename
                vid = f"{folder}/{stem}"
                entries.append((vid, features_dir / f"{vid}.npy", [index[label]], split, row_no, csv_name))
    marker = _synthetic_marker(features_dir, annotations_dir)
    return _assemble(entries, len(names), _source("moments-in-time", features_dir, annotations_dir, marker),
                     marker is not None, val_fraction, progress, "read_moments", on_error)


# ---------------------------------------------------------------------------------------------
# Synthetic stand-ins, written in the official layout
# ---------------------------------------------------------------------------------------------

def _write_marker(layout: SyntheticLayout, info: dict) -> None:
    text = json.dumps({"synthetic": True, **info}, indent=2) + "\n"
    for d in layout:
        (d / SYNTHETIC_MARKER).write_text(text)


def _class_features(rng: np.random.Generator, num_classes: int, dim: int) -> np.ndarray:
    protos = rng.standard_normal((num_classes, dim))
    return protos / np.linalg.norm(protos, axis=1, keepdims=True)


def _write_features(path: Path, video_vec: np.ndarray, rng: np.random.Generator, frame_level: bool,
                    max_frames: int, frame_noise: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if frame_level:
        f = int(rng.integers(2, max_frames + 1))
        frames = video_vec[None, :] + frame_noise * rng.standard_normal((f, video_vec.size))
        np.save(path, frames.astype(np.float32))
    else:
        np.save(path, video_vec.astype(np.float32))


def _layout(out_dir: str | Path) -> SyntheticLayout:
    root = Path(out_dir)
    layout = SyntheticLayout(root, root / "features", root / "annotations")
    for d in layout:
        d.mkdir(parents=True, exist_ok=True)
    return layout


def make_synthetic_charades(out_dir: str | Path, num_videos: int = 300, seed: int = 0,
                            num_classes: int = CHARADES_NUM_CLASSES, feature_dim: int = 1024,
                            test_fraction: float = 0.25, frame_level_fraction: float = 0.5,
                            max_frames: int = 16, noise: float = 4.0, frame_noise: float = 0.5,
                            missing_features: int = 0) -> SyntheticLayout:
    """Write a SYNTHETIC Charades stand-in in the official layout (module docstring).

    Each class has a random unit prototype; a video acts out 0-6 classes (Zipf-like class
    frequencies, about 2% of videos without actions as in the real files), its feature is the
    sum of its classes' prototypes plus Gaussian noise, and frame-level files add per-frame
    noise around it. Nothing here is Charades data: every reader result is ``synthetic=True``.

    Args:
        out_dir: root; ``features/``, ``annotations/`` and ``SYNTHETIC.json`` are written in it.
        num_videos: annotated videos (train + test).
        seed: ``np.random.default_rng`` seed; the output is a pure function of the arguments.
        num_classes: action classes ``c000..``.
        feature_dim: ``D`` of the feature files.
        test_fraction: share of videos in ``Charades_v1_test.csv``.
        frame_level_fraction: share of videos written as ``[F, D]`` frame features (the rest
            ``[D]``), so both file kinds are exercised.
        max_frames: frame-level files have 2..max_frames rows.
        noise: per-video noise; its norm is about ``noise`` (std ``noise / sqrt(D)`` per
            dimension), against unit-norm class prototypes. The default 4.0 leaves a
            nearest-centroid classifier at ~0.8 mAP on 1,500 videos, 1024-D (0.99 at 0.6).
        frame_noise: per-frame noise, same scale.
        missing_features: this many annotated videos get no feature file (to exercise the
            reader's reporting).

    Returns:
        ``SyntheticLayout(root, features_dir, annotations_dir)``.
    """
    if not 0 <= missing_features <= num_videos:
        raise ValueError(f"missing_features must be in [0, {num_videos}], got {missing_features}")
    rng = np.random.default_rng(seed)
    layout = _layout(out_dir)
    protos = _class_features(rng, num_classes, feature_dim)
    zipf = 1.0 / np.arange(1, num_classes + 1) ** 0.8
    class_p = zipf[rng.permutation(num_classes)]
    class_p /= class_p.sum()
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < num_videos:
        vid = "".join(rng.choice(alphabet, 5))
        if vid not in seen:
            seen.add(vid)
            ids.append(vid)
    n_test = int(round(test_fraction * num_videos))
    is_test = np.zeros(num_videos, dtype=bool)
    is_test[rng.choice(num_videos, n_test, replace=False)] = True
    missing = set(rng.choice(num_videos, missing_features, replace=False).tolist())
    scenes = ("Kitchen", "Living room", "Bedroom", "Bathroom", "Hallway")
    rows = {False: [], True: []}
    for i, vid in enumerate(ids):
        k = 0 if rng.random() < 0.02 else int(min(6, 1 + rng.poisson(1.5)))
        classes = sorted(set(rng.choice(num_classes, k, p=class_p).tolist())) if k else []
        length = float(rng.uniform(15.0, 45.0))
        actions = []
        for c in classes:
            start = float(rng.uniform(0.0, length - 1.0))
            end = min(length, start + float(rng.uniform(1.0, 15.0)))
            actions.append(f"c{c:03d} {start:.2f} {end:.2f}")
        rows[bool(is_test[i])].append({
            "id": vid, "subject": f"SYN{i % 40:02d}", "scene": scenes[i % len(scenes)],
            "quality": str(int(rng.integers(3, 8))), "relevance": str(int(rng.integers(4, 8))),
            "verified": "Yes", "script": "synthetic video (no script)", "objects": "",
            "descriptions": "synthetic", "actions": ";".join(actions), "length": f"{length:.2f}",
        })
        vec = protos[classes].sum(axis=0) if classes else np.zeros(feature_dim)
        vec = vec + noise * rng.standard_normal(feature_dim) / np.sqrt(feature_dim)
        frame_level = bool(rng.random() < frame_level_fraction)
        if i not in missing:
            _write_features(layout.features_dir / f"{vid}.npy", vec, rng, frame_level, max_frames,
                            frame_noise / np.sqrt(feature_dim))
    for csv_name, test in zip(CHARADES_FILES, (False, True)):
        with (layout.annotations_dir / csv_name).open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=CHARADES_COLUMNS)
            writer.writeheader()
            writer.writerows(rows[test])
    (layout.annotations_dir / "Charades_v1_classes.txt").write_text(
        "".join(f"c{c:03d} synthetic action {c:03d}\n" for c in range(num_classes)))
    _write_marker(layout, {"generator": "vidsage_core.action_datasets.make_synthetic_charades",
                           "dataset_layout": "charades", "num_videos": num_videos, "seed": seed,
                           "num_classes": num_classes, "feature_dim": feature_dim,
                           "missing_features": missing_features,
                           "note": "generated features and labels; not Charades data"})
    return layout


def make_synthetic_moments(out_dir: str | Path, num_videos: int = 400, seed: int = 0,
                           num_classes: int = MOMENTS_NUM_CLASSES, feature_dim: int = 1024,
                           val_fraction: float = 0.25, frame_level_fraction: float = 0.5,
                           max_frames: int = 16, noise: float = 4.0, frame_noise: float = 0.5,
                           missing_features: int = 0) -> SyntheticLayout:
    """Write a SYNTHETIC Moments in Time stand-in in the official layout (module docstring).

    One label per video (Zipf-like class frequencies); the feature is the class prototype plus
    Gaussian noise (per-frame noise on top for frame-level files). Class names are
    ``synthetic_action_000`` ...; nothing here is Moments in Time data.

    Args:
        out_dir: root; ``features/``, ``annotations/`` and ``SYNTHETIC.json`` are written in it.
        num_videos: annotated videos (training + validation).
        seed: ``np.random.default_rng`` seed.
        num_classes: classes in ``moments_categories.txt``.
        feature_dim: ``D`` of the feature files.
        val_fraction: share of videos in ``validationSet.csv`` (the test split).
        frame_level_fraction: share of ``[F, D]`` files (the rest ``[D]``).
        max_frames: frame-level files have 2..max_frames rows.
        noise: per-video noise norm relative to the unit prototype (std ``noise / sqrt(D)``
            per dimension). The default 4.0 keeps the task far from trivial: a nearest-centroid
            classifier scores ~58 % top-1 on 1,500 videos, 1024-D (~95 % at 1.0).
        frame_noise: per-frame noise, same scale.
        missing_features: this many annotated videos get no feature file.

    Returns:
        ``SyntheticLayout(root, features_dir, annotations_dir)``.
    """
    if not 0 <= missing_features <= num_videos:
        raise ValueError(f"missing_features must be in [0, {num_videos}], got {missing_features}")
    rng = np.random.default_rng(seed)
    layout = _layout(out_dir)
    names = [f"synthetic_action_{c:03d}" for c in range(num_classes)]
    (layout.annotations_dir / MOMENTS_CATEGORIES).write_text(
        "".join(f"{n},{i}\n" for i, n in enumerate(names)))
    protos = _class_features(rng, num_classes, feature_dim)
    zipf = 1.0 / np.arange(1, num_classes + 1) ** 0.5
    class_p = zipf[rng.permutation(num_classes)]
    class_p /= class_p.sum()
    n_val = int(round(val_fraction * num_videos))
    is_val = np.zeros(num_videos, dtype=bool)
    is_val[rng.choice(num_videos, n_val, replace=False)] = True
    missing = set(rng.choice(num_videos, missing_features, replace=False).tolist())
    rows = {False: [], True: []}
    for i in range(num_videos):
        c = int(rng.choice(num_classes, p=class_p))
        filename = f"{names[c]}/synthetic-{seed}-{i:06d}_{int(rng.integers(0, 300))}.mp4"
        folder = "validation" if is_val[i] else "training"
        positives = int(rng.integers(1, 5))
        rows[bool(is_val[i])].append([filename, names[c], str(positives), str(int(rng.integers(0, 2)))])
        vec = protos[c] + noise * rng.standard_normal(feature_dim) / np.sqrt(feature_dim)
        frame_level = bool(rng.random() < frame_level_fraction)
        if i not in missing:
            _write_features(layout.features_dir / folder / f"{filename[:-4]}.npy", vec, rng, frame_level,
                            max_frames, frame_noise / np.sqrt(feature_dim))
    for (csv_name, _), val in zip(MOMENTS_FILES, (False, True)):
        with (layout.annotations_dir / csv_name).open("w", newline="", encoding="utf-8") as f:
            csv.writer(f, lineterminator="\n").writerows(rows[val])
    _write_marker(layout, {"generator": "vidsage_core.action_datasets.make_synthetic_moments",
                           "dataset_layout": "moments-in-time", "num_videos": num_videos, "seed": seed,
                           "num_classes": num_classes, "feature_dim": feature_dim,
                           "missing_features": missing_features,
                           "note": "generated features and labels; not Moments in Time data"})
    return layout
