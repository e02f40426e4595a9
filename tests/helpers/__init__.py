"""Shared test helpers (imported as `tests.helpers.<module>`): data builders, the browser and axe helpers,
the pinned runs, the report fixtures, and the scripts a test runs in a process of its own."""
