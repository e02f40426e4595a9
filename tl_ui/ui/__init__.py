"""The page: one module per step (layout), handlers that turn events into service calls, views that
turn the service's answers into components. No torch, no engine, no run folder: only the service."""
