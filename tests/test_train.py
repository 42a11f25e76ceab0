import pytest
import torch

import kdutils as kd
from kdutils import train as kd_train

from conftest import make_dataset


def small_mlp():
    return kd.mlp((16, 8, 3))


def test_fit_learns_and_records_history(tiny_data):
    kd.seed_everything(0)
    history = kd.fit(small_mlp(), tiny_data, tiny_data, epochs=5, lr=0.05, batch_size=16,
                     progress=False)
    assert len(history.rows) == 5
    assert set(history.rows[0]) == {"epoch", "ce", "loss", "train_acc", "test_acc", "seconds"}
    assert history.column("loss")[-1] < history.column("loss")[0]


def test_fit_is_deterministic_for_a_seed(tiny_data):
    runs = []
    for _ in range(2):
        kd.seed_everything(5)
        model = kd.mlp((16, 8, 3), dropout=0.2)
        history = kd.fit(model, tiny_data, tiny_data, epochs=2, lr=0.01, batch_size=16, seed=5,
                         progress=False)
        runs.append((model.state_dict(), [r["loss"] for r in history.rows]))
    for name, value in runs[0][0].items():
        torch.testing.assert_close(value, runs[1][0][name], rtol=0, atol=0)
    assert runs[0][1] == runs[1][1]


def test_distill_keeps_teacher_frozen_and_unchanged(tiny_data):
    kd.seed_everything(0)
    teacher = kd.mlp((16, 32, 3), dropout=0.5)
    teacher.train()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    kd.seed_everything(1)
    history = kd.distill(small_mlp(), teacher, tiny_data, tiny_data, T=4.0, alpha=0.5, epochs=2,
                         lr=0.01, batch_size=16, progress=False)
    assert not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    for name, value in teacher.state_dict().items():
        assert torch.equal(value, before[name])
    assert {"ce", "kd"} <= set(history.rows[0])


def test_cached_logits_are_looked_up_by_sample_index(tiny_data, monkeypatch):
    """Under shuffling, each batch must get the teacher's logits of its own samples."""
    kd.seed_everything(0)
    teacher = kd.mlp((16, 3))
    seen = []
    original = kd_train.distillation_terms

    def spy(student_logits, teacher_logits, *args):
        seen.append(teacher_logits)
        return original(student_logits, teacher_logits, *args)

    batches = []
    original_iterate = kd_train.iterate_batches

    def recording_iterate(*args, **kwargs):
        for batch in original_iterate(*args, **kwargs):
            batches.append(batch)
            yield batch

    monkeypatch.setattr(kd_train, "distillation_terms", spy)
    monkeypatch.setattr(kd_train, "iterate_batches", recording_iterate)
    kd.distill(small_mlp(), teacher, tiny_data, tiny_data, T=2.0, alpha=0.5, epochs=2, lr=0.01,
               batch_size=10, progress=False)
    training_batches = [b for b in batches if len(b.index) <= 10]  # evaluation uses one big batch
    assert len(training_batches) == len(seen) == 2 * 10
    with torch.no_grad():
        for logits, batch in zip(seen, training_batches):
            torch.testing.assert_close(logits, teacher(batch.inputs))
    assert any(not torch.equal(b.index, b.index.sort().values) for b in training_batches)


def test_cached_logits_of_the_wrong_size_are_refused(tiny_data):
    with pytest.raises(ValueError, match="cached_logits has 5 rows"):
        kd.distill(small_mlp(), small_mlp(), tiny_data, tiny_data, T=2.0, alpha=0.5, epochs=1,
                   lr=0.01, batch_size=16, cached_logits=torch.zeros(5, 3), progress=False)


@pytest.mark.parametrize("kwargs, match", [({"T": 0.0}, "temperature"), ({"alpha": 2.0}, "alpha")])
def test_distill_checks_its_settings_before_training(tiny_data, kwargs, match):
    settings = {"T": 2.0, "alpha": 0.5, **kwargs}
    with pytest.raises(ValueError, match=match):
        kd.distill(small_mlp(), small_mlp(), tiny_data, tiny_data, epochs=1, lr=0.01,
                   batch_size=16, progress=False, **settings)


def test_evaluate_counts_correct_predictions():
    data = make_dataset(n=10)
    model = kd.mlp((16, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model[1].bias[0] = 1.0  # always predicts class 0
    expected = (data.labels == 0).double().mean().item() * 100
    assert kd.evaluate(model, data) == pytest.approx(expected)
