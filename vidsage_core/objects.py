"""Object sources: where each video's object set ``O_u`` (paper §3.3, VidSage) comes from.

Every source implements the small :class:`ObjectSource` protocol: a ``name`` (recorded in
graph and run provenance) and ``object_sets(videoset) -> list[frozenset[str]]`` aligned with
``videoset.ids``. Sources:

* :class:`DetectionsFile` — real detections (from any detector or tagger) in a JSON or CSV
  file; the raw-video tagger of ``vidsage_core.video`` writes one with :func:`write_detections`.
* :class:`FrameCodebook` — visual words: a k-means codebook over frame-level features; a video's
  set is the codewords used by at least ``m`` of its frames. Needs frame-level data.
* :class:`FeatureCodebookProxy` — for video-level-only data (the shared YouTube-8M shards carry
  no frames and no detections): product-quantisation-style codebooks over sub-spaces of the
  video-level features. These are *proxy concepts*, not detected objects; their names start
  with ``proxy-`` so no table can pass them off as objects.
* :class:`VideoSetObjects` — the sets already on ``VideoSet.objects`` (synthetic data).

``get_object_source(spec)`` builds a source from a spec string
``NAME[:ARGUMENT][?key=value&key=value]``, e.g. ``"detections:runs/x/objects.json?min_score=0.3"``,
``"frame-codebook?num_codewords=512"``, ``"proxy-audio"``, ``"proxy-subspace?top=2"``.
Other modules add sources with :func:`register_object_source` (``vidsage_core.video``
registers ``"imagenet-tagger"``, loaded on first use).
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import json
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

__all__ = [
    "ObjectSource",
    "DetectionsReport",
    "DetectionsFile",
    "write_detections",
    "FrameCodebook",
    "FeatureCodebookProxy",
    "VideoSetObjects",
    "OBJECT_SOURCES",
    "register_object_source",
    "get_object_source",
    "save_object_source",
    "load_object_source",
]


@runtime_checkable
class ObjectSource(Protocol):
    """Anything that gives every video of a VideoSet a set of object (or concept) names."""

    name: str

    def object_sets(self, videoset: Any) -> list[frozenset[str]]:
        """Return one frozenset per video, aligned with ``videoset.ids``."""
        ...


# ---------------------------------------------------------------------------------------------
# (a) detections files
# ---------------------------------------------------------------------------------------------
@dataclass
class DetectionsReport:
    """What reading a detections file against a VideoSet found (kept on the source)."""

    path: str
    videos: int = 0  # videos in the VideoSet
    videos_with_objects: int = 0  # videos that got a non-empty set
    videos_missing: int = 0  # videos of the VideoSet absent from the file (empty set)
    unknown_ids: int = 0  # video ids in the file that are not in the VideoSet (ignored)
    entries: int = 0  # detection entries read
    entries_below_score: int = 0  # dropped by min_score
    labels_below_min_frames: int = 0  # (video, label) pairs dropped by min_frames

    def summary(self) -> str:
        return (f"{self.path}: {self.videos_with_objects}/{self.videos} videos with objects, "
                f"{self.videos_missing} missing from the file, {self.unknown_ids} ids not in the "
                f"video set, {self.entries} entries ({self.entries_below_score} below min_score, "
                f"{self.labels_below_min_frames} labels below min_frames)")


# One observation: (label, frame or None, score).
_Obs = tuple[str, "int | None", float]


def _read_json_detections(path: Path) -> dict[str, list[_Obs]]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object {{video_id: [...]}}, got "
                         f"{type(data).__name__}")
    out: dict[str, list[_Obs]] = {}
    for vid, items in data.items():
        if not isinstance(items, list):
            raise ValueError(f"{path}: video {vid!r}: expected a list, got {type(items).__name__}")
        obs: list[_Obs] = []
        for j, it in enumerate(items):
            if isinstance(it, str):
                obs.append((it, None, 1.0))
            elif isinstance(it, dict) and "label" in it:
                frame = it.get("frame")
                obs.append((str(it["label"]), None if frame is None else int(frame),
                            float(it.get("score", 1.0))))
            else:
                raise ValueError(f"{path}: video {vid!r} entry {j}: expected a label string or "
                                 f"{{'label': ..., 'frame': ..., 'score': ...}}, got {it!r}")
        out[str(vid)] = obs
    return out


def _read_csv_detections(path: Path) -> dict[str, list[_Obs]]:
    out: dict[str, list[_Obs]] = defaultdict(list)
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        cols = set(reader.fieldnames or [])
        if not {"video_id", "label"} <= cols:
            raise ValueError(f"{path}: CSV needs a header with columns video_id,label"
                             f"[,frame][,score]; found {sorted(cols)}")
        for line, row in enumerate(reader, start=2):
            try:
                frame = row.get("frame")
                score = row.get("score")
                out[row["video_id"]].append((
                    row["label"],
                    None if frame in (None, "") else int(float(frame)),
                    1.0 if score in (None, "") else float(score),
                ))
            except (TypeError, ValueError) as e:
                raise ValueError(f"{path}: line {line}: {e}") from None
    return dict(out)


@dataclass
class DetectionsFile:
    """Object sets read from a detections file (JSON or CSV, chosen by extension).

    Layouts (exactly):

    * JSON, labels only: ``{"video_id": ["dog", "ball", ...], ...}``
    * JSON, per detection: ``{"video_id": [{"label": "dog", "frame": 3, "score": 0.91}, ...]}``
      (``frame`` and ``score`` optional; the two forms may be mixed across videos)
    * CSV with header ``video_id,label[,frame][,score]`` (extra columns ignored), one detection
      per row: ``0a1b,dog,3,0.91``

    A label enters a video's set when at least ``min_frames`` of its detections have
    ``score >= min_score``; detections of one label in the same frame count once; detections
    without a frame index count as one frame each; a missing score counts as 1.0.

    Videos of the VideoSet absent from the file get an empty set, and ids in the file that are
    not in the VideoSet are ignored: both are counted in :attr:`report` and announced with a
    warning.

    Args:
        path: the file (``.json`` or ``.csv``).
        min_score: minimum detection score.
        min_frames: minimum number of frames a label must be detected in.
    """

    path: str | Path
    min_score: float = 0.0
    min_frames: int = 1
    report: DetectionsReport | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.min_frames < 1:
            raise ValueError(f"min_frames must be >= 1, got {self.min_frames}")

    @property
    def name(self) -> str:
        opts = []
        if self.min_score > 0:
            opts.append(f"min_score={self.min_score:g}")
        if self.min_frames > 1:
            opts.append(f"min_frames={self.min_frames}")
        return f"detections:{self.path}" + ("?" + "&".join(opts) if opts else "")

    def read(self) -> tuple[dict[str, frozenset[str]], DetectionsReport]:
        """Parse the file and apply ``min_score`` / ``min_frames``.

        Returns:
            ``{video_id: frozenset(labels)}`` for every id in the file, and a partial report.
        """
        path = Path(self.path)
        if not path.exists():
            raise FileNotFoundError(f"detections file not found: {path}")
        suffix = path.suffix.lower()
        if suffix == ".json":
            raw = _read_json_detections(path)
        elif suffix == ".csv":
            raw = _read_csv_detections(path)
        else:
            raise ValueError(f"{path}: detections file must end in .json or .csv")
        rep = DetectionsReport(path=str(path))
        sets: dict[str, frozenset[str]] = {}
        for vid, obs in raw.items():
            frames: dict[str, set] = defaultdict(set)
            for j, (label, frame, score) in enumerate(obs):
                rep.entries += 1
                if score < self.min_score:
                    rep.entries_below_score += 1
                    continue
                frames[label].add(("f", frame) if frame is not None else ("e", j))
            keep = {lab for lab, fr in frames.items() if len(fr) >= self.min_frames}
            rep.labels_below_min_frames += len(frames) - len(keep)
            sets[vid] = frozenset(keep)
        return sets, rep

    def object_sets(self, videoset: Any) -> list[frozenset[str]]:
        """One set per video of ``videoset`` (``ids`` order); see the class docstring."""
        sets, rep = self.read()
        ids = [str(i) for i in videoset.ids]
        known = set(ids)
        out = [sets.get(i, frozenset()) for i in ids]
        rep.videos = len(ids)
        rep.videos_missing = sum(i not in sets for i in ids)
        rep.unknown_ids = sum(v not in known for v in sets)
        rep.videos_with_objects = sum(bool(s) for s in out)
        self.report = rep
        if rep.videos_missing or rep.unknown_ids:
            warnings.warn(f"detections {self.path}: {rep.videos_missing} of "
                          f"{rep.videos} videos are missing from the file (empty object set); "
                          f"{rep.unknown_ids} ids in the file are not in the video set",
                          stacklevel=2)
        return out


def write_detections(
    path: str | Path,
    detections: Mapping[str, Iterable[str | Mapping[str, Any]]],
) -> Path:
    """Write detections in a layout :class:`DetectionsFile` reads (format by extension).

    Args:
        path: ``.json`` or ``.csv`` file to write.
        detections: ``{video_id: [label, ...]}`` or ``{video_id: [{"label", "frame",
            "score"}, ...]}``.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    norm: dict[str, list] = {}
    for vid, items in detections.items():
        norm[str(vid)] = [it if isinstance(it, str) else dict(it) for it in items]
    suffix = path.suffix.lower()
    if suffix == ".json":
        path.write_text(json.dumps(norm, indent=1) + "\n")
    elif suffix == ".csv":
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["video_id", "label", "frame", "score"])
            for vid, items in norm.items():
                for it in items:
                    if isinstance(it, str):
                        w.writerow([vid, it, "", ""])
                    else:
                        w.writerow([vid, it["label"], it.get("frame", ""), it.get("score", "")])
    else:
        raise ValueError(f"{path}: detections file must end in .json or .csv")
    return path


