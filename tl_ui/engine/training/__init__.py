"""One training run: the loop (loop.py), what its stages may touch (context.py), which parameters
train (strategies.py), the stages (stages.py, setfit.py, continuation.py) and its events (recorder.py)."""
