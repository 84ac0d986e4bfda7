# ---
# jupyter:
#   jupytext:
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
# # 09 · Retrieval: which representation finds videos that share a label
#
# Beyond the paper. An unsupervised representation is meant to be searched: every test video queries the train+val videos by cosine, and a hit counts when it shares at least one label with the query. The table reports precision@10 and mAP@100 for the raw features, the non-learned smoothing baseline and each GNN variant, mean ± std over the seeds of the same run that Table 2 reads (nothing is retrained when that run is complete). The scores themselves are computed by `vidsage run` and stored in its `metrics.json`; this notebook only formats them.

# %% tags=["parameters"]
data = None  # TFRecords: a directory, file or glob (None: the embedded YouTube-8M sample)
smoke = False  # tiny parameters: the whole notebook in a minute or two
num_seeds = 3  # training seeds (0, 1, ...): the table reports mean ± std over them
device = "auto"  # "auto": CUDA when present, else CPU

# %%
from IPython.display import Markdown, display

from vidsage_core import index, narrative, pipeline, tables

# %%
config = pipeline.artifact_config(data=data, smoke=smoke, num_seeds=num_seeds, device=device)

# %%
metrics = pipeline.run_if_missing(config)

# %%
df, caption = tables.retrieval_table(config.out)
print(caption)
df

# %%
display(Markdown(narrative.summary_retrieval(metrics)))

# %%
tables.write_table(df, 'retrieval', caption)

# %%
print(index.results_index(headline=narrative.headline_findings()))
