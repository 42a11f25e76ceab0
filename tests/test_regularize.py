import pytest
import torch

import kdutils as kd


def test_random_shift_moves_each_image_within_the_limit_and_fills_with_zeros():
    images = torch.zeros(64, 1, 9, 9, dtype=torch.uint8)
    images[:, 0, 4, 4] = 255  # one bright pixel in the centre
    shifted = kd.RandomShift(2)(images, torch.Generator().manual_seed(0))
    assert shifted.shape == images.shape and shifted.dtype == torch.uint8
    assert (shifted == 255).sum((1, 2, 3)).eq(1).all()  # the pixel survives, nothing else appears
    rows, cols = torch.nonzero(shifted[:, 0] == 255)[:, 1:].T
    assert rows.sub(4).abs().max() == 2 and cols.sub(4).abs().max() == 2
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 15  # many of the 25 offsets are drawn


def test_random_shift_output_is_one_of_the_zero_padded_shifts_of_its_input():
    image = torch.arange(1, 26, dtype=torch.uint8).view(1, 1, 5, 5)
    padded = torch.nn.functional.pad(image, (1, 1, 1, 1))[0, 0]
    candidates = [padded[y:y + 5, x:x + 5] for y in range(3) for x in range(3)]
    shifted = kd.RandomShift(1)(image.repeat(200, 1, 1, 1), torch.Generator().manual_seed(1))
    drawn = {next(i for i, c in enumerate(candidates) if torch.equal(out, c))
             for out in shifted[:, 0]}
    assert drawn == set(range(9))


def test_random_shift_of_zero_is_the_identity_and_negative_is_refused():
    images = torch.randint(0, 256, (4, 3, 6, 6), dtype=torch.uint8)
    assert torch.equal(kd.RandomShift(0)(images), images)
    with pytest.raises(ValueError, match="max_pixels"):
        kd.RandomShift(-1)


def test_max_norm_caps_each_units_incoming_weights_only_when_too_long():
    model = kd.mlp((4, 3, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[3.0, 4.0, 0, 0], [0.3, 0.4, 0, 0], [0, 0, 0, 10.0]]))
    kd.apply_max_norm(model, 2.0)
    norms = model[1].weight.norm(dim=1)
    torch.testing.assert_close(norms, torch.tensor([2.0, 0.5, 2.0]), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model[1].weight[0], torch.tensor([1.2, 1.6, 0, 0]), rtol=1e-5,
                               atol=1e-5)
    assert model[3].weight.norm(dim=1).max() <= 2.0 + 1e-5


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True])
def test_max_norm_must_be_a_positive_number(bad):
    with pytest.raises(ValueError, match="max_norm"):
        kd.apply_max_norm(kd.mlp((4, 2)), bad)


def test_fit_with_jitter_and_max_norm_keeps_the_constraint_and_is_deterministic(make_dataset):
    data = make_dataset(n=64)
    runs = []
    for _ in range(2):
        kd.seed_everything(3)
        model = kd.mlp((16, 8, 3), dropout=0.5, input_dropout=0.2)
        history = kd.fit(model, data, data, epochs=2, lr=0.05, batch_size=16, seed=3,
                         augment=kd.RandomShift(1), max_norm=0.5, lr_schedule="cosine",
                         progress=False)
        runs.append((model, history.column("loss")))
    for layer in (runs[0][0][2], runs[0][0][5]):
        assert layer.weight.norm(dim=1).max() <= 0.5 + 1e-5
    assert runs[0][1] == runs[1][1]
    for a, b in zip(runs[0][0].parameters(), runs[1][0].parameters()):
        assert torch.equal(a, b)


def test_fit_refuses_an_unknown_schedule_and_a_bad_max_norm_before_training(make_dataset):
    data = make_dataset(n=16)
    with pytest.raises(ValueError, match="lr_schedule"):
        kd.fit(kd.mlp((16, 3)), data, data, epochs=1, lr=0.1, batch_size=8,
               lr_schedule="step", progress=False)
    with pytest.raises(ValueError, match="max_norm"):
        kd.fit(kd.mlp((16, 3)), data, data, epochs=1, lr=0.1, batch_size=8, max_norm=-3,
               progress=False)
