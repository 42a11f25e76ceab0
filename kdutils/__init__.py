"""kdutils: the helper package of the knowledge-distillation course."""
from .checkpoint import cache_dir, load_or_train
from .data import (Batch, DatasetNotFoundError, ImageDataset, channel_stats, iterate_batches,
                   load_mnist)
from .losses import (distillation_loss, distillation_terms, kd_loss, softmax_with_temperature)
from .models import count_parameters, mlp, mnist_student, mnist_teacher
from .runtime import data_dir, pick_device, quick_mode, seed_everything
from .plots import plot_comparison, plot_histories, plot_soft_targets
from .stats import format_mean_std, gap, mean_std
from .train import History, cached_fit, distill, evaluate, fit, predict_logits, teacher_logits, train_loop

__all__ = [
    "Batch", "DatasetNotFoundError", "History", "cache_dir", "cached_fit", "load_or_train", "ImageDataset", "channel_stats", "count_parameters",
    "data_dir", "distill", "distillation_loss", "distillation_terms", "evaluate", "fit",
    "iterate_batches", "kd_loss", "load_mnist", "mlp", "mnist_student", "mnist_teacher",
    "pick_device", "plot_comparison", "plot_histories", "plot_soft_targets", "format_mean_std", "gap", "mean_std", "predict_logits", "quick_mode", "seed_everything", "softmax_with_temperature",
    "teacher_logits", "train_loop",
]
