"""VidSage: unsupervised video representation learning with graph neural networks.

The tested engine behind the notebooks in ``notebooks/``. Modules, in pipeline order:
``data`` (YouTube-8M TFRecords, splits, synthetic data), ``objects`` and ``graph`` (video
graphs), ``model``, ``losses``, ``sampler``, ``train``, ``infer``, ``evaluate``/``metrics``,
``pipeline`` (``vidsage run``), ``tables`` and ``figures`` (the paper's artifacts), ``video``
(raw video ingestion).
"""

__version__ = "0.1.0"
