"""The paper's figures (1, 3, 5) and the artifact's diagnostic figures, drawn from real objects.

Every function takes data objects (a ``VideoGraph``, a ``VideoSet``, the vocabulary DataFrame, a
run directory) and returns a ``matplotlib.figure.Figure``; :func:`save_fig` writes it as
``figures/<name>.png`` and ``.pdf``. Figures are built on ``matplotlib.figure.Figure`` with an
Agg canvas, never through ``pyplot``'s global state, so they render headless (no display, no
backend switch) and the notebooks still show the returned figure inline.

Shapes and counts shown in figures are read from the objects passed in, never typed.
"""

from __future__ import annotations

import json
import math
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from vidsage_core import paths

__all__ = [
    "new_figure",
    "save_fig",
    "class_names",
    "primary_verticals",
    "fig1_graph_neighbourhood",
    "fig3_feature_pipeline",
    "fig5_class_distribution",
    "fig_graph_stats",
    "fig_training_curves",
    "fig_tsne",
    "CAPTIONS",

    "fig_label_efficiency",
]

#: One-line caption per saved figure; :func:`save_fig` records it in the files' metadata and
#: ``index.results_index`` lists it.
CAPTIONS: dict[str, str] = {
    "fig1_graph_neighbourhood": "Fig. 1 — a real two-hop neighbourhood of the VidSage graph, "
                                "videos named by their YouTube-8M labels",
    "fig3_feature_pipeline": "Fig. 3 — the feature pipeline, from frames to the video-level "
                             "vectors the graph is built on, with the data's real shapes",
    "fig5_class_distribution": "Fig. 5 — how labels are distributed over classes and verticals, "
                               "in the vocabulary and in the data",
    "graph_degree_homophily": "Degree and per-video label homophily of the LiteVidSage and "
                              "VidSage graphs",
    "training_curves": "Unsupervised training loss per step, every variant and seed",
    "label_efficiency": "GAP against the fraction of train+val labels: raw features, the best "
                        "baseline, the linear probe and fine-tuning, with the spread over seeds",
    "tsne_raw_vs_vidsage": "t-SNE of the raw features beside the VidSage embeddings, coloured by "
                           "each video's main vertical",
}


# ---------------------------------------------------------------------------------------------
# Canvas and writer
# ---------------------------------------------------------------------------------------------

