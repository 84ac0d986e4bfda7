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
# # 07 · Table 4: Charades
#
# Charades is multi-label over 157 classes, scored by mAP. Point `features_dir` and `annotations_dir` at real precomputed features in the layout of `vidsage_core.action_datasets` and this table becomes a reproduction. With none given (as here) the same pipeline runs on a small **synthetic stand-in** of the dataset's shape, and every measured cell says "synthetic stand-in, not a reproduction".

# %% [markdown]
# **Paper:** Table 4 (§5) — action classification on Charades. **This step:** run the same pipeline on the given features, or on a synthetic stand-in when none are given, and say which.

# %% tags=["parameters"]
data = None  # TFRecords: a directory, file or glob (None: the embedded YouTube-8M sample)
smoke = False  # tiny parameters: the whole notebook in a minute or two
num_seeds = 3  # training seeds (0, 1, ...): tables report mean ± std over them
device = "auto"  # "auto": CUDA when present, else CPU
features_dir = None  # one .npy per video
annotations_dir = None  # the official annotation CSVs

# %%
from vidsage_core import action_datasets, paths, pipeline, tables

# %%
from IPython.display import Markdown, display
from vidsage_core import narrative

# %%
layout = None if features_dir else action_datasets.make_synthetic_charades(paths.RESULTS / 'synthetic' / 'charades', num_videos=300 if smoke else 1500)

# %%
videos, split = action_datasets.read_charades(features_dir or layout.features_dir, annotations_dir or layout.annotations_dir)

# %%
config = pipeline.artifact_config(smoke=smoke, num_seeds=num_seeds, device=device, name='charades', dataset='charades' + ('-synthetic' if videos.synthetic else ''), modality='rgb', objects='proxy-rgb', heads=('logistic',), label_fractions=(1.0,))

# %%
metrics = pipeline.run_if_missing(config, videos=videos, split=split)

# %%
df, caption = tables.table4(config.out)
print(caption)
df

# %%
tables.write_table(df, 'table4', caption)

# %% [markdown]
# ## The table, and what it shows

# %%
display(Markdown(tables.to_markdown(df)))

# %%
display(Markdown(narrative.summary_action_table(metrics, 4)))
