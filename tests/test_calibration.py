import pytest
import torch

import kdutils as kd


def test_bias_for_count_makes_exactly_that_many_rows_predict_the_class():
    logits = torch.randn(500, 10, generator=torch.Generator().manual_seed(0))
    logits[:, 3] -= 4.0  # a class the model never predicts, like a student that never saw 3s
    for count in (1, 50, 120, 499):
        bias = kd.bias_for_count(logits, 3, count)
        shifted = logits.clone()
        shifted[:, 3] += bias
        assert (shifted.argmax(1) == 3).sum().item() == count


@pytest.mark.parametrize("cls, count, match", [(10, 5, "cls"), (3, 0, "count"), (3, 500, "count")])
def test_bias_for_count_refuses_impossible_requests(cls, count, match):
    with pytest.raises(ValueError, match=match):
        kd.bias_for_count(torch.zeros(500, 10), cls, count)


def test_shift_class_bias_returns_a_shifted_copy():
    model = kd.mlp((4, 5, 3))
    shifted = kd.shift_class_bias(model, 2, 1.5)
    torch.testing.assert_close(shifted[3].bias - model[3].bias, torch.tensor([0.0, 0.0, 1.5]))
    x = torch.randn(7, 4)
    torch.testing.assert_close(shifted(x) - model(x), torch.tensor([0.0, 0.0, 1.5]).expand(7, 3))
