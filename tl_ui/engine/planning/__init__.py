"""Before training, torch-free for the web process: trainable shares and time estimates (estimate.py) and
the parameter counts per strategy (shelf_facts.py, shelf_facts.json)."""