def new_figure(figsize: tuple[float, float] = (8.0, 5.0), **kwargs: Any) -> Figure:
    """A ``Figure`` on an Agg canvas (headless; independent of pyplot's current backend)."""
    fig = Figure(figsize=figsize, **kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_fig(fig: Figure, name: str, figures_dir: str | Path = paths.FIGURES,
             caption: str | None = None, dpi: int = 150) -> list[Path]:
    """Write ``<figures_dir>/<name>.png`` and ``<figures_dir>/<name>.pdf``.

    Args:
        fig: the figure (any matplotlib ``Figure``; an Agg canvas is attached if it has none).
        name: file stem, e.g. ``"fig5_class_distribution"``.
        figures_dir: output directory (created if missing).
        caption: what the figure shows and from which data; stored in the files' metadata
            (PNG ``Description``, PDF ``Subject``) so ``index.results_index`` can list it
            (default: the figure's entry in :data:`CAPTIONS`).
        dpi: PNG resolution.

    Returns:
        ``[png_path, pdf_path]``.
    """
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    png, pdf = figures_dir / f"{name}.png", figures_dir / f"{name}.pdf"
    title = name
    caption = caption or CAPTIONS.get(name)
    png_meta = {"Title": title, "Software": f"vidsage_core.figures (matplotlib {matplotlib.__version__})"}
    pdf_meta = {"Title": title, "Creator": "vidsage_core.figures"}
    if caption:
        png_meta["Description"] = caption
        pdf_meta["Subject"] = caption
    # Fixed metadata (no timestamps) keeps reruns byte-stable where matplotlib allows it.
    pdf_meta["CreationDate"] = None
    fig.savefig(png, dpi=dpi, bbox_inches="tight", metadata=png_meta)
    fig.savefig(pdf, bbox_inches="tight", metadata=pdf_meta)
    return [png, pdf]


# ---------------------------------------------------------------------------------------------
# Vocabulary helpers
# ---------------------------------------------------------------------------------------------

def _vocab_frame(vocabulary: pd.DataFrame | Sequence[str] | None, num_classes: int) -> pd.DataFrame:
    """A frame indexed by class index with at least ``Name`` (and YT-8M's columns when given)."""
    if vocabulary is None:
        return pd.DataFrame({"Name": [f"class {i}" for i in range(num_classes)]})
    if isinstance(vocabulary, pd.DataFrame):
        v = vocabulary
        if "Index" in v.columns:
            v = v.set_index("Index", drop=False)
        if "Name" not in v.columns:
            raise ValueError(f"vocabulary has no 'Name' column (columns: {list(v.columns)})")
        return v
    return pd.DataFrame({"Name": list(vocabulary)})


def class_names(vocabulary: pd.DataFrame | Sequence[str] | None, indices: Sequence[int]) -> list[str]:
    """Names of class ``indices`` (``"class i"`` where the vocabulary has no entry)."""
    names = _vocab_frame(vocabulary, max(indices, default=-1) + 1)["Name"]
    return [str(names.get(int(i), f"class {int(i)}")) for i in indices]


def _label_lists(labels) -> list[np.ndarray]:
    """Per-row class indices of a CSR (or dense) 0/1 label matrix."""
    import scipy.sparse as sp

    csr = sp.csr_matrix(labels)
    return [csr.indices[csr.indptr[i]:csr.indptr[i + 1]] for i in range(csr.shape[0])]


def primary_verticals(videoset, vocabulary: pd.DataFrame, rows: Sequence[int] | None = None) -> np.ndarray:
    """Each video's primary vertical: ``Vertical1`` of its label with the most training videos.

    The most frequent label of a YouTube-8M video is its broadest entity (e.g. "Game",
    "Vehicle"), so its vertical is the video's topic area. Videos without labels get
    ``"(no label)"``, labels missing from the vocabulary ``"(Unknown)"``.

    Returns:
        str array ``[N]`` (or ``[len(rows)]``).
    """
    v = _vocab_frame(vocabulary, videoset.num_classes)
    if "Vertical1" not in v.columns or "TrainVideoCount" not in v.columns:
        raise ValueError("primary_verticals needs a YouTube-8M vocabulary (Vertical1, TrainVideoCount)")
    labels = videoset.labels if rows is None else videoset.labels[np.asarray(rows)]
    count = v["TrainVideoCount"].to_dict()
    vert = v["Vertical1"].fillna("(Unknown)").to_dict()
    out = []
    for idx in _label_lists(labels):
        if idx.size == 0:
            out.append("(no label)")
            continue
        best = max(idx.tolist(), key=lambda c: count.get(c, -1))
        out.append(str(vert.get(best, "(Unknown)")))
    return np.asarray(out)


# ---------------------------------------------------------------------------------------------
# Fig. 1: a real neighbourhood of the video graph
# ---------------------------------------------------------------------------------------------

def _node_label(labels_of_node: np.ndarray, vocab: pd.DataFrame, names_per_node: int) -> str:
    if labels_of_node.size == 0:
        return "(no label)"
    idx = labels_of_node.tolist()
    if "TrainVideoCount" in vocab.columns:
        # The rarest labels are the most specific: "Minecraft" says more than "Game".
        count = vocab["TrainVideoCount"].to_dict()
        idx.sort(key=lambda c: count.get(c, math.inf))
    names = class_names(vocab, idx[:names_per_node])
    return "\n".join(names)


def _neighbourhood(adj, center: int, hops: int, max_nodes: int) -> dict[int, int]:
    """BFS from ``center`` up to ``hops``, strongest edges first, at most ``max_nodes`` nodes."""
    dist = {center: 0}
    queue = deque([center])
    while queue and len(dist) < max_nodes:
        u = queue.popleft()
        if dist[u] >= hops:
            continue
        row = adj.getrow(u)
        order = np.argsort(-row.data, kind="stable")
        for v in row.indices[order]:
            v = int(v)
            if v not in dist:
                dist[v] = dist[u] + 1
                queue.append(v)
                if len(dist) >= max_nodes:
                    break
    return dist


def fig1_graph_neighbourhood(graph, videoset, vocabulary: pd.DataFrame | Sequence[str] | None,
                             center: int | None = None, hops: int = 2, max_nodes: int = 30,
                             names_per_node: int = 2, seed: int = 0) -> Figure:
    """Fig. 1: the neighbourhood of one video in the real video graph.

    Args:
        graph: ``vidsage_core.graph.VideoGraph`` over the videos of ``videoset``.
        videoset: the ``VideoSet`` whose rows are the graph's nodes (labels name the nodes).
        vocabulary: the YouTube-8M vocabulary DataFrame (``Index``, ``Name``, ...) or a list of
            class names by index (action datasets), or None ("class i").
        center: node to centre on; default the node with the largest weighted degree.
        hops: neighbourhood radius (1 or 2).
        max_nodes: cap on drawn nodes (neighbours taken strongest edge first).
        names_per_node: label names printed per node (its most specific labels).
        seed: layout seed.

    Returns:
        The figure: nodes labelled with their label names, edge width proportional to weight,
        node colour by hop distance, the centre outlined.
    """
    import networkx as nx

    if hops < 1:
        raise ValueError(f"hops must be >= 1, got {hops}")
    if graph.num_nodes != len(videoset):
        raise ValueError(f"graph has {graph.num_nodes} nodes but videoset has {len(videoset)} videos")
    adj = graph.to_scipy().tocsr() if hasattr(graph, "to_scipy") else None
    if adj is None:
        import scipy.sparse as sp

        ei = graph.edge_index.numpy()
        adj = sp.csr_matrix((graph.edge_weight.numpy(), (ei[0], ei[1])),
                            shape=(graph.num_nodes, graph.num_nodes))
    if center is None:
        strength = np.asarray(adj.sum(axis=1)).ravel()
        center = int(np.argmax(strength))
    if not 0 <= center < graph.num_nodes:
        raise ValueError(f"center {center} outside [0, {graph.num_nodes})")
    dist = _neighbourhood(adj, center, hops, max_nodes)
    nodes = list(dist)
    sub = adj[nodes][:, nodes].tocoo()

    g = nx.Graph()
    g.add_nodes_from(range(len(nodes)))
    for i, j, w in zip(sub.row, sub.col, sub.data):
        if i < j:
            g.add_edge(int(i), int(j), weight=float(w))
    vocab = _vocab_frame(vocabulary, videoset.num_classes)
    lists = _label_lists(videoset.labels[np.asarray(nodes)])
    labels = {k: _node_label(lists[k], vocab, names_per_node) for k in range(len(nodes))}

    pos = nx.spring_layout(g, seed=seed, weight="weight", k=1.5 / math.sqrt(max(len(nodes), 1)))
    fig = new_figure((11, 9))
    ax = fig.add_subplot(1, 1, 1)
    weights = np.array([d["weight"] for _, _, d in g.edges(data=True)], dtype=float)
    wmax = weights.max() if weights.size else 1.0
    widths = 0.5 + 4.0 * weights / wmax if weights.size else []
    nx.draw_networkx_edges(g, pos, ax=ax, width=widths, edge_color="0.55", alpha=0.7)
    hop_colour = {0: "#d62728", 1: "#1f77b4", 2: "#9ecae1"}
    colours = [hop_colour.get(dist[nodes[k]], "#deebf7") for k in range(len(nodes))]
    nx.draw_networkx_nodes(g, pos, ax=ax, node_color=colours, node_size=140,
                           edgecolors=["black" if k == 0 else "none" for k in range(len(nodes))])
    nx.draw_networkx_labels(g, pos, labels=labels, ax=ax, font_size=7,
                            verticalalignment="bottom")
    meta = getattr(graph, "meta", {}) or {}
    kind = meta.get("kind", "graph")
    details = ", ".join(f"{k}={meta[k]}" for k in ("k", "tau", "alpha", "beta", "object_source") if k in meta)
    center_id = str(videoset.ids[center])
    ax.set_title(f"Neighbourhood ({hops} hops, {len(nodes)} of {graph.num_nodes} videos) of video "
                 f"{center_id!r} in the {kind} graph" + (f"\n{details}" if details else ""),
                 fontsize=10)
    ax.axis("off")
    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=lab)
               for c, lab in ((hop_colour[0], "centre video"), (hop_colour[1], "1 hop"),
                              (hop_colour[2], "2 hops")) if lab != "2 hops" or hops >= 2]
    ax.legend(handles=handles, loc="lower right", fontsize=8, title="edge width ∝ weight",
              title_fontsize=8)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Fig. 3: the feature pipeline with real shapes
