"""kdutils: the helper package of the knowledge-distillation course.

Its folders follow the path of a run, top to bottom: ``data`` (where the samples come from and
how they are batched), ``models``, ``losses`` (what a student minimizes: pure functions of
tensors), ``inference`` (running a model: predictions, a teacher's outputs, sampling,
deployment), ``training`` (the one loop and everything built on it), ``analysis`` (statistics
and figures) and ``classroom`` (teacher packs, exercise checks). Beside them, the foundations
every stage uses: ``runtime`` (seeds, devices, quick mode, paths), ``checks`` (argument checks),
``checkpoint`` (the keyed cache) and ``identity`` (what identifies a model in a cache key).
Inference comes before training because training runs a model too (to score it, and to run a
teacher); no module imports one of a later stage, and there are no import cycles.

The names below are the course's public API, grouped by stage; ``kd.data``, ``kd.predict``,
``kd.stats``, ``kd.parallel``, ``kd.teacher_outputs`` and ``kd.deploy`` also name the modules
the notebooks reach into, at the addresses they had before the folders.
"""
# Runtime: seeds, devices, the quick-mode switch
from .runtime import data_dir, pick_device, quick_mode, seed_everything

# Data: the course's datasets, your own, and what can go wrong with them
from .data.adapters import from_tensors, from_torchvision
from .data.cifar import CIFAR10_CLASSES, load_cifar10
from .data.datasets import UNLABELLED, ImageDataset
from .data.mnist import load_mnist
from .data.sources import CorruptDatasetError, DatasetNotFoundError
from .data.text import Corpus, TokenWindows, austen_windows, load_austen, token_windows

# Models
from .models.classifiers import (ConvNet, count_parameters, deep_nn, hinton_student, hinton_teacher,
                     light_nn, mlp, mnist_cnn, mnist_student, mnist_teacher)
from .models.gpt import CharGPT

# Losses on logits
from .losses.logits import (SOFT_LOSSES, GeneralizedJSD, decoupled_kd_loss, decoupled_kd_terms,
                     distillation_loss, distillation_terms, js_divergence_loss, kd_loss,
                     reverse_kl_loss, soft_cross_entropy, softmax_with_temperature,
                     standardize_logits, symmetric_kl_loss)

# Distillation objectives: Hinton's, decoupled KD, logit standardization
from .losses.objectives import DecoupledKD, HintonKD, StandardizedKD

# Training
from .training.regularize import RandomShift, apply_max_norm
from .training.distill import cached_distill, distill
from .training.fit import cached_fit, fit
from .training.loop import OPTIMIZERS, History, train_loop

# Several runs at once (one per seed or setting)
from .training.parallel import WorkerError, run_grid, run_parallel, why_sequential

# Relation-based, online and self distillation
from .training.online import Cohort, ensemble_accuracy, mutual_learning
from .losses.relations import rkd_angle_loss, rkd_distance_loss

# Inference and teacher outputs
from .data.fingerprint import select_rows
from .inference.predict import (count_errors, evaluate, next_token_scores, predict_logits,
                                teacher_logits)
from .inference.sampling import continuation_scores, distinct_ngrams, sample
from .training.sparse_logits import TopKLogits, top_k_logits
from .training.generated_text import OnPolicy, teacher_text
from .training.teacher_outputs import TEACHER_VIEWS, teacher_view_logits

# Feature distillation (hints)
from .training.hints import (cosine_hint_loss, distill_hint, hint_regressor, mse_hint_loss,
                    pool_features, teacher_features)

# Semi-supervised distillation (SSLD)
from .training.semi import labelled_split, teacher_logits_batch_stats, top_k_per_class

# Exercises: check cells that say whether an answer is right
from .classroom.exercises import answer_digest, check_answer

# Analysis: statistics over seeds, class-bias calibration, plots
from .analysis.calibration import bias_for_count, shift_class_bias
from .analysis.plots import (plot_comparison, plot_forest, plot_histories, plot_history_bands,
                    plot_image_grid,
                    plot_soft_targets)
from .analysis.stats import format_mean_std, gap, mean_interval, mean_std, paired_gap

# Plumbing: the checkpoint cache
from .checkpoint import cache_dir

# Modules the notebooks and benchmarks use by name (kd.predict.logits_of, kd.stats.mean_interval,
# ...), kept at their former addresses
from . import checkpoint, identity, runtime
from .analysis import stats
from .inference import predict
from .training import parallel, teacher_outputs


def __getattr__(name: str):
    """``kd.deploy`` (and ``from kdutils import deploy``), imported on first use: it loads
    PyTorch's benchmark and profiler tools, which only notebook 07 needs."""
    if name == "deploy":
        from .inference import deploy
        return deploy
    raise AttributeError(f"module 'kdutils' has no attribute {name!r}")

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
    "SOFT_LOSSES", "GeneralizedJSD", "reverse_kl_loss", "decoupled_kd_loss", "decoupled_kd_terms",
    "distillation_loss", "distillation_terms", "js_divergence_loss", "kd_loss", "soft_cross_entropy",
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
    "plot_forest", "plot_history_bands", "plot_image_grid", "plot_soft_targets",
    "format_mean_std", "gap", "mean_interval", "mean_std", "paired_gap",
    # plumbing
    "cache_dir",
    # modules reached into by name
    "checkpoint", "data", "identity", "parallel", "predict", "runtime", "stats", "teacher_outputs",
]
