import pytest
import torch

from kdutils.optim import FusedAdam, learning_rates


def train_steps(model, optimizer, steps, rates=None, on_step=None):
    """``steps`` Adam steps on a fixed regression problem; the second layer gets no gradient.

    ``rates`` sets FusedAdam's rate before each step; ``on_step`` runs after each (a scheduler).
    """
    g = torch.Generator().manual_seed(1)
    for step in range(steps):
        inputs = torch.randn(8, 5, generator=g)
        loss = model[0](inputs).pow(2).mean()  # model[1] is unused: its grads stay None
        optimizer.zero_grad()
        loss.backward()
        if rates is not None:
            optimizer.lr = rates[step]
        optimizer.step()
        if on_step is not None:
            on_step()


def two_layers(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Linear(4, 3))


def test_fused_adam_matches_torch_adam_bit_for_bit():
    ours, reference = two_layers(0), two_layers(0)
    train_steps(ours, FusedAdam(ours.parameters(), lr=1e-2), 20)
    train_steps(reference, torch.optim.Adam(reference.parameters(), lr=1e-2, fused=True), 20)
    for mine, theirs in zip(ours.parameters(), reference.parameters()):
        assert torch.equal(mine, theirs)
    assert not torch.equal(ours[0].weight, two_layers(0)[0].weight)  # it did train
    assert torch.equal(ours[1].weight, two_layers(0)[1].weight)  # no gradient, no update


def test_cosine_rates_match_torch_cosine_annealing_bit_for_bit():
    holder = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(holder, T_max=50)
    expected = []
    for _ in range(50):
        expected.append(holder.param_groups[0]["lr"])
        holder.step()
        scheduler.step()
    assert learning_rates("cosine", 0.3, 50) == expected
    assert learning_rates("constant", 0.3, 4) == [0.3] * 4


def test_cosine_schedule_with_fused_adam_matches_torch():
    ours, reference = two_layers(2), two_layers(2)
    train_steps(ours, FusedAdam(ours.parameters(), lr=0.05), 12, learning_rates("cosine", 0.05, 12))
    optimizer = torch.optim.Adam(reference.parameters(), lr=0.05, fused=True)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=12)
    train_steps(reference, optimizer, 12, on_step=scheduler.step)
    for mine, theirs in zip(ours.parameters(), reference.parameters()):
        assert torch.equal(mine, theirs)


def test_unknown_schedule_is_refused_by_name():
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        learning_rates("step", 0.1, 10)
