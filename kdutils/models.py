"""The course's architectures."""
from __future__ import annotations

from torch import nn


def mlp(sizes: tuple[int, ...], dropout: float = 0.0) -> nn.Sequential:
    """A ReLU multilayer perceptron on flattened images, e.g. ``sizes=(784, 1200, 1200, 10)``.

    ``dropout`` is applied after every hidden layer's ReLU (none after the output layer).
    """
    if len(sizes) < 2:
        raise ValueError(f"sizes needs an input and an output size, got {sizes}")
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def mnist_teacher() -> nn.Sequential:
    """The seed article's MNIST teacher: 784-1200-1200-10 with dropout 0.5."""
    return mlp((784, 1200, 1200, 10), dropout=0.5)


def mnist_student() -> nn.Sequential:
    """The seed article's tiny MNIST student: 784-20-20-10, no dropout."""
    return mlp((784, 20, 20, 10))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