# ---------------------------------------------------------------------------------------------
# k-means helpers
# ---------------------------------------------------------------------------------------------
def _normalize_rows(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    n = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.maximum(n, 1e-12)


def _kmeans(train: np.ndarray, k: int, seed: int, niter: int, what: str,
            nredo: int = 1) -> np.ndarray:
    """Spherical k-means centroids ``[k, D]`` with FAISS (unit-norm inputs); the best of
    ``nredo`` runs by objective."""
    import faiss

    if train.shape[0] < k:
        raise ValueError(f"{what}: {train.shape[0]} training vectors for {k} codewords; "
                         f"lower num_codewords or fit on more videos")
    # min_points_per_centroid=1: FAISS otherwise prints a stderr warning on every fit with fewer
    # than 39 points per centroid (seven per notebook on the 1,125-video synthetic stand-ins),
    # whatever verbose says; the hard limit is the check above. The setting changes no result:
    # FAISS uses it only for that warning (max_points_per_centroid is what subsamples).
    km = faiss.Kmeans(train.shape[1], k, niter=niter, seed=seed, spherical=True, verbose=False,
                      nredo=nredo, min_points_per_centroid=1, max_points_per_centroid=1 << 30)
    km.train(np.ascontiguousarray(train, dtype=np.float32))
    return np.ascontiguousarray(km.centroids, dtype=np.float32)


def _nearest(centroids: np.ndarray, x: np.ndarray, top: int) -> np.ndarray:
    """Indices ``[M, top]`` of the nearest centroids (inner product on unit vectors)."""
    import faiss

    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(centroids)
    _, i = index.search(np.ascontiguousarray(x, dtype=np.float32), top)
    return i


# ---------------------------------------------------------------------------------------------
# (b) frame-level visual words
# ---------------------------------------------------------------------------------------------
@dataclass
class FrameCodebook:
    """Visual words from frame-level features: ``O_u`` = codewords used by >= m frames of u.

    A spherical k-means codebook (``faiss.Kmeans``) is fitted on L2-normalised frame features
    (``VideoSet.frames``, the first ``num_frames[i]`` rows of video ``i``), by default on the
    videos passed to :meth:`fit` (the training videos), then every frame of every video is
    assigned to its nearest codeword. Set names look like ``"frame:c17"``.

    Args:
        num_codewords: codebook size.
        min_frames: a codeword enters a video's set when at least this many frames use it.
        seed: k-means seed and training-frame sample seed.
        niter: k-means iterations.
        max_train_frames: frames sampled (uniformly, with ``seed``) to fit the codebook.
        nredo: k-means restarts (the lowest-objective run is kept).
        block_videos: videos per assignment block (bounds memory on memmapped frames).
    """

    num_codewords: int = 256  # a vocabulary of the order of a detector's class list
    min_frames: int = 3  # a word must recur (~1 s at YouTube-8M's 1 frame/s) to count
    seed: int = 0
    niter: int = 20
    max_train_frames: int = 200_000  # ~40 points per word x 256 words, with margin
    nredo: int = 1
    block_videos: int = 512
    centroids: np.ndarray | None = field(default=None, init=False, repr=False)
    fit_videos: int | None = field(default=None, init=False)

    @property
    def name(self) -> str:
        return f"frame-codebook(c={self.num_codewords},m={self.min_frames},seed={self.seed})"

    @staticmethod
    def _check(videoset: Any) -> tuple[np.ndarray, np.ndarray]:
        frames = getattr(videoset, "frames", None)
        num_frames = getattr(videoset, "num_frames", None)
        if frames is None or num_frames is None:
            raise ValueError(
                "FrameCodebook needs frame-level features, but this VideoSet has none "
                f"(source: {getattr(videoset, 'source', '?')!r}); read frame-level TFRecords "
                "with keep_frames=True, or use a video-level proxy source such as 'proxy-audio'")
        return frames, np.asarray(num_frames)

    def fit(self, videoset: Any, rows: Sequence[int] | np.ndarray | None = None) -> "FrameCodebook":
        """Fit the codebook on the frames of ``rows`` (all videos when ``None``)."""
        frames, num_frames = self._check(videoset)
        rows = np.arange(len(num_frames)) if rows is None else np.asarray(rows, dtype=np.int64)
        counts = num_frames[rows].astype(np.int64)
        total = int(counts.sum())
        if total == 0:
            raise ValueError("FrameCodebook.fit: the selected videos have no frames")
        rng = np.random.default_rng(self.seed)
        take = np.sort(rng.choice(total, size=min(total, self.max_train_frames), replace=False))
        # Map flat frame numbers back to (video row, frame) without materialising all frames.
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        vid = np.searchsorted(starts, take, side="right") - 1
        fr = take - starts[vid]
        train = _normalize_rows(np.asarray(frames[rows[vid], fr], dtype=np.float32))
        self.centroids = _kmeans(train, self.num_codewords, self.seed, self.niter,
                                 "FrameCodebook", nredo=self.nredo)
        self.fit_videos = int(len(rows))
        return self

    def object_sets(self, videoset: Any) -> list[frozenset[str]]:
        """Assign every frame, keep codewords used by >= ``min_frames`` frames per video."""
        frames, num_frames = self._check(videoset)
        if self.centroids is None:
            warnings.warn("FrameCodebook: fitting on all videos (call fit(videoset, train_rows) "
                          "for an inductive codebook)", stacklevel=2)
            self.fit(videoset)
        n = len(num_frames)
        out: list[frozenset[str]] = []
        for s in range(0, n, self.block_videos):
            e = min(n, s + self.block_videos)
            nf = num_frames[s:e].astype(np.int64)
            mask = np.arange(frames.shape[1])[None, :] < nf[:, None]
            block = np.asarray(frames[s:e], dtype=np.float32)[mask]
            owner = np.repeat(np.arange(e - s), nf)
            code = _nearest(self.centroids, _normalize_rows(block), 1)[:, 0] if len(block) \
                else np.zeros(0, np.int64)
            cnt = np.zeros((e - s, self.num_codewords), dtype=np.int64)
            np.add.at(cnt, (owner, code), 1)
            for row in cnt:
                out.append(frozenset(f"frame:c{c}" for c in np.flatnonzero(row >= self.min_frames)))
        return out


# ---------------------------------------------------------------------------------------------
# (c) proxy concepts for video-level-only data
# ---------------------------------------------------------------------------------------------
_MODALITIES = ("rgb", "audio", "rgb+audio")


@dataclass
class FeatureCodebookProxy:
    """Proxy concepts from video-level features (no detections, no frames needed).

    The feature vector (``VideoSet.features(modality)``) is cut into ``num_subspaces``
    contiguous sub-spaces (as in product quantisation); each sub-space gets its own spherical
    k-means codebook of ``num_codewords`` words, fitted on the training videos given to
    :meth:`fit` and then applied to all videos (inductive). A video's concept set is its
    ``top`` nearest codewords in every sub-space, named ``"{modality}:s{j}:c{c}"``; so a set
    has ``num_subspaces * top`` concepts and the Jaccard index of two videos counts how many
    sub-spaces put them in the same cell.

    These are NOT detected objects: the source name starts with ``proxy-``.

    Defaults (rgb+audio, 8 sub-spaces x 128 codewords, top 2) were chosen by measurement on
    the real 13,998-video YouTube-8M set: codebooks fitted on train (md5 buckets 2-4), all
    videos assigned, Jaccard edges with ``vidsage_core.graph`` defaults (min_jaccard 0.1, top
    25 partners, stop objects > 5%); labels of train + validation (bucket 1) only, the test
    bucket 0 never looked at. "hom." = fraction of train/val Jaccard edges whose endpoints share
    a label (random pairs 0.082, LiteVidSage k=25 edges 0.583); "GAP J" / "GAP mix" =
    validation GAP@20 of the average label of each validation video's training neighbours in
    the Jaccard-only graph / the VidSage graph (0.7 w1 + 0.3 w2; LiteVidSage alone: 0.590);
    "pairs" = candidate pairs the inverted index produced (all pairs: 98M). Regenerate with
    ``python benchmarks/bench_knn.py --sweep-graph-defaults``:

    =========  ==  ===  ===  ========  ====  =====  =====  =======  =====
    modality   s   c    top  mean deg  iso.  hom.   GAP J  GAP mix  pairs
    =========  ==  ===  ===  ========  ====  =====  =====  =======  =====
    rgb+audio  8   128  2    37.0      0     0.558  0.519  0.599    41M
    rgb+audio  8   64   2    36.4      0     0.540  0.511  0.600    75M
    rgb+audio  8   256  2    29.1      10    0.671  0.478  0.599    21M
    rgb+audio  8   128  1    33.7      0     0.524  0.477  0.594    11M
    rgb+audio  8   64   1    35.4      0     0.489  0.463  0.593    22M
    rgb+audio  16  128  1    22.5      34    0.657  0.387  0.596    22M
    rgb+audio  16  64   1    35.0      0     0.491  0.482  0.598    42M
    rgb+audio  4   64   1    34.0      0     0.507  0.455  0.578    12M
    rgb        8   64   1    35.0      0     0.442  0.427  0.593    22M
    rgb        16  64   1    34.0      0     0.461  0.438  0.597    42M
    audio      8   64   1    34.1      0     0.306  0.272  0.564    22M
    audio      4   64   1    33.4      0     0.296  0.252  0.535    11M
    =========  ==  ===  ===  ========  ====  =====  =====  =======  =====

    The default has the best Jaccard-only GAP, no isolated videos, and a mixed-graph GAP
    within 0.001 of the best (8 x 64, top 2, which needs 75M candidate pairs, 3/4 of all
    pairs). Audio-only concepts are clearly weaker. Candidate pairs grow like
    ``N^2 * s * top^2 / c``: for larger collections raise ``num_codewords`` (about ``N / 100``)
    so each word stays rare.

    Args:
        modality: "rgb", "audio" or "rgb+audio".
        num_subspaces: number of sub-spaces (codebooks).
        num_codewords: words per codebook.
        top: nearest codewords kept per sub-space.
        seed: k-means seed.
        niter: k-means iterations.
    """

    modality: str = "rgb+audio"  # rgb+audio beat rgb and audio alone (table above)
    num_subspaces: int = 8  # 8 sub-spaces of 144 dims
    num_codewords: int = 128  # ~65 training videos per word on the 8.4k training videos
    top: int = 2  # two words per sub-space: softer matching, best Jaccard-only GAP
    seed: int = 0
    niter: int = 25
    codebooks: list[np.ndarray] | None = field(default=None, init=False, repr=False)
    fit_videos: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.modality not in _MODALITIES:
            raise ValueError(f"modality must be one of {_MODALITIES}, got {self.modality!r}")
        if not 1 <= self.top <= self.num_codewords:
            raise ValueError(f"top must be in [1, num_codewords={self.num_codewords}], "
                             f"got {self.top}")

    @property
    def name(self) -> str:
        return (f"proxy-{self.modality}(s={self.num_subspaces},c={self.num_codewords},"
                f"top={self.top},seed={self.seed})")

    def _splits(self, dim: int) -> list[np.ndarray]:
        if not 1 <= self.num_subspaces <= dim:
            raise ValueError(f"num_subspaces must be in [1, {dim}], got {self.num_subspaces}")
        return np.array_split(np.arange(dim), self.num_subspaces)

    def fit(self, videoset: Any, rows: Sequence[int] | np.ndarray | None = None,
            ) -> "FeatureCodebookProxy":
        """Fit one codebook per sub-space on the videos ``rows`` (all when ``None``)."""
        x = videoset.features(self.modality, normalize=True)
        if rows is not None:
            x = x[np.asarray(rows, dtype=np.int64)]
        self.codebooks = [
            _kmeans(_normalize_rows(x[:, dims]), self.num_codewords, self.seed + j, self.niter,
                    f"{self.name} sub-space {j}")
            for j, dims in enumerate(self._splits(x.shape[1]))
        ]
        self.fit_videos = int(x.shape[0])
        return self

    def assign(self, x: np.ndarray) -> np.ndarray:
        """Codeword indices ``[N, num_subspaces, top]`` for normalised features ``x``."""
        if self.codebooks is None:
            raise RuntimeError(f"{self.name}: call fit() first")
        return np.stack([_nearest(cb, _normalize_rows(x[:, dims]), self.top)
                         for cb, dims in zip(self.codebooks, self._splits(x.shape[1]))], axis=1)

    def object_sets(self, videoset: Any) -> list[frozenset[str]]:
        """Concept sets of all videos; fits on all videos first (transductive) if unfitted."""
        if self.codebooks is None:
            warnings.warn(f"{self.name}: fitting on all videos (call fit(videoset, train_rows) "
                          "for codebooks that never see held-out videos)", stacklevel=2)
            self.fit(videoset)
        codes = self.assign(videoset.features(self.modality, normalize=True))
        m = self.modality
        return [frozenset(f"{m}:s{j}:c{c}" for j, cs in enumerate(v) for c in cs) for v in codes]


# ---------------------------------------------------------------------------------------------
# object sets carried by the VideoSet itself (synthetic data)
# ---------------------------------------------------------------------------------------------
@dataclass
class VideoSetObjects:
    """The object sets stored on ``VideoSet.objects`` (e.g. by ``make_synthetic``)."""

    @property
    def name(self) -> str:
        return "videoset-objects"

    def object_sets(self, videoset: Any) -> list[frozenset[str]]:
        objs = getattr(videoset, "objects", None)
        if objs is None:
            raise ValueError(f"VideoSet (source {getattr(videoset, 'source', '?')!r}) carries no "
                             "object sets; choose another object source")
        if len(objs) != len(videoset.ids):
            raise ValueError(f"VideoSet.objects has {len(objs)} sets for "
                             f"{len(videoset.ids)} videos")
        return [frozenset(str(o) for o in s) for s in objs]


# ---------------------------------------------------------------------------------------------
# (d) registry
# ---------------------------------------------------------------------------------------------
SourceFactory = Callable[..., ObjectSource]
# name -> factory(argument: str | None, **options) -> ObjectSource
OBJECT_SOURCES: dict[str, SourceFactory] = {}
# Sources registered by other modules when imported: name -> module to import on first use.
_LAZY_SOURCES: dict[str, str] = {"imagenet-tagger": "vidsage_core.video"}


def register_object_source(name: str, factory: SourceFactory, overwrite: bool = False) -> None:
    """Make ``get_object_source(name...)`` build sources with ``factory(argument, **options)``.

    The raw-video tagger registers ``"imagenet-tagger"`` this way: its factory runs (or finds)
    the tagger's detections file and returns a :class:`DetectionsFile` over it.
    """
    if name in OBJECT_SOURCES and not overwrite:
        raise ValueError(f"object source {name!r} is already registered")
    OBJECT_SOURCES[name] = factory


def _no_arg(name: str, cls: Callable[..., ObjectSource], **fixed: Any) -> SourceFactory:
    def make(arg: str | None = None, **opts: Any) -> ObjectSource:
        if arg:
            raise ValueError(f"object source {name!r} takes no ':' argument, got {arg!r}")
        return cls(**fixed, **opts)
    return make


def _detections(arg: str | None = None, **opts: Any) -> ObjectSource:
    if not arg:
        raise ValueError("object source 'detections' needs a path: 'detections:PATH'")
    return DetectionsFile(arg, **opts)


register_object_source("detections", _detections)
register_object_source("frame-codebook", _no_arg("frame-codebook", FrameCodebook))
register_object_source("videoset", _no_arg("videoset", VideoSetObjects))
for _m in _MODALITIES:
    register_object_source(f"proxy-{_m}",
                           _no_arg(f"proxy-{_m}", FeatureCodebookProxy, modality=_m))
# "proxy-subspace": the default proxy (modality from FeatureCodebookProxy's default, or ?modality=)
register_object_source("proxy-subspace", _no_arg("proxy-subspace", FeatureCodebookProxy))


def _parse_value(v: str) -> Any:
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    if v.lower() in ("true", "false"):
        return v.lower() == "true"
    return v


def get_object_source(spec: str) -> ObjectSource:
    """Build an object source from ``NAME[:ARGUMENT][?key=value&...]``.

    Examples: ``"detections:objects.csv?min_score=0.5&min_frames=2"``, ``"frame-codebook"``,
    ``"proxy-audio?num_subspaces=8"``, ``"proxy-subspace"``, ``"videoset"``,
    ``"imagenet-tagger"`` (registered by ``vidsage_core.video``).

    Raises:
        ValueError: unknown name (the message lists the known ones) or bad options.
    """
    head, _, query = spec.partition("?")
    name, _, arg = head.partition(":")
    name = name.strip()
    if name not in OBJECT_SOURCES and name in _LAZY_SOURCES:
        importlib.import_module(_LAZY_SOURCES[name])
    if name not in OBJECT_SOURCES:
        known = sorted(set(OBJECT_SOURCES) | set(_LAZY_SOURCES))
        raise ValueError(f"unknown object source {name!r} in spec {spec!r}; known: {known}")
    opts: dict[str, Any] = {}
    for part in filter(None, query.split("&")):
        key, eq, value = part.partition("=")
        if not eq:
            raise ValueError(f"object source spec {spec!r}: option {part!r} is not key=value")
        opts[key.strip()] = _parse_value(value.strip())
    try:
        return OBJECT_SOURCES[name](arg or None, **opts)
    except TypeError as e:
        raise ValueError(f"object source spec {spec!r}: {e}") from None


# ---------------------------------------------------------------------------------------------
# (e) saving fitted sources without pickle: JSON for settings, NPZ for arrays
# ---------------------------------------------------------------------------------------------
# Only these classes can be restored from a run directory: a file can name a class, never code.
SAVABLE_SOURCES: dict[str, type] = {c.__name__: c for c in
                                    (DetectionsFile, FrameCodebook, FeatureCodebookProxy, VideoSetObjects)}


def source_to_dict(source: ObjectSource) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A source's settings as JSON types and its fitted arrays (codebooks) by name.

    Returns:
        ``({"type": class name, "name": source.name, "params": init fields, "fitted": scalar
        fitted fields}, {array name: ndarray})``; ``FeatureCodebookProxy`` codebooks are stored
        as ``codebook_0`` .. ``codebook_{s-1}`` (``[num_codewords, dims_j]`` float32 each),
        ``FrameCodebook`` centroids as ``centroids`` (``[num_codewords, D]``).

    Raises:
        ValueError: the source is not one of :data:`SAVABLE_SOURCES`.
    """
    cls = type(source).__name__
    if SAVABLE_SOURCES.get(cls) is not type(source):
        raise ValueError(f"object source {getattr(source, 'name', cls)!r} ({cls}) cannot be saved "
                         f"without pickle; savable sources: {sorted(SAVABLE_SOURCES)}")
    params, fitted, arrays = {}, {}, {}
    for f in dataclasses.fields(source):
        value = getattr(source, f.name)
        if f.init:
            params[f.name] = str(value) if isinstance(value, Path) else value
        elif isinstance(value, np.ndarray):
            arrays[f.name] = value
        elif isinstance(value, list):  # list of arrays (one codebook per sub-space)
            arrays.update({f"{f.name[:-1]}_{j}": np.asarray(a) for j, a in enumerate(value)})
            fitted[f"{f.name}_count"] = len(value)
        elif value is None or isinstance(value, (int, float, str)):
            fitted[f.name] = value
    return {"type": cls, "name": source.name, "params": params, "fitted": fitted}, arrays


def source_from_dict(state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> ObjectSource:
    """Rebuild a source written by :func:`source_to_dict` (only :data:`SAVABLE_SOURCES` types)."""
    cls = SAVABLE_SOURCES.get(str(state.get("type")))
    if cls is None:
        raise ValueError(f"unknown object source type {state.get('type')!r}; "
                         f"known: {sorted(SAVABLE_SOURCES)}")
    source = cls(**dict(state.get("params", {})))
    fitted = dict(state.get("fitted", {}))
    for f in dataclasses.fields(source):
        if f.init:
            continue
        if f.name in arrays:
            setattr(source, f.name, np.asarray(arrays[f.name]))
        elif f"{f.name}_count" in fitted:
            setattr(source, f.name, [np.asarray(arrays[f"{f.name[:-1]}_{j}"])
                                     for j in range(int(fitted[f"{f.name}_count"]))])
        elif f.name in fitted:
            setattr(source, f.name, fitted[f.name])
    return source


def save_object_source(source: ObjectSource, path: str | Path) -> Path:
    """Write ``PATH`` (``.json``: type, settings) and its ``.npz`` sibling (fitted arrays).

    Returns:
        The JSON path.
    """
    from vidsage_core.utils import save_json

    path = Path(path).with_suffix(".json")
    state, arrays = source_to_dict(source)
    np.savez(path.with_suffix(".npz"), **arrays)
    save_json(state, path)
    return path


def load_object_source(path: str | Path) -> ObjectSource:
    """Read a source written by :func:`save_object_source` (no pickle: JSON and ``allow_pickle=False``).

    Raises:
        FileNotFoundError: the JSON is missing. ``safe_io.UnsafeFileError``: the NPZ holds
        pickled objects or is not an NPZ. ValueError: malformed JSON or unknown type.
    """
    from vidsage_core.safe_io import load_npz

    path = Path(path).with_suffix(".json")
    if not path.is_file():
        raise FileNotFoundError(f"object source {path}: no such file")
    try:
        state = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a JSON object-source file ({e})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a JSON object-source file")
    arrays = load_npz(path.with_suffix(".npz"), "object source")
    try:
        return source_from_dict(state, arrays)
    except (TypeError, KeyError) as e:
        raise ValueError(f"{path}: malformed object source ({e})") from None
