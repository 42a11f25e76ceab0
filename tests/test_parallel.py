"""run_parallel: results in order and independent of the number of workers, failures and
interrupts reported and cleaned up. Worker processes need fork: those tests run on Linux."""
import multiprocessing.context
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import kdutils as kd
from kdutils.training import parallel

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="worker processes need fork")


def train_student(data, seed):
    kd.seed_everything(seed)
    model = kd.mlp([16, 8, 3])
    history = kd.fit(model, data, data, epochs=2, lr=1e-2, batch_size=16, seed=seed,
                     progress=False)
    return model, history


def weights(model):
    return list(model.state_dict().values())


@linux_only
def test_a_run_gives_the_same_student_in_a_worker_beside_others_as_alone(tiny_data):
    def run(seed):  # a closure, as in a notebook cell: spawn could not pickle it
        return train_student(tiny_data, seed)

    side_by_side = kd.run_parallel(run, [0, 1, 2], workers=2, progress_bar=False)
    one_at_a_time = kd.run_parallel(run, [0, 1, 2], workers=1)
    alone = kd.run_parallel(run, [2], workers=2)
    assert [h.label for _, h in side_by_side] == ["fit"] * 3
    for (a, history_a), (b, history_b) in zip(side_by_side, one_at_a_time):
        assert all(torch.equal(x, y) for x, y in zip(weights(a), weights(b)))
        assert history_a.rows[-1]["loss"] == history_b.rows[-1]["loss"]
    assert all(torch.equal(x, y) for x, y in zip(weights(alone[0][0]), weights(side_by_side[2][0])))


def test_one_worker_runs_each_item_with_one_thread_and_restores_the_settings(tiny_data):
    threads = torch.get_num_threads()
    seen = kd.run_parallel(lambda _: torch.get_num_threads(), [0, 1], workers=1)
    assert seen == [1, 1]
    assert torch.get_num_threads() == threads


@linux_only
@pytest.mark.parametrize("workers", [1, 2])
def test_every_run_starts_from_the_callers_random_state(workers):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    draws = kd.run_parallel(lambda _: torch.rand(3), ["a", "b"], workers=workers)
    assert all(torch.equal(draw, expected) for draw in draws)
    assert torch.equal(torch.rand(3), expected)  # the caller's own stream is left where it was


@linux_only
def test_a_failing_run_raises_with_the_workers_traceback():
    def run(seed):
        if seed == 1:
            raise ValueError("no student for seed 1")
        return seed

    with pytest.raises(kd.WorkerError, match=r"run for 1 failed.*ValueError: no student for "
                                             r"seed 1(.|\n)*Traceback(.|\n)*in run"):
        kd.run_parallel(run, [0, 1, 2], workers=2, progress_bar=False)


@linux_only
def test_a_worker_killed_by_the_system_is_reported():
    def run(seed):
        if seed == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        return seed

    with pytest.raises(kd.WorkerError, match="exit code -9 before sending its result"):
        kd.run_parallel(run, [0, 1], workers=2, progress_bar=False)


@linux_only
def test_an_interrupt_stops_every_worker_and_lets_runs_clean_up(tmp_path):
    script = textwrap.dedent(f"""
        import os, pathlib, signal, threading, time
        import kdutils as kd
        folder = pathlib.Path({str(tmp_path)!r})
        def run(seed):
            marker = folder / f"{{os.getpid()}}.tmp"
            marker.write_text("half-written")
            try:
                time.sleep(60)
            finally:
                marker.unlink()  # what save_atomically does with its temporary
        threading.Timer(3.0, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            kd.run_parallel(run, [0, 1, 2], workers=2, progress_bar=False)
        except KeyboardInterrupt:
            print("interrupted")
    """)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert "interrupted" in done.stdout, done.stderr
    assert time.monotonic() - started < 30
    assert list(tmp_path.iterdir()) == []  # both workers ran their cleanup and are gone


def test_without_fork_the_runs_go_one_after_another_here(monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")
    assert "fork" in kd.why_sequential()
    assert kd.run_parallel(lambda _: os.getpid(), [0, 1], workers=2) == [os.getpid()] * 2


def test_workers_from_the_environment(monkeypatch):
    monkeypatch.setenv(parallel.WORKERS_ENV, "3")
    assert parallel.default_workers(10) == 3
    monkeypatch.setenv(parallel.WORKERS_ENV, "many")
    with pytest.raises(ValueError, match="KD_WORKERS must be a positive whole number"):
        parallel.default_workers(10)
    monkeypatch.delenv(parallel.WORKERS_ENV)
    assert parallel.default_workers(1) == 1
    assert 1 <= parallel.default_workers(100) <= os.cpu_count()


def test_workers_must_be_a_positive_count():
    with pytest.raises(ValueError, match="workers"):
        kd.run_parallel(lambda x: x, [1], workers=0)


@pytest.mark.parametrize("workers", [1, 2])
def test_run_grid_groups_every_trainers_runs_by_name_in_seed_order(workers):
    trainers = {"double": lambda seed: 2 * seed, "negate": lambda seed: -seed}
    grid = kd.run_grid(trainers, [3, 1, 2], workers=workers, progress_bar=False)
    assert grid == {"double": [6, 2, 4], "negate": [-3, -1, -2]}
    assert list(grid) == ["double", "negate"]


@linux_only
def test_a_worker_that_exits_cleanly_without_a_result_is_reported_not_waited_for():
    """Issue 27: a worker ending with status 0 and no result made run_parallel wait forever."""
    script = textwrap.dedent("""
        import os, sys
        import kdutils as kd
        def run(seed):
            if seed == 0:
                os._exit(0)
            return seed
        try:
            kd.run_parallel(run, [0, 1], workers=2, progress_bar=False)
        except kd.WorkerError as error:
            print(error)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert "exited (status 0) without sending a result" in done.stdout, done.stderr


@linux_only
def test_a_nested_run_parallel_runs_its_items_in_the_worker():
    def inner(seed):
        return seed * 10

    def outer(seed):
        return kd.run_parallel(inner, [seed, seed + 1], progress_bar=False)

    assert kd.run_parallel(outer, [0, 2], workers=2, progress_bar=False) == [[0, 10], [20, 30]]


@linux_only
def test_a_worker_that_cannot_be_started_is_reported_as_such(monkeypatch):
    def refuse(self):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(multiprocessing.context.ForkProcess, "start", refuse)
    with pytest.raises(kd.WorkerError, match="could not start a worker process .*Resource "
                                             "temporarily unavailable.*workers=1"):
        kd.run_parallel(lambda seed: seed, [0, 1], workers=2, progress_bar=False)


@linux_only
def test_the_overall_bar_says_when_no_run_trained(tiny_data, capsys):
    kd.run_parallel(lambda seed: seed, [0, 1], workers=2)
    drawn = capsys.readouterr().err
    assert "2/2 runs done, no training steps" in drawn and "steps:" not in drawn
    kd.run_parallel(lambda seed: train_student(tiny_data, seed), [0, 1], workers=2)
    drawn = capsys.readouterr().err
    assert "2/2 runs done" in drawn and "no training steps" not in drawn
