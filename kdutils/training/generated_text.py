"""Text written by a model, for the student to learn on: sequence-level KD's teacher text (Kim &
Rush, 2016) and on-policy distillation's student samples (GKD, Agarwal et al., 2024).

Both keep a prompt from the corpus and replace the rest of each window with sampled tokens. The
prompt's positions get the label :data:`~kdutils.data.datasets.UNLABELLED`, so a loss per position
(:func:`~kdutils.inference.predict.per_position`) covers only the sampled text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..checkpoint import cached
from ..checks import check_count, check_fraction, check_positive
from ..data.datasets import UNLABELLED, Batch
from ..data.text import TokenWindows
from ..inference.predict import freeze, model_device
from ..inference.sampling import sample
from ..runtime import torch_release
from .teacher_outputs import teacher_entry

SAMPLING_SEED = 2**31 + 1  # on-policy samples of the run with seed s draw from SAMPLING_SEED + s


def check_prompt_length(prompt_length: int, context: int) -> None:
    """Refuse a prompt that leaves no position of a ``context``-token window to sample."""
    check_count(prompt_length, "prompt_length")
    if prompt_length >= context:
        raise ValueError(f"prompt_length={prompt_length} leaves nothing to sample in windows of "
                         f"{context} tokens; use a prompt shorter than the window")


def continue_prompts(model: nn.Module, inputs: torch.Tensor, prompt_length: int,
                     temperature: float, generator: torch.Generator
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows whose first ``prompt_length`` tokens are those of ``inputs`` ``(B, L)`` and whose
    other tokens ``model`` samples: ``(inputs, labels)``, both ``(B, L)`` on ``inputs``'
    device, the labels :data:`UNLABELLED` where they are prompt."""
    length = inputs.shape[1]
    tokens = sample(model, inputs[:, :prompt_length], length - prompt_length + 1,
                    temperature=temperature, generator=generator).to(inputs.device)
    labels = tokens[:, 1:].clone()
    labels[:, :prompt_length - 1] = UNLABELLED
    return tokens[:, :-1], labels


@dataclass(frozen=True)
class OnPolicy:
    """On-policy distillation's settings: a ``fraction`` (GKD's λ) of each batch's windows is
    replaced by the student's own continuations of their first ``prompt_length`` tokens,
    sampled at ``temperature`` with the student's current weights; the teacher scores them
    live. GKD and TRL draw whole batches on-policy with probability λ; a fixed share of each
    batch has the same expected mix and less noise."""

    fraction: float
    prompt_length: int = 16
    temperature: float = 1.0

    def __post_init__(self) -> None:
        check_fraction(self.fraction, "fraction", "GKD's lambda: the share of each batch the "
                       "student writes")
        check_count(self.prompt_length, "prompt_length")
        check_positive(self.temperature, "temperature", "1 samples the student's own "
                       "distribution")

    def batches(self, student: nn.Module, seed: int) -> Callable[[Batch], Batch]:
        """What the training loop applies to each batch: its first ``fraction`` of windows
        (the batch is already shuffled) replaced by the student's samples."""
        generator = torch.Generator().manual_seed(SAMPLING_SEED + seed)

        def prepare(batch: Batch) -> Batch:
            count = round(self.fraction * len(batch.index))
            if count == 0:
                return batch
            check_prompt_length(self.prompt_length, batch.inputs.shape[1])
            inputs, labels = continue_prompts(student, batch.inputs[:count], self.prompt_length,
                                              self.temperature, generator)
            return Batch(batch.index, torch.cat([inputs, batch.inputs[count:]]),
                         torch.cat([labels, batch.labels[count:]]), batch.view)

        return prepare


def _teacher_text(teacher: nn.Module, prompts: TokenWindows, prompt_length: int,
                  temperature: float, seed: int, batch_size: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    inputs, labels = [], []
    device = model_device(teacher)
    for start in range(0, len(prompts), batch_size):
        window = prompts.samples[start:start + batch_size].to(device).long()
        new_inputs, new_labels = continue_prompts(teacher, window, prompt_length, temperature,
                                                  generator)
        inputs.append(new_inputs.to(torch.uint8).cpu())
        labels.append(new_labels.cpu())
    return {"samples": torch.cat(inputs), "labels": torch.cat(labels)}


def teacher_text(teacher: nn.Module, prompts: TokenWindows, *, prompt_length: int,
                 temperature: float = 1.0, seed: int = 0, batch_size: int = 512) -> TokenWindows:
    """Sequence-level KD's training text: for each window of ``prompts``, its first
    ``prompt_length`` tokens continued by ``teacher`` to the window's length, sampled at
    ``temperature`` (repeatable under ``seed``). Kept in the checkpoint cache, keyed by the
    teacher (architecture, weights, code), the prompts' fingerprint and the settings."""
    check_prompt_length(prompt_length, prompts.samples.shape[1])
    check_positive(temperature, "temperature", "1 samples the teacher's own distribution")
    key = {"teacher": teacher_entry(teacher), "prompts": prompts.fingerprint,
           "prompt_length": prompt_length,
           "temperature": temperature, "seed": seed, "torch": torch_release()}
    value = cached("teacher-text", key, lambda: _teacher_text(
        freeze(teacher), prompts, prompt_length, temperature, seed, batch_size))
    described = f" continued by the teacher after {prompt_length} tokens"
    return TokenWindows(value["samples"], value["labels"], prompts.vocabulary,
                        prompts.name + described, prompts.source + described)
