import os
import re
import stat
import subprocess
import sys
import textwrap
import time

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
    model, result = checkpoint.load_or_train(torch.nn.Linear(2, 2), "toy", key,
                                             counting_trainer(calls))
    again, result_again = checkpoint.load_or_train(torch.nn.Linear(2, 2), "toy", key,
                                           counting_trainer(calls))
    assert len(calls) == 1 and result == result_again == {"trained": 1}
    torch.testing.assert_close(again.weight, model.weight)


def test_other_key_other_checkpoint():
    calls = []
    checkpoint.load_or_train(torch.nn.Linear(2, 2), "toy", {"seed": 0}, counting_trainer(calls))
    checkpoint.load_or_train(torch.nn.Linear(2, 2), "toy", {"seed": 1}, counting_trainer(calls))
    assert len(calls) == 2


def test_corrupted_checkpoint_is_reported_and_retrained():
    calls = []
    key = {"seed": 0}
    checkpoint.load_or_train(torch.nn.Linear(2, 2), "toy", key, counting_trainer(calls))
    path = checkpoint.checkpoint_path("toy", key)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.warns(UserWarning, match="unreadable checkpoint"):
        model, _ = checkpoint.load_or_train(torch.nn.Linear(2, 2), "toy", key,
                                            counting_trainer(calls))
    assert len(calls) == 2 and model.weight[0, 0].item() == 2
    checkpoint.load_or_train(torch.nn.Linear(2, 2), "toy", key, counting_trainer(calls))
    assert len(calls) == 2, "the retrained checkpoint replaces the corrupted one"


def test_mismatched_key_in_file_is_reported_and_retrained():
    calls = []
    key = {"seed": 0}
    path = checkpoint.checkpoint_path("toy", key)
    checkpoint.save_atomically({"key": {"seed": 99}, "state_dict": {}, "result": None}, path)
    with pytest.warns(UserWarning, match="was made for"):
        checkpoint.load_or_train(torch.nn.Linear(2, 2), "toy", key, counting_trainer(calls))
    assert len(calls) == 1


def save_failing_with(error: BaseException):
    """A ``torch.save`` that writes part of the file, then fails with ``error``."""
    def broken_save(obj, f):
        f.write(b"partial")
        raise error
    return broken_save


def test_failed_write_leaves_no_file(monkeypatch):
    monkeypatch.setattr(checkpoint.torch, "save", save_failing_with(OSError("disk full")))
    path = checkpoint.checkpoint_path("toy", {"seed": 0})
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save_atomically({"x": 1}, path)
    assert list(path.parent.iterdir()) == []


def test_interrupted_training_writes_nothing():
    def interrupted(model):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        checkpoint.load_or_train(torch.nn.Linear(2, 2), "toy", {"seed": 0}, interrupted)
    assert not checkpoint.cache_dir().exists() or not any(checkpoint.cache_dir().iterdir())


def test_cached_fit_reuses_the_trained_model(tiny_data):
    first, h1 = kd.cached_fit(lambda: kd.mlp((16, 3)), "toy-fit", tiny_data, tiny_data, epochs=2,
                              lr=0.05, batch_size=16, progress=False)
    second, h2 = kd.cached_fit(lambda: kd.mlp((16, 3)), "toy-fit", tiny_data, tiny_data,
                               epochs=2, lr=0.05, batch_size=16, progress=False)
    assert h1.rows == h2.rows
    for a, b in zip(first.parameters(), second.parameters()):
        assert torch.equal(a, b)


def test_the_optimizer_is_in_the_key_and_adam_keeps_the_keys_made_before_the_choice(tiny_data):
    settings = dict(epochs=1, lr=0.05, batch_size=16, progress=False)
    adam, _ = kd.cached_fit(lambda: kd.mlp((16, 3)), "toy-fit", tiny_data, tiny_data,
                            **settings)
    sgd, _ = kd.cached_fit(lambda: kd.mlp((16, 3)), "toy-fit", tiny_data, tiny_data,
                          optimizer="sgd", **settings)
    assert not all(torch.equal(a, b) for a, b in zip(adam.parameters(), sgd.parameters()))
    keys = [torch.load(path, weights_only=False)["key"]
            for path in checkpoint.cache_dir().glob("toy-fit-*")]
    assert sorted(key.get("optimizer", "-") for key in keys) == ["-", "sgd"]


