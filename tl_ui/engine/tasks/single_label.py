"""What a run optimises and how its training curve scores a batch: one label per example (softmax,
cross-entropy, accuracy). Multi-label runs override each method (engine/tasks/multi_label.py)."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import nn


class SingleLabelObjective:
    """Mixed into the training run (`engine.train._Run`): needs `config`, `classes`, `train_targets`
    and `accelerator`."""

    def _criterion(self) -> nn.Module:
        return nn.CrossEntropyLoss(weight=self._class_weights())

    def _class_weights(self) -> Optional[torch.Tensor]:
        if not self.config.class_weighted:
            return None
        from sklearn.utils.class_weight import compute_class_weight

        weights = compute_class_weight("balanced", classes=np.arange(len(self.classes)), y=self.train_targets)
        return torch.tensor(weights, dtype=torch.float32, device=self.accelerator.device)

    def _targets(self, batch):
        """The batch's targets as the loss wants them."""
        return batch[1] if isinstance(batch, (list, tuple)) else batch["labels"]

    def _step_counts(self, logits: torch.Tensor, labels: torch.Tensor):
        """What one step adds to the epoch's score (here: the number right)."""
        return (logits.argmax(-1) == labels).sum().item()

    def _epoch_score(self, counts, seen: int) -> float:
        """The training curve's score from the summed counts (here: accuracy)."""
        return counts / max(seen, 1)

    def _outputs(self, logits: torch.Tensor) -> torch.Tensor:
        """What `_predict` keeps of a batch's logits (here: log-probabilities)."""
        return logits.log_softmax(-1)
