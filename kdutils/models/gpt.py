"""A character-level GPT: a pre-norm transformer with causal self-attention (nanoGPT's design).

The model maps token ids ``(B, L)`` to next-token logits ``(B, L, V)``: position ``i``'s logits
predict token ``i + 1`` from tokens ``0..i``. It is the course's language-model teacher and
student (notebook 09); sampling from it lives in :mod:`kdutils.inference.sampling`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_count

KeyValues = tuple[torch.Tensor, torch.Tensor]  # one attention's keys and values (B, H, L, D)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position sees only itself and earlier ones."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extend(x, None)[0]

    def extend(self, x: torch.Tensor, past: KeyValues | None) -> tuple[torch.Tensor, KeyValues]:
        """Attend from the new positions ``x`` to themselves and to ``past``, the keys and
        values of the positions before them (None: there are none); return the output and the
        keys and values of all positions so far. With a past, ``x`` is one position."""
        batch, length, width = x.shape
        q, k, v = (part.view(batch, length, self.heads, width // self.heads).transpose(1, 2)
                   for part in self.qkv(x).split(width, dim=2))
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=past is None)
        return self.proj(attended.transpose(1, 2).reshape(batch, length, width)), (k, v)


class Block(nn.Module):
    """``x + attention(norm(x))``, then ``x + mlp(norm(x))`` (pre-norm, GELU, 4x wider MLP)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attention = CausalSelfAttention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(),
                                 nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extend(x, None)[0]

    def extend(self, x: torch.Tensor, past: KeyValues | None) -> tuple[torch.Tensor, KeyValues]:
        """The block on new positions, with the attention's keys and values (see
        :meth:`CausalSelfAttention.extend`)."""
        attended, keys_values = self.attention.extend(self.norm1(x), past)
        x = x + attended
        return x + self.mlp(self.norm2(x)), keys_values


class CharGPT(nn.Module):
    """Token and learned position embeddings, ``layers`` blocks, a final norm and a linear head.

    Weights start as in GPT-2 (normal with std 0.02, the residual projections scaled by
    ``1 / sqrt(2 * layers)``). ``context`` is the longest input it takes.
    """

    def __init__(self, vocab_size: int, context: int, width: int, layers: int,
                 heads: int) -> None:
        super().__init__()
        for value, name in ((vocab_size, "vocab_size"), (context, "context"), (width, "width"),
                            (layers, "layers"), (heads, "heads")):
            check_count(value, name)
        if width % heads:
            raise ValueError(f"width ({width}) must be a multiple of heads ({heads}): each head "
                             "gets width // heads dimensions")
        self.context = context
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.position_embedding = nn.Embedding(context, width)
        self.blocks = nn.Sequential(*(Block(width, heads) for _ in range(layers)))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab_size)
        self.apply(_init_weights)
        for block in self.blocks:
            for projection in (block.attention.proj, block.mlp[2]):
                nn.init.normal_(projection.weight, std=0.02 / math.sqrt(2 * layers))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.extend(tokens, None)[0]

    def extend(self, tokens: torch.Tensor, past: list[KeyValues] | None
               ) -> tuple[torch.Tensor, list[KeyValues]]:
        """Logits for new ``tokens`` that follow the positions whose keys and values are in
        ``past`` (one pair per block; None: the tokens start the text), and the keys and values
        of all positions so far. Sampling feeds one token at a time this way, so each step costs
        one position instead of the whole text (a key-value cache)."""
        start = 0 if past is None else past[0][0].shape[2]
        end = start + tokens.shape[1]
        if end > self.context:
            raise ValueError(f"tokens reach position {end} but the model's context is "
                             f"{self.context}; pass at most the last {self.context} tokens")
        if past is not None and tokens.shape[1] != 1:
            raise ValueError("after past keys and values, extend takes one token at a time")
        positions = torch.arange(start, end, device=tokens.device)
        x = self.token_embedding(tokens) + self.position_embedding(positions)
        keys_values = []
        for i, block in enumerate(self.blocks):
            x, block_keys_values = block.extend(x, None if past is None else past[i])
            keys_values.append(block_keys_values)
        return self.head(self.norm(x)), keys_values


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