# ---------------------------------------------------------------------------------------------

def _shape(*dims: Any) -> str:
    return "×".join(str(d) for d in dims)


def fig3_feature_pipeline(videoset, frame_shape: Sequence[int] | None = None,
                          extractor: str | None = None, audio_extractor: str | None = None,
                          modality: str = "rgb+audio") -> Figure:
    """Fig. 3: how a video becomes one feature vector, with the shapes of the actual data.

    Args:
        videoset: the ``VideoSet`` the figure describes; the RGB and audio dimensions, the
            frame count (when frame-level features are kept) and the final dimension are read
            from it (the final one by running ``videoset.features(modality)`` on one video).
        frame_shape: ``(F, H, W, 3)`` of decoded frames when known (e.g. from
            ``vidsage_core.video``'s frame sampler); otherwise F, H and W stay symbolic, or F is
            read from ``videoset.frames``.
        extractor: name of the frame CNN (e.g. "EfficientNet-Lite0"); default "frame CNN".
        audio_extractor: name of the audio network; default "audio CNN".
        modality: which features are concatenated (``"rgb"``, ``"audio"``, ``"rgb+audio"``).

    Returns:
        The block diagram figure.
    """
    n = len(videoset)
    if n == 0:
        raise ValueError("fig3_feature_pipeline needs a VideoSet with at least one video")
    d_rgb = int(videoset.rgb.shape[1])
    d_audio = int(videoset.audio.shape[1])
    use_rgb = "rgb" in modality
    use_audio = "audio" in modality and d_audio > 0
    final_dim = int(videoset.subset(np.array([0])).features(modality).shape[1])

    f_text, h_text, w_text = "F", "H", "W"
    f_note = ""
    if frame_shape is not None:
        if len(frame_shape) != 4:
            raise ValueError(f"frame_shape must be (F, H, W, 3), got {tuple(frame_shape)}")
        f_text, h_text, w_text = (str(int(x)) for x in frame_shape[:3])
    elif getattr(videoset, "frames", None) is not None:
        f_text = str(int(videoset.frames.shape[1]))
        if getattr(videoset, "num_frames", None) is not None:
            nf = np.asarray(videoset.num_frames)
            f_note = f"F ≤ {f_text} (median {int(np.median(nf))} in this data)"
    else:
        f_note = "F, H, W: not in this data (video-level features only)"

    # Pooled vectors hold B blocks (mean, std, top-k rows) of the per-frame dimension.
    pooling = str(getattr(videoset, "pooling", "mean") or "mean")
    try:
        from vidsage_core.data.reader import parse_pooling

        n_blocks = sum(k for _, k in parse_pooling(pooling))
    except (ImportError, ValueError):
        n_blocks = 1
    frame_rgb, frame_audio = d_rgb // n_blocks, d_audio // n_blocks
    pool_text = "mean over\nframes" if pooling == "mean" else f"pool over frames\n({pooling})"
    cnn = extractor or "frame CNN"
    # Boxes are laid out left to right from their widths, so nothing overlaps whatever the text.
    gap = 0.4
    chain_w = [1.9, 1.7, 1.9, 1.4, 1.2]  # input, CNN, frame features, mean, pooled vector
    tail_w = [1.9, 1.3, 1.5]  # concat, L2, output
    xs, cursor = [], 0.3
    for w in chain_w:
        xs.append(cursor + w / 2)
        cursor += w + gap
    tail_x = []
    for w in tail_w if (use_rgb and use_audio) else tail_w[1:]:
        tail_x.append(cursor + w / 2)
        cursor += w + gap
    width = cursor
    ylim = 4.8 if use_audio and use_rgb else 3.0
    fig = new_figure((width * 0.95, ylim * 0.95))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, ylim)
    ax.axis("off")

    def box(x: float, y: float, text: str, colour: str, w: float, h: float = 0.9) -> tuple:
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05",
                                    facecolor=colour, edgecolor="0.25", linewidth=1.0))
        ax.text(x, y, text, ha="center", va="center", fontsize=8.5)
        return (x, y, w)

    def arrow(a: tuple, b: tuple) -> None:
        (x0, y0, w0), (x1, y1, w1) = a, b
        ax.add_patch(FancyArrowPatch((x0 + w0 / 2 + 0.06, y0), (x1 - w1 / 2 - 0.06, y1),
                                     arrowstyle="-|>", mutation_scale=12, color="0.2"))

    def chain(y: float, texts: Sequence[str], colours: Sequence[str]) -> tuple:
        boxes = [box(x, y, t, c, w) for x, t, c, w in zip(xs, texts, colours, chain_w)]
        for a, b in zip(boxes[:-1], boxes[1:]):
            arrow(a, b)
        return boxes[-1]

    both = use_rgb and use_audio
    y_rgb, y_audio = (3.5, 1.3) if both else (1.5, 1.5)
    last = []
    if use_rgb:
        last.append(chain(y_rgb, [f"frames\n{_shape(f_text, h_text, w_text, 3)}", cnn,
                                  f"frame features\n{_shape(f_text, frame_rgb)}", pool_text,
                                  f"rgb\n{d_rgb}"],
                          ["#fde0dd", "#fcc5c0", "#fa9fb5", "#fcc5c0", "#f768a1"]))
    if use_audio:
        last.append(chain(y_audio, ["audio track", audio_extractor or "audio CNN",
                                    f"audio features\n{_shape(f_text, frame_audio)}", pool_text,
                                    f"audio\n{d_audio}"],
                          ["#deebf7", "#c6dbef", "#9ecae1", "#c6dbef", "#6baed6"]))
    if both:
        y_out = (y_rgb + y_audio) / 2
        prev = box(tail_x[0], y_out, f"concat\n{d_rgb}+{d_audio}={d_rgb + d_audio}", "#e5f5e0", tail_w[0])
        for b in last:
            arrow(b, prev)
        rest = list(zip(tail_x[1:], tail_w[1:]))
    else:
        prev, y_out = last[0], last[0][1]
        rest = list(zip(tail_x, tail_w[1:]))
    nrm = box(rest[0][0], y_out, "L2\nnormalise", "#c7e9c0", rest[0][1])
    arrow(prev, nrm)
    out = box(rest[1][0], y_out, f"video feature\n$f_v$: {final_dim}", "#74c476", rest[1][1])
    arrow(nrm, out)

    source = str(getattr(videoset, "source", ""))
    synthetic = " — SYNTHETIC data" if getattr(videoset, "synthetic", False) else ""
    note = f"shapes read from {n} videos of {source[:90]}{'…' if len(source) > 90 else ''}{synthetic}"
    if f_note:
        note += f"; {f_note}"
    ax.text(0.3, ylim - 0.2, "Video-level features (paper §3.2, Fig. 3): per-frame CNN features, "
            "averaged over frames, then L2-normalised", fontsize=10, va="top", weight="bold")
    ax.text(0.3, 0.12, note, fontsize=7.5, va="bottom", color="0.3")
    return fig


