# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python (VidSage)
#     language: python
#     name: vidsage
# ---

# %% [markdown]
# # 03 · Train LiteVidSage and VidSage, evaluate against the baselines
#
# Unsupervised training of the paper's 2-layer network (shared W1/W2, neighbour sampling 25/10, batch 512, warm-up + cosine, dropout 0.5) on each graph, for several seeds; test videos are embedded inductively; downstream heads are fitted on train+val and scored on test with YouTube-8M's metrics. The same run scores the raw-feature heads and the non-learned smoothing baseline on the same split. Writes `results/runs/<name>/{config.json, metrics.json}` and per-variant models, histories and embeddings.

# %% [markdown]
# **Paper:** §3.3–3.4 (the 2-layer network and its unsupervised objective) and §4's evaluation protocol. **This step:** train both variants for every seed, embed the test videos inductively, fit the downstream heads, and score every method on the same split.

# %% tags=["parameters"]
data = None  # TFRecords: a directory, file or glob (None: the embedded YouTube-8M sample)
smoke = False  # tiny parameters: the whole notebook in a minute or two
num_seeds = 3  # training seeds (0, 1, ...): tables report mean ± std over them
device = "auto"  # "auto": CUDA when present, else CPU

# %%
import pandas as pd
from vidsage_core import pipeline

# %%
from IPython.display import Markdown, display
from vidsage_core import figures, narrative

# %%
config = pipeline.artifact_config(data=data, smoke=smoke, num_seeds=num_seeds, device=device)
config

# %%
metrics = pipeline.run_if_missing(config)

# %% [markdown]
# Every row, then mean ± std over seeds per method, protocol (`none`: baseline, `probe`: heads on frozen embeddings, `finetune`: the paper's §4.2 fine-tuning) and label fraction:

# %%
rows = pd.DataFrame(metrics['rows'])
rows

# %%
rows.groupby(['method', 'protocol', 'label_fraction'])[['gap', 'hit_at_one', 'perr', 'map']].agg(['mean', 'std', 'count'])

# %%
metrics['provenance']

# %% [markdown]
# ## What the run shows

# %%
display(Markdown(narrative.summary_training(metrics, config.out)))

# %% [markdown]
# Unsupervised training loss per step (every variant and seed):

# %%
figures.fig_training_curves(config.out)

# %% [markdown]
# ## Differences from the paper, and why
#
# Rendered from this run's saved `config.json` files and `vidsage_core.deviations.DEVIATIONS`, the one place that holds the measured reasons.

# %%
display(Markdown(narrative.differences_from_paper(config.out)))
