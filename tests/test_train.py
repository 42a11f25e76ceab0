import contextlib

import pytest
import torch

import kdutils as kd


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


def test_evaluate_counts_correct_predictions(make_dataset):
    data = make_dataset(n=10)
    model = kd.mlp((16, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model[1].bias[0] = 1.0  # always predicts class 0
    expected = (data.labels == 0).double().mean().item() * 100
    assert kd.evaluate(model, data) == pytest.approx(expected)


def hint_data(n: int = 24) -> kd.ImageDataset:
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    labels = torch.arange(n) % 10
    return kd.ImageDataset(images, labels, (0.5,) * 3, (0.25,) * 3, "hint data", "synthetic")


def run_every_loop(device: torch.device | str, data: kd.ImageDataset,
                   while_training=contextlib.nullcontext) -> None:
    """fit (Adam, with jitter and max-norm), distill (SGD) and distill_hint, models on
    ``device``; the loops themselves run inside ``while_training()``."""
    kd.seed_everything(0)
    student, teacher, other_student = (small_mlp().to(device), kd.mlp((16, 3)).to(device),
                                       small_mlp().to(device))
    images = hint_data()
    conv_teacher, conv_student = kd.deep_nn().to(device), kd.light_nn().to(device)
    regressor = kd.hint_regressor()  # on the CPU: distill_hint moves it to the student's device
    with while_training():
        kd.fit(student, data, data, epochs=2, lr=0.01, batch_size=16, augment=kd.RandomShift(1),
               max_norm=3.0, progress=False)
        kd.distill(other_student, teacher, data, data, T=2.0, alpha=0.5, epochs=2, lr=0.01,
                   batch_size=16, optimizer="sgd", progress=False)
        outputs = kd.teacher_features(conv_teacher, images, pooled_size=1024)
        kd.distill_hint(conv_student, outputs["feature_map"], images, images,
                        hint_loss=kd.mse_hint_loss, hint_weight=0.25, ce_weight=0.75,
                        regressor=regressor, epochs=1, lr=1e-3, batch_size=8,
                        progress=False)


def test_loops_create_no_tensor_on_a_device_they_did_not_choose(tiny_data):
    """CPU-only stand-in for a GPU run: the default device becomes 'meta' while the models and
    data stay on the CPU, so any tensor a loop creates without naming the model's device (or
    the CPU, for sample positions) lands on 'meta' and the next operation with it fails."""
    run_every_loop("cpu", tiny_data, while_training=lambda: torch.device("meta"))


@pytest.mark.parametrize("device", [
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="no CUDA device")),
    pytest.param("mps", marks=pytest.mark.skipif(not torch.backends.mps.is_available(),
                                                 reason="no MPS device")),
])
def test_every_loop_runs_with_the_model_on_a_gpu(tiny_data, device):
    run_every_loop(device, tiny_data)


@pytest.mark.parametrize("change, match", [
    ({"batch_size": 0}, "batch_size must be a whole number >= 1"),
    ({"batch_size": 16.0}, r"int\(batch_size\)"),
    ({"epochs": 2.0}, r"int\(epochs\)"),
    ({"lr": -0.01}, "lr must be a finite number > 0"),
    ({"lr": float("nan")}, "lr must be a finite number > 0"),
])
def test_bad_settings_are_refused_naming_the_argument(tiny_data, change, match):
    settings = {"epochs": 1, "lr": 0.01, "batch_size": 16, **change}
    with pytest.raises(ValueError, match=match):
        kd.fit(small_mlp(), tiny_data, tiny_data, progress=False, **settings)


def test_empty_train_or_test_set_is_refused(tiny_data):
    empty = tiny_data.select(torch.tensor([], dtype=torch.long), " (empty)")
    for train, test, name in [(empty, tiny_data, "train"), (tiny_data, empty, "test")]:
        with pytest.raises(ValueError, match=f"{name} is empty"):
            kd.fit(small_mlp(), train, test, epochs=1, lr=0.01, batch_size=16, progress=False)


def test_evaluate_refuses_labels_the_model_cannot_predict(make_dataset):
    data = make_dataset(n=10, classes=3)
    labels = torch.tensor([5, 6, 7, 5, 6, 7, 5, 6, 7, 5])
    wider_labels = kd.ImageDataset(data.images, labels, data.mean, data.std, "x", "x")
    with pytest.raises(ValueError, match="labels from 5 to 7 but the model predicts 3 classes"):
        kd.evaluate(small_mlp(), wider_labels)
    with pytest.raises(ValueError, match="labels from 5 to 7"):
        kd.count_errors(small_mlp(), wider_labels)


def test_a_frozen_teacher_is_refused_by_fit_with_the_fix_and_trains_once_unfrozen(tiny_data):
    kd.seed_everything(0)
    teacher = small_mlp()
    kd.teacher_logits(teacher, tiny_data)
    settings = dict(epochs=1, lr=0.01, batch_size=16, progress=False)
    with pytest.raises(ValueError, match=r"requires_grad_\(True\)"):
        kd.fit(teacher, tiny_data, tiny_data, **settings)
    teacher.requires_grad_(True)
    kd.fit(teacher, tiny_data, tiny_data, **settings)