def test_an_unknown_optimizer_is_refused_and_nothing_is_cached(tiny_data):
    with pytest.raises(ValueError, match="optimizer must be one of"):
        kd.cached_fit(lambda: kd.mlp((16, 3)), "toy-fit", tiny_data, tiny_data, epochs=1,
                      lr=0.05, batch_size=16, optimizer="Adam", progress=False)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        _cached_student(_teacher(tiny_data), tiny_data, optimizer="momentum")
    assert not list(checkpoint.cache_dir().glob("toy-student-*"))


def test_checkpoint_in_an_older_format_is_reported_and_retrained():
    calls = []
    key = {"seed": 0}
    path = checkpoint.checkpoint_path("toy", key)
    checkpoint.save_atomically({"key": key, "state_dict": torch.nn.Linear(2, 2).state_dict()}, path)
    with pytest.warns(UserWarning, match="older format"):
        checkpoint.load_or_train(torch.nn.Linear(2, 2), "toy", key, counting_trainer(calls))
    assert len(calls) == 1


@pytest.mark.parametrize("payload", [torch.zeros(2), [1, 2], {"weights": torch.zeros(2)}],
                         ids=["tensor", "list", "dict-without-key"])
def test_payload_not_saved_by_cached_is_reported_and_recomputed(payload):
    key = {"seed": 0}
    path = checkpoint.checkpoint_path("toy", key)
    path.parent.mkdir(parents=True)
    torch.save(payload, path)
    with pytest.warns(UserWarning, match=f"{re.escape(str(path))}.*will be recomputed"):
        assert checkpoint.cached("toy", key, lambda: {"x": 1}) == {"x": 1}
    assert checkpoint.cached("toy", key, lambda: {"x": 2}) == {"x": 1}, "overwritten"


@pytest.mark.parametrize("name", ["../evil", "a/b", "/tmp/evil", "a\\b", ".hidden", "a..b", ""])
def test_name_that_is_not_a_plain_file_stem_is_rejected(name, tmp_path):
    with pytest.raises(ValueError, match="name must be a plain file-name stem.*'mnist-teacher'"):
        checkpoint.cached(name, {"seed": 0}, lambda: {"x": 1})
    assert list(tmp_path.rglob("*.pt")) == []


def test_key_without_a_stable_repr_is_rejected_and_stable_keys_keep_their_file(tmp_path):
    key = {"architecture": "Linear(in_features=2, out_features=2, bias=True)",
           "augment": "RandomShift(max_pixels=2)", "batch_size": 16, "epochs": 2, "lr": 0.05,
           "lr_schedule": "'constant'", "max_norm": "None", "seed": 0,
           "test": "synthetic-96-0", "torch": "2.5.1", "train": "synthetic-96-0"}
    expected = tmp_path / "cache" / "toy-fit-bb2b6205091663d1.pt"  # the name the old code gave
    assert checkpoint.checkpoint_path("toy-fit", key) == expected
    unstable = {**key, "augment": repr(lambda images: images)}
    with pytest.raises(ValueError, match=r"augment=<function .*<lambda> at 0x[0-9a-f]+> has no "
                                         r"stable repr.*RandomShift\(2\)"):
        checkpoint.cached("toy-fit", unstable, lambda: {"x": 1})


def test_orphan_temporaries_are_removed_but_fresh_ones_kept():
    folder = checkpoint.cache_dir()
    folder.mkdir(parents=True)
    orphan, fresh = folder / ".toy-0.pt.123.abcd.tmp", folder / ".toy-1.pt.456.ef01.tmp"
    orphan.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    two_hours_ago = time.time() - 2 * 3600
    os.utime(orphan, (two_hours_ago, two_hours_ago))
    checkpoint.cached("toy", {"seed": 0}, lambda: {"x": 1})
    assert not orphan.exists() and fresh.exists()


def test_checkpoint_gets_the_usual_file_mode():
    old_umask = os.umask(0o022)
    try:
        checkpoint.cached("toy", {"seed": 0}, lambda: {"x": 1})
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(checkpoint.checkpoint_path("toy", {"seed": 0}).stat().st_mode) == 0o644


