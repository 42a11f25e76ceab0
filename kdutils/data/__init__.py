"""Where the data come from and how they reach a model: datasets as tensors in memory (images,
windows of text), their fingerprints, the data folder and downloads, MNIST, CIFAR-10, Austen's
novels and your own data, and batches by sample index.

Read top to bottom: :mod:`.datasets` (what a dataset is, and its batches), :mod:`.fingerprint`
(what identifies it), :mod:`.sources` (where its files come from), then one module per source
(:mod:`.mnist`, :mod:`.cifar`, :mod:`.text`, :mod:`.adapters`). ``kdutils.data`` also serves the
names of :mod:`.datasets`, as the flat module of that name did.
"""
from .datasets import (CHUNK_BYTES, CHUNK_SAMPLES, UNLABELLED, Augment, Batch, ImageDataset,
                       ViewAugment, channel_stats, check_labelled, check_not_empty, chunk_samples,
                       iterate_batches)

__all__ = ["CHUNK_BYTES", "CHUNK_SAMPLES", "UNLABELLED", "Augment", "Batch", "ImageDataset",
           "ViewAugment", "channel_stats", "check_labelled", "check_not_empty", "chunk_samples",
           "iterate_batches"]