PLAIN_OPTIMIZERS = {
    "adam": lambda params, lr: torch.optim.Adam(params, lr=lr, fused=True),
    "sgd": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True,
                                              fused=True),
}


def plain_pytorch_loop(model, data, *, epochs, lr, batch_size, seed, cosine, loss_of,
                       optimizer="adam"):
    """The training loop written out in plain PyTorch: what kd.fit and kd.distill must equal."""
    torch.manual_seed(seed)
    order = torch.Generator().manual_seed(seed)
    optimizer = PLAIN_OPTIMIZERS[optimizer](model.parameters(), lr)
    steps = epochs * -(-len(data) // batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps) if cosine \
        else None
    for _ in range(epochs):
        model.train()
        permutation = torch.randperm(len(data), generator=order)
        for start in range(0, len(data), batch_size):
            index = permutation[start:start + batch_size]
            loss = loss_of(model(data.normalized(index)), data.labels[index], index)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()


@pytest.mark.parametrize("cosine, optimizer", [(False, "adam"), (True, "adam"), (True, "sgd")])
def test_fit_and_distill_equal_a_plain_pytorch_loop_bit_for_bit(tiny_data, cosine, optimizer):
    settings = dict(epochs=3, lr=0.01, batch_size=10, seed=4, optimizer=optimizer)
    schedule = "cosine" if cosine else "constant"
    kd.seed_everything(7)
    teacher = kd.mlp((16, 12, 3))
    targets = kd.teacher_logits(teacher, tiny_data)

    def cross_entropy(logits, labels, index):
        return torch.nn.functional.cross_entropy(logits, labels)

    def hinton(logits, labels, index):
        return (0.3 * torch.nn.functional.cross_entropy(logits, labels)
                + 0.7 * kd.kd_loss(logits, targets[index], 4.0))

    runs = {
        "fit": (lambda model: kd.fit(model, tiny_data, tiny_data, lr_schedule=schedule,
                                     progress=False, **settings), cross_entropy),
        "distill": (lambda model: kd.distill(model, teacher, tiny_data, tiny_data, T=4.0,
                                             alpha=0.3, cached_logits=targets,
                                             lr_schedule=schedule, progress=False, **settings),
                    hinton),
    }
    for name, (run, loss_of) in runs.items():
        kd.seed_everything(1)
        ours, reference = kd.mlp((16, 8, 3), dropout=0.2), kd.mlp((16, 8, 3), dropout=0.2)
        reference.load_state_dict(ours.state_dict())
        run(ours)
        plain_pytorch_loop(reference, tiny_data, cosine=cosine, loss_of=loss_of, **settings)
        for key, value in ours.state_dict().items():
            assert torch.equal(value, reference.state_dict()[key]), (name, key)


def test_distill_refuses_bad_settings_before_touching_the_teacher(tiny_data):
    teacher = small_mlp()
    for bad in ({"epochs": 0}, {"lr": -1.0}, {"batch_size": 0}, {"optimizer": "adamw"}):
        settings = {"epochs": 1, "lr": 0.01, "batch_size": 16, **bad}
        with pytest.raises(ValueError, match=next(iter(bad))):
            kd.distill(small_mlp(), teacher, tiny_data, tiny_data, T=2.0, alpha=0.5,
                       progress=False, **settings)
    assert teacher.training and all(p.requires_grad for p in teacher.parameters())


def test_teacher_outputs_of_an_empty_dataset_are_refused(tiny_data):
    empty = tiny_data.select(torch.tensor([], dtype=torch.long), " (empty)")
    with pytest.raises(ValueError, match="data is empty"):
        kd.teacher_logits(small_mlp(), empty)


class _Blank:
    """An augmentation that blanks every image (its repr is stable, for cache keys)."""

    def __call__(self, images, generator=None):
        return torch.zeros_like(images)

    def __repr__(self):
        return "Blank()"


class _RecordingTeacher(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net, self.seen = net, []

    def forward(self, x):
        self.seen.append(x.clone())
        return self.net(x)


def test_distill_with_augment_runs_the_teacher_on_the_augmented_batches(tiny_data):
    teacher = _RecordingTeacher(kd.mlp((16, 3)))
    kd.distill(kd.mlp((16, 3)), teacher, tiny_data, tiny_data, T=2.0, alpha=0.5, epochs=1,
               lr=0.01, batch_size=32, augment=_Blank(), progress=False)
    blank = tiny_data.normalize(torch.zeros(1, 1, 4, 4, dtype=torch.uint8))
    assert len(teacher.seen) == len(tiny_data) // 32
    for inputs in teacher.seen:
        torch.testing.assert_close(inputs, blank.expand_as(inputs))


def test_distill_refuses_stored_logits_with_augment(tiny_data):
    teacher = kd.mlp((16, 3))
    with pytest.raises(ValueError, match="teacher_view=.clean. only"):
        kd.distill(kd.mlp((16, 3)), teacher, tiny_data, tiny_data, T=2.0, alpha=0.5, epochs=1,
                   lr=0.01, batch_size=32, augment=_Blank(),
                   cached_logits=kd.teacher_logits(teacher, tiny_data), progress=False)
