"""A teacher's outputs stored sparsely: the k largest logits of every position and their token
ids, as large-scale distillation stores them (the full distribution of a real vocabulary would not
fit). Looked up like dense logits, with ``-inf`` for the tokens left out, so the teacher's
softmax at any temperature is its top-k renormalized."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..checks import check_count
from ..data.fingerprint import OUTPUTS_ATTRIBUTE


@dataclass(frozen=True)
class TopKLogits:
    """``values`` ``(N, ..., k)``: the k largest logits of each row, in decreasing order;
    ``indices``: their token ids (uint8 up to 256 tokens, else int16); ``classes``: the
    vocabulary's size. Rows are looked up by sample like a tensor of logits: ``table[index]``
    gives dense float logits ``(len(index), ..., classes)`` with ``-inf`` where a token is not
    stored."""

    values: torch.Tensor
    indices: torch.Tensor
    classes: int
    data_fingerprint: str | None = field(default=None)

    @property
    def k(self) -> int:
        return self.values.shape[-1]

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the dense logits this table stands for."""
        return (*self.values.shape[:-1], self.classes)

    @property
    def nbytes(self) -> int:
        """Bytes held: values and indices."""
        return (self.values.numel() * self.values.element_size()
                + self.indices.numel() * self.indices.element_size())

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index: torch.Tensor | slice) -> torch.Tensor:
        values = self.values[index]
        dense = values.new_full((*values.shape[:-1], self.classes), float("-inf"))
        return dense.scatter_(-1, self.indices[index].long(), values)

    def to(self, device: torch.device | str) -> "TopKLogits":
        """The same table on ``device``."""
        return TopKLogits(self.values.to(device), self.indices.to(device), self.classes,
                          self.data_fingerprint)

    def agrees_with(self, logits: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-4) -> bool:
        """Whether dense ``logits`` (the first ``len(logits)`` rows) have these top-k values at
        these tokens."""
        rows = slice(0, len(logits))
        stored = self.values[rows].to(logits.device)
        found = logits.gather(-1, self.indices[rows].long().to(logits.device))
        return torch.allclose(found, stored, rtol=rtol, atol=atol)


def top_k_logits(logits: torch.Tensor, k: int) -> TopKLogits:
    """The ``k`` largest of each row of ``logits`` (last dimension), with the data fingerprint of
    ``logits`` (:func:`~kdutils.inference.predict.teacher_logits`) carried over."""
    check_count(k, "k")
    classes = logits.shape[-1]
    if k > classes:
        raise ValueError(f"k={k} is more than the {classes} tokens of the logits; keep at most "
                         f"k={classes} (then nothing is left out)")
    values, indices = logits.topk(k, dim=-1)
    index_dtype = torch.uint8 if classes <= 256 else torch.int16
    return TopKLogits(values.contiguous(), indices.to(index_dtype).contiguous(), classes,
                      getattr(logits, OUTPUTS_ATTRIBUTE, None))
