"""Processes of their own that the service starts: the model advisor (advisor_worker.py) and the shelf's
parameter count (shelf_facts_worker.py). Importing this package imports neither torch nor ray."""
