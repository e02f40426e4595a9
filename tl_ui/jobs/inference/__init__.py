"""Inference behind a process boundary: the web process holds no model and imports no torch.

`pool.py` (web process): `InferencePool` with its caps and queue; `worker.py` (the worker process),
`kept.py` (models kept, LRU by bytes) and `verbs.py` (predict, explain, mistake maps, advise);
`protocol.py`: the JSON lines between them; `sizes.py`: a model's size from its files' headers.
"""
from tl_ui.jobs.inference.pool import InferenceCaps, InferencePool
from tl_ui.jobs.inference.protocol import Code, InferenceError

__all__ = ["Code", "InferenceCaps", "InferenceError", "InferencePool"]
