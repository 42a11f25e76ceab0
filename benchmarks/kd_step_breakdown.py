"""Where the time of one KD step of notebook 02 goes, measured inside the real ``kd.distill``.

``kd.distill`` runs on MNIST with notebook 02's settings (batch 32, T=7, alpha=0.3, the
784-20-20-10 student) for two epochs, and public hooks stamp the time of each phase of each
training step: the student's forward pass (module hooks), the soft loss (a timed ``soft_loss``),
Adam's update (``torch.optim``'s global step hooks). What lies between them is the rest of the
step: cross-entropy, summing the terms, ``zero_grad`` and ``backward``; and between steps, the
next batch and the loop's records. The epochs' test-set evaluations are left out. The teacher is
untrained: only the shape of its logits matters for the time.

    python benchmarks/kd_step_breakdown.py
"""
from __future__ import annotations

import time
from collections import defaultdict

import torch
from torch.optim.optimizer import (register_optimizer_step_post_hook,
                                   register_optimizer_step_pre_hook)

import kdutils as kd

BATCH, LR, T, ALPHA, EPOCHS = 32, 1e-4, 7.0, 0.3, 2
PHASES = ("forward", "soft loss", "CE, sum, backward", "Adam", "next batch, records")


class StepClock:
    """Time stamps from the hooks, summed into :data:`PHASES`."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)
        self.stamps: dict[str, float] = {}
        self.steps = 0
        self.evaluated = True  # no step before the first: nothing to count yet

    def stamp(self, event: str) -> float:
        self.stamps[event] = now = time.perf_counter()
        return now

    def forward_start(self, module, inputs) -> None:
        if not module.training:  # the test-set evaluation after each epoch
            self.evaluated = True
            return
        now = self.stamp("forward start")
        if not self.evaluated:
            self.spent["next batch, records"] += now - self.stamps["step end"]
        self.evaluated = False

    def forward_end(self, module, inputs, output) -> None:
        if module.training:
            self.spent["forward"] += self.stamp("forward end") - self.stamps["forward start"]

    def timed_soft_loss(self, student_logits, target_logits, T):
        start = time.perf_counter()
        loss = kd.kd_loss(student_logits, target_logits, T)
        self.spent["soft loss"] += time.perf_counter() - start
        return loss

    def step_start(self, optimizer, args, kwargs) -> None:
        since_forward = self.stamp("step start") - self.stamps["forward end"]
        self.spent["CE, sum, backward"] += since_forward

    def step_end(self, optimizer, args, kwargs) -> None:
        self.spent["Adam"] += self.stamp("step end") - self.stamps["step start"]
        self.steps += 1


def main() -> None:
    train, test = kd.load_mnist(True), kd.load_mnist(False).subset(100)
    kd.seed_everything(0)
    teacher, student = kd.mnist_teacher(), kd.mnist_student()
    logits = kd.teacher_logits(teacher, train)
    clock = StepClock()
    student.register_forward_pre_hook(clock.forward_start)
    student.register_forward_hook(clock.forward_end)
    hooks = [register_optimizer_step_pre_hook(clock.step_start),
             register_optimizer_step_post_hook(clock.step_end)]
    kd.distill(student, teacher, train, test, T=T, alpha=ALPHA, epochs=EPOCHS, lr=LR,
               batch_size=BATCH, cached_logits=logits, soft_loss=clock.timed_soft_loss,
               progress=False)
    for hook in hooks:
        hook.remove()
    clock.spent["CE, sum, backward"] -= clock.spent["soft loss"]  # it ran inside that span
    total = sum(clock.spent.values())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {clock.steps:,} KD "
          f"steps at batch {BATCH}: {total / clock.steps * 1e3:.2f} ms a step")
    for phase in PHASES:
        print(f"  {phase:<21}{clock.spent[phase] / clock.steps * 1e6:>7.0f} µs  "
              f"{clock.spent[phase] / total * 100:>4.0f}%")


if __name__ == "__main__":
    main()
