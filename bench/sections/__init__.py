"""One module per benchmark section; each has `run(cfg) -> dict` (what goes into results.json)."""
