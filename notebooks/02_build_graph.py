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
# # 02 · Build the video graphs
#
# LiteVidSage connects videos whose L2-normalised features satisfy g(u,v) = 1 − ‖x_u − x_v‖ ≥ τ among their k nearest neighbours (exact FAISS search); VidSage adds object co-occurrence edges, w = α·Jaccard + β·visual. The YouTube-8M sample has no pixels, so its object sets come from a named proxy (k-means concepts over sub-spaces of the rgb+audio features), not from a detector. Graphs are built over the train+val videos only; test videos are attached inductively later. Writes the graphs into the run directory, where notebook 03 reuses them.

# %% [markdown]
# **Paper:** §3.1–3.2 — the visual kNN graph (LiteVidSage) and the object co-occurrence graph (VidSage) over the videos. **This step:** build both over the train+val videos, measure their degree and label homophily, and plot them.

# %% tags=["parameters"]
data = None  # TFRecords: a directory, file or glob (None: the embedded YouTube-8M sample)
smoke = False  # tiny parameters: the whole notebook in a minute or two
num_seeds = 3  # training seeds (0, 1, ...): tables report mean ± std over them
device = "auto"  # "auto": CUDA when present, else CPU

# %%
import pandas as pd
from vidsage_core import graph_stats, pipeline

# %%
from IPython.display import Markdown, display
from vidsage_core import figures, narrative

# %%
config = pipeline.artifact_config(data=data, smoke=smoke, num_seeds=num_seeds, device=device)

# %%
prepared = pipeline.prepare(config)

# %%
lite, _, _ = pipeline.build_variant_graph('lite', prepared, config)

# %%
full, object_sets, source = pipeline.build_variant_graph('vidsage', prepared, config)

# %% [markdown]
# Degree, components and label homophily (fraction of edges whose two videos share a label) of each graph:

# %%
labels_trainval = prepared.videos.labels[prepared.trainval]
stats = {'LiteVidSage': graph_stats.graph_stats(lite, labels_trainval), f'VidSage ({source.name})': graph_stats.graph_stats(full, labels_trainval)}

# %%
pd.DataFrame(stats).drop(['degree_histogram'], errors='ignore')

# %% [markdown]
# **What the graphs look like.**

# %%
display(Markdown(narrative.summary_graphs(stats)))

# %%
fig = figures.fig_graph_stats({'LiteVidSage': lite, 'VidSage': full}, labels_trainval)
figures.save_fig(fig, 'graph_degree_homophily')
fig

# %% [markdown]
# A few object (concept) sets of the VidSage graph:

# %%
[sorted(object_sets[i])[:8] for i in prepared.trainval[:3]]
