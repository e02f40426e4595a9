"""The service: the app's verbs (lab.py) for the page, the API and the CLI, and what they need: owners,
workspaces, private files, comparisons, the advisor's worker, shelf facts, errors in plain words."""
