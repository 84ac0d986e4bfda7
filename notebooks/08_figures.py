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
# # 08 · Figures
#
# Fig. 1: a real neighbourhood of the VidSage graph, nodes named by their YouTube-8M labels. Fig. 3: the feature pipeline with the real shapes. Fig. 5: class and vertical distributions of the vocabulary and of the data. Also the training-loss curves and a t-SNE of raw features vs VidSage embeddings coloured by vertical. Then the index `results/README.md`.

# %% [markdown]
# **Paper:** Figures 1, 3 and 5, plus diagnostics the paper does not show (loss curves, t-SNE). **This step:** draw them from the run and write the results index, which opens with the findings below.

# %% tags=["parameters"]
data = None  # TFRecords: a directory, file or glob (None: the embedded YouTube-8M sample)
smoke = False  # tiny parameters: the whole notebook in a minute or two
num_seeds = 3  # training seeds (0, 1, ...): tables report mean ± std over them
device = "auto"  # "auto": CUDA when present, else CPU

# %%
from vidsage_core import figures, pipeline, tables
from vidsage_core import data as vdata

# %%
from IPython.display import Markdown, display
from vidsage_core import index, narrative

# %%
config = pipeline.artifact_config(data=data, smoke=smoke, num_seeds=num_seeds, device=device)

# %%
metrics = pipeline.run_if_missing(config)

# %%
run = pipeline.load_run(config.out)
vocabulary = vdata.load_vocabulary()

# %%
fig = figures.fig1_graph_neighbourhood(run.graph('vidsage'), run.videos.subset(run.trainval), vocabulary)
figures.save_fig(fig, 'fig1_graph_neighbourhood')
fig

# %%
fig = figures.fig3_feature_pipeline(run.videos)
figures.save_fig(fig, 'fig3_feature_pipeline')
fig

# %%
fig = figures.fig5_class_distribution(run.videos, vocabulary)
figures.save_fig(fig, 'fig5_class_distribution')
fig

# %%
fig = figures.fig_training_curves(config.out)
figures.save_fig(fig, 'training_curves')
fig

# %%
fig = figures.fig_tsne(run.x[run.trainval], run.embeddings('vidsage', seed=0), figures.primary_verticals(run.videos, vocabulary, run.trainval))
figures.save_fig(fig, 'tsne_raw_vs_vidsage')
fig

# %%
fig = figures.fig_label_efficiency(config.out)
figures.save_fig(fig, 'label_efficiency')
fig

# %% [markdown]
# ## Findings
#
# Generated from every finished run under `results/runs/`; the same text opens `results/README.md`.

# %%
display(Markdown(narrative.headline_findings()))

# %%
print(index.results_index(headline=narrative.headline_findings()))
