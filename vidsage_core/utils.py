"""Small helpers every module needs: seeding, device choice, JSON I/O."""

from __future__ import annotations

import dataclasses
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) and make CPU kernels deterministic."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    # warn_only: some scatter kernels have no deterministic CUDA variant; on CPU all of ours do.
    torch.use_deterministic_algorithms(True, warn_only=True)


def resolve_device(device: str = "auto") -> str:
    """Return ``"cuda"`` when asked for ``auto`` and a GPU is present, else ``"cpu"``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        # ValueError: a wrong argument the CLI reports in one line, not a crash
        raise ValueError(f"--device {device}: CUDA is not available on this machine (use auto or cpu)")
    return device


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types for dataclasses, numpy values and paths (what save_json writes)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def save_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` (dataclasses, numpy scalars and paths allowed) as indented JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")
    tmp.replace(path)  # atomic: a reader never sees half a file
    return path


def load_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())
