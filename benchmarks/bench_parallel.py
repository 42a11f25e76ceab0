"""Time notebook 03's student runs one after another and side by side, in the same run.

The runs are the notebook's: 3 seeds x (KD, cosine hint, regressor hint), LightNN students, the
teacher's outputs computed once beforehand. Each run is one epoch on ``--steps`` batches of 128
(the test set scaled alike), so times scale to a full epoch by 391 / steps. The reference is the
plain loop ``[run(x) for x in runs]`` in this process with PyTorch's default threads; against
it, ``kd.run_parallel(run, runs)`` with its default workers, and with one worker (the same runs
one after another on one thread each, which is also the time each run needs on its own core).
``--mnist STEPS`` times notebook 02's student runs (784-20-20-10, batch 32) the same way, and
``--vmap`` times the other candidate, the seeds' students stacked into one vectorized ensemble
(``torch.func.stack_module_state`` + ``vmap``), per training step against the plain steps.

    python benchmarks/bench_parallel.py --steps 100 --mnist 1800 --vmap
"""
from __future__ import annotations

import argparse
import copy
import time
from typing import Callable

import torch
from torch.func import functional_call, grad, stack_module_state, vmap

import kdutils as kd

SEEDS = [0, 1, 2]
T, SOFT, HINT, CE = 2.0, 0.25, 0.25, 0.75


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def cifar_runs(steps: int) -> tuple[Callable, list, str]:
    """Notebook 03's student runs on ``steps`` batches: the function and its items."""
    train, test = kd.load_cifar10(True), kd.load_cifar10(False)
    train, test = train.subset(steps * 128), test.subset(round(len(test) * steps * 128 / len(train)))
    kd.seed_everything(0)
    teacher = kd.deep_nn()
    outputs = kd.teacher_features(teacher, train, pooled_size=1024)
    common = dict(epochs=1, lr=1e-3, batch_size=128, progress=False)
    hint = dict(hint_weight=HINT, ce_weight=CE, **common)

    def run(item: tuple[str, int]) -> float:
        kind, seed = item
        kd.seed_everything(seed)
        student = kd.light_nn()
        if kind == "KD":
            history = kd.distill(student, teacher, train, test, T=T, alpha=1 - SOFT,
                                 cached_logits=outputs["logits"], seed=seed, **common)
        elif kind == "cosine":
            history = kd.distill_hint(student, outputs["pooled"], train, test, seed=seed,
                                      hint_loss=kd.cosine_hint_loss, **hint)
        else:
            history = kd.distill_hint(student, outputs["feature_map"], train, test, seed=seed,
                                      hint_loss=kd.mse_hint_loss, regressor=kd.hint_regressor(),
                                      **hint)
        return history.final_accuracy

    items = [(kind, seed) for kind in ("KD", "cosine", "regressor") for seed in SEEDS]
    return run, items, f"notebook 03: {len(items)} runs of {steps} steps, {train.name}"


def mnist_runs(steps: int) -> tuple[Callable, list, str]:
    """Notebook 02's student runs (alone and KD at T = 1, 2, 4) on ``steps`` batches of 32."""
    train, test = kd.load_mnist(True), kd.load_mnist(False)
    train, test = train.subset(steps * 32), test.subset(2000)
    kd.seed_everything(0)
    teacher = kd.mnist_teacher()
    logits = kd.teacher_logits(teacher, train)
    common = dict(epochs=1, lr=1e-3, batch_size=32, progress=False)

    def run(item: tuple[float, int]) -> float:
        T_run, seed = item
        kd.seed_everything(seed)
        student = kd.mnist_student()
        if T_run == 0:
            return kd.fit(student, train, test, seed=seed, **common).final_accuracy
        return kd.distill(student, teacher, train, test, T=T_run, alpha=0.5, cached_logits=logits,
                          seed=seed, **common).final_accuracy

    items = [(T_run, seed) for T_run in (0, 1.0, 2.0, 4.0) for seed in SEEDS]
    return run, items, f"notebook 02: {len(items)} runs of {steps} steps, {train.name}"


def compare(run: Callable, items: list, title: str, workers: int | None) -> None:
    """The plain loop, run_parallel, and run_parallel with one worker; ratios to the loop."""
    chosen = workers or kd.parallel.default_workers(len(items))
    plain, expected = timed(lambda: [run(item) for item in items])
    parallel, got = timed(lambda: kd.run_parallel(run, items, workers=workers,
                                                  progress_bar=False))
    one, alone = timed(lambda: kd.run_parallel(lambda item: timed(lambda: run(item))[0], items,
                                               workers=1))
    print(f"\n{title}")
    print(f"  plain loop, {torch.get_num_threads()} threads:        {plain:7.1f} s   1.00x")
    print(f"  run_parallel, {chosen} workers x 1 thread: {parallel:7.1f} s   {plain / parallel:.2f}x")
    print(f"  run_parallel, 1 worker x 1 thread:  {one:7.1f} s   {plain / one:.2f}x")
    worst = max(abs(a - b) for a, b in zip(expected, got))
    print(f"  test accuracy, largest difference plain vs parallel: {worst:.2f} points "
          f"(one thread vs {torch.get_num_threads()}: floating-point order only)")
    cores16 = min(len(items), 16)
    print(f"  on 16 cores run_parallel would use {cores16} workers, one run per core: the lot "
          f"takes about as long as the longest run alone on one core, {max(alone):.1f} s, "
          f"{plain / max(alone):.1f}x the plain loop here")