# ---------------------------------------------------------------------------------------------
# Fig. 5: class and vertical distributions
# ---------------------------------------------------------------------------------------------

def fig5_class_distribution(videoset, vocabulary: pd.DataFrame, top_k: int = 20) -> Figure:
    """Fig. 5: class and vertical distributions, of the vocabulary and of our videos.

    Args:
        videoset: the videos actually used (their labels are counted).
        vocabulary: the YouTube-8M vocabulary (``Index``, ``Name``, ``TrainVideoCount``,
            ``Vertical1``).
        top_k: classes shown in the bar panels.

    Returns:
        A 2×2 figure: (a) ``TrainVideoCount`` per class, rank-ordered (log-log), with the
        label frequency in our videos on the same ranks; (b) classes per ``Vertical1``;
        (c) the ``top_k`` most frequent labels in our videos; (d) our videos per primary
        vertical (:func:`primary_verticals`).
    """
    import seaborn as sns

    v = _vocab_frame(vocabulary, videoset.num_classes)
    counts_ours = np.asarray(videoset.labels.sum(axis=0)).ravel().astype(np.int64)
    fig = new_figure((14, 10))
    axes = fig.subplots(2, 2)
    kind = "SYNTHETIC data" if getattr(videoset, "synthetic", False) else "our data"

    # (a) rank-frequency of the vocabulary's training counts and of our label counts.
    ax = axes[0, 0]
    train_counts = np.sort(v["TrainVideoCount"].to_numpy())[::-1]
    ax.loglog(np.arange(1, train_counts.size + 1), train_counts, label="vocabulary.csv TrainVideoCount")
    ours_sorted = np.sort(counts_ours[counts_ours > 0])[::-1]
    if ours_sorted.size:
        ax.loglog(np.arange(1, ours_sorted.size + 1), ours_sorted,
                  label=f"label frequency in {kind} ({len(videoset)} videos)")
    ax.set_xlabel("class rank")
    ax.set_ylabel("videos per class")
    ax.set_title(f"(a) videos per class ({train_counts.size} classes in vocabulary, "
                 f"{int((counts_ours > 0).sum())} present in {kind})", fontsize=10)
    ax.legend(fontsize=8)

    # (b) classes per vertical in the vocabulary.
    ax = axes[0, 1]
    vert_counts = v["Vertical1"].fillna("(Unknown)").value_counts()
    sns.barplot(x=vert_counts.to_numpy(), y=vert_counts.index.to_numpy(), ax=ax, color="#6baed6",
                orient="h")
    ax.set_xlabel("classes (vocabulary.csv Vertical1)")
    ax.set_ylabel("")
    ax.set_title("(b) classes per vertical (vocabulary)", fontsize=10)
    ax.tick_params(axis="y", labelsize=7)

    # (c) most frequent labels in our videos.
    ax = axes[1, 0]
    top = np.argsort(-counts_ours, kind="stable")[:top_k]
    top = top[counts_ours[top] > 0]
    names = class_names(v, top.tolist())
    sns.barplot(x=counts_ours[top], y=np.asarray(names), ax=ax, color="#fb6a4a", orient="h")
    ax.set_xlabel(f"videos in {kind}")
    ax.set_ylabel("")
    ax.set_title(f"(c) {len(top)} most frequent labels in {kind}", fontsize=10)
    ax.tick_params(axis="y", labelsize=7)

    # (d) our videos per primary vertical.
    ax = axes[1, 1]
    verts = pd.Series(primary_verticals(videoset, v)).value_counts()
    sns.barplot(x=verts.to_numpy(), y=verts.index.to_numpy(), ax=ax, color="#74c476", orient="h")
    ax.set_xlabel(f"videos in {kind}")
    ax.set_ylabel("")
    ax.set_title("(d) videos per primary vertical (Vertical1 of the most frequent label)", fontsize=10)
    ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(f"Class and vertical distributions: vocabulary vs {kind} "
                 f"({len(videoset)} videos, {int(videoset.labels.nnz)} labels)", fontsize=12)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Training curves
