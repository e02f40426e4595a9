"""Unit tests: marked `unit`, a minute at most each, and checked to train nothing.

`bash scripts/test.sh -m unit` is the quick pass a developer runs on every change. Every test here is
watched while it runs (`trains_nothing`): starting a worker process (a training run, an inference
worker, a Ray task) or using torch beyond building a module — a forward pass, a backward pass, an
optimizer step — fails it. Such a test belongs in tests/integration/.
"""
from __future__ import annotations

import subprocess

import pytest

WORKER_SIGNS = ("tl_ui.jobs", "ray::", "ray.", "multiprocessing.spawn")


class TorchUse:
    """Counts forward passes, backward passes and optimizer steps through torch's own process-wide hooks,
    installed for one test and removed after it (integration tests in the same process pay nothing)."""

    def __init__(self, monkeypatch):
        import torch
        from torch.nn.modules.module import register_module_forward_pre_hook
        from torch.optim.optimizer import register_optimizer_step_pre_hook

        self.calls = {"forward": 0, "backward": 0, "optimizer step": 0}
        self.handles = [register_module_forward_pre_hook(lambda *_: self._count("forward")),
                        register_optimizer_step_pre_hook(lambda *_: self._count("optimizer step"))]
        real_backward = torch.autograd.backward

        def backward(*args, **kwargs):
            self._count("backward")
            return real_backward(*args, **kwargs)

        monkeypatch.setattr(torch.autograd, "backward", backward)

    def _count(self, what: str) -> None:
        self.calls[what] += 1

    def remove(self) -> dict:
        for handle in self.handles:
            handle.remove()
        return {what: n for what, n in self.calls.items() if n}


@pytest.fixture(autouse=True)
def trains_nothing(monkeypatch):
    started: list[str] = []
    real_init = subprocess.Popen.__init__

    def watching_init(self, args, *rest, **kwargs):
        command = " ".join(map(str, args)) if isinstance(args, (list, tuple)) else str(args)
        if any(sign in command for sign in WORKER_SIGNS):
            started.append(command[:200])
        real_init(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", watching_init)
    from tl_ui.jobs import forkserver   # a worker forked from an existing fork server starts no Popen

    real_spawn = forkserver.ForkServer.spawn

    def watching_spawn(self, module, *args, **kwargs):
        started.append(f"a fork of the fork server running {module}")
        return real_spawn(self, module, *args, **kwargs)

    monkeypatch.setattr(forkserver.ForkServer, "spawn", watching_spawn)
    torch_use = TorchUse(monkeypatch)
    yield
    used = torch_use.remove()
    assert not started, f"a unit test started a worker process: {started} (move it to tests/integration/)"
    assert not used, f"a unit test used torch beyond building a module: {used} (move it to tests/integration/)"
