"""Where the time of one KD step of notebook 02 goes: data, forward, loss, backward, Adam, records.

The same pieces as ``kdutils.distill`` on MNIST (batch 32, T=7, alpha=0.3, the 784-20-20-10
student), each timed with ``time.perf_counter`` inside the loop, over two epochs. The teacher's
logits are random here: only their shape matters for the time.

    python benchmarks/kd_step_breakdown.py
"""
from __future__ import annotations

import time

import torch

import kdutils as kd
from kdutils.optim import FusedAdam

BATCH, LR, T, ALPHA, EPOCHS = 32, 1e-4, 7.0, 0.3, 2
PHASES = ("data", "forward", "loss", "backward", "adam", "records")


def main() -> None:
    train = kd.load_mnist(True)
    kd.seed_everything(0)
    teacher_logits = torch.randn(len(train), 10) * 3
    student = kd.mnist_student()
    optimizer = FusedAdam(student.parameters(), LR)
    spent = dict.fromkeys(PHASES, 0.0)
    recorded: list[dict[str, torch.Tensor]] = []
    correct: list[torch.Tensor] = []
    for epoch in range(EPOCHS):
        batches = kd.iterate_batches(train, BATCH, shuffle=True,
                                     generator=torch.Generator().manual_seed(epoch))
        while True:
            marks = [time.perf_counter()]
            batch = next(batches, None)
            if batch is None:
                break
            teacher_batch = teacher_logits[batch.index]
            marks.append(time.perf_counter())
            logits = student(batch.inputs)
            marks.append(time.perf_counter())
            terms = kd.distillation_terms(logits, teacher_batch, batch.labels, T, ALPHA)
            loss = sum(terms.values())
            marks.append(time.perf_counter())
            optimizer.zero_grad()
            loss.backward()
            marks.append(time.perf_counter())
            optimizer.step()
            marks.append(time.perf_counter())
            recorded.append({name: value.detach() for name, value in terms.items()})
            correct.append((logits.detach().argmax(1) == batch.labels).sum())
            marks.append(time.perf_counter())
            for phase, start, end in zip(PHASES, marks, marks[1:]):
                spent[phase] += end - start
    steps = len(recorded)
    total = sum(spent.values())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {steps:,} KD steps "
          f"at batch {BATCH}: {total / steps * 1e3:.2f} ms a step")
    for phase in PHASES:
        print(f"  {phase:<9}{spent[phase] / steps * 1e6:>7.0f} µs  "
              f"{spent[phase] / total * 100:>4.0f}%")


if __name__ == "__main__":
    main()