def thread_scaling(make: Callable, batch: torch.Tensor, labels: torch.Tensor, steps: int) -> str:
    """Seconds per plain training step on one thread and on the default threads."""
    kd.seed_everything(0)
    model = make()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)

    def train_steps() -> None:
        for _ in range(steps):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(kd.predict.logits_of(model(batch)), labels)
            loss.backward()
            optimizer.step()

    threads = torch.get_num_threads()
    train_steps()  # warm-up
    many, _ = timed(train_steps)
    torch.set_num_threads(1)
    one, _ = timed(train_steps)
    torch.set_num_threads(threads)
    return (f"{one / steps * 1e3:.1f} ms per step on 1 thread, {many / steps * 1e3:.1f} ms on "
            f"{threads}: threads alone give {one / many:.2f}x, so processes can add at most "
            f"{threads / (one / many):.2f}x")


def vmap_step_ratio(make: Callable, batch: torch.Tensor, labels: torch.Tensor, steps: int) -> str:
    """Seconds per step: 3 students stepped one by one vs stacked into one vmap ensemble."""
    students = []
    for seed in SEEDS:
        kd.seed_everything(seed)
        students.append(make())
    targets = torch.randn(len(batch), 10)

    def loss(model: torch.nn.Module) -> torch.Tensor:
        return kd.distillation_loss(kd.predict.logits_of(model(batch)), targets, labels, T, 0.75)

    optimizers = [torch.optim.Adam(s.parameters(), lr=1e-3, fused=True) for s in students]

    def plain_steps() -> None:
        for _ in range(steps):
            for student, optimizer in zip(students, optimizers):
                optimizer.zero_grad()
                loss(student).backward()
                optimizer.step()

    params, buffers = stack_module_state(students)
    base = copy.deepcopy(students[0]).to("meta")
    optimizer = torch.optim.Adam(params.values(), lr=1e-3)

    def one_loss(p: dict, b: dict) -> torch.Tensor:
        out = kd.predict.logits_of(functional_call(base, (p, b), (batch,)))
        return kd.distillation_loss(out, targets, labels, T, 0.75)

    ensemble_grad = vmap(grad(one_loss), randomness="different")

    def ensemble_steps() -> None:
        for _ in range(steps):
            for name, g in ensemble_grad(params, buffers).items():
                params[name].grad = g
            optimizer.step()

    plain, _ = timed(plain_steps)
    stacked, _ = timed(ensemble_steps)
    return (f"{plain / steps * 1e3:.1f} ms per step of 3 students one by one, "
            f"{stacked / steps * 1e3:.1f} ms stacked with vmap: {plain / stacked:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="training steps per run")
    parser.add_argument("--workers", type=int, default=None, help="override kd's choice")
    parser.add_argument("--mnist", type=int, default=0, metavar="STEPS",
                        help="also notebook 02's runs, this many steps each")
    parser.add_argument("--vmap", action="store_true", help="also the vmap ensemble, per step")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {kd.parallel.usable_cores()} usable cores, "
          f"{torch.get_num_threads()} threads by default")
    compare(*cifar_runs(args.steps), args.workers)
    if args.mnist:
        compare(*mnist_runs(args.mnist), args.workers)
    generator = torch.Generator().manual_seed(0)
    cifar_batch = (torch.randn(128, 3, 32, 32, generator=generator),
                   torch.randint(0, 10, (128,), generator=generator))
    mnist_batch = (torch.randn(32, 1, 28, 28, generator=generator),
                   torch.randint(0, 10, (32,), generator=generator))
    print("\nthreads within one run:")
    print("  LightNN, batch 128:", thread_scaling(kd.light_nn, *cifar_batch, 20))
    print("  784-20-20-10, batch 32:", thread_scaling(kd.mnist_student, *mnist_batch, 300))
    if args.vmap:
        print("\nvmap ensemble, per KD step:")
        print("  LightNN, batch 128:", vmap_step_ratio(kd.light_nn, *cifar_batch, 10))
        print("  784-20-20-10, batch 32:", vmap_step_ratio(kd.mnist_student, *mnist_batch, 100))


if __name__ == "__main__":
    main()
