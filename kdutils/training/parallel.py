"""Independent training runs side by side, one worker process per core, results in order.

Why processes, and why ``fork``: the course's students are too small to keep several cores busy
with one run (benchmarks/bench_parallel.py measures it), so independent runs go to separate
processes. A function defined in a notebook cell cannot be pickled for a ``spawn``-ed process,
but a forked one inherits it, with the data and teachers already in memory. Fork is safe on
Linux; on macOS and Windows, and when the models train on a GPU, the runs go one after another
in this process. After a fork a worker may use one intra-op thread only (GNU OpenMP hangs in a
forked child that starts a thread pool), so every CPU run of :func:`run_parallel` uses one
thread, in a worker or not: a run's result does not depend on how many ran beside it.
"""
from __future__ import annotations

import io
import multiprocessing
import os
import random
import signal
import sys
import threading
import traceback
from queue import Empty
from typing import Any, Callable, Iterable, TypeVar

import numpy as np
import torch

from ..checks import check_count
from ..runtime import pick_device
from . import progress

Item = TypeVar("Item")
Result = TypeVar("Result")
Key = TypeVar("Key")
WORKERS_ENV = "KD_WORKERS"
PARENT_CHECK_SECONDS = 1.0


class WorkerError(RuntimeError):
    """A run failed in a worker process; the message holds the worker's traceback."""


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def why_sequential() -> str | None:
    """Why the runs cannot go to worker processes here, or None when they can."""
    if _in_worker:
        return ("this is already a worker of run_parallel (a nested call): the outer call keeps "
                "the cores busy, so the inner runs go one after another in this worker")
    device = pick_device()
    if device.type != "cpu":
        return f"the models train on {device.type}, which one process keeps busy"
    if sys.platform != "linux":
        return (f"worker processes need fork, which is safe on Linux only (this is "
                f"{sys.platform}); spawn cannot start functions defined in a notebook")
    return None


def default_workers(n_runs: int) -> int:
    """``$KD_WORKERS`` if set, else one worker per usable core, at most one per run."""
    override = os.environ.get(WORKERS_ENV)
    if override:
        if not override.isdigit() or int(override) < 1:
            raise ValueError(f"{WORKERS_ENV} must be a positive whole number, got {override!r}; "
                             f"unset it to use one worker per core")
        return int(override)
    return max(1, min(n_runs, usable_cores()))


def _random_state() -> tuple:
    return random.getstate(), np.random.get_state(), torch.get_rng_state()


def _set_random_state(state: tuple) -> None:
    python_state, numpy_state, torch_state = state
    random.setstate(python_state)
    np.random.set_state(numpy_state)
    torch.set_rng_state(torch_state)


