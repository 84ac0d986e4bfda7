"""VidSage: unsupervised video representation learning with graph neural networks.

The tested engine behind the notebooks in ``notebooks/``. Modules, in pipeline order:
``data`` (YouTube-8M TFRecords, splits, synthetic data), ``objects`` and ``graph`` (video
graphs), ``model``, ``losses``, ``sampler``, ``train``, ``infer``, ``evaluate``/``metrics``,
``pipeline`` (``vidsage run``), ``tables`` and ``figures`` (the paper's artifacts), ``video``
(raw video ingestion).
"""

import os

__version__ = "0.1.0"

# OpenMP threads that wait for work sleep instead of spinning. On a shared or busy machine a
# spinning torch thread burns the core its peer needs: a 2-thread logistic head fit on the real
# sample took 148.7 s (43.9 CPU-s) with the default policy and 55.8 s (15.6 CPU-s) with PASSIVE at
# load average ~14; 1 thread took 44 s. Only takes effect when set before torch starts its thread
# pool (the CLI, the notebooks and ``python -m vidsage_core.*`` import this package first); a
# user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