def test_failed_save_returns_the_trained_model_and_an_interrupt_still_propagates(monkeypatch):
    monkeypatch.setattr(checkpoint.torch, "save",
                        save_failing_with(OSError("No space left on device")))
    path = checkpoint.checkpoint_path("toy", {"seed": 0})
    message = f"could not save checkpoint {re.escape(str(path))} .*No space left.*not cached"
    with pytest.warns(UserWarning, match=message):
        model, result = checkpoint.load_or_train(torch.nn.Linear(2, 2), "toy", {"seed": 0},
                                                 counting_trainer([]))
    assert result == {"trained": 1} and model.weight[0, 0].item() == 1
    assert list(path.parent.iterdir()) == []

    monkeypatch.setattr(checkpoint.torch, "save", save_failing_with(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        checkpoint.cached("toy", {"seed": 0}, lambda: {"x": 1})
    assert list(path.parent.iterdir()) == []


def _teacher(data, seed=0):
    teacher, _ = kd.cached_fit(lambda: kd.mlp((16, 8, 3)), "toy-teacher", data, data, epochs=1,
                               lr=0.05, batch_size=16, seed=seed, progress=False)
    return teacher


def _cached_student(teacher, data, **options):
    return kd.cached_distill(lambda: kd.mlp((16, 3)), "toy-student", teacher, data, data, T=4.0,
                             alpha=0.5, epochs=1, lr=0.05, batch_size=16, progress=False,
                             **options)


def test_cached_distill_trains_once_then_loads_the_same_student(tiny_data):
    teacher = _teacher(tiny_data)
    first, h1 = _cached_student(teacher, tiny_data,
                                cached_logits=kd.teacher_logits(teacher, tiny_data))
    second, h2 = _cached_student(teacher, tiny_data)
    assert h1.rows == h2.rows
    assert h2.rows[0]["seconds"] == h1.rows[0]["seconds"]  # loaded, not trained again
    for a, b in zip(first.parameters(), second.parameters()):
        assert torch.equal(a, b)


def test_cached_distill_equals_distill_from_the_same_seed(tiny_data):
    teacher = _teacher(tiny_data)
    cached, _ = _cached_student(teacher, tiny_data, seed=3)
    kd.seed_everything(3)
    plain = kd.mlp((16, 3))
    kd.distill(plain, teacher, tiny_data, tiny_data, T=4.0, alpha=0.5, epochs=1, lr=0.05,
               batch_size=16, seed=3, progress=False)
    for a, b in zip(cached.parameters(), plain.parameters()):
        assert torch.equal(a, b)


def test_a_retrained_teacher_gets_new_students(tiny_data):
    _, h1 = _cached_student(_teacher(tiny_data, seed=0), tiny_data)
    _, h2 = _cached_student(_teacher(tiny_data, seed=1), tiny_data)
    assert h1.rows != h2.rows


def test_cached_distill_refuses_logits_of_another_teacher(tiny_data):
    other_logits = kd.teacher_logits(_teacher(tiny_data, seed=1), tiny_data)
    with pytest.raises(ValueError, match="another teacher"):
        _cached_student(_teacher(tiny_data, seed=0), tiny_data, cached_logits=other_logits)
    assert not list(checkpoint.cache_dir().glob("toy-student-*"))


def test_a_cached_student_is_not_returned_for_stored_logits_with_augment(tiny_data):
    teacher = _teacher(tiny_data)
    _cached_student(teacher, tiny_data, augment=kd.RandomShift(1))
    with pytest.raises(ValueError, match="teacher_view=.clean. only"):
        _cached_student(teacher, tiny_data, augment=kd.RandomShift(1),
                        cached_logits=kd.teacher_logits(teacher, tiny_data))


# Issue 27: the key covers what determines the result, and weights that do not fit are retrained.

class Scaled(torch.nn.Module):
    """A model of the user's own: the cache key must see its code."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(16, 3)

    def forward(self, x):
        return self.linear(x.flatten(1))


def scaled_forward_edited(self, x):
    return 2 * self.linear(x.flatten(1))


def test_editing_a_models_forward_changes_its_key(tiny_data, monkeypatch):
    first, _ = kd.cached_fit(Scaled, "mine", tiny_data, tiny_data, epochs=1, lr=1e-2,
                             batch_size=16, progress=False)
    monkeypatch.setattr(Scaled, "forward", scaled_forward_edited)
    monkeypatch.setattr(kd.training.fit, "fit", lambda *a, **k: kd.History("edited", [{"test_acc": 0.0}]))
    _, history = kd.cached_fit(Scaled, "mine", tiny_data, tiny_data, epochs=1, lr=1e-2,
                               batch_size=16, progress=False)
    assert history.label == "mine" and history.rows == [{"test_acc": 0.0}], \
        "the edited class got the old weights and history"


def test_a_parameter_added_as_an_attribute_changes_the_key(tiny_data):
    def with_scale():
        model = kd.mlp([16, 8, 3])
        model.scale = torch.nn.Parameter(torch.ones(1))  # not in repr(model)
        return model

    plain = kdutils_key(kd.mlp([16, 8, 3]), tiny_data)
    scaled = kdutils_key(with_scale(), tiny_data)
    assert plain["architecture"] == scaled["architecture"] and plain != scaled
    double = kdutils_key(kd.mlp([16, 8, 3]).double(), tiny_data)
    assert double != plain, "the dtype is part of the key"


def kdutils_key(model, data):
    return kd.training.fit.run_key(model, data, data, epochs=1)


def test_the_course_models_keys_only_gain_their_tensor_signature(tiny_data):
    """kdutils' and torch's classes add no code digest, so a checkpoint made before the change
    is found under its old key (see test_a_checkpoint_made_before_the_change_still_loads)."""
    key = kdutils_key(kd.mnist_teacher(), tiny_data)
    assert "code" not in key and key["parameters"][0] == "1.weight float32 (1200, 784)"
    assert kd.identity.legacy_key(key) == {k: v for k, v in key.items() if k != "parameters"}
    assert kd.identity.legacy_key(kdutils_key(Scaled(), tiny_data)) is None


def test_a_checkpoint_made_before_the_change_still_loads(tiny_data, monkeypatch):
    model, history = kd.cached_fit(lambda: kd.mlp([16, 8, 3]), "old", tiny_data, tiny_data,
                                   epochs=1, lr=1e-2, batch_size=16, progress=False)
    new_path = next(kd.cache_dir().glob("old-*.pt"))
    payload = torch.load(new_path, weights_only=True)
    old_key = {k: v for k, v in payload["key"].items() if k != "parameters"}  # kdutils 0.1's
    checkpoint.save_atomically({"key": old_key, "value": payload["value"]},
                               checkpoint.checkpoint_path("old", old_key))
    new_path.unlink()
    monkeypatch.setattr(kd.training.fit, "fit", lambda *a, **k: pytest.fail("retrained"))
    loaded, loaded_history = kd.cached_fit(lambda: kd.mlp([16, 8, 3]), "old", tiny_data,
                                           tiny_data, epochs=1, lr=1e-2, batch_size=16,
                                           progress=False)
    assert loaded_history.rows == history.rows and new_path.exists(), "re-keyed once"
    assert torch.equal(loaded[1].weight, model[1].weight)


def test_weights_that_do_not_fit_the_model_are_named_and_retrained():
    calls = []
    key = {"seed": 0}
    checkpoint.save_atomically({"key": key, "value": {"state_dict": {"weight": torch.zeros(3, 3),
                                                                     "bias": torch.zeros(3)},
                                                      "result": None}},
                               checkpoint.checkpoint_path("toy", key))
    with pytest.warns(UserWarning, match=r"toy-\w+\.pt: its tensors do not fit the model"):
        model, result = checkpoint.load_or_train(torch.nn.Linear(2, 2), "toy", key,
                                                 counting_trainer(calls))
    assert len(calls) == 1 and result == {"trained": 1}


def cell_class(body):
    """A class made as a notebook cell makes it: no file that inspect could read."""
    namespace = {"torch": torch, "__name__": "__main__"}
    exec(compile("class Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()"
                 "\n        self.linear = torch.nn.Linear(16, 3)\n    def forward(self, x):\n"
                 f"        return {body}\n", "<cell>", "exec"), namespace)
    return namespace["Net"]


def test_a_class_defined_in_a_notebook_cell_is_keyed_on_its_code():
    one = kd.identity.code_entry(cell_class("self.linear(x)")())
    again = kd.identity.code_entry(cell_class("self.linear(x)")())
    other = kd.identity.code_entry(cell_class("2 * self.linear(x)")())
    assert one == again and one != other and list(one["code"]) == ["__main__.Net"]


def test_a_code_digest_is_the_same_in_every_run():
    """Memory addresses and set orders (which change with PYTHONHASHSEED) stay out of it."""
    script = textwrap.dedent("""
        import torch
        import kdutils as kd
        namespace = {"torch": torch, "__name__": "__main__"}
        exec(compile("class Net(torch.nn.Module):\\n    act = torch.tanh\\n"
                     "    kinds = {'a', 'b', 'c', 'd'}\\n    def forward(self, x):\\n"
                     "        return x in {'u', 'v', 'w', 'z'}\\n", "<cell>", "exec"), namespace)
        print(kd.identity.code_entry(namespace["Net"]()))
    """)
    digests = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}, check=True).stdout
               for seed in ("1", "2", "3")}
    assert len(digests) == 1 and "__main__.Net" in digests.pop()
