"""Objects per frame (§3.3 "off-the-shelf object detection"): taggers and their plug-in point.

The default tagger reads the feature network's own ImageNet classifier (top-k classes above a
softmax threshold, no second network). A true detector plugs in through :class:`ObjectTagger`
(``get_tagger("torchvision:PATH")``, ``get_tagger("ultralytics:PATH")``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from vidsage_core import paths
from vidsage_core.utils import resolve_device
from vidsage_core.video.encoder import NUM_IMAGENET_CLASSES, FrameEncoder

Tags = list[list[tuple[str, float]]]  # per frame: (label, score) pairs, best first


@lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """Readable names of the 1000 ImageNet-1k classes, index-aligned with the logits.

    The first WordNet lemma of each line of ``vidsage_core/resources/imagenet_classes.txt``
    (see ``SOURCES.md``). Two lemmas name two classes each; those get the class index appended:
    ``crane (134)`` the bird, ``crane (517)`` the machine, ``maillot (638)``, ``maillot (639)``.
    """
    path = paths.RESOURCES / "imagenet_classes.txt"
    lines = path.read_text().splitlines()
    if len(lines) != NUM_IMAGENET_CLASSES:
        raise ValueError(f"{path}: expected {NUM_IMAGENET_CLASSES} lines, got {len(lines)}")
    first = [line.split(",")[0].strip() for line in lines]
    dup = {n for n in first if first.count(n) > 1}
    return tuple(f"{n} ({i})" if n in dup else n for i, n in enumerate(first))


@runtime_checkable
class ObjectTagger(Protocol):
    """Anything that names the objects in frames.

    ``tag(frames)`` takes uint8 ``[F, H, W, 3]`` RGB and returns, per frame, ``(label, score)``
    pairs that passed the tagger's own top-k / score rule, best first.
    """

    name: str

    def tag(self, frames: np.ndarray) -> Tags: ...


def _best_labels(scores: dict[str, float], top_k: int) -> list[tuple[str, float]]:
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]


class ImageNetTagger:
    """Frame tags from the feature network's ImageNet classifier.

    Args:
        top_k: classes kept per frame.
        min_score: softmax probability a class needs to be kept.
        encoder: the :class:`FrameEncoder` to use (shared with feature extraction by ``ingest``,
            which then tags from the logits of the feature pass).
        device: used only when ``encoder`` is None.
    """

    def __init__(self, top_k: int = 3, min_score: float = 0.1, encoder: FrameEncoder | None = None,
                 device: str = "auto") -> None:
        if top_k < 1 or not 0.0 <= min_score <= 1.0:
            raise ValueError(f"need top_k >= 1 and 0 <= min_score <= 1, got top_k={top_k}, min_score={min_score}")
        self.top_k, self.min_score = int(top_k), float(min_score)
        self.encoder = encoder or FrameEncoder(device)
        self.names = imagenet_class_names()
        self.name = f"imagenet?top_k={self.top_k}&min_score={self.min_score:g}"

    def tag_logits(self, logits: np.ndarray) -> Tags:
        """Tags from ImageNet logits ``[F, 1000]``: softmax, best ``top_k``, ``>= min_score``."""
        z = np.asarray(logits, dtype=np.float64)
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        top = np.argsort(-p, axis=1, kind="stable")[:, :self.top_k]
        return [[(self.names[c], float(row[c])) for c in idx if row[c] >= self.min_score]
                for row, idx in zip(p, top)]

    def tag(self, frames: np.ndarray) -> Tags:
        return self.tag_logits(self.encoder.encode(frames)[1])


class UltralyticsTagger:
    """Object tags from an Ultralytics YOLO checkpoint (``get_tagger("ultralytics:PATH")``).

    Per frame each class keeps its best box score; classes scoring ``>= min_score``, best
    ``top_k``. Needs the ``ultralytics`` package, which is not a VidSage dependency.
    """

    def __init__(self, weights: str | Path, top_k: int = 3, min_score: float = 0.1,
                 device: str = "auto") -> None:
        weights = Path(weights)
        if not weights.is_file():
            raise FileNotFoundError(f"ultralytics detector weights {weights}: no such file")
        try:
            from ultralytics import YOLO
        except ImportError as e:
            raise ImportError(f"tagger 'ultralytics:{weights}' needs the 'ultralytics' package, "
                              "which is not installed (pip install ultralytics)") from e
        self.model = YOLO(str(weights))
        self.device = resolve_device(device)
        self.top_k, self.min_score = int(top_k), float(min_score)
        self.name = f"ultralytics:{weights.name}"

    def tag(self, frames: np.ndarray) -> Tags:
        batch = [np.ascontiguousarray(f[..., ::-1]) for f in frames]  # Ultralytics reads numpy as BGR
        out: Tags = []
        for res in self.model.predict(batch, device=self.device, verbose=False):
            best: dict[str, float] = {}
            for c, s in zip(res.boxes.cls.tolist(), res.boxes.conf.tolist()):
                if s >= self.min_score:
                    name = res.names[int(c)]
                    best[name] = max(best.get(name, 0.0), float(s))
            out.append(_best_labels(best, self.top_k))
        return out


class TorchvisionTagger:
    """Object tags from a torchvision COCO detector state dict (``get_tagger("torchvision:PATH")``).

    The architecture is read from the file name the way torchvision names its weights
    (``fasterrcnn_resnet50_fpn_coco-258fb6c6.pth`` -> ``fasterrcnn_resnet50_fpn``); labels are
    torchvision's COCO category names. Needs a torchvision build matching the installed torch
    (none imports beside the pinned CPU torch of this project).
    """

    def __init__(self, weights: str | Path, top_k: int = 3, min_score: float = 0.1,
                 device: str = "auto") -> None:
        import torch

        weights = Path(weights)
        if not weights.is_file():
            raise FileNotFoundError(f"torchvision detector weights {weights}: no such file")
        try:
            import torchvision
            from torchvision.models._meta import _COCO_CATEGORIES
        except Exception as e:  # a mismatched build fails with RuntimeError/AttributeError, too
            raise ImportError(f"tagger 'torchvision:{weights}' needs a torchvision matching torch "
                              f"{torch.__version__}; it does not import here ({type(e).__name__}: {e})") from e
        arch = weights.name.split("_coco")[0]
        builder = getattr(torchvision.models.detection, arch, None)
        if builder is None:
            raise ValueError(f"{weights}: cannot tell the torchvision detection architecture from the file "
                             f"name (read {arch!r}; expected e.g. 'fasterrcnn_resnet50_fpn_coco-*.pth')")
        model = builder(weights=None, weights_backbone=None, num_classes=len(_COCO_CATEGORIES))
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.device = resolve_device(device)
        self.model = model.eval().to(self.device)
        self.categories = list(_COCO_CATEGORIES)
        self.top_k, self.min_score = int(top_k), float(min_score)
        self.name = f"torchvision:{weights.name}"

    def tag(self, frames: np.ndarray) -> Tags:
        import torch

        out: Tags = []
        with torch.inference_mode():
            for i in range(0, len(frames), 8):
                x = [torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1).float().div(255).to(self.device)
                     for f in frames[i:i + 8]]
                for det in self.model(x):
                    best: dict[str, float] = {}
                    for c, s in zip(det["labels"].tolist(), det["scores"].tolist()):
                        if s >= self.min_score:
                            name = self.categories[int(c)]
                            best[name] = max(best.get(name, 0.0), float(s))
                    out.append(_best_labels(best, self.top_k))
        return out


def get_tagger(spec: str = "imagenet", top_k: int = 3, min_score: float = 0.1, device: str = "auto",
               encoder: FrameEncoder | None = None) -> ObjectTagger:
    """Build an :class:`ObjectTagger` from a spec string.

    Args:
        spec: ``"imagenet"`` (the feature network's classifier), ``"torchvision:PATH"`` or
            ``"ultralytics:PATH"`` (a detector's weights file).
        top_k, min_score: labels kept per frame and their minimum score.
        device: where the tagger runs.
        encoder: a shared :class:`FrameEncoder` for ``"imagenet"``.

    Raises:
        ValueError: unknown spec or a detector spec without PATH.
        FileNotFoundError: the weights file is missing.
        ImportError: the detector's package is not installed / does not import.
    """
    kind, _, arg = spec.partition(":")
    if kind == "imagenet" and not arg:
        return ImageNetTagger(top_k, min_score, encoder=encoder, device=device)
    if kind in ("torchvision", "ultralytics"):
        if not arg:
            raise ValueError(f"tagger {spec!r}: give the detector's weights file, '{kind}:PATH'")
        cls = TorchvisionTagger if kind == "torchvision" else UltralyticsTagger
        return cls(arg, top_k=top_k, min_score=min_score, device=device)
    raise ValueError(f"unknown tagger {spec!r}; expected 'imagenet', 'torchvision:PATH' or 'ultralytics:PATH'")


def detections_from_tags(tags: Tags) -> list[dict[str, Any]]:
    """Per-frame tags as detections-file entries ``{"label", "frame", "score"}``
    (the JSON layout ``objects.DetectionsFile`` reads)."""
    return [{"label": label, "frame": f, "score": round(score, 4)}
            for f, frame_tags in enumerate(tags) for label, score in frame_tags]


def object_set(tags: Tags) -> frozenset[str]:
    """``O_u``: the distinct labels over all frames (§3.3; §3.5 "uniquely aggregate")."""
    return frozenset(label for frame_tags in tags for label, _ in frame_tags)
