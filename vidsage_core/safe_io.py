"""Loading files from run directories that other people may hand around, without running code.

A run directory holds tensors (``model.pt``, ``checkpoint.pt``, ``graph.pt``), arrays (``.npz``,
``.npy``) and JSON. None of them needs Python's pickle, which can run arbitrary code on load, so
every reader goes through here: tensors with ``torch.load(..., weights_only=True)`` (PyTorch's
restricted unpickler: tensors, dicts, lists, numbers and strings only) and arrays with
``allow_pickle=False``. Anything else is refused with :class:`UnsafeFileError`, naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class UnsafeFileError(ValueError):
    """A file would need pickle (code execution) to load, or is not the expected format."""


def load_tensor_file(path: str | Path, what: str = "tensor file") -> Any:
    """``torch.load(path, weights_only=True)`` on CPU, with one-line errors naming the file.

    Args:
        path: a file written by ``torch.save`` of tensors and plain containers.
        what: what the file is, for the error message (``"model"``, ``"checkpoint"``...).

    Returns:
        The loaded object (dicts/lists of tensors, numbers and strings).

    Raises:
        FileNotFoundError: no such file.
        UnsafeFileError: the file holds pickled objects beyond tensors and plain containers
            (nothing in it is executed), or is not a PyTorch file at all.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path}: no such file")
    try:
        # TorchVersion is a plain str subclass that older model files carry in their metadata.
        with torch.serialization.safe_globals([torch.torch_version.TorchVersion]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        reason = next((ln for ln in lines if "Unsupported" in ln or "WeightsUnpickler" in ln),
                      lines[0] if lines else type(e).__name__)
        raise UnsafeFileError(f"{path}: refused to load this {what}: it holds pickled Python objects, "
                              f"not only tensors ({reason[:160]})") from None
    except Exception as e:  # torch raises KeyError, RuntimeError, EOFError... on foreign bytes
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        first = f"{type(e).__name__}: {first}"
        raise UnsafeFileError(f"{path}: not a readable PyTorch {what} ({first[:160]})") from None


def load_npz(path: str | Path, what: str = "array file") -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` file, read with ``allow_pickle=False``.

    Raises:
        FileNotFoundError: no such file.
        UnsafeFileError: the file holds object arrays (pickles) or is not an ``.npz``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path}: no such file")
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        with z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UnsafeFileError(f"{path}: refused to load this {what}: {first[:160]}") from None
