"""kdutils: the helper package of the knowledge-distillation course.

The names below are grouped by the course's stages; everything else stays in its module
(``kdutils.data``, ``kdutils.predict``, ...).
"""
# Runtime: seeds, devices, the quick-mode switch
from .runtime import data_dir, pick_device, quick_mode, seed_everything

# Data: the course's datasets, your own, and what can go wrong with them
from .adapters import from_tensors, from_torchvision
from .cifar import CIFAR10_CLASSES, load_cifar10
from .data import UNLABELLED, ImageDataset
from .mnist import load_mnist
from .sources import CorruptDatasetError, DatasetNotFoundError
from .text import Corpus, TokenWindows, austen_windows, load_austen, token_windows

# Models
from .models import (ConvNet, count_parameters, deep_nn, hinton_student, hinton_teacher,
                     light_nn, mlp, mnist_cnn, mnist_student, mnist_teacher)
from .gpt import CharGPT

# Losses on logits
from .losses import (SOFT_LOSSES, GeneralizedJSD, decoupled_kd_loss, decoupled_kd_terms,
                     distillation_loss, distillation_terms, js_divergence_loss, kd_loss,
                     reverse_kl_loss, soft_cross_entropy, softmax_with_temperature,
                     standardize_logits, symmetric_kl_loss)

# Distillation objectives: Hinton's, decoupled KD, logit standardization
from .objectives import DecoupledKD, HintonKD, StandardizedKD

# Training
from .regularize import RandomShift, apply_max_norm
from .train import OPTIMIZERS, History, cached_distill, cached_fit, distill, fit, train_loop

# Several runs at once (one per seed or setting)
from .parallel import WorkerError, run_grid, run_parallel, why_sequential

# Relation-based, online and self distillation
from .online import Cohort, ensemble_accuracy, mutual_learning
from .relations import rkd_angle_loss, rkd_distance_loss

# Inference and teacher outputs
from .fingerprint import select_rows
from .predict import count_errors, evaluate, next_token_scores, predict_logits, teacher_logits
from .sampling import continuation_scores, distinct_ngrams, sample
from .sparse_logits import TopKLogits, top_k_logits
from .generated_text import OnPolicy, teacher_text
from .teacher_outputs import TEACHER_VIEWS, teacher_view_logits

# Feature distillation (hints)
from .hints import (cosine_hint_loss, distill_hint, hint_regressor, mse_hint_loss,
                    pool_features, teacher_features)

# Semi-supervised distillation (SSLD)
from .semi import labelled_split, teacher_logits_batch_stats, top_k_per_class

# Exercises: check cells that say whether an answer is right
from .exercises import answer_digest, check_answer

# Analysis: statistics over seeds, class-bias calibration, plots
from .calibration import bias_for_count, shift_class_bias
from .plots import (plot_comparison, plot_forest, plot_histories, plot_history_bands,
                    plot_image_grid,
                    plot_soft_targets)
from .stats import format_mean_std, gap, mean_interval, mean_std, paired_gap

# Plumbing: the checkpoint cache
from .checkpoint import cache_dir

__all__ = [
    # runtime
    "data_dir", "pick_device", "quick_mode", "seed_everything",
    # data
    "from_tensors", "from_torchvision", "CIFAR10_CLASSES", "load_cifar10", "UNLABELLED",
    "ImageDataset", "load_mnist", "CorruptDatasetError", "DatasetNotFoundError", "Corpus",
    "TokenWindows", "austen_windows", "load_austen", "token_windows",
    # models
    "ConvNet", "count_parameters", "deep_nn", "hinton_student", "hinton_teacher", "light_nn",
    "mlp", "mnist_cnn", "mnist_student", "mnist_teacher", "CharGPT",
    # losses on logits
    "SOFT_LOSSES", "GeneralizedJSD", "reverse_kl_loss", "decoupled_kd_loss", "decoupled_kd_terms", "distillation_loss",
    "distillation_terms", "js_divergence_loss", "kd_loss", "soft_cross_entropy",
    "softmax_with_temperature", "standardize_logits", "symmetric_kl_loss",
    # distillation objectives
    "DecoupledKD", "HintonKD", "StandardizedKD",
    # training
    "OPTIMIZERS", "RandomShift", "apply_max_norm", "History", "cached_distill", "cached_fit",
    "distill", "fit", "train_loop",
    # several runs at once
    "WorkerError", "run_grid", "run_parallel", "why_sequential",
    # relation-based, online and self distillation
    "Cohort", "ensemble_accuracy", "mutual_learning", "rkd_angle_loss", "rkd_distance_loss",
    # inference and teacher outputs
    "select_rows", "count_errors", "evaluate", "next_token_scores", "predict_logits",
    "teacher_logits", "continuation_scores", "distinct_ngrams", "sample", "TopKLogits",
    "top_k_logits", "OnPolicy", "teacher_text",
    "TEACHER_VIEWS", "teacher_view_logits",
    # feature distillation
    "cosine_hint_loss", "distill_hint", "hint_regressor", "mse_hint_loss", "pool_features",
    "teacher_features",
    # semi-supervised distillation
    "labelled_split", "teacher_logits_batch_stats", "top_k_per_class",
    # exercises
    "answer_digest", "check_answer",
    # analysis
    "bias_for_count", "shift_class_bias", "plot_comparison", "plot_histories",
    "plot_forest", "plot_history_bands", "plot_image_grid", "plot_soft_targets", "format_mean_std", "gap",
    "mean_interval", "mean_std", "paired_gap",
    # plumbing
    "cache_dir",
]
