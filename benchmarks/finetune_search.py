"""Design search and cost of the fine-tuning protocol (``vidsage_core.finetune``), issue 10 point 4.

Orchestrates the product's own functions only (``pipeline.prepare`` / ``build_variant_graph``,
``pipeline.train_and_embed`` for the unsupervised checkpoints, ``finetune.finetune``,
``evaluate.evaluate_head`` for the raw-logistic reference); no second implementation.

Two modes, same split rule as ``vidsage run`` (``data.split_by_id``: md5 bucket 0 test, 1 val,
2-4 train):

* ``--split val`` (the design search): graph, pre-training and fine-tuning on the train buckets
  only; the validation bucket is attached inductively exactly like test videos and scored. The
  test bucket is never read. Every choice in ``FinetuneConfig`` comes from these rows.
* ``--split test`` (confirmation, no tuning): graph and training on train+val, scored on the test
  bucket; used once a configuration is chosen, e.g. on the held-out tuning set
  ``--data ../shared/data/yt8m/video_level_2018_tuning/``.

Rows go to ``OUT/finetune_search.jsonl`` (one JSON object per run: configuration name, fields,
variant, seed, init, GAP per epoch, final GAP, seconds) and are printed.

    python -m benchmarks.finetune_search --split val --configs default noskip mean --seeds 0
    python -m benchmarks.finetune_search --split test --configs default --seeds 0 1 2 --raw
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import time
from pathlib import Path

import numpy as np

from vidsage_core import paths
from vidsage_core.finetune import FinetuneConfig, finetune, paper_config
from vidsage_core.precision import PRECISIONS

# Named points of the search, each as measured; fields override FinetuneConfig() (paper:
# finetune.paper_config). Rounds 1-3 ran before dropout 0.2 became the default, hence "dropout".
CONFIGS: dict[str, dict] = {
    "default": {},  # FinetuneConfig() as chosen: lr 1e-5, head_lr 1e-1, 5 epochs, dropout 0.2
    # First round (the initial defaults: encoder lr 1e-3 as pre-training, HeadConfig's head lr).
    "r1": {"epochs": 10, "lr": 1e-3, "head_lr": 3e-2, "dropout": 0.5},
    "r1-hlr1e-1": {"epochs": 10, "lr": 1e-3, "head_lr": 1e-1, "dropout": 0.5},
    "r1-noskip": {"epochs": 10, "lr": 1e-3, "head_lr": 3e-2, "skip": False, "dropout": 0.5},
    # Second round, after head_lr 1e-1 peaked by epoch 3-5 and every run overfitted (train loss
    # falling far below the raw logistic head's while val GAP stalled): shorter, gentler encoder.
    "h1-ep5": {"head_lr": 1e-1, "epochs": 5, "lr": 1e-3, "dropout": 0.5},
    "h1-ep5-lr1e-4": {"head_lr": 1e-1, "epochs": 5, "lr": 1e-4, "dropout": 0.5},
    "h1-ep5-lr0": {"head_lr": 1e-1, "epochs": 5, "lr": 0.0, "dropout": 0.5},
    # Third round: a frozen encoder (lr 0) beat every encoder lr >= 1e-4, so the paper's 1e-5.
    "h1-ep5-lr1e-5": {"head_lr": 1e-1, "epochs": 5, "lr": 1e-5, "dropout": 0.5},
    # Fourth round: one field at a time around h1-ep5-lr1e-5 (fields over FinetuneConfig()).
    "mean": {"aggr": "mean", "dropout": 0.5},
    "noskip": {"skip": False, "dropout": 0.5},
    "drop0.2": {"dropout": 0.2},
    "drop0": {"dropout": 0.0},
    # Fifth round (issue 14, cost): one epoch fewer at full labels; with --fractions, the epoch
    # factor below full labels (RunConfig.fraction_epoch_factor) for fine-tuning.
    "ep4": {"epochs": 4},
    # Sixth round (with --precision auto, after bf16 products made a run ~20 s): the remaining
    # axes of the search.
    "noweights": {"edge_weights": False},
    "ep10": {"epochs": 10},
    "sampled": {"full_graph": False},
    # Seventh round (with --precision auto): YouTube-8M's MoE as the classification layer, the
    # head of the strongest baselines (raw MoE, C&S-MoE), at three head learning rates.
    "moe": {"classifier": "moe"},
    "moe-hlr6e-2": {"classifier": "moe", "head_lr": 6e-2},
    "moe-hlr2e-1": {"classifier": "moe", "head_lr": 2e-1},
}


@dataclasses.dataclass
class _Context:
    x_tr: np.ndarray
    y_tr: object
    x_ev: np.ndarray
    y_ev: object
    graphs: dict
    attach: dict
    out: Path
    split: str
    order: np.ndarray  # pipeline.label_order of the fitting rows (nested labelled subsets)


def setup(data: str, out: Path, split: str, variants: list[str], seeds: list[int], device: str) -> _Context:
    """Load, split, build each variant's graph and pre-train (or reuse) each seed's checkpoint."""
    from vidsage_core import pipeline
    from vidsage_core.pipeline import train_and_embed
    from vidsage_core.train import TrainConfig

    cfg = pipeline.RunConfig(data=data, out=str(out), device=device)
    prepared = pipeline.prepare(cfg, progress=False)
    sp_ = prepared.split
    if split == "val":  # the test bucket is never touched
        train_rows, eval_rows = np.sort(sp_.train), np.sort(sp_.val)
    else:
        train_rows, eval_rows = prepared.trainval, prepared.test
    view = dataclasses.replace(prepared, trainval=train_rows.astype(np.int64), test=eval_rows.astype(np.int64))
    y = prepared.videos.labels.tocsr()
    graphs, attach = {}, {}
    for variant in variants:
        graph, object_sets, _ = pipeline.build_variant_graph(variant, view, cfg, progress=False)
        graphs[variant] = graph
        attach[variant] = {}
        if object_sets is not None:
            attach[variant] = {"objects_train": [object_sets[i] for i in train_rows],
                               "objects_new": [object_sets[i] for i in eval_rows],
                               "objects_val": [object_sets[i] for i in eval_rows]}
        for seed in seeds:
            run_dir = out / variant / f"seed{seed}"
            if not (run_dir / "model.pt").exists():
                t0 = time.perf_counter()
                kw = {k: v for k, v in attach[variant].items() if k != "objects_val"}
                train_and_embed(prepared.x[train_rows], graph, prepared.x[eval_rows],
                                TrainConfig(seed=seed, device=device), run_dir, kw, progress=False)
                print(f"[search] pre-trained {variant} seed {seed} in {time.perf_counter() - t0:.0f} s", flush=True)
    order = pipeline.label_order(np.asarray(prepared.videos.ids)[train_rows])
    return _Context(prepared.x[train_rows], y[train_rows], prepared.x[eval_rows], y[eval_rows], graphs, attach,
                    out, split, order)


def run_one(ctx: _Context, variant: str, seed: int, name: str, init: bool, device: str,
            fraction: float = 1.0, factor: float = 1.0, precision: str = "fp32") -> dict:
    """Fine-tune one configuration on the labelled subset at ``fraction`` and score it on the
    evaluation rows; below full labels the epochs grow by ``min(1/fraction, factor)``
    (``pipeline.epochs_at_fraction``, as ``vidsage run`` with ``RunConfig.fraction_epoch_factor``)."""
    from vidsage_core.metrics import gap
    from vidsage_core.pipeline import epochs_at_fraction, labelled_subset

    fields = {**CONFIGS.get(name, {}), "seed": seed, "device": device, "precision": precision}
    config = paper_config(**{k: v for k, v in fields.items()}) if name == "paper" else FinetuneConfig(**fields)
    labelled = labelled_subset(ctx.order, fraction)
    config = dataclasses.replace(config, epochs=epochs_at_fraction(config.epochs, fraction, factor))
    tag = f"{name}-{'init' if init else 'scratch'}" + (f"-f{fraction:g}x{factor:g}" if fraction < 1.0 else "")
    run_dir = ctx.out / "finetune" / variant / f"seed{seed}" / tag
    ckpt = ctx.out / variant / f"seed{seed}" / "model.pt" if init else None
    val = (ctx.x_ev, ctx.y_ev) if ctx.split == "val" else None
    result = finetune(ctx.x_tr, ctx.graphs[variant], ctx.y_tr, labelled, ctx.x_ev,
                      ctx.attach[variant], config, run_dir, ckpt, val=val, progress=False)
    row = {"split": ctx.split, "variant": variant, "seed": seed, "config": name, "init": init,
           "fields": CONFIGS.get(name, {}), "label_fraction": fraction, "num_labelled": int(labelled.size),
           "epochs": config.epochs, "precision": result.config["resolved"]["precision"],
           "gap": gap(result.scores_test, ctx.y_ev),
           "gap_by_epoch": [h.get("val_gap") for h in result.history],
           "loss_by_epoch": [round(h["loss"], 4) for h in result.history],
           "seconds": round(result.seconds, 1), "train_seconds": result.history[-1]["seconds"],
           "num_train": int(len(ctx.x_tr)), "num_eval": int(len(ctx.x_ev))}
    return row


def raw_logistic(ctx: _Context, seed: int, device: str) -> dict:
    from vidsage_core.evaluate import HeadConfig, evaluate_head

    t0 = time.perf_counter()
    m = evaluate_head("logistic", ctx.x_tr, ctx.y_tr, ctx.x_ev, ctx.y_ev, HeadConfig(seed=seed, device=device))
    return {"split": ctx.split, "variant": "raw", "seed": seed, "config": "raw-logistic", "init": None,
            "gap": m["gap"], "seconds": round(time.perf_counter() - t0, 1),
            "num_train": int(len(ctx.x_tr)), "num_eval": int(len(ctx.x_ev))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.finetune_search", description=__doc__.splitlines()[0])
    p.add_argument("--data", default=paths.YT8M_2018_GLOB, help="TFRecords (default: the embedded sample)")
    p.add_argument("--out", default=str(paths.RUNS / "finetune-search"), help="scratch run directory")
    p.add_argument("--split", choices=("val", "test"), default="val")
    p.add_argument("--variants", nargs="+", default=["lite"], choices=("lite", "vidsage"))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--configs", nargs="+", default=["default"], help=f"names: {sorted(CONFIGS)} or paper")
    p.add_argument("--scratch", action="store_true", help="also run each config from random init")
    p.add_argument("--no-init", action="store_true", help="only from random init")
    p.add_argument("--raw", action="store_true", help="also the raw-feature logistic head")
    p.add_argument("--fractions", nargs="+", type=float, default=[1.0],
                   help="label fractions (nested subsets, pipeline.labelled_subset)")
    p.add_argument("--fraction-factors", nargs="+", type=float, default=[3.0],
                   help="epoch factors below full labels (RunConfig.fraction_epoch_factor)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="FinetuneConfig.precision (vidsage run's default is auto; default: %(default)s)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = setup(args.data, out, args.split, args.variants, args.seeds, args.device)
    # (label fraction, epoch factor) pairs: the factor only matters below full labels.
    label_points = [(f, x) for f in args.fractions for x in (args.fraction_factors if f < 1.0 else [1.0])]
    log = out / "finetune_search.jsonl"

    def emit(row: dict) -> None:
        row = {"data": paths.relative(args.data), **row}  # which videos, as head_search's rows say
        with log.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)

    for seed in args.seeds:
        if args.raw:
            emit(raw_logistic(ctx, seed, args.device))
        for variant in args.variants:
            for name in args.configs:
                inits = [False] if args.no_init else ([True, False] if args.scratch else [True])
                for init, (fraction, factor) in itertools.product(inits, label_points):
                    emit(run_one(ctx, variant, seed, name, init, args.device, fraction, factor,
                                 args.precision))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