def _serialized(value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def _deserialized(data: bytes) -> Any:
    return torch.load(io.BytesIO(data), weights_only=False)  # our own worker wrote it


def _exit_when_orphaned(parent: int) -> None:
    """In a worker: end the process if its parent dies (a killed kernel leaves no orphans)."""
    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(1)  # unwinds the run, so its cleanup (temporary files) happens


_in_worker = False  # set in a worker process: a nested run_parallel runs its items there


def _worker(fn: Callable, item: Any, index: int, messages: Any, parent: int) -> None:
    """A worker process's life: one run, its bars forwarded, its result or failure sent."""
    global _in_worker
    _in_worker = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it stops us with SIGTERM
    signal.signal(signal.SIGTERM, _stop_on_sigterm)  # SystemExit: cleanup code runs
    _exit_when_orphaned(parent)
    torch.set_num_threads(1)
    progress.forward_bars_to(lambda message: messages.put((index, *message)))
    try:
        messages.put((index, "result", _serialized(fn(item))))
    except BaseException as error:  # noqa: BLE001 - every failure goes to the parent
        text = "".join(traceback.format_exception(error))
        messages.put((index, "error", f"{type(error).__name__}: {error}", text))


class _OverallBar:
    """One bar over every run's training steps; a run's total is known once it starts."""

    def __init__(self, n_runs: int, enabled: bool) -> None:
        self.n_runs, self.done = n_runs, 0
        self.bar = progress.progress_bar(0, self._desc(), enabled)

    def _desc(self) -> str:
        return f"{self.done}/{self.n_runs} runs done"

    def handle(self, kind: str, payload: tuple) -> None:
        if kind == "start":
            self.bar.total += payload[0]
            self.bar.refresh()
        elif kind == "advance":
            self.bar.update(payload[0])

    def run_done(self) -> None:
        self.done += 1
        self.bar.set_description(self._desc())

    def close(self) -> None:
        """Close the bar; when no run counted a training step (every model came from the
        cache, say), it says so rather than showing an empty count."""
        if self.bar.total == 0:
            self.bar.bar_format = f"{self._desc()}, no training steps"  # no count, no rate
            self.bar.refresh()
        self.bar.close()


def _run_in_workers(fn: Callable, items: list, workers: int, show: bool) -> list:
    context = multiprocessing.get_context("fork")
    messages = context.Queue()
    results: dict[int, Any] = {}
    running: dict[int, multiprocessing.process.BaseProcess] = {}
    waiting = list(range(len(items)))
    ended_silently: set[int] = set()
    bar = _OverallBar(len(items), show)
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                index = waiting.pop(0)
                running[index] = _start(context, fn, items, index, messages)
            try:
                index, kind, *payload = messages.get(timeout=1.0)
            except Empty:
                ended_silently = _check_alive(running, items, ended_silently)
                continue
            if kind == "result":
                results[index] = _deserialized(payload[0])
                running.pop(index).join()
                bar.run_done()
            elif kind == "error":
                summary, text = payload
                raise WorkerError(f"the run for {items[index]!r} failed in its worker process: "
                                  f"{summary}\n\nThe worker's traceback:\n{text}")
            else:
                bar.handle(kind, tuple(payload))
    finally:
        _stop(running.values())
        bar.close()
    return [results[i] for i in range(len(items))]


def _start(context: Any, fn: Callable, items: list, index: int,
           messages: Any) -> multiprocessing.process.BaseProcess:
    """A started worker process for ``items[index]``; a failed fork is reported as such."""
    process = context.Process(target=_worker, args=(fn, items[index], index, messages,
                                                    os.getpid()), daemon=True)
    try:
        process.start()
    except OSError as error:  # fork refused: too many processes, or no memory for one
        raise WorkerError(f"could not start a worker process for the run for {items[index]!r} "
                          f"({error}); free memory, or pass workers=1 to run the runs one "
                          f"after another in this process") from error
    return process


def _check_alive(running: dict, items: list, ended_silently: set[int]) -> set[int]:
    """Raise if a worker ended without sending its result: killed (out of memory), or exited
    cleanly without one (``os._exit``) and still nothing came through a second later. Returns
    the workers that ended cleanly, to check again after the next quiet second."""
    ended = set()
    for index, process in running.items():
        if process.is_alive():
            continue
        if process.exitcode != 0:
            raise WorkerError(f"the worker process of the run for {items[index]!r} ended with "
                              f"exit code {process.exitcode} before sending its result (killed "
                              f"by the system, for instance out of memory)")
        if index in ended_silently:  # its result would have arrived by now
            raise WorkerError(f"the worker process of the run for {items[index]!r} exited "
                              f"(status 0) without sending a result: the run ended its process "
                              f"(os._exit?) instead of returning; return the result instead")
        ended.add(index)
    return ended


def _stop(processes: Iterable[multiprocessing.process.BaseProcess]) -> None:
    """Stop workers: SIGTERM lets each clean up (temporary files), then SIGKILL the stubborn."""
    processes = list(processes)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()


def run_parallel(fn: Callable[[Item], Result], items: Iterable[Item], *,
                 workers: int | None = None, progress_bar: bool = True) -> list[Result]:
    """``[fn(item) for item in items]``, with the runs side by side in worker processes.

    For independent runs such as one training per seed: ``kd.run_parallel(run_kd, SEEDS)``.
    ``fn`` may be defined in a notebook cell and use anything defined before (data, teachers,
    a loss); what it returns comes back through ``torch.save``, so models, tensors and
    :class:`~kdutils.training.loop.History` objects all do. Each run starts from the caller's random
    state and, on the CPU, uses one intra-op thread, so its result is the same whatever
    ``workers`` is (seed inside ``fn`` all the same, as the notebooks do).

    ``workers``: how many runs at a time; default ``$KD_WORKERS`` or one per usable core (at most
    one per item). The runs go one after another in this process when ``workers`` is 1, when the
    models train on a GPU, off Linux, or inside a worker of another ``run_parallel`` (see
    :func:`why_sequential`); a worker that cannot be started is reported as such. A failed run
    raises :class:`WorkerError` with the worker's traceback; an interrupt (Ctrl-C, the kernel's stop
    button) stops every worker, and the checkpoint cache only ever holds complete files."""
    items = list(items)
    workers = default_workers(len(items)) if workers is None else workers
    check_count(workers, "workers")
    reason = why_sequential()
    if workers > 1 and len(items) > 1 and reason is None:
        return _run_in_workers(fn, items, min(workers, len(items)), progress_bar)
    return _run_here(fn, items, one_thread=pick_device().type == "cpu")


def run_grid(trainers: dict[Key, Callable[[int], Result]], seeds: Iterable[int], *,
             workers: int | None = None, progress_bar: bool = True) -> dict[Key, list[Result]]:
    """Every trainer on every seed, side by side (:func:`run_parallel`), grouped by trainer.

    ``trainers`` maps a name to a function of the seed, e.g. ``{"alone": run_alone, "KD":
    run_kd}``; the result maps each name to its results in the order of ``seeds``, so the runs
    of two trainers are paired by seed.
    """
    seeds = list(seeds)
    jobs = [(name, seed) for name in trainers for seed in seeds]
    results = run_parallel(lambda job: trainers[job[0]](job[1]), jobs, workers=workers,
                           progress_bar=progress_bar)
    return {name: results[i * len(seeds):(i + 1) * len(seeds)]
            for i, name in enumerate(trainers)}


def _run_here(fn: Callable, items: list, one_thread: bool) -> list:
    """The runs one after another in this process, each from the caller's random state."""
    state, threads = _random_state(), torch.get_num_threads()
    if one_thread:
        torch.set_num_threads(1)
    try:
        results = []
        for item in items:
            _set_random_state(state)
            results.append(fn(item))
        return results
    finally:
        torch.set_num_threads(threads)
        _set_random_state(state)