# ---------------------------------------------------------------------------------------------

def fig_graph_stats(graphs: Mapping[str, Any], labels) -> Figure:
    """Degree histogram and per-video label homophily histogram of each graph.

    Args:
        graphs: name -> ``VideoGraph`` over the same N videos.
        labels: ``[N, C]`` 0/1 sparse labels of those videos.

    Returns:
        Two axes: degree (log-spaced bins) and the fraction of each video's labelled neighbours
        sharing a label with it (:func:`vidsage_core.graph.node_homophily`); one colour per graph.
    """
    from vidsage_core.graph_stats import node_homophily

    palette = matplotlib.colormaps["tab10"]
    fig = new_figure((10, 3.8))
    ax_deg, ax_hom = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    top = max(int(g.degree().max()) for g in graphs.values())
    bins = np.unique(np.geomspace(1, max(top, 2) + 1, 30).astype(int))
    for i, (name, g) in enumerate(graphs.items()):
        deg = g.degree().numpy()
        ax_deg.hist(deg[deg > 0], bins=bins, histtype="step", linewidth=1.5, color=palette(i),
                    label=f"{name} (mean {deg.mean():.1f})")
        hom = node_homophily(g, labels)
        ax_hom.hist(hom, bins=np.linspace(0, 1, 21), histtype="step", linewidth=1.5,
                    color=palette(i), label=f"{name} (mean {hom.mean():.2f})")
    ax_deg.set_xscale("log")
    ax_deg.set_xlabel("degree")
    ax_deg.set_ylabel("videos")
    ax_deg.set_title("Degree", fontsize=10)
    ax_hom.set_xlabel("fraction of a video's neighbours sharing one of its labels")
    ax_hom.set_ylabel("videos")
    ax_hom.set_title("Label homophily per video", fontsize=10)
    for ax in (ax_deg, ax_hom):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _read_history(path: Path) -> list[dict]:
    data = json.loads(path.read_text())
    if isinstance(data, Mapping):
        data = data.get("history", data.get("steps", []))
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of {{step, loss, ...}} records")
    return data


