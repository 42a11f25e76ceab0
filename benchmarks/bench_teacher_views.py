"""What a consistent teacher costs per epoch: live teacher passes against a per-view lookup table.

Notebook 08 distils jittered MNIST students (784-100-100-10, batch 128) from notebook 05's CNN
teacher, which sees the student's own shifted view. Run live, that is a CNN forward pass per
step; from ``kd.teacher_view_logits`` (the teacher's logits on all 25 shifts of every image,
computed once) it is a lookup. This script times one epoch of each on a subset of MNIST, against
the student alone with the same jitter (the plain reference, 1.00x), after a warm-up, interleaved and repeated,
and prints the one-time cost of the table. The teacher is untrained: its weights do not change
the time.

    python benchmarks/bench_teacher_views.py [--samples 12800] [--repeats 3] [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

import kdutils as kd

STUDENT = dict(epochs=1, lr=1e-3, batch_size=128, progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=12800)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["KD_CACHE_DIR"] = tempfile.mkdtemp(prefix="kd-bench-")  # the table is computed
    train = kd.load_mnist(train=True).subset(args.samples)
    test = kd.load_mnist(train=False).subset(1000)
    jitter = kd.RandomShift(2)
    teacher = kd.mnist_cnn()

    started = time.perf_counter()
    table = kd.teacher_view_logits(teacher, train, jitter)
    table_seconds = time.perf_counter() - started
    clean = kd.teacher_logits(teacher, train)

    def student() -> torch.nn.Module:
        kd.seed_everything(0)
        return kd.hinton_student(100)

    runs = {
        "alone, jitter (reference)": lambda: kd.fit(student(), train, test, augment=jitter,
                                                    **STUDENT),
        "distilled, teacher live on the same view": lambda: kd.distill(
            student(), teacher, train, test, T=1.0, alpha=0.0, augment=jitter, **STUDENT),
        "distilled, same view from the table": lambda: kd.distill(
            student(), teacher, train, test, T=1.0, alpha=0.0, augment=jitter,
            view_logits=table, **STUDENT),
        "distilled, clean image (stored logits)": lambda: kd.distill(
            student(), teacher, train, test, T=1.0, alpha=0.0, augment=jitter,
            teacher_view="clean", cached_logits=clean, **STUDENT),
    }
    for run in runs.values():
        run()  # warm-up: first calls allocate and fill caches
    best = {name: float("inf") for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - started)

    reference = best["alone, jitter (reference)"]
    print(f"torch {torch.__version__}, {args.threads} thread(s); one epoch of {len(train):,} "
          f"MNIST images, batch 128, best of {args.repeats}")
    for name, seconds in best.items():
        print(f"  {name:<44}{seconds:6.2f} s   {seconds / reference:5.2f}x")
    per_epoch_live = best["distilled, teacher live on the same view"] - reference
    print(f"  table of {jitter.views} views, once:{'':<17}{table_seconds:6.2f} s   "
          f"= {table_seconds / max(per_epoch_live, 1e-9):.1f} epochs of the live teacher's "
          "extra cost")


if __name__ == "__main__":
    main()
