"""The course's architectures."""
from __future__ import annotations

import torch
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
    it with :class:`~kdutils.training.regularize.RandomShift` jitter and a max-norm constraint.
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


class ConvNet(nn.Module):
    """A CNN as ``features`` (convolutions) then ``classifier`` (on the flattened feature map).

    ``forward`` returns the logits; :meth:`forward_with_features` also returns the feature map
    that hint losses use, so one class serves plain training and every kind of distillation.
    """

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential) -> None:
        super().__init__()
        self.features = features
        self.classifier = classifier

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, feature_map)``; the feature map is the last convolution block's output."""
        feature_map = self.features(x)
        return self.classifier(feature_map.flatten(1)), feature_map

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]


def _conv_relu(channels_in: int, channels_out: int, batch_norm: bool) -> list[nn.Module]:
    """A 3x3 same-size convolution and a ReLU, with BatchNorm in between if asked."""
    conv = nn.Conv2d(channels_in, channels_out, kernel_size=3, padding=1)
    return [conv, nn.BatchNorm2d(channels_out), nn.ReLU()] if batch_norm else [conv, nn.ReLU()]


def deep_nn(num_classes: int = 10, batch_norm: bool = False) -> ConvNet:
    """The PyTorch KD tutorial's CIFAR-10 teacher ``DeepNN`` (1,186,986 parameters).

    Its feature map is 32 x 8 x 8 (2,048 values when flattened). ``batch_norm=True`` adds a
    BatchNorm layer after each convolution (576 more parameters), for SSLD's teacher-mode study.
    """
    features = nn.Sequential(
        *_conv_relu(3, 128, batch_norm), *_conv_relu(128, 64, batch_norm),
        nn.MaxPool2d(kernel_size=2, stride=2),
        *_conv_relu(64, 64, batch_norm), *_conv_relu(64, 32, batch_norm),
        nn.MaxPool2d(kernel_size=2, stride=2),
    )
    classifier = nn.Sequential(nn.Linear(2048, 512), nn.ReLU(), nn.Dropout(0.1),
                               nn.Linear(512, num_classes))
    return ConvNet(features, classifier)


def mnist_cnn() -> ConvNet:
    """A small LeNet-style CNN for MNIST (1,256,080 parameters): a stronger teacher than Hinton
    et al.'s MLP, for notebook 05's extension.

    Two 5x5 same-size convolutions (20 and 50 channels), each followed by a ReLU and 2x2 max
    pooling, then 2450-500-10 with dropout 0.5. Its feature map is 50 x 7 x 7.
    """
    features = nn.Sequential(
        nn.Conv2d(1, 20, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(kernel_size=2),
        nn.Conv2d(20, 50, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(kernel_size=2),
    )
    classifier = nn.Sequential(nn.Linear(50 * 7 * 7, 500), nn.ReLU(), nn.Dropout(0.5),
                               nn.Linear(500, 10))
    return ConvNet(features, classifier)


def light_nn(num_classes: int = 10) -> ConvNet:
    """The PyTorch KD tutorial's CIFAR-10 student ``LightNN`` (267,738 parameters).

    Its feature map is 16 x 8 x 8 (1,024 values when flattened).
    """
    features = nn.Sequential(
        *_conv_relu(3, 16, False), nn.MaxPool2d(kernel_size=2, stride=2),
        *_conv_relu(16, 16, False), nn.MaxPool2d(kernel_size=2, stride=2),
    )
    classifier = nn.Sequential(nn.Linear(1024, 256), nn.ReLU(), nn.Dropout(0.1),
                               nn.Linear(256, num_classes))
    return ConvNet(features, classifier)
