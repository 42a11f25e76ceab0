"""Adam through PyTorch's fused kernel, and the learning-rate schedules of the training loops."""
from __future__ import annotations

import math
from typing import Iterable

import torch

LR_SCHEDULES = ("constant", "cosine")


class FusedAdam:
    """Adam with PyTorch's defaults (betas 0.9 and 0.999, eps 1e-8, no weight decay).

    The same arithmetic as ``torch.optim.Adam(params, lr=lr, fused=True)``, bit for bit (tested):
    both call the fused kernel ``torch._fused_adam_``. This class calls it directly and so skips
    what ``torch.optim`` does around it at every step (hooks, profiler ranges, regrouping the
    tensors), which on 2 CPU cores costs more than the update of a small model: about 0.4 ms a
    step, 15 to 25% of a KD epoch of the MNIST student. Change ``lr`` between steps to schedule it.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.lr = lr
        self.exp_avgs = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in self.params]
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]

    def zero_grad(self) -> None:
        """Drop the gradients (``set_to_none``), so the next backward writes fresh ones."""
        for param in self.params:
            param.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """Update every parameter that has a gradient (like ``torch.optim``, skip the others)."""
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        steps = [self.steps[i] for i in live]
        torch._foreach_add_(steps, 1)
        torch._fused_adam_([self.params[i] for i in live], [self.params[i].grad for i in live],
                           [self.exp_avgs[i] for i in live], [self.exp_avg_sqs[i] for i in live],
                           [], steps, lr=self.lr, beta1=0.9, beta2=0.999, weight_decay=0.0,
                           eps=1e-8, amsgrad=False, maximize=False)


def learning_rates(schedule: str, lr: float, total_steps: int) -> list[float]:
    """The rate of each step: ``lr`` throughout (``"constant"``), or a ``"cosine"`` decay to 0.

    The cosine rates follow ``torch.optim.lr_scheduler.CosineAnnealingLR`` step by step (its
    recursive form), so they equal its values bit for bit (tested).
    """
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {schedule!r}")
    if schedule == "constant":
        return [lr] * total_steps
    rates = [lr]
    for step in range(1, total_steps):
        rates.append((1 + math.cos(math.pi * step / total_steps))
                     / (1 + math.cos(math.pi * (step - 1) / total_steps)) * rates[-1])
    return rates
