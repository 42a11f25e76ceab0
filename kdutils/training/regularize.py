"""Regularizers of Hinton et al. (2012, 2015) for MNIST nets: pixel jitter and max-norm."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_positive


@dataclass(frozen=True)
class RandomShift:
    """Jitter: shift each image by up to ``max_pixels`` pixels in each direction, zero-filled.

    Applied to uint8 ``(N, C, H, W)`` images before normalization, so the uncovered border gets
    the background value 0. Each image draws its own vertical and horizontal shift, uniformly in
    ``-max_pixels .. max_pixels``, from ``generator``.
    """

    max_pixels: int = 2

    def __post_init__(self) -> None:
        if isinstance(self.max_pixels, bool) or not isinstance(self.max_pixels, int) \
                or self.max_pixels < 0:
            raise ValueError(f"max_pixels must be an integer >= 0, got {self.max_pixels!r}")

    @property
    def views(self) -> int:
        """How many distinct shifts there are: ``(2 * max_pixels + 1) ** 2``."""
        return (2 * self.max_pixels + 1) ** 2

    @property
    def identity_view(self) -> int:
        """The view number of the unshifted image."""
        return self.max_pixels * (2 * self.max_pixels + 1) + self.max_pixels

    def draw(self, n: int, generator: torch.Generator | None = None,
             device: torch.device | str = "cpu") -> torch.Tensor:
        """A random view number in ``0 .. views - 1`` for each of ``n`` images:
        ``dy * (2 * max_pixels + 1) + dx``, the two shifts drawn uniformly."""
        side = 2 * self.max_pixels + 1
        dy, dx = torch.randint(0, side, (2, n), generator=generator, device=device)
        return dy * side + dx

    def apply(self, images: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
        """uint8 ``images`` ``(N, C, H, W)``, each shifted as its view number in ``views`` says."""
        if views.shape != images.shape[:1]:
            raise ValueError(f"views must hold one view number per image, shape "
                             f"({images.shape[0]},), got {tuple(views.shape)}")
        if views.numel() and (views.min() < 0 or views.max() >= self.views):
            raise ValueError(f"views must lie in 0..{self.views - 1} for max_pixels="
                             f"{self.max_pixels}, got {int(views.min())} to {int(views.max())}")
        n, _, height, width = images.shape
        m, side, device = self.max_pixels, 2 * self.max_pixels + 1, images.device
        padded = F.pad(images, (m, m, m, m))
        views = views.to(device)
        dy, dx = (views // side)[:, None], (views % side)[:, None]
        rows = (dy + torch.arange(height, device=device))[:, None, :, None]
        cols = (dx + torch.arange(width, device=device))[:, None, None, :]
        samples = torch.arange(n, device=device)[:, None, None, None]
        channels = torch.arange(images.shape[1], device=device)[None, :, None, None]
        return padded[samples, channels, rows, cols]

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        return self.apply(images, self.draw(len(images), generator, images.device))


def check_max_norm(max_norm: float) -> None:
    """Raise ``ValueError`` unless ``max_norm`` is a finite number > 0."""
    check_positive(max_norm, "max_norm", "Srivastava et al. use 3 to 4")


@torch.no_grad()
def apply_max_norm(model: nn.Module, max_norm: float) -> None:
    """Rescale, in place, every unit's incoming weight vector whose L2 norm exceeds ``max_norm``.

    The constraint of Srivastava et al. (2014) used with dropout: each row of every
    ``nn.Linear`` weight is projected back onto the ball of radius ``max_norm`` after a step.
    """
    check_max_norm(max_norm)
    for layer in model.modules():
        if isinstance(layer, nn.Linear):
            layer.weight.renorm_(2, 0, max_norm)
