"""Fingerprints of data: what ties a cache entry or a teacher's stored outputs to the exact samples
(and their order) they were made from, never to a display name."""
from __future__ import annotations

import hashlib
import warnings
from typing import Protocol

import torch


class Fingerprinted(Protocol):
    """What the checks here need of a dataset: its samples' count and its fingerprint."""

    @property
    def fingerprint(self) -> str: ...

    def __len__(self) -> int: ...


OUTPUTS_ATTRIBUTE = "data_fingerprint"  # set on a tensor of per-sample outputs


def content_fingerprint(*tensors: torch.Tensor, extra: str = "") -> str:
    """sha256 (hex) of the tensors' dtypes, shapes and bytes, and of ``extra``."""
    digest = hashlib.sha256(extra.encode())
    for tensor in tensors:
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.numpy())
    return digest.hexdigest()


def positions(index: torch.Tensor | slice | list[int], length: int) -> torch.Tensor:
    """The 1-D int64 positions (on the CPU) that ``index`` picks from ``length`` samples.

    ``index`` may be positions, a boolean mask or a slice: the same selection always gives the
    same positions, so it gives the same derived fingerprint.
    """
    if isinstance(index, torch.Tensor):
        index = index.cpu()
    picked = torch.arange(length)[index]
    if picked.dim() != 1:
        raise ValueError(f"index must select a 1-D list of samples, got one of shape "
                         f"{tuple(picked.shape)}")
    return picked


def derived_fingerprint(parent: str, operation: str, picked: torch.Tensor) -> str:
    """The fingerprint of data made from ``parent`` by ``operation`` at positions ``picked``."""
    return content_fingerprint(picked, extra=f"{parent}/{operation}")


def tag_outputs(values: torch.Tensor, data: Fingerprinted) -> torch.Tensor:
    """Mark ``values`` (one row per sample) as computed on ``data``, and return it.

    The mark is a Python attribute of that tensor object: a new tensor made from it (indexing,
    ``.to(other device)``, ``.float()``, ``torch.cat``) has none. Select rows with
    :func:`select_rows` to keep it.
    """
    setattr(values, OUTPUTS_ATTRIBUTE, data.fingerprint)
    return values


def select_rows(values: torch.Tensor, index: torch.Tensor | slice | list[int]) -> torch.Tensor:
    """The rows of per-sample outputs at ``index``, tagged for ``data.select(index, ...)``.

    Use it with :meth:`~kdutils.data.datasets.ImageDataset.select` on the data the outputs came
    from, so that the selected outputs can still be checked against the selected samples.
    """
    fingerprint = getattr(values, OUTPUTS_ATTRIBUTE, None)
    if fingerprint is None:
        raise ValueError("values carry no data fingerprint; compute them with "
                         "kd.teacher_logits(teacher, data) or kd.teacher_features(...) first")
    picked = positions(index, len(values))
    rows = values[picked.to(values.device)]
    setattr(rows, OUTPUTS_ATTRIBUTE, derived_fingerprint(fingerprint, "select", picked))
    return rows


def check_outputs_match(values: torch.Tensor, data: Fingerprinted, name: str,
                        remedy: str) -> None:
    """Refuse per-sample ``values`` that were not computed on ``data`` (in its order).

    Raises ``ValueError`` for a wrong number of rows or a fingerprint of other data; warns when
    ``values`` carry no fingerprint (made by hand, or indexed without :func:`select_rows`), as
    such rows cannot be checked. ``remedy`` says how to compute the right ones.
    """
    if values.shape[0] != len(data):
        raise ValueError(f"{name} has {values.shape[0]} rows but train has {len(data)} samples; "
                         f"{remedy}")
    fingerprint = getattr(values, OUTPUTS_ATTRIBUTE, None)
    if fingerprint is None:
        warnings.warn(f"{name} carry no data fingerprint, so nothing checks that row i belongs "
                      f"to sample i of train; {remedy} (for a selection of samples, take "
                      "kd.select_rows(outputs, positions) beside data.select(positions, ...))",
                      stacklevel=3)
    elif fingerprint != data.fingerprint:
        raise ValueError(f"{name} were computed on other data than train (other samples, or "
                         f"the same samples in another order); {remedy}")
