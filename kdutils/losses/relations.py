"""Relation-based knowledge: Relational KD (Park et al., CVPR 2019).

The student matches the *structure* of the teacher's embeddings within a batch, not the
embeddings themselves: the distances between pairs of samples (each set normalized by its mean
distance, so the two embedding spaces may differ in scale and dimension) and the angles formed by
triplets. Both are compared with the Huber loss (``F.smooth_l1_loss``), and the teacher's side is
a constant. Embeddings are ``(batch, features)``; a feature map is flattened first.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def check_embeddings(student_embeddings: torch.Tensor, teacher_embeddings: torch.Tensor) -> None:
    """Raise ``ValueError`` unless both hold the same samples (same batch size, at least 2)."""
    for name, e in (("student_embeddings", student_embeddings),
                    ("teacher_embeddings", teacher_embeddings)):
        if e.dim() < 2:
            raise ValueError(f"{name} must be (batch, features), got shape {tuple(e.shape)}")
    if len(student_embeddings) != len(teacher_embeddings) or len(student_embeddings) < 2:
        raise ValueError(f"student_embeddings and teacher_embeddings must hold the same samples, "
                         f"at least 2 (relations are between samples); got batches of "
                         f"{len(student_embeddings)} and {len(teacher_embeddings)}")


def normalized_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """Euclidean distances of every pair ``i < j``, divided by their mean (Park et al., eq. 5)."""
    distances = F.pdist(embeddings.flatten(1))
    return distances / distances.mean().clamp(min=torch.finfo(distances.dtype).tiny)


def triplet_cosines(embeddings: torch.Tensor) -> torch.Tensor:
    """``cos`` of the angle at ``j`` between ``e_i - e_j`` and ``e_k - e_j``, for every i, j, k
    (Park et al., eq. 7); a pair with ``i == j`` gives 0."""
    e = embeddings.flatten(1)
    directions = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), dim=2)  # [j, i] = unit(e_i - e_j)
    return torch.bmm(directions, directions.transpose(1, 2)).flatten()


def relation_loss(relation: Callable[[torch.Tensor], torch.Tensor],
                  student_embeddings: torch.Tensor, teacher_embeddings: torch.Tensor
                  ) -> torch.Tensor:
    """Huber loss between ``relation`` of the student's and of the teacher's embeddings."""
    check_embeddings(student_embeddings, teacher_embeddings)
    with torch.no_grad():
        target = relation(teacher_embeddings)
    return F.smooth_l1_loss(relation(student_embeddings), target)


def rkd_distance_loss(student_embeddings: torch.Tensor, teacher_embeddings: torch.Tensor
                      ) -> torch.Tensor:
    """Huber loss between the normalized pairwise distances of student and teacher."""
    return relation_loss(normalized_distances, student_embeddings, teacher_embeddings)


def rkd_angle_loss(student_embeddings: torch.Tensor, teacher_embeddings: torch.Tensor
                   ) -> torch.Tensor:
    """Huber loss between the triplet angles' cosines of student and teacher."""
    return relation_loss(triplet_cosines, student_embeddings, teacher_embeddings)
