"""The linear probe: embeddings computed once (features.py) and kept across runs (embedding_cache.py),
and heads fitted full batch on them (solver.py: softmax; one_vs_rest.py: one logistic regression per label)."""
