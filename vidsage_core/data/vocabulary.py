"""The YouTube-8M 2018 label vocabulary (``vocabulary.csv``)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from vidsage_core import paths

if TYPE_CHECKING:
    import pandas as pd

VOCABULARY_COLUMNS = ("Index", "TrainVideoCount", "KnowledgeGraphId", "Name", "WikiUrl",
                      "Vertical1", "Vertical2", "Vertical3", "WikiDescription")


def load_vocabulary(path: str | os.PathLike = paths.VOCABULARY, expected_rows: int | None = 3862) -> "pd.DataFrame":
    """Read the label vocabulary with a real CSV parser (descriptions hold commas, quotes, newlines).

    Args:
        path: the CSV file.
        expected_rows: the number of classes it must hold (3862 for 2018; ``None`` to skip).

    Returns:
        DataFrame with the nine vocabulary columns, one row per class, indexed and sorted by
        ``Index`` (which runs 0..n-1).

    Raises:
        ValueError: missing columns, a wrong row count or non-contiguous indices (naming the file).
    """
    import pandas as pd  # imported here: pandas costs ~0.5 s and only this function needs it

    df = pd.read_csv(path, dtype={"KnowledgeGraphId": str, "Name": str, "WikiUrl": str, "Vertical1": str,
                                  "Vertical2": str, "Vertical3": str, "WikiDescription": str},
                     keep_default_na=False, na_values=[])
    missing = [c for c in VOCABULARY_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing vocabulary columns {missing}; found {list(df.columns)}")
    if expected_rows is not None and len(df) != expected_rows:
        raise ValueError(f"{path}: {len(df)} classes, expected {expected_rows}")
    df = df.sort_values("Index", kind="stable")
    if not np.array_equal(df["Index"].to_numpy(), np.arange(len(df))):
        raise ValueError(f"{path}: Index column is not 0..{len(df) - 1}")
    return df.set_index("Index", drop=False).rename_axis(None)
