"""Time notebook 02's sequence: the seed article's own loop against kdutils, in the same run.

The reference is the plain loop of the seed article: a DataLoader over torchvision's MNIST with a
per-sample ToTensor transform, batch 32, Adam lr 1e-4, and the teacher run forward at every KD
step (with the correct KD loss, which costs about as many operations as the article's buggy one).
kdutils runs the same models with the same hyperparameters. Ratios are reference / kdutils.

    python benchmarks/bench_mnist.py              # full epochs (about 9 minutes on 2 cores)
    python benchmarks/bench_mnist.py --steps 200  # the first 200 steps of each epoch only
"""
from __future__ import annotations

import argparse
import itertools
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

import kdutils as kd

BATCH, LR, T, ALPHA = 32, 1e-4, 7.0, 0.3
EPOCHS = {"teacher": 6, "student": 3, "kd": 3}


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
    if steps is not None:
        train = train.subset(min(len(train), steps * BATCH))
    common = dict(epochs=1, lr=LR, batch_size=BATCH, progress=False)
    kd.seed_everything(0)
    teacher, student, kd_student = kd.mnist_teacher(), kd.mnist_student(), kd.mnist_student()
    seconds = {"teacher": timed(lambda: kd.fit(teacher, train, test, **common))}
    seconds["student"] = timed(lambda: kd.fit(student, train, test, **common))
    seconds["teacher_logits"] = timed(lambda: kd.teacher_logits(teacher, train))
    logits = kd.teacher_logits(teacher, train)
    seconds["kd"] = timed(lambda: kd.distill(kd_student, teacher, train, test, T=T, alpha=ALPHA,
                                             cached_logits=logits, **common))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=None, help="time only this many steps per epoch")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}, "
          f"{'full epochs' if args.steps is None else f'{args.steps} steps per epoch'}")
    ref, ours = time_reference(args.steps), time_kdutils(args.steps)
    print(f"{'one epoch':<10}{'seed loop s':>12}{'kdutils s':>11}{'ratio':>8}")
    for name in EPOCHS:
        print(f"{name:<10}{ref[name]:>12.2f}{ours[name]:>11.2f}{ref[name] / ours[name]:>7.1f}x")
    ref_total = sum(EPOCHS[k] * ref[k] for k in EPOCHS)
    ours_total = sum(EPOCHS[k] * ours[k] for k in EPOCHS) + ours["teacher_logits"]
    print(f"teacher logits computed once by kdutils: {ours['teacher_logits']:.2f} s")
    print(f"whole sequence (teacher 6, student 3, KD 3 epochs): seed loop {ref_total:.0f} s, "
          f"kdutils {ours_total:.0f} s, ratio {ref_total / ours_total:.1f}x")


if __name__ == "__main__":
    main()
