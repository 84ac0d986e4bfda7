"""Inputs shared by the training and inference benchmarks: features, graph, held-out videos.

Full runs use the real YouTube-8M sample (13,998 videos in ``data/yt8m``): the graph and the
training nodes are the train+val videos (md5 buckets 1-4, 11,181 videos), the held-out "new"
videos are the test bucket, exactly as the pipeline splits them. ``--quick`` runs use a small
synthetic set (labelled synthetic) so the smoke test needs no real data and runs in seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from vidsage_core import paths


@dataclass
class BenchInputs:
    """Features, graph and held-out videos for one benchmark run.

    Attributes:
        x_train: float32 ``[N, D]`` L2-normalised features of the graph's nodes.
        graph: LiteVidSage ``VideoGraph`` over them (exact kNN, the graph module's defaults).
        x_new: float32 ``[M, D]`` held-out videos (never in the graph).
        label: size in words for the report, e.g. "11,181 videos (real YT-8M), 1152-d".
        synthetic: True when generated.
        info: how they were made (seconds to read / build, source).
    """

    x_train: np.ndarray
    graph: object
    x_new: np.ndarray
    label: str
    synthetic: bool
    info: dict = field(default_factory=dict)


def load_inputs(quick: bool = False, num_synthetic: int = 1500, max_videos: int | None = None,
                data: str | None = None, device: str = "cpu", quick_dims: tuple[int, int] = (48, 16)
                ) -> BenchInputs:
    """Build the benchmark inputs.

    Args:
        quick: tiny synthetic inputs (``num_synthetic`` videos) instead of the real data.
        num_synthetic: synthetic size in quick mode.
        quick_dims: (rgb, audio) widths of the quick synthetic features (small: a smoke test).
        max_videos: read at most this many real videos (None: all).
        data: TFRecord glob (default: the embedded YouTube-8M 2018 sample).
        device: where the exact kNN for the graph runs.

    Returns:
        BenchInputs.
    """
    from vidsage_core.data import make_synthetic, read_tfrecords, split_by_id
    from vidsage_core.graph import DEFAULT_K, DEFAULT_TAU, lite_graph

    t0 = time.perf_counter()
    if quick:
        videos = make_synthetic(num_synthetic, num_classes=100, seed=0, rgb_dim=quick_dims[0],
                                audio_dim=quick_dims[1])
        source = videos.source
    else:
        videos = read_tfrecords(data or paths.YT8M_2018_GLOB, on_error="skip", progress=False)
        source = videos.source
        if max_videos is not None and len(videos) > max_videos:
            videos = videos.subset(np.arange(max_videos))
    t_read = time.perf_counter() - t0
    x = videos.features("rgb+audio", normalize=True)
    split = split_by_id(videos.ids)
    train_rows, new_rows = np.sort(split.train_val), np.sort(split.test)
    x_train, x_new = np.ascontiguousarray(x[train_rows]), np.ascontiguousarray(x[new_rows])
    t1 = time.perf_counter()
    graph = lite_graph(x_train, k=DEFAULT_K, tau=DEFAULT_TAU, mode="exact", device=device)
    t_graph = time.perf_counter() - t1
    kind = "synthetic" if videos.synthetic else "real YT-8M 2018 sample"
    label = (f"{len(x_train):,} graph videos + {len(x_new):,} held-out ({kind}), {x.shape[1]}-d, "
             f"{graph.num_undirected_edges:,} edges")
    return BenchInputs(x_train, graph, x_new, label, bool(videos.synthetic),
                       {"source": source, "read_s": round(t_read, 2), "graph_s": round(t_graph, 2),
                        "graph_meta": dict(graph.meta), "num_graph_videos": int(len(x_train)),
                        "num_new_videos": int(len(x_new))})
