"""Validation search for the downstream heads' step size and epochs (``evaluate.HEAD_EPOCHS``).

Every head row of the artifact (raw, smoothing, SIGN, probe, [x ‖ z]) fits one of
``evaluate.HEADS`` with minibatch Adam; its lr and epochs set most of the artifact's cost
(the logistic fits are ~3/4 of it). This script measures validation GAP and fit time for named
(lr, epochs) points on the inputs those rows use, so the choice in ``HeadConfig`` /
``HEAD_EPOCHS`` rests on numbers a command regenerates.

Orchestrates the product's own functions only: ``pipeline.prepare`` (the run's split rule:
md5 bucket 0 test, 1 val, 2-4 train), ``baselines.knn_neighbours`` / ``sgc_features`` /
``sign_features``, ``pipeline.label_order`` / ``labelled_subset`` (the nested label subsets, with
``RunConfig.fraction_epoch_factor``), ``evaluate.fit_head`` / ``predict`` and ``metrics.gap``.

* ``--split val`` (the search): heads fit on the train buckets, scored on the validation bucket;
  the test bucket is never read.
* ``--split test`` (confirmation, no tuning): fit on train+val, scored on the test bucket, e.g. on
  the held-out tuning set ``--data ../shared/data/yt8m/video_level_2018_tuning/``.

    python -m benchmarks.head_search --split val --inputs raw sgc sign --points lr3e-2-ep8 lr1e-1-ep2
    python -m benchmarks.head_search --split val --inputs raw --fractions 0.01 0.05 0.25
    python -m benchmarks.head_search --split val --inputs lite+raw --points lr3e-2-ep8 lr4e-2-ep4
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from vidsage_core import paths

# Named points: head, Adam lr and epochs at full labels (fractions: times min(1/f, factor)).
POINTS: dict[str, dict] = {
    "lr3e-2-ep8": {"head": "logistic", "lr": 3e-2, "epochs": 8},  # HeadConfig before this search
    "lr1e-1-ep2": {"head": "logistic", "lr": 1e-1, "epochs": 2},
    "lr1e-1-ep3": {"head": "logistic", "lr": 1e-1, "epochs": 3},
    "lr6e-2-ep3": {"head": "logistic", "lr": 6e-2, "epochs": 3},
    "lr4e-2-ep4": {"head": "logistic", "lr": 4e-2, "epochs": 4},
    "lr3e-2-ep5": {"head": "logistic", "lr": 3e-2, "epochs": 5},
    "lr2e-2-ep6": {"head": "logistic", "lr": 2e-2, "epochs": 6},
    "moe-lr3e-2-ep5": {"head": "moe", "lr": 3e-2, "epochs": 5},
    "moe-lr1e-1-ep2": {"head": "moe", "lr": 1e-1, "epochs": 2},
    "moe-lr6e-2-ep3": {"head": "moe", "lr": 6e-2, "epochs": 3},
    "hinge-lr3e-2-ep5": {"head": "hinge", "lr": 3e-2, "epochs": 5},
    "hinge-lr1e-1-ep2": {"head": "hinge", "lr": 1e-1, "epochs": 2},
}


def inputs_for(data: str, split: str, names: list[str], device: str,
               runs: Path | None = None) -> tuple[dict, tuple]:
    """The named inputs (raw, sgc, sign, lite+raw) of the fitting and scoring rows, and their labels.

    ``lite+raw`` is the probe rows' ``[x ‖ z]``: z from a LiteVidSage encoder pre-trained
    (``TrainConfig()``, seed 0, no labels) on the fitting rows' graph by ``pipeline.train_and_embed``,
    the scoring rows attached inductively as test videos are; the checkpoint is kept under ``runs``.
    """
    import dataclasses

    from vidsage_core import pipeline
    from vidsage_core.baselines import knn_neighbours, sgc_features, sign_features

    config = pipeline.RunConfig(data=data, device=device)
    prepared = pipeline.prepare(config, progress=False)
    if split == "val":  # the test bucket is never touched
        fit_rows, eval_rows = np.sort(prepared.split.train), np.sort(prepared.split.val)
    else:
        fit_rows, eval_rows = prepared.trainval, prepared.test
    x, y = prepared.x, prepared.videos.labels.tocsr()
    x_fit, x_ev = x[fit_rows], x[eval_rows]
    out = {"raw": (x_fit, x_ev)}
    if {"sgc", "sign"} & set(names):
        nb = knn_neighbours(x_fit, x_ev, config.sgc_k, device, config.knn_mode)
        out["sgc"] = sgc_features(x_fit, x_ev, neighbours=nb)
        out["sign"] = sign_features(x_fit, x_ev, nb, config.sign_hops)
    if "lite+raw" in names:
        from vidsage_core.train import TrainConfig

        view = dataclasses.replace(prepared, trainval=fit_rows.astype(np.int64), test=eval_rows.astype(np.int64))
        graph, _, _ = pipeline.build_variant_graph("lite", view, config, progress=False)
        # Scratch checkpoint: under results/cache/ (ignored by git), not beside the artifact's runs.
        run_dir = (runs or paths.RESULTS / "cache" / "head-search") / split / "lite" / "seed0"
        z_fit, z_ev, _ = pipeline.train_and_embed(x_fit, graph, x_ev, TrainConfig(seed=0, device=device),
                                                  run_dir, {}, progress=False)
        out["lite+raw"] = (np.concatenate([x_fit, z_fit], 1), np.concatenate([x_ev, z_ev], 1))
    order = pipeline.label_order(np.asarray(prepared.videos.ids)[fit_rows])
    return {k: out[k] for k in names}, (y[fit_rows], y[eval_rows], order)


def score(point: str, inputs: tuple, labels: tuple, fraction: float, factor: float, seed: int,
          device: str) -> dict:
    """Fit one point on the labelled subset at ``fraction``; validation GAP and fit time."""
    from vidsage_core import pipeline
    from vidsage_core.evaluate import HeadConfig, fit_head, predict
    from vidsage_core.metrics import gap

    p = POINTS[point]
    (x_fit, x_ev), (y_fit, y_ev, order) = inputs, labels
    rows = pipeline.labelled_subset(order, fraction)
    epochs = pipeline.epochs_at_fraction(p["epochs"], fraction, factor)
    config = HeadConfig(seed=seed, device=device, lr=p["lr"], epochs=epochs)
    t0 = time.perf_counter()
    head = fit_head(p["head"], x_fit[rows], y_fit[rows], config)
    seconds = time.perf_counter() - t0
    return {"gap": gap(predict(head, x_ev), y_ev), "epochs": epochs, "fit_seconds": round(seconds, 1),
            "num_labelled": int(rows.size)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=paths.YT8M_2018_GLOB, help="TFRecords (default: the embedded sample)")
    parser.add_argument("--split", choices=("val", "test"), default="val")
    parser.add_argument("--inputs", nargs="+", choices=("raw", "sgc", "sign", "lite+raw"),
                        default=["raw"])
    parser.add_argument("--points", nargs="+", choices=sorted(POINTS), default=["lr3e-2-ep8", "lr1e-1-ep2"])
    parser.add_argument("--fractions", nargs="+", type=float, default=[1.0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=str(paths.RESULTS / "search" / "head_search.jsonl"),
                        help="JSON lines, one per fit (appended)")
    args = parser.parse_args(argv)
    from vidsage_core.pipeline import RunConfig

    factor = RunConfig().fraction_epoch_factor
    inputs, labels = inputs_for(args.data, args.split, args.inputs, args.device)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for name, pair in inputs.items():
        for fraction in args.fractions:
            for point in args.points:
                for seed in args.seeds:
                    row = {"data": paths.relative(args.data), "split": args.split, "inputs": name,
                           "point": point, **POINTS[point], "fraction": fraction, "seed": seed,
                           **score(point, pair, labels, fraction, factor, seed, args.device)}
                    print(json.dumps(row), flush=True)
                    with out.open("a") as f:
                        f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
