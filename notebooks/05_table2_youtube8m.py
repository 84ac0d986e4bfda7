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
# # 05 · Table 2: YouTube-8M
#
# All rows on the same split, features and metrics: the video-level baselines (hinge, logistic, mixture of 2 experts), the frame-level baselines when frame-level data is given, LiteVidSage, VidSage, and a non-learned smoothing baseline beyond the paper. The paper's numbers stand beside ours; ours are mean ± std over seeds.

# %% [markdown]
# **Paper:** Table 2 (§5) — video classification on YouTube-8M, VidSage against the YouTube-8M baselines. **This step:** read the run's rows, put the paper's numbers beside them, and state whether the paper's claim reproduces.

# %% tags=["parameters"]
data = None  # TFRecords: a directory, file or glob (None: the embedded YouTube-8M sample)
smoke = False  # tiny parameters: the whole notebook in a minute or two
num_seeds = 3  # training seeds (0, 1, ...): tables report mean ± std over them
device = "auto"  # "auto": CUDA when present, else CPU
frame_data = None  # frame-level TFRecords for the frame-level rows (none ship here)

# %%
from vidsage_core import pipeline, tables

# %%
from IPython.display import Markdown, display
from vidsage_core import narrative

# %%
config = pipeline.artifact_config(data=data, smoke=smoke, num_seeds=num_seeds, device=device)

# %%
metrics = pipeline.run_if_missing(config)

# %%
frame_config = None if frame_data is None else pipeline.artifact_config(data=frame_data, smoke=smoke, num_seeds=num_seeds, device=device, name='yt8m-frame', level='frame', variants=())

# %%
frame_metrics = None if frame_config is None else pipeline.run_if_missing(frame_config)

# %%
paper_exact_out = pipeline.paper_exact_run(config)  # the on-demand 1152-wide run, when it exists

# %%
df, caption = tables.table2(config.out, None if frame_config is None else frame_config.out, paper_exact_out)
print(caption)
df

# %%
tables.write_table(df, 'table2', caption)

# %% [markdown]
# ## The table, and what it shows

# %%
display(Markdown(tables.to_markdown(df)))

# %%
paper_exact_metrics = None if paper_exact_out is None else tables.load_run_metrics(paper_exact_out)

# %%
display(Markdown(narrative.summary_table2(metrics, frame_metrics, paper_exact_metrics=paper_exact_metrics)))

# %% [markdown]
# Label efficiency (beyond the paper): every method with 1 %, 5 %, 25 % and all of the train+val labels; the unsupervised pre-training always sees all videos without labels.

# %%
le_df, le_caption = tables.label_efficiency(config.out)
print(le_caption)
le_df

# %%
tables.write_table(le_df, 'label_efficiency', le_caption)
