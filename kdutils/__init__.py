"""kdutils: the helper package of the knowledge-distillation course."""
from .calibration import bias_for_count, shift_class_bias
from .checkpoint import cache_dir, load_or_train
from .data import (Batch, DatasetNotFoundError, ImageDataset, channel_stats, iterate_batches,
                   load_mnist)
from .losses import (distillation_loss, distillation_terms, kd_loss, softmax_with_temperature)
from .models import (count_parameters, hinton_student, hinton_teacher, mlp, mnist_student,
                     mnist_teacher)
from .regularize import RandomShift, apply_max_norm
from .runtime import data_dir, pick_device, quick_mode, seed_everything
from .plots import plot_comparison, plot_histories, plot_soft_targets
from .stats import format_mean_std, gap, mean_std
from .train import (History, cached_fit, count_errors, distill, evaluate, fit, predict_logits,
                    teacher_logits, train_loop)

__all__ = [
    "apply_max_norm", "Batch", "bias_for_count", "cache_dir", "cached_fit", "channel_stats",
    "count_errors", "count_parameters", "data_dir", "DatasetNotFoundError", "distill",
    "distillation_loss", "distillation_terms", "evaluate", "fit", "format_mean_std", "gap",
    "hinton_student", "hinton_teacher", "History", "ImageDataset", "iterate_batches", "kd_loss",
    "load_mnist", "load_or_train", "mean_std", "mlp", "mnist_student", "mnist_teacher",
    "pick_device", "plot_comparison", "plot_histories", "plot_soft_targets", "predict_logits",
    "quick_mode", "RandomShift", "seed_everything", "shift_class_bias", "softmax_with_temperature",
    "teacher_logits", "train_loop",
]
