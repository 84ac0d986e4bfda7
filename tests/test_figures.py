"""Figures render headless on tiny inputs; save_fig writes png + pdf; shapes come from the data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from matplotlib.text import Text

from vidsage_core.data.videoset import VideoSet
from vidsage_core.figures import (
    fig1_graph_neighbourhood,
    fig3_feature_pipeline,
    fig5_class_distribution,
    fig_label_efficiency,
    fig_training_curves,
    fig_tsne,
    new_figure,
    primary_verticals,
    save_fig,
)
from vidsage_core.graph import VideoGraph


def _texts(fig) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(Text))


@pytest.fixture()
def vocabulary() -> pd.DataFrame:
    return pd.DataFrame({
        "Index": [0, 1, 2, 3, 4],
        "TrainVideoCount": [1000, 500, 200, 100, 50],
        "Name": ["Game", "Vehicle", "Minecraft", "Car", "Cooking"],
        "Vertical1": ["Games", "Autos & Vehicles", "Games", "Autos & Vehicles", "Food & Drink"],
    })


def _videoset(n: int = 8, rgb_dim: int = 1024, audio_dim: int = 128, seed: int = 0) -> VideoSet:
    rng = np.random.default_rng(seed)
    label_lists = [[0, 2], [1, 3], [0], [4], [1], [0, 2], [], [3]][:n]
    rows = np.repeat(np.arange(n), [len(x) for x in label_lists])
    cols = np.concatenate([np.asarray(x, int) for x in label_lists])
    labels = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(n, 5))
    return VideoSet(ids=np.array([f"v{i}" for i in range(n)]),
                    rgb=rng.standard_normal((n, rgb_dim)).astype(np.float32),
                    audio=rng.standard_normal((n, audio_dim)).astype(np.float32),
                    labels=labels, num_classes=5, source="test", synthetic=True)


def _graph(n: int = 8) -> VideoGraph:
    undirected = [(0, 1, 0.9), (0, 2, 0.5), (1, 3, 0.2), (2, 4, 0.7), (4, 5, 0.3), (6, 7, 1.0)]
    pairs = sorted([(u, v, w) for u, v, w in undirected] + [(v, u, w) for u, v, w in undirected])
    ei = torch.tensor([[p[0] for p in pairs], [p[1] for p in pairs]], dtype=torch.long)
    return VideoGraph(ei, torch.tensor([p[2] for p in pairs], dtype=torch.float32), n,
                      {"kind": "lite", "k": 2, "tau": 0.0})


def test_save_fig_writes_png_and_pdf(tmp_path):
    fig = new_figure((3, 2))
    fig.add_subplot(1, 1, 1).plot([0, 1], [1, 0])
    paths = save_fig(fig, "tiny", tmp_path, caption="a tiny test figure")
    assert [p.name for p in paths] == ["tiny.png", "tiny.pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[1].read_bytes()[:5] == b"%PDF-"
    from PIL import Image

    with Image.open(paths[0]) as im:
        assert im.info["Description"] == "a tiny test figure"


def test_fig1_graph_neighbourhood(vocabulary, tmp_path):
    vs = _videoset()
    fig = fig1_graph_neighbourhood(_graph(), vs, vocabulary, center=0, hops=2, max_nodes=10)
    text = _texts(fig)
    # node 0 (labels 0, 2) is named by its most specific label first; its 2-hop ball is 0-4
    assert "Minecraft\nGame" in text and "Cooking" in text and "'v0'" in text
    assert "5 of 8 videos" in text  # node 5 is 3 hops away, nodes 6-7 another component
    fig = fig1_graph_neighbourhood(_graph(), vs, vocabulary, hops=1)  # centre: strongest node
    assert "of video 'v0'" in _texts(fig)
    save_fig(fig, "fig1", tmp_path)


def test_fig3_feature_pipeline_reads_shapes():
    vs = _videoset()
    text = _texts(fig3_feature_pipeline(vs, frame_shape=(30, 224, 224, 3), extractor="EfficientNet-Lite0"))
    assert "30×224×224×3" in text and "30×1024" in text and "1024+128=1152" in text
    assert "$f_v$: 1152" in text and "EfficientNet-Lite0" in text
    # action-dataset style: 48-D rgb, no audio -> no audio branch, final dim read from the data
    small = VideoSet(ids=np.array(["a", "b"]), rgb=np.ones((2, 48), np.float32),
                     audio=np.zeros((2, 0), np.float32), labels=sp.csr_matrix((2, 3), dtype=np.float32),
                     num_classes=3)
    text = _texts(fig3_feature_pipeline(small))
    assert "F×48" in text and "$f_v$: 48" in text and "audio" not in text.replace("no audio", "")


def test_fig5_class_distribution(vocabulary):
    vs = _videoset()
    assert primary_verticals(vs, vocabulary).tolist() == [
        "Games", "Autos & Vehicles", "Games", "Food & Drink", "Autos & Vehicles", "Games", "(no label)",
        "Autos & Vehicles"]
    text = _texts(fig5_class_distribution(vs, vocabulary, top_k=3))
    assert "Game" in text and "8 videos" in text and "3 most frequent labels" in text


def test_fig_training_curves(tmp_path):
    for variant in ("lite", "vidsage"):
        for seed in (0, 1):
            d = tmp_path / variant / f"seed{seed}"
            d.mkdir(parents=True)
            hist = [{"step": s, "epoch": 0, "loss": 1.0 / s + seed, "lr": 1e-3} for s in range(1, 6)]
            (d / "history.json").write_text(json.dumps(hist))
    fig = fig_training_curves(tmp_path)
    ax = fig.axes[0]
    assert len(ax.lines) == 4
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1.0 / s for s in range(1, 6)])
    with pytest.raises(FileNotFoundError):
        fig_training_curves(tmp_path / "empty")


def test_fig_tsne_small():
    rng = np.random.default_rng(0)
    raw = rng.standard_normal((40, 16))
    emb = rng.standard_normal((40, 4))
    verts = np.array(["A", "B", "C", "D"] * 10)
    fig = fig_tsne(raw, emb, verts, max_points=30, top_verticals=2)
    text = _texts(fig)
    assert "t-SNE of 30 videos" in text and "other" in text and "16-D" in text and "4-D" in text
    with pytest.raises(ValueError, match="same number of rows"):
        fig_tsne(raw, emb[:10], verts)


def test_fig_label_efficiency_draws_the_best_of_each_kind_with_seed_spread(tmp_path):
    rows = []
    gaps = {"raw-logistic": ("raw", "none", [0.10, 0.30]), "sgc-logistic": ("sgc", "none", [0.12, 0.31]),
            "labelprop": ("lp", "none", [0.05, 0.20]), "litevidsage-logistic": ("lite", "probe", [0.08, 0.25]),
            "vidsage-logistic": ("vidsage", "probe", [0.09, 0.26]),
            "litevidsage-finetune": ("lite", "finetune", [0.20, 0.35])}
    for method, (variant, protocol, values) in gaps.items():
        for f, gap in zip((0.1, 1.0), values):
            for seed in (0, 1):
                rows.append({"method": method, "variant": variant, "head": "logistic", "seed": seed,
                             "protocol": protocol, "label_fraction": f, "gap": gap + seed / 100})
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"rows": rows, "provenance": {
        "dataset": "toy", "synthetic": True, "num_videos": 10, "seeds": [0, 1]}}))
    fig = fig_label_efficiency(run)
    ax = fig.axes[0]
    lines = {ln.get_label(): ln.get_ydata() for ln in ax.get_lines()}
    assert set(lines) == {"raw features (logistic): raw-logistic", "best baseline: sgc-logistic",
                          "best linear probe: vidsage-logistic", "best fine-tuned: litevidsage-finetune"}
    # means over the two seeds, in percent: (0.20 + 0.21) / 2 and (0.35 + 0.36) / 2
    np.testing.assert_allclose(lines["best fine-tuned: litevidsage-finetune"], [20.5, 35.5])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["10 %", "100 %"]
    assert len(ax.collections) == 4 * (1 + 2)  # per line: a std band, then 2 seed dots per fraction
    one = tmp_path / "one"
    one.mkdir()
    (one / "metrics.json").write_text(json.dumps({"rows": [r for r in rows if r["label_fraction"] == 1.0],
                                                  "provenance": {}}))
    with pytest.raises(ValueError, match="needs >= 2 label fractions"):
        fig_label_efficiency(one)

