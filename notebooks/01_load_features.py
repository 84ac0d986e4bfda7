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
# # 01 · Load the YouTube-8M features
#
# Reads the video-level TFRecords (by default the 13,998 real YouTube-8M 2018 videos embedded in `data/yt8m/`), reports what was read and what was skipped, and shows the label vocabulary. Writes the memory-mappable VideoSet store that later steps reuse.

# %% [markdown]
# **Paper:** §4 (Datasets) — the YouTube-8M video-level features (1024-d rgb + 128-d audio per video, 3,862 classes) that every later step starts from. **This step:** read them, count what was read and skipped, split by video id.

# %% tags=["parameters"]
data = None  # TFRecords: a directory, file or glob (None: the embedded YouTube-8M sample)
smoke = False  # tiny parameters: the whole notebook in a minute or two
num_seeds = 3  # training seeds (0, 1, ...): tables report mean ± std over them
device = "auto"  # "auto": CUDA when present, else CPU

# %%
from vidsage_core import data as vdata, pipeline

# %%
from IPython.display import Markdown, display
from vidsage_core import narrative

# %%
config = pipeline.artifact_config(data=data, smoke=smoke, num_seeds=num_seeds, device=device)
config

# %%
videos = pipeline.load_videos(config.data, config.level, config.max_videos, config.on_error)

# %%
print(vdata.describe(videos))

# %% [markdown]
# Bad records are skipped, counted and reported, never silently lost:

# %%
print(videos.skipped.summary() if videos.skipped is not None else 'no skip report')

# %%
vocabulary = vdata.load_vocabulary()
vocabulary[['Index', 'Name', 'Vertical1', 'TrainVideoCount']].head(10)

# %% [markdown]
# The split is a hash of the video id: identical on every machine and run (bucket 0 = test, 1 = validation).

# %%
vdata.split_by_id(videos.ids).sizes()

# %% [markdown]
# **What was read.**

# %%
display(Markdown(narrative.summary_features(videos, vdata.split_by_id(videos.ids).sizes())))

# %% [markdown]
# Artifact: the VideoSet store.

# %%
videos.save(config.out + '/data')