def fig_training_curves(run_dir: str | Path, smooth: int = 1) -> Figure:
    """Loss vs step for every ``<run_dir>/<variant>/seed<k>/history.json``.

    Args:
        run_dir: a ``vidsage run`` directory.
        smooth: moving-average window over steps (1 = raw values).

    Returns:
        One axis, a line per variant/seed: colour by variant, line style by seed.

    Raises:
        FileNotFoundError: when the run has no history.json.
    """
    run_dir = Path(run_dir)
    files = sorted(run_dir.glob("*/seed*/history.json"))
    if not files:
        raise FileNotFoundError(f"no <variant>/seed<k>/history.json under {run_dir}")
    variants = sorted({f.parent.parent.name for f in files})
    palette = matplotlib.colormaps["tab10"]
    styles = ["-", "--", ":", "-."]
    fig = new_figure((9, 5))
    ax = fig.add_subplot(1, 1, 1)
    for f in files:
        variant, seed = f.parent.parent.name, f.parent.name
        hist = [h for h in _read_history(f) if h.get("loss") is not None]
        if not hist:
            continue
        steps = np.array([h.get("step", i) for i, h in enumerate(hist)], dtype=float)
        loss = np.array([h["loss"] for h in hist], dtype=float)
        if smooth > 1 and loss.size >= smooth:
            kernel = np.ones(smooth) / smooth
            loss = np.convolve(loss, kernel, mode="valid")
            steps = steps[smooth - 1:]
        try:
            seed_no = int(seed.removeprefix("seed"))
        except ValueError:
            seed_no = 0
        ax.plot(steps, loss, color=palette(variants.index(variant) % 10),
                linestyle=styles[seed_no % len(styles)], label=f"{variant} {seed}", linewidth=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    title = f"Training loss, {run_dir.name}"
    metrics = run_dir / "metrics.json"
    if metrics.is_file():
        prov = json.loads(metrics.read_text()).get("provenance", {})
        kind = "SYNTHETIC" if prov.get("synthetic") else "real"
        title += f" ({prov.get('dataset', '?')}, {kind}, {prov.get('num_videos', '?')} videos)"
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# t-SNE of raw features vs embeddings
# ---------------------------------------------------------------------------------------------

def fig_tsne(raw_features: np.ndarray, embeddings: np.ndarray, verticals: Sequence[str],
             max_points: int = 2000, top_verticals: int = 8, seed: int = 0,
             perplexity: float = 30.0, titles: tuple[str, str] = ("raw features", "VidSage embeddings"),
             ) -> Figure:
    """2-D t-SNE of raw features and of embeddings, side by side, coloured by vertical.

    Args:
        raw_features: float ``[N, D]`` (e.g. ``videoset.features()``).
        embeddings: float ``[N, d']``, row ``i`` is the same video as ``raw_features[i]``.
        verticals: ``[N]`` vertical per video (e.g. :func:`primary_verticals`).
        max_points: subsample at most this many videos (same subsample for both panels).
        top_verticals: colour the most common verticals; the rest are "other".
        seed: subsample and t-SNE seed (``random_state``), so the figure is reproducible.
        perplexity: t-SNE perplexity (lowered to ``(n - 1) / 3`` for tiny inputs).
        titles: panel titles.

    Returns:
        A 1×2 figure.
    """
    import seaborn as sns
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    raw_features = np.asarray(raw_features, dtype=np.float32)
    embeddings = np.asarray(embeddings, dtype=np.float32)
    verticals = np.asarray(verticals).astype(str)
    n = raw_features.shape[0]
    if embeddings.shape[0] != n or verticals.shape[0] != n:
        raise ValueError(f"raw_features ({n}), embeddings ({embeddings.shape[0]}) and verticals "
                         f"({verticals.shape[0]}) must have the same number of rows")
    if n < 5:
        raise ValueError(f"fig_tsne needs at least 5 points, got {n}")
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=max_points, replace=False)) if n > max_points else np.arange(n)
    common = [name for name, _ in Counter(verticals[rows].tolist()).most_common(top_verticals)]
    hue = np.where(np.isin(verticals[rows], common), verticals[rows], "other")
    order = common + (["other"] if (hue == "other").any() else [])
    perp = float(min(perplexity, max(1.0, (rows.size - 1) / 3.0)))

    colours = matplotlib.colormaps["tab10" if len(common) <= 10 else "tab20"].colors
    palette = {name: colours[i % len(colours)] for i, name in enumerate(common)}
    palette["other"] = (0.75, 0.75, 0.75)  # the long tail stays grey, not a ninth colour
    fig = new_figure((14, 6.5))
    axes = fig.subplots(1, 2)
    for ax, x, title in zip(axes, (raw_features, embeddings), titles):
        # Single-threaded: OpenMP spin-waiting made a 30-point t-SNE take 20 s instead of 0.3 s on
        # a shared 2-core machine, and 2,000 points take seconds on one thread anyway.
        with threadpool_limits(limits=1):
            xy = TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed).fit_transform(x[rows])
        sns.scatterplot(x=xy[:, 0], y=xy[:, 1], hue=hue, hue_order=order, ax=ax, s=8,
                        linewidth=0, palette=palette, legend=ax is axes[1])
        ax.set_title(f"{title} ({x.shape[1]}-D → t-SNE)", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    if axes[1].get_legend() is not None:
        axes[1].legend(fontsize=7, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(f"t-SNE of {rows.size} videos (seed {seed}, perplexity {perp:g}), colour = vertical",
                 fontsize=11)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Label efficiency
# ---------------------------------------------------------------------------------------------

def _best_line(curves: pd.DataFrame, mask: pd.Series, fractions: Sequence[float]) -> str | None:
    """The method of ``curves[mask]`` with the highest mean over all ``fractions`` (it must
    have every fraction), or None."""
    sel = curves[mask]
    complete = [m for m, g in sel.groupby("method") if set(fractions) <= set(g["label fraction"])]
    if not complete:
        return None
    sel = sel[sel["method"].isin(complete)]
    return str(sel.groupby("method")["mean"].mean().idxmax())


def fig_label_efficiency(run_dir: str | Path, metric: str = "gap") -> Figure:
    """GAP against the fraction of labels: raw features, the best baseline, probe, fine-tune.

    Lines are the mean over seeds, the band mean ± sample std, dots the single seeds. "Best"
    is the method of its kind with the highest mean over all fractions (named in the legend):
    the best baseline among protocol-"none" rows other than the raw head, the best
    LiteVidSage/VidSage linear probe, the best fine-tuned row (default preset, unsupervised
    init). Values come from :func:`vidsage_core.tables.label_efficiency_curves`.

    Args:
        run_dir: a ``vidsage run`` directory with several ``label_fractions``.
        metric: measured metric to plot (default ``gap``).

    Returns:
        One axis, fractions on a log x axis labelled in percent.

    Raises:
        ValueError: when the run has fewer than two label fractions.
    """
    from vidsage_core.tables import label_efficiency_curves, load_run_metrics

    run = load_run_metrics(run_dir)
    curves = label_efficiency_curves(run["rows"], metric)
    fractions = sorted(curves["label fraction"].unique()) if not curves.empty else []
    if len(fractions) < 2:
        raise ValueError(f"{run_dir}: label efficiency needs >= 2 label fractions, found {fractions}")
    ours = curves["method"].str.startswith(("litevidsage", "vidsage"))
    lines = [
        ("raw features (logistic)", "raw-logistic" if (curves["method"] == "raw-logistic").any() else None),
        ("best baseline", _best_line(curves, (curves["kind"] == "baseline")
                                     & (curves["method"] != "raw-logistic"), fractions)),
        ("best linear probe", _best_line(curves, ours & (curves["kind"] == "probe"), fractions)),
        ("best fine-tuned", _best_line(curves, ours & (curves["kind"] == "finetune")
                                       & ~curves["method"].str.contains("random-init|paper-exact"),
                                       fractions)),
    ]
    palette = matplotlib.colormaps["tab10"]
    fig = new_figure((8, 5))
    ax = fig.add_subplot(1, 1, 1)
    for i, (label, method) in enumerate(lines):
        if method is None:
            continue
        g = curves[curves["method"] == method].sort_values("label fraction")
        x = g["label fraction"].to_numpy(float)
        mean = g["mean"].to_numpy(float)
        std = np.nan_to_num(g["std"].to_numpy(float))
        colour = palette(i)
        ax.plot(x, mean, marker="o", color=colour, label=f"{label}: {method}", linewidth=1.6)
        ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.18, linewidth=0)
        for xf, values in zip(x, g["values"]):
            ax.scatter([xf] * len(values), values, color=colour, s=9, alpha=0.6)
    ax.set_xscale("log")
    ax.set_xticks(fractions)
    ax.set_xticklabels([f"{100 * f:g} %" for f in fractions])
    ax.minorticks_off()
    ax.set_xlabel("fraction of train+val labels (nested subsets; pre-training always unlabelled on all)")
    ax.set_ylabel(f"test {metric.upper() if metric == 'gap' else metric} (%)")
    prov = run["provenance"]
    kind = "SYNTHETIC" if prov.get("synthetic") else "real"
    ax.set_title(f"Label efficiency, {prov.get('dataset', '?')} ({kind}, {prov.get('num_videos', '?')} "
                 f"videos, seeds {list(prov.get('seeds', []))}): mean ± std", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _show_inline_in_notebooks() -> None:
    """Let a returned ``Figure`` display as a PNG in a notebook, without pyplot.

    The figures here never touch pyplot (headless, no global state), so IPython's inline backend,
    which registers the PNG formatter when pyplot loads, never runs: without this a notebook shows
    ``<Figure size ...>`` instead of the figure.
    """
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and hasattr(shell, "display_formatter"):
        select_figure_formats(shell, {"png"}, bbox_inches="tight")


_show_inline_in_notebooks()
