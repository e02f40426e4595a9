"""The `auto` strategy's search (run.py): tries within a time budget, chosen on the validation examples, the
winner trained again as the run's model. The engine's top stage: it uses the planning estimates and runs the
training loop's tries."""
