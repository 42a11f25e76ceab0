"""Time notebook 02's sequence: the seed article's own loop against kdutils, in the same run.

The reference is the plain loop of the seed article: a DataLoader over torchvision's MNIST with a
per-sample ToTensor transform, batch 32, Adam lr 1e-4, and the teacher run forward at every KD
step (with the correct KD loss, which costs about as many operations as the article's buggy one).
kdutils runs the same models with the same hyperparameters. Ratios are reference / kdutils.

    python benchmarks/bench_mnist.py                          # full epochs (about 9 minutes)
    python benchmarks/bench_mnist.py --steps 600 --repeats 3  # 600 steps of each, scaled to an
                                                              # epoch; 3 rounds, medians
    python benchmarks/bench_mnist.py --floor                  # also: the teacher's kernel floor

Timings on a shared machine drift between minutes, so each round times the seed loop and kdutils
back to back, and the ratios are taken within a round. ``--floor`` times, in isolation, the work
no implementation of the teacher's epoch can skip at batch 32 (its matrix products and the Adam
update of its 2.4 M parameters), which bounds the whole sequence's possible speed-up.
"""
from __future__ import annotations

import argparse
import itertools
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

import kdutils as kd

BATCH, LR, T, ALPHA = 32, 1e-4, 7.0, 0.3
EPOCHS = {"teacher": 6, "student": 3, "kd": 3}
STEPS_PER_EPOCH = math.ceil(60_000 / BATCH)


