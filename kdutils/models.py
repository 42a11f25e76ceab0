"""The course's architectures."""
from __future__ import annotations

from torch import nn


def mlp(sizes: tuple[int, ...], dropout: float = 0.0, input_dropout: float = 0.0
        ) -> nn.Sequential:
    """A ReLU multilayer perceptron on flattened images, e.g. ``sizes=(784, 1200, 1200, 10)``.

    ``dropout`` is applied after every hidden layer's ReLU (none after the output layer),
    ``input_dropout`` to the input pixels.
    """
    if len(sizes) < 2:
        raise ValueError(f"sizes needs an input and an output size, got {sizes}")
    layers: list[nn.Module] = [nn.Flatten()]
    if input_dropout > 0:
        layers.append(nn.Dropout(input_dropout))
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


def hinton_teacher() -> nn.Sequential:
    """Hinton et al. (2015)'s MNIST teacher: 784-1200-1200-10 with dropout.

    Dropout 0.2 on the inputs and 0.5 on the hidden units, as in Srivastava et al. (2014); train
    it with :class:`~kdutils.regularize.RandomShift` jitter and a max-norm constraint.
    """
    return mlp((784, 1200, 1200, 10), dropout=0.5, input_dropout=0.2)


def hinton_student(hidden: int) -> nn.Sequential:
    """Hinton et al. (2015)'s small MNIST net: 784-``hidden``-``hidden``-10, no regularization.

    The paper uses ``hidden=800`` for its main result and ``hidden=30`` for the temperature study.
    """
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise ValueError(f"hidden must be a positive number of units (the paper uses 800 or 30), "
                         f"got {hidden!r}")
    return mlp((784, hidden, hidden, 10))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
