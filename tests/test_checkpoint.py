import pytest
import torch

import kdutils as kd
from kdutils import checkpoint


def counting_trainer(calls):
    def train(model):
        calls.append(1)
        with torch.no_grad():
            model.weight.fill_(len(calls))
        return {"trained": len(calls)}
    return train


def test_trains_once_then_loads(tmp_path):
    calls = []
    key = {"lr": 0.1, "seed": 0}
    model, result = kd.load_or_train(torch.nn.Linear(2, 2), "toy", key, counting_trainer(calls))
    again, result_again = kd.load_or_train(torch.nn.Linear(2, 2), "toy", key,
                                           counting_trainer(calls))
    assert len(calls) == 1 and result == result_again == {"trained": 1}
    torch.testing.assert_close(again.weight, model.weight)


def test_other_key_other_checkpoint():
    calls = []
    kd.load_or_train(torch.nn.Linear(2, 2), "toy", {"seed": 0}, counting_trainer(calls))
    kd.load_or_train(torch.nn.Linear(2, 2), "toy", {"seed": 1}, counting_trainer(calls))
    assert len(calls) == 2


def test_corrupted_checkpoint_is_reported_and_retrained():
    calls = []
    key = {"seed": 0}
    kd.load_or_train(torch.nn.Linear(2, 2), "toy", key, counting_trainer(calls))
    path = checkpoint.checkpoint_path("toy", key)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.warns(UserWarning, match="unreadable checkpoint"):
        model, _ = kd.load_or_train(torch.nn.Linear(2, 2), "toy", key, counting_trainer(calls))
    assert len(calls) == 2 and model.weight[0, 0].item() == 2
    kd.load_or_train(torch.nn.Linear(2, 2), "toy", key, counting_trainer(calls))
    assert len(calls) == 2, "the retrained checkpoint replaces the corrupted one"


def test_mismatched_key_in_file_is_reported_and_retrained():
    calls = []
    key = {"seed": 0}
    path = checkpoint.checkpoint_path("toy", key)
    checkpoint.save_atomically({"key": {"seed": 99}, "state_dict": {}, "result": None}, path)
    with pytest.warns(UserWarning, match="was made for"):
        kd.load_or_train(torch.nn.Linear(2, 2), "toy", key, counting_trainer(calls))
    assert len(calls) == 1


def test_failed_write_leaves_no_file(monkeypatch):
    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", broken_save)
    path = checkpoint.checkpoint_path("toy", {"seed": 0})
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save_atomically({"x": 1}, path)
    assert list(path.parent.iterdir()) == []


def test_interrupted_training_writes_nothing():
    def interrupted(model):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        kd.load_or_train(torch.nn.Linear(2, 2), "toy", {"seed": 0}, interrupted)
    assert not checkpoint.cache_dir().exists() or not any(checkpoint.cache_dir().iterdir())


def test_cached_fit_reuses_the_trained_model(tiny_data):
    first, h1 = kd.cached_fit(lambda: kd.mlp((16, 3)), "toy-fit", tiny_data, tiny_data, epochs=2,
                              lr=0.05, batch_size=16, progress=False)
    second, h2 = kd.cached_fit(lambda: kd.mlp((16, 3)), "toy-fit", tiny_data, tiny_data,
                               epochs=2, lr=0.05, batch_size=16, progress=False)
    assert h1.rows == h2.rows
    for a, b in zip(first.parameters(), second.parameters()):
        assert torch.equal(a, b)


def test_checkpoint_in_an_older_format_is_reported_and_retrained():
    calls = []
    key = {"seed": 0}
    path = checkpoint.checkpoint_path("toy", key)
    checkpoint.save_atomically({"key": key, "state_dict": torch.nn.Linear(2, 2).state_dict()}, path)
    with pytest.warns(UserWarning, match="older format"):
        kd.load_or_train(torch.nn.Linear(2, 2), "toy", key, counting_trainer(calls))
    assert len(calls) == 1