def reference_epoch(model, loader, steps, teacher=None) -> None:
    """One epoch of the seed article's loop (KD when a teacher is given)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    model.train()
    for images, labels in itertools.islice(loader, steps):
        logits = model(images)
        loss = F.cross_entropy(logits, labels)
        if teacher is not None:
            with torch.no_grad():
                teacher_logits = teacher(images)
            loss = kd.distillation_loss(logits, teacher_logits, labels, T, ALPHA)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def timed(fn) -> float:
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_reference(steps: int | None) -> dict[str, float]:
    """Seconds per epoch of the seed loop: teacher, student alone, KD."""
    mnist = datasets.MNIST(kd.data_dir(), train=True, transform=transforms.ToTensor())
    loader = DataLoader(mnist, batch_size=BATCH, shuffle=True)
    kd.seed_everything(0)
    teacher, student, kd_student = kd.mnist_teacher(), kd.mnist_student(), kd.mnist_student()
    seconds = {"teacher": timed(lambda: reference_epoch(teacher, loader, steps))}
    teacher.eval()
    seconds["student"] = timed(lambda: reference_epoch(student, loader, steps))
    seconds["kd"] = timed(lambda: reference_epoch(kd_student, loader, steps, teacher))
    return seconds


def time_kdutils(steps: int | None) -> dict[str, float]:
    """Seconds per epoch of kdutils on the same settings, plus the one-off teacher logits."""
    train, test = kd.load_mnist(True), kd.load_mnist(False)
    if steps is not None:  # the test set shrinks alike, so that scaling up keeps its share
        fraction = min(steps * BATCH / len(train), 1.0)
        train, test = (data.subset(max(1, round(len(data) * fraction))) for data in (train, test))
    common = dict(epochs=1, lr=LR, batch_size=BATCH, progress=False)
    kd.seed_everything(0)
    teacher, student, kd_student = kd.mnist_teacher(), kd.mnist_student(), kd.mnist_student()
    seconds = {"teacher": timed(lambda: kd.fit(teacher, train, test, **common))}
    seconds["student"] = timed(lambda: kd.fit(student, train, test, **common))
    start = time.perf_counter()
    logits = kd.teacher_logits(teacher, train)
    seconds["teacher_logits"] = time.perf_counter() - start
    seconds["kd"] = timed(lambda: kd.distill(kd_student, teacher, train, test, T=T, alpha=ALPHA,
                                             cached_logits=logits, **common))
    return seconds


def per_call(fn, calls: int = 30, rounds: int = 5) -> float:
    """Seconds per call of ``fn``: the fastest of ``rounds`` timings of ``calls`` calls."""
    fn()
    return min(timed(lambda: [fn() for _ in range(calls)]) for _ in range(rounds)) / calls


def teacher_step_floor() -> dict[str, float]:
    """Seconds per teacher step at batch 32 spent in work no implementation can skip.

    The matrix products (forward ``x W^T + b``; backward ``grad^T x`` for every layer and
    ``grad W`` for all but the first) and the fused Adam update of all parameters
    (``torch.optim.Adam(fused=True).step``, which includes torch.optim's per-step overhead).
    """
    teacher = kd.mnist_teacher()
    gemms = 0.0
    for i, layer in enumerate(m for m in teacher.modules() if isinstance(m, nn.Linear)):
        x, grad = torch.randn(BATCH, layer.in_features), torch.randn(BATCH, layer.out_features)
        weight, bias = layer.weight.detach(), layer.bias.detach()
        gemms += per_call(lambda: torch.addmm(bias, x, weight.t()))
        gemms += per_call(lambda: grad.t() @ x)
        if i > 0:
            gemms += per_call(lambda: grad @ weight)
    for param in teacher.parameters():
        param.grad = torch.randn_like(param)
    adam = per_call(torch.optim.Adam(teacher.parameters(), lr=LR, fused=True).step)
    return {"gemms": gemms, "adam": adam}


def print_floor(ref_total: float) -> None:
    """The teacher's kernel floor for its 6 epochs, against what a 3.5x speed-up would allow."""
    floor = teacher_step_floor()
    steps = EPOCHS["teacher"] * STEPS_PER_EPOCH
    per_step = floor["gemms"] + floor["adam"]
    print(f"teacher kernel floor per step: matrix products {floor['gemms'] * 1e3:.2f} ms + fused "
          f"Adam {floor['adam'] * 1e3:.2f} ms = {per_step * 1e3:.2f} ms")
    print(f"  its {EPOCHS['teacher']} epochs ({steps:,} steps) cannot take less than "
          f"{per_step * steps:.0f} s; 3.5x on the whole sequence allows {ref_total / 3.5:.0f} s "
          "for all of it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=None,
                        help="time only this many steps per epoch, scaled to a full epoch")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of both; medians reported")
    parser.add_argument("--floor", action="store_true", help="also time the teacher's kernel floor")
    args = parser.parse_args()
    scale = 1.0 if args.steps is None else STEPS_PER_EPOCH / min(args.steps, STEPS_PER_EPOCH)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}, "
          f"{'full epochs' if args.steps is None else f'{args.steps} steps per epoch, scaled'}, "
          f"{args.repeats} round(s)")
    rounds = []
    for _ in range(args.repeats):
        ref, ours = time_reference(args.steps), time_kdutils(args.steps)
        ours["whole"] = sum(EPOCHS[k] * ours[k] for k in EPOCHS) + ours["teacher_logits"]
        ref["whole"] = sum(EPOCHS[k] * ref[k] for k in EPOCHS)
        rounds.append({k: (ref[k] * scale, ours[k] * scale) for k in [*EPOCHS, "whole"]})
    print(f"{'':<16}{'seed loop s':>12}{'kdutils s':>11}{'ratio':>8}  (median of rounds; ratio range)")
    for name in [*EPOCHS, "whole"]:
        ref_s = statistics.median(r[name][0] for r in rounds)
        ours_s = statistics.median(r[name][1] for r in rounds)
        ratios = [r[name][0] / r[name][1] for r in rounds]
        label = "whole sequence" if name == "whole" else f"{name} epoch"
        print(f"{label:<16}{ref_s:>12.2f}{ours_s:>11.2f}{statistics.median(ratios):>7.1f}x  "
              f"({min(ratios):.1f} to {max(ratios):.1f})")
    print(f"whole sequence: teacher {EPOCHS['teacher']}, student {EPOCHS['student']}, KD "
          f"{EPOCHS['kd']} epochs; kdutils' includes computing the teacher's logits once")
    if args.floor:
        print_floor(statistics.median(r["whole"][0] for r in rounds))


if __name__ == "__main__":
    main()
