"""kdutils: the helper package of the knowledge-distillation course."""
from .calibration import bias_for_count, shift_class_bias
from .checkpoint import cache_dir, cached, load_or_train
from .cifar import CIFAR10_CLASSES, load_cifar10
from .data import (UNLABELLED, Batch, CorruptDatasetError, DatasetNotFoundError, ImageDataset,
                   channel_stats, iterate_batches)
from .mnist import load_mnist
from .fingerprint import select_rows
from .divergences import SOFT_LOSSES, js_divergence_loss, soft_cross_entropy, symmetric_kl_loss
from .hints import HintStudent, distill_hint, teacher_features
from .losses import (cosine_hint_loss, distillation_loss, distillation_terms, kd_loss,
                     mse_hint_loss, pool_features, softmax_with_temperature)
from .models import (ConvNet, count_parameters, deep_nn, hint_regressor, hinton_student,
                     hinton_teacher, light_nn, mlp, mnist_student, mnist_teacher)
from .regularize import RandomShift, apply_max_norm
from .semi import labelled_split, teacher_logits_batch_stats, top_k_per_class
from .runtime import data_dir, pick_device, quick_mode, seed_everything
from .plots import plot_comparison, plot_histories, plot_image_grid, plot_soft_targets
from .stats import format_mean_std, gap, mean_std, paired_gap
from .train import (History, cached_fit, count_errors, distill, evaluate, fit, predict_logits,
                    teacher_logits, train_loop)

__all__ = [
    "apply_max_norm", "Batch", "bias_for_count", "cache_dir", "cached", "cached_fit",
    "channel_stats", "CIFAR10_CLASSES", "ConvNet", "CorruptDatasetError", "cosine_hint_loss",
    "count_errors", "count_parameters", "data_dir", "DatasetNotFoundError", "deep_nn", "distill",
    "distill_hint", "distillation_loss", "distillation_terms", "evaluate", "fit",
    "format_mean_std", "gap", "hint_regressor", "hinton_student", "hinton_teacher",
    "HintStudent", "History", "ImageDataset", "iterate_batches", "js_divergence_loss",
    "kd_loss", "labelled_split", "light_nn", "load_cifar10", "load_mnist", "load_or_train",
    "mean_std", "mlp", "mnist_student", "mnist_teacher", "mse_hint_loss", "paired_gap",
    "pick_device",
    "plot_comparison", "plot_histories", "plot_image_grid", "plot_soft_targets",
    "pool_features", "predict_logits", "quick_mode", "RandomShift", "seed_everything",
    "select_rows",
    "shift_class_bias", "soft_cross_entropy", "SOFT_LOSSES", "softmax_with_temperature",
    "symmetric_kl_loss", "teacher_features", "teacher_logits", "teacher_logits_batch_stats",
    "top_k_per_class", "train_loop", "UNLABELLED",
]
