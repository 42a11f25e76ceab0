"""Sampling from a language model, and what the course measures on the samples: how plausible
another model finds them (the teacher as judge), how uncertain the sampler was along them, and
how varied they are (distinct n-grams)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_count, check_positive
from .predict import model_device


def check_top_k(top_k: int | None, vocab_size: int) -> None:
    """Refuse a ``top_k`` that is not None or a whole number in ``1..vocab_size``."""
    if top_k is not None:
        check_count(top_k, "top_k")
        if top_k > vocab_size:
            raise ValueError(f"top_k={top_k} is more than the vocabulary's {vocab_size} tokens; "
                             "use top_k=None to sample from all of them")


def next_token(logits: torch.Tensor, temperature: float, top_k: int | None,
               generator: torch.Generator | None) -> torch.Tensor:
    """One token per row of ``logits`` ``(B, V)``, drawn from ``softmax(logits / temperature)``
    restricted to the ``top_k`` most probable tokens.

    Gumbel-max sampling with the noise drawn on the CPU from ``generator``: the same generator
    state gives the same tokens on every device (up to ties of the logits' rounding).
    """
    scaled = logits.float() / temperature
    if top_k is not None:
        kth = scaled.topk(top_k, dim=1).values[:, -1:]
        scaled = scaled.masked_fill(scaled < kth, -math.inf)
    uniform = torch.rand(scaled.shape, generator=generator).clamp_(min=1e-20)
    gumbel = -torch.log(-torch.log(uniform)).to(scaled.device)
    return (scaled + gumbel).argmax(1)


@torch.no_grad()
def sample(model: nn.Module, prompts: torch.Tensor, length: int, *, temperature: float = 1.0,
           top_k: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Continue each row of ``prompts`` (token ids ``(B, P)``) by ``length`` sampled tokens;
    returns ``(B, P + length)`` on the CPU. ``model`` is a :class:`~kdutils.models.gpt.CharGPT` (or
    has its ``context`` and ``extend``); it runs in eval mode and is put back in the mode it was
    in. Within its context each step feeds one token through the key-value cache; beyond it, the
    model sees the last ``context`` tokens."""
    check_count(length, "length")
    check_positive(temperature, "temperature", "1 samples the model's own distribution; lower "
                   "is greedier")
    if prompts.dim() != 2 or prompts.shape[1] == 0:
        raise ValueError(f"prompts must be token ids of shape (batch, prompt length >= 1), got "
                         f"shape {tuple(prompts.shape)}")
    was_training = model.training
    model.eval()
    tokens = prompts.to(model_device(model)).long()
    past, new = None, tokens[:, -model.context:]
    for step in range(length):
        if tokens.shape[1] <= model.context:  # the key-value cache holds every position
            logits, past = model.extend(new, past)
        else:  # past the context: the last `context` tokens, recomputed
            logits = model(tokens[:, -model.context:])
        if step == 0:
            check_top_k(top_k, logits.shape[-1])
        new = next_token(logits[:, -1], temperature, top_k, generator)[:, None]
        tokens = torch.cat([tokens, new], dim=1)
    model.train(was_training)
    return tokens.cpu()


@torch.no_grad()
def continuation_scores(model: nn.Module, tokens: torch.Tensor,
                        prompt_length: int) -> dict[str, float]:
    """How ``model`` sees the tokens after the first ``prompt_length`` of each row of ``tokens``
    ``(B, L)``, L at most the model's context: ``bits_per_char``, the mean cross-entropy of those
    tokens under ``model`` (with a teacher as ``model``: how plausible it finds a student's
    samples), and ``entropy_bits``, the mean entropy of ``model``'s next-token distribution at
    those positions (how uncertain it is along them)."""
    check_count(prompt_length, "prompt_length")
    if not prompt_length < tokens.shape[1] <= model.context:
        raise ValueError(f"tokens must be longer than prompt_length={prompt_length} and at most "
                         f"the model's context ({model.context}), got {tokens.shape[1]}")
    was_training = model.training
    model.eval()
    inputs = tokens.to(model_device(model)).long()
    logits = model(inputs[:, :-1])[:, prompt_length - 1:].float()
    log_p = F.log_softmax(logits, dim=-1)
    targets = inputs[:, prompt_length:]
    nats = -log_p.gather(2, targets[..., None]).mean().item()
    entropy = -(log_p.exp() * log_p).sum(-1).mean().item()
    model.train(was_training)
    return {"bits_per_char": nats / math.log(2), "entropy_bits": entropy / math.log(2)}


def distinct_ngrams(tokens: torch.Tensor, n: int) -> float:
    """The share of distinct ``n``-grams among all ``n``-grams of the rows of ``tokens``
    ``(B, L)`` (1: no n-gram repeats; a model that loops scores low)."""
    check_count(n, "n")
    if tokens.shape[1] < n:
        raise ValueError(f"rows of {tokens.shape[1]} tokens have no {n}-grams; use a smaller n")
    grams = tokens.long().unfold(1, n, 1).reshape(-1, n)
    return len(torch.unique(grams, dim=0)) / len(grams)
