"""Cost of the fine-tuning protocol per seed and variant, beside the unsupervised pre-training.

What ``vidsage run --protocol finetune`` adds to a run: for one variant and seed, the product's
own calls, timed end to end on the same data and graph as ``vidsage run``:

* ours: ``finetune.finetune`` from the unsupervised checkpoint with every train+val label
  (default ``FinetuneConfig``: training, inductive attachment of the test videos and scoring);
* peer: ``infer.train_and_embed``, the unsupervised pre-training plus embedding the same run
  already pays for that variant and seed (the cost the probe protocol has).

The ratio is peer / ours (above 1: fine-tuning costs less than pre-training). Each side runs
once per seed (``repeats`` = seeds); the row reports the median seconds. No second
implementation: graph, training and fine-tuning are ``vidsage_core``'s.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.report import PeakMemory, Row, device_label, median


def bench_finetune(data: str, variants: tuple[str, ...] = ("lite", "vidsage"), seeds: tuple[int, ...] = (0,),
                   device: str = "cpu", max_videos: int | None = None, videos=None,
                   train_overrides: dict | None = None, finetune_overrides: dict | None = None) -> list[Row]:
    """One row per variant: fine-tuning seconds per seed against pre-training seconds per seed.

    Args:
        data: TFRecord glob (``vidsage run --data``); ignored when ``videos`` is given.
        variants: "lite" and/or "vidsage".
        seeds: one pre-training and one fine-tuning per seed.
        device: "cpu" or "cuda".
        max_videos: first N videos only (None: all).
        videos: an already loaded VideoSet (e.g. synthetic, for the quick mode).
        train_overrides: TrainConfig fields (quick mode: tiny).
        finetune_overrides: FinetuneConfig fields (quick mode: tiny).

    Returns:
        Rows of group "finetune".
    """
    from vidsage_core import pipeline
    from vidsage_core.finetune import FinetuneConfig, finetune
    from vidsage_core.pipeline import train_and_embed
    from vidsage_core.train import TrainConfig

    with tempfile.TemporaryDirectory(prefix="vidsage-bench-ft-") as tmp:
        config = pipeline.RunConfig(data=data, out=tmp, variants=variants, device=device,
                                    max_videos=max_videos, objects="videoset" if videos is not None
                                    and videos.objects is not None else pipeline.RunConfig.objects)
        prep = pipeline.prepare(config, videos=videos, progress=False)
        x_tv, x_te = prep.x[prep.trainval], prep.x[prep.test]
        y_tv = prep.videos.labels.tocsr()[prep.trainval]
        labelled = np.arange(len(prep.trainval))
        rows = []
        for variant in variants:
            graph, object_sets, _ = pipeline.build_variant_graph(variant, prep, config, progress=False)
            attach = {}
            if object_sets is not None:
                attach = {"objects_train": [object_sets[i] for i in prep.trainval],
                          "objects_new": [object_sets[i] for i in prep.test]}
            pre, fine, mem_pre, mem_fine = [], [], [], []
            for seed in seeds:
                tconf = TrainConfig(**{"seed": seed, "device": device, **(train_overrides or {})})
                sdir = Path(tmp) / variant / f"seed{seed}"
                with PeakMemory(device) as m:
                    t0 = time.perf_counter()
                    train_and_embed(x_tv, graph, x_te, tconf, sdir, attach, progress=False)
                    pre.append(time.perf_counter() - t0)
                mem_pre.append(m.rss_mb)
                fconf = FinetuneConfig(**{"seed": seed, "device": device, "hidden_dim": tconf.hidden_dim,
                                          "final_activation": tconf.final_activation,
                                          **(finetune_overrides or {})})
                with PeakMemory(device) as m:
                    t0 = time.perf_counter()
                    finetune(x_tv, graph, y_tv, labelled, x_te, attach, fconf, sdir / "finetune",
                             init=sdir / "model.pt", progress=False)
                    fine.append(time.perf_counter() - t0)
                mem_fine.append(m.rss_mb)
            name = {"lite": "LiteVidSage", "vidsage": "VidSage"}[variant]
            rows.append(Row(
                group="finetune", name=f"fine-tuning cost per seed, {name} (all train+val labels)",
                size=f"{len(prep.trainval):,} train+val + {len(prep.test):,} test videos "
                     f"({'synthetic' if prep.videos.synthetic else 'real'}), {x_tv.shape[1]}-d",
                metric="s per seed", higher_is_better=False,
                ours_label="finetune.finetune from the unsupervised checkpoint (train, attach test, score)",
                peer_label="infer.train_and_embed: the unsupervised pre-training + embedding it starts from",
                ours=median(fine), peer=median(pre), repeats=len(seeds),
                ours_mem_mb=max(mem_fine), peer_mem_mb=max(mem_pre),
                mem_method="peak RSS increase during each call",
                target="cost only: the artifact's whole run stays within 20 min on the 2-core CPU",
                target_met=None, device=device_label(device),
                extra={"finetune_seconds": fine, "pretrain_seconds": pre, "seeds": list(seeds),
                       "finetune_epochs": fconf.epochs},
                notes="one fine-tuning per label fraction and ablation adds about this much per seed; "
                      "the label-efficiency fractions below 1 train min(1/f, 3)x the epochs on "
                      "f of the videos"))
    return rows
