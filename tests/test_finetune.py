"""Fine-tuning protocol (paper §4.2): behaviour on hand-made graphs whose answers are known.

The graph: C classes; per class a few "anchor" videos whose features point at the class's own
axis, and many videos whose features are pure noise. Every video carries the object
``class<c>`` (plus one of its own), so object (Jaccard) edges join exactly the videos of a class.
Visual edges are switched off (``tau`` above any reachable similarity), so the only way a noise
video can learn its class is from its neighbours' messages, and a test video (noise features) only
through its inductive attachment edges. A logistic head on the features is at chance.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn

from vidsage_core.evaluate import HeadConfig, evaluate_head
from vidsage_core.finetune import FinetuneConfig, finetune
from vidsage_core.graph import VideoGraph
from vidsage_core.metrics import gap

C, D = 4, 8
ANCHORS, NOISE, TEST = 3, 12, 8  # per class


def _unit(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


def _world(seed: int = 0):
    """Training videos (anchors first, then noise videos), test videos, objects and labels."""
    rng = np.random.default_rng(seed)
    cls_tr = np.concatenate([np.repeat(np.arange(C), ANCHORS), np.repeat(np.arange(C), NOISE)])
    n = cls_tr.size
    x_tr = _unit(rng.normal(size=(n, D)))
    anchors = np.arange(C * ANCHORS)
    x_tr[anchors] = _unit(np.eye(D, dtype=np.float32)[cls_tr[anchors]] + 0.05 * rng.normal(size=(anchors.size, D)))
    cls_te = np.repeat(np.arange(C), TEST)
    x_te = _unit(rng.normal(size=(cls_te.size, D)))
    obj_tr = [frozenset({f"class{c}", f"own{i}"}) for i, c in enumerate(cls_tr)]
    obj_te = [frozenset({f"class{c}", f"test{i}"}) for i, c in enumerate(cls_te)]
    # Object edges as graph.jaccard_edges would make them: same class <=> Jaccard 1/3.
    same = (cls_tr[:, None] == cls_tr[None, :]) & ~np.eye(n, dtype=bool)
    r, c = np.nonzero(same)
    meta = {"kind": "vidsage", "k": 5, "tau": 1.5, "alpha": 1.0, "beta": 0.0, "min_jaccard": 0.1,
            "max_per_node": None, "max_object_frequency": None}
    graph = VideoGraph(torch.from_numpy(np.stack([r, c])).long(), torch.full((r.size,), 1 / 3), n, meta)
    y_tr = sp.csr_matrix((np.ones(n, np.float32), (np.arange(n), cls_tr)), shape=(n, C))
    y_te = sp.csr_matrix((np.ones(cls_te.size, np.float32), (np.arange(cls_te.size), cls_te)),
                         shape=(cls_te.size, C))
    labelled = np.arange(C * ANCHORS, n)  # the noise videos; anchors' labels are never given
    attach = {"objects_train": obj_tr, "objects_new": obj_te}
    return x_tr, graph, y_tr, labelled, x_te, y_te, attach


def _config(**kw) -> FinetuneConfig:
    base = dict(epochs=30, lr=1e-2, head_lr=1e-1, warmup_steps=2, batch_size=16, hidden_dim=16, dropout=0.0,
                seed=0, device="cpu", checkpoint_every=5)
    return FinetuneConfig(**{**base, **kw})


def test_neighbours_carry_the_label_through_messages_and_attachment(tmp_path):
    x_tr, graph, y_tr, labelled, x_te, y_te, attach = _world()
    res = finetune(x_tr, graph, y_tr, labelled, x_te, attach, _config(), tmp_path / "ok", None, progress=False)
    ft = gap(res.scores_test, y_te)
    logistic = evaluate_head("logistic", x_tr[labelled], y_tr[labelled], x_te, y_te,
                             HeadConfig(epochs=30, device="cpu"))["gap"]
    assert ft > 0.95, ft
    assert ft > logistic + 0.3, (ft, logistic)
    # Attachment broken: test videos share no object with training videos, so no edges reach them.
    broken = {**attach, "objects_new": [frozenset({f"elsewhere{i}"}) for i in range(len(x_te))]}
    res_b = finetune(x_tr, graph, y_tr, labelled, x_te, broken, _config(), tmp_path / "noattach", None,
                     progress=False)
    assert gap(res_b.scores_test, y_te) < ft - 0.3
    # Message passing broken: no training edges, so the noise videos cannot learn their class.
    empty = VideoGraph(torch.zeros((2, 0), dtype=torch.long), torch.zeros(0), graph.num_nodes, graph.meta)
    res_e = finetune(x_tr, empty, y_tr, labelled, x_te, attach, _config(), tmp_path / "noedges", None,
                     progress=False)
    assert gap(res_e.scores_test, y_te) < ft - 0.3


def test_test_labels_do_not_leak(tmp_path):
    """Scoring held-out videos each epoch (val) never feeds back into training."""
    x_tr, graph, y_tr, labelled, x_te, y_te, attach = _world()
    attach = {**attach, "objects_val": attach["objects_new"]}
    cfg = _config(epochs=6)
    a = finetune(x_tr, graph, y_tr, labelled, x_te, attach, cfg, tmp_path / "a", None, val=(x_te, y_te),
                 progress=False)
    perm = np.random.default_rng(1).permutation(y_te.shape[0])
    b = finetune(x_tr, graph, y_tr, labelled, x_te, attach, cfg, tmp_path / "b", None, val=(x_te, y_te[perm]),
                 progress=False)
    np.testing.assert_array_equal(a.scores_test, b.scores_test)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert [h["val_gap"] for h in a.history] != [h["val_gap"] for h in b.history]  # the metric did see them


def test_labels_outside_labelled_are_never_read(tmp_path):
    x_tr, graph, y_tr, labelled, x_te, y_te, attach = _world()
    rng = np.random.default_rng(2)
    corrupt = y_tr.tolil()
    for i in np.setdiff1d(np.arange(y_tr.shape[0]), labelled):  # the anchors
        corrupt.rows[i], corrupt.data[i] = [int(rng.integers(C))], [1.0]
    cfg = _config(epochs=4)
    a = finetune(x_tr, graph, y_tr, labelled, x_te, attach, cfg, tmp_path / "a", None, progress=False)
    b = finetune(x_tr, graph, corrupt.tocsr(), labelled, x_te, attach, cfg, tmp_path / "b", None, progress=False)
    np.testing.assert_array_equal(a.scores_test, b.scores_test)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    # ... while the labelled rows are read: corrupting one of them changes the run.
    c_lab = y_tr.tolil()
    i = int(labelled[0])
    c_lab.rows[i], c_lab.data[i] = [(int(y_tr[i].indices[0]) + 1) % C], [1.0]
    c = finetune(x_tr, graph, c_lab.tocsr(), labelled, x_te, attach, cfg, tmp_path / "c", None, progress=False)
    assert [h["loss"] for h in a.history] != [h["loss"] for h in c.history]


@pytest.mark.parametrize("full_graph, classifier", [(True, "logistic"), (False, "logistic"), (True, "moe")])
def test_interrupt_and_resume_gives_identical_weights(tmp_path, full_graph, classifier):
    x_tr, graph, y_tr, labelled, x_te, y_te, attach = _world()
    # Dropout on (the global RNG must be restored) and, for full_graph=False, sampled neighbours.
    cfg = _config(epochs=3, dropout=0.3, full_graph=full_graph, fanouts=(4, 3), checkpoint_every=100,
                  classifier=classifier)
    ref = finetune(x_tr, graph, y_tr, labelled, x_te, attach, cfg, tmp_path / "ref", None, progress=False)

    def stop_at_7(step, loss, model):
        if step == 7:  # mid-epoch (3 steps per epoch), not at a periodic checkpoint
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune(x_tr, graph, y_tr, labelled, x_te, attach, cfg, tmp_path / "cut", None, progress=False,
                 callback=stop_at_7)
    torch.manual_seed(123)  # the resumed run must not depend on the global RNG it is started with
    res = finetune(x_tr, graph, y_tr, labelled, x_te, attach, cfg, tmp_path / "cut", None, progress=False,
                   resume=True)
    w_ref = torch.load(tmp_path / "ref" / "model.pt", weights_only=True)["model"]
    w_res = torch.load(tmp_path / "cut" / "model.pt", weights_only=True)["model"]
    assert w_ref.keys() == w_res.keys()
    for k in w_ref:
        assert torch.equal(w_ref[k], w_res[k]), k
    np.testing.assert_array_equal(ref.scores_test, res.scores_test)
    assert [h["loss"] for h in ref.history] == [h["loss"] for h in res.history]


def test_init_loads_the_pretrained_encoder_and_checks_its_shape(tmp_path):
    from vidsage_core.train import TrainConfig, train

    x_tr, graph, y_tr, labelled, x_te, y_te, attach = _world()
    pre = train(x_tr, graph, TrainConfig(hidden_dim=16, out_dim=16, epochs=1, batch_size=32, seed=0, device="cpu"),
                tmp_path / "pre", progress=False)
    # Encoder lr 0 (and hence no decay): the fine-tuned encoder must be the checkpoint's, exactly.
    res = finetune(x_tr, graph, y_tr, labelled, x_te, attach, _config(epochs=2, lr=0.0), tmp_path / "ft",
                   tmp_path / "pre" / "model.pt", progress=False)
    enc = {k[len("encoder."):]: v for k, v in
           torch.load(tmp_path / "ft" / "model.pt", weights_only=True)["model"].items() if k.startswith("encoder.")}
    for k, v in pre.model.state_dict().items():
        assert torch.equal(enc[k], v), k
    assert res.config["resolved"]["init"] == str(tmp_path / "pre" / "model.pt")
    with pytest.raises(ValueError, match="hidden_dim"):
        finetune(x_tr, graph, y_tr, labelled, x_te, attach, _config(hidden_dim=32), tmp_path / "bad",
                 tmp_path / "pre", progress=False)


@pytest.mark.parametrize("aggr, expected", [("sum", [1.0, 6.0]), ("mean", [0.25, 1.5])])
def test_layer_aggregation_by_hand_and_cached_adjacency(aggr, expected):
    """Edges 0 -> 2 (w 1) and 1 -> 2 (w 3): sum = 1*m0 + 3*m1, weighted mean = that / 4."""
    from vidsage_core.model import VidSageConv, cached_adjacency

    conv = VidSageConv(2, dropout=0.0, act=False, normalize=False, aggr=aggr)
    with torch.no_grad():  # W1 = I, W2 = [0 | I]: the output is the aggregate itself
        conv.lin1.weight.copy_(torch.eye(2))
        conv.lin2.weight.copy_(torch.cat([torch.zeros(2, 2), torch.eye(2)], dim=1))
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [5.0, 5.0]], requires_grad=True)
    ei, ew = torch.tensor([[0, 1], [2, 2]]), torch.tensor([1.0, 3.0])
    out = conv(x, ei, ew)
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0], [0.0, 0.0], expected]))
    # The precomputed adjacency (fine-tuning's whole-graph path): same values and gradients.
    (out * torch.arange(6.0).view(3, 2)).sum().backward()
    g_ref = x.grad.clone()
    x.grad = None
    out_c = conv(x, cached_adjacency(ei, ew, 3))
    (out_c * torch.arange(6.0).view(3, 2)).sum().backward()
    torch.testing.assert_close(out_c, out)
    torch.testing.assert_close(x.grad, g_ref)


def test_skip_logits_are_one_linear_layer_on_z_and_x():
    # The classification layer on [z ‖ x] is held as W_z z + b and W_x x: its values and the
    # gradients of z and of every weight must be those of one Linear on [z ‖ x] whose weight is
    # [W_z ‖ W_x].
    from vidsage_core.finetune import FinetuneModel

    torch.manual_seed(0)
    model = FinetuneModel(nn.Identity(), in_dim=6, out_dim=4, prior=np.full(5, 0.2), skip=True)
    with torch.no_grad():
        for layer in model.head_layers():
            layer.weight.normal_()
    z = torch.randn(3, 4, requires_grad=True)
    x = torch.randn(3, 6)
    split = model.logits(z, x)
    split.square().sum().backward()
    whole_layer = nn.Linear(10, 5)
    with torch.no_grad():
        whole_layer.weight.copy_(torch.cat([model.classifier.weight, model.classifier_x.weight], 1))
        whole_layer.bias.copy_(model.classifier.bias)
    z2 = z.detach().clone().requires_grad_(True)
    whole = whole_layer(torch.cat([z2, x], dim=1))
    whole.square().sum().backward()
    torch.testing.assert_close(split, whole, rtol=0, atol=1e-5)
    torch.testing.assert_close(z.grad, z2.grad, rtol=1e-6, atol=1e-5)
    w_grad = torch.cat([model.classifier.weight.grad, model.classifier_x.weight.grad], 1)
    torch.testing.assert_close(w_grad, whole_layer.weight.grad, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(model.classifier.bias.grad, whole_layer.bias.grad, rtol=1e-6, atol=1e-5)


def test_moe_layer_is_youtube8m_moe_on_z_and_x_by_hand():
    # The MoE classification layer on [z ‖ x], held as blocks, against YouTube-8M's MoeModel
    # written out per video, class and expert: p = sum_j softmax(g)_j * sigmoid(e_j), where the
    # softmax runs over the m experts and a dummy one, and its loss is the starter code's
    # CrossEntropyLoss on probabilities (epsilon 1e-5).
    from vidsage_core.finetune import FinetuneModel

    torch.manual_seed(0)
    c, m = 3, 2
    prior = np.array([0.1, 0.3, 0.6])
    model = FinetuneModel(nn.Identity(), in_dim=5, out_dim=4, prior=prior, skip=True, classifier="moe",
                          num_mixtures=m)
    assert model.gate.bias is None and model.gate_x.bias is None and model.experts_x.bias is None
    np.testing.assert_allclose(model.experts.bias.detach().numpy(), np.repeat(np.log(prior / (1 - prior)), m),
                               rtol=1e-6)
    z, x = torch.randn(2, 4), torch.randn(2, 5)
    y = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    got = model.probabilities(z, x).detach().numpy().astype(np.float64)
    zx = torch.cat([z, x], 1).numpy().astype(np.float64)
    w_gate = torch.cat([model.gate.weight, model.gate_x.weight], 1).detach().numpy().astype(np.float64)
    w_exp = torch.cat([model.experts.weight, model.experts_x.weight], 1).detach().numpy().astype(np.float64)
    b_exp = model.experts.bias.detach().numpy().astype(np.float64)
    want = np.zeros((2, c))
    for v in range(2):
        for k in range(c):
            g = np.array([w_gate[k * (m + 1) + j] @ zx[v] for j in range(m + 1)])
            g = np.exp(g - g.max()) / np.exp(g - g.max()).sum()
            for j in range(m):
                e = w_exp[k * m + j] @ zx[v] + b_exp[k * m + j]
                want[v, k] += g[j] / (1 + np.exp(-e))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    y64 = y.numpy()
    want_loss = -np.mean(np.sum(y64 * np.log(want + 1e-5) + (1 - y64) * np.log(1 - want + 1e-5), 1))
    assert float(model.loss(z, x, y).detach()) == pytest.approx(want_loss, rel=1e-5)
    with pytest.raises(TypeError, match="MoE"):
        model.logits(z, x)
    with pytest.raises(ValueError, match="classifier"):
        FinetuneConfig(classifier="svm")


def test_moe_layer_fine_tunes_the_graph_like_the_logistic_layer(tmp_path):
    """The MoE layer reads the same messages: on the neighbours-only world it learns the classes
    that features alone cannot give, and its run is a pure function of the seed."""
    x_tr, graph, y_tr, labelled, x_te, y_te, attach = _world()
    cfg = _config(classifier="moe")
    a = finetune(x_tr, graph, y_tr, labelled, x_te, attach, cfg, tmp_path / "a", None, progress=False)
    logistic_on_x = evaluate_head("logistic", x_tr[labelled], y_tr[labelled], x_te, y_te,
                                  HeadConfig(epochs=30, device="cpu"))["gap"]
    assert gap(a.scores_test, y_te) > 0.95 > logistic_on_x + 0.3
    b = finetune(x_tr, graph, y_tr, labelled, x_te, attach, cfg, tmp_path / "b", None, progress=False)
    np.testing.assert_array_equal(a.scores_test, b.scores_test)
    saved = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    assert saved["classifier"] == "moe" and saved["num_mixtures"] == 2
