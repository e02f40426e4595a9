"""Using a trained model: reload an export and predict as an outside user would (predict.py), explain an
answer (explain.py), flag inputs unlike the training data (familiarity.py)."""
