"""Loaded at start-up by every Python process that has this folder on PYTHONPATH (only under
`pytest --mutant=…`, tests/helpers/mutants.py). It waits for the engine's single-label task module
to be imported (importing it here would put torch into every process, the web server's included) and
then applies the mutant to it."""
import importlib.abc
import os
import sys

TARGET = "tl_ui.engine.tasks.single_label"


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != TARGET:
            return None
        sys.meta_path.remove(self)
        import importlib.util
        spec = importlib.util.find_spec(name)
        real_exec = spec.loader.exec_module

        def exec_then_mutate(module):
            real_exec(module)
            from tests.helpers.mutants import random_head
            random_head(module)

        spec.loader.exec_module = exec_then_mutate
        return spec


if os.environ.get("TL_TEST_MUTANT") == "random-head":
    sys.meta_path.insert(0, _PatchAfterImport())
