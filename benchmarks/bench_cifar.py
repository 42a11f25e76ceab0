"""Time notebook 03's runs: the PyTorch KD tutorial's own loops against kdutils, in the same run.

The reference is the tutorial's code path: a dataset that does what torchvision's CIFAR10 does
per sample (uint8 array -> PIL image -> ToTensor -> Normalize), a DataLoader with batch 128,
shuffling and 2 workers, Adam lr 1e-3, and the teacher run forward at every step of the KD,
cosine and regressor runs. kdutils runs the same models and losses on the same settings, with
the teacher's outputs computed once. Both read the same images (the ones kdutils loads), so only
the training code differs. Ratios are reference / kdutils.

    python benchmarks/bench_cifar.py --steps 40   # 40 steps of each kind, scaled to an epoch
    python benchmarks/bench_cifar.py              # full epochs (about 15 minutes on 2 cores)
"""
from __future__ import annotations

import argparse
import itertools
import math
import time
from typing import Callable

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

import kdutils as kd

BATCH, LR, EPOCHS = 128, 1e-3, 10
T, SOFT, HINT, CE = 2.0, 0.25, 0.25, 0.75
KINDS = ("teacher", "student", "kd", "cosine", "regressor")


class TutorialCIFAR(Dataset):
    """What ``torchvision.datasets.CIFAR10.__getitem__`` does, on already-loaded images."""

    def __init__(self, data: kd.ImageDataset) -> None:
        self.images = data.images.permute(0, 2, 3, 1).numpy()  # (N, H, W, C), like CIFAR10.data
        self.labels = data.labels.tolist()
        self.transform = transforms.Compose([
            transforms.ToTensor(),
            transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        ])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


def tutorial_loss(kind: str, teacher: kd.ConvNet, regressor: nn.Module | None
                  ) -> Callable[[kd.ConvNet, torch.Tensor, torch.Tensor], torch.Tensor]:
    """The tutorial's loss for one step of ``kind``, teacher forward included."""
    def loss(student: kd.ConvNet, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits, feature_map = student.forward_with_features(images)
        ce = F.cross_entropy(logits, labels)
        if kind in ("teacher", "student"):
            return ce
        with torch.no_grad():
            teacher_logits, teacher_map = teacher.forward_with_features(images)
        if kind == "kd":
            soft = -(F.softmax(teacher_logits / T, 1) * F.log_softmax(logits / T, 1)).sum(1).mean()
            return SOFT * soft * T**2 + CE * ce
        if kind == "cosine":
            target = F.avg_pool1d(teacher_map.flatten(1), 2)
            cosine = nn.CosineEmbeddingLoss()(feature_map.flatten(1), target,
                                              torch.ones(len(images)))
            return HINT * cosine + CE * ce
        return HINT * F.mse_loss(regressor(feature_map), teacher_map) + CE * ce
    return loss


def time_tutorial(train: kd.ImageDataset, steps: int) -> dict[str, float]:
    """Seconds for ``steps`` steps of each kind of the tutorial's loop."""
    loader = DataLoader(TutorialCIFAR(train), batch_size=BATCH, shuffle=True, num_workers=2)
    kd.seed_everything(0)
    teacher = kd.deep_nn()
    seconds = {}
    for kind in KINDS:
        model = teacher if kind == "teacher" else kd.light_nn()
        regressor = kd.hint_regressor() if kind == "regressor" else None
        params = list(model.parameters()) + (list(regressor.parameters()) if regressor else [])
        optimizer = torch.optim.Adam(params, lr=LR)
        loss = tutorial_loss(kind, teacher, regressor)
        model.train()
        if kind != "teacher":
            teacher.eval()
        start = time.perf_counter()
        for images, labels in itertools.islice(loader, steps):
            optimizer.zero_grad()
            loss(model, images, labels).backward()
            optimizer.step()
        seconds[kind] = time.perf_counter() - start
    return seconds


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_kdutils(train: kd.ImageDataset, test: kd.ImageDataset, steps: int) -> dict[str, float]:
    """Seconds for one kdutils epoch of each kind on ``steps`` batches (test set scaled alike)."""
    common = dict(epochs=1, lr=LR, batch_size=BATCH, progress=False)
    kd.seed_everything(0)
    teacher = kd.deep_nn()
    seconds = {"teacher": timed(lambda: kd.fit(teacher, train, test, **common))}
    seconds["features"] = timed(lambda: kd.teacher_features(teacher, train, pooled_size=1024))
    outputs = kd.teacher_features(teacher, train, pooled_size=1024)
    seconds["student"] = timed(lambda: kd.fit(kd.light_nn(), train, test, **common))
    seconds["kd"] = timed(lambda: kd.distill(kd.light_nn(), teacher, train, test, T=T,
                                             alpha=1 - SOFT, cached_logits=outputs["logits"],
                                             **common))
    hint = dict(hint_weight=HINT, ce_weight=CE, **common)
    seconds["cosine"] = timed(lambda: kd.distill_hint(kd.light_nn(), outputs["pooled"], train, test,
                                                      hint_loss=kd.cosine_hint_loss, **hint))
    seconds["regressor"] = timed(lambda: kd.distill_hint(
        kd.light_nn(), outputs["feature_map"], train, test, hint_loss=kd.mse_hint_loss,
        regressor=kd.hint_regressor(), **hint))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=None,
                        help="time this many steps of each kind and scale to a full epoch")
    args = parser.parse_args()
    train, test = kd.load_cifar10(True), kd.load_cifar10(False)
    epoch_steps = math.ceil(len(train) / BATCH)
    steps = min(args.steps or epoch_steps, epoch_steps)
    scale = epoch_steps / steps
    if steps < epoch_steps:
        fraction = steps * BATCH / len(train)
        train, test = train.subset(steps * BATCH), test.subset(round(len(test) * fraction))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}, "
          f"{steps} of {epoch_steps} steps per epoch timed, scaled x{scale:.2f}; {train.name}")
    tutorial = {k: v * scale for k, v in time_tutorial(train, steps).items()}
    ours = {k: v * scale for k, v in time_kdutils(train, test, steps).items()}
    print(f"{'one epoch':<11}{'tutorial s':>11}{'kdutils s':>11}{'ratio':>8}")
    for kind in KINDS:
        print(f"{kind:<11}{tutorial[kind]:>11.1f}{ours[kind]:>11.1f}"
              f"{tutorial[kind] / ours[kind]:>7.1f}x")
    print(f"teacher outputs computed once by kdutils: {ours['features']:.1f} s "
          "(kdutils' epochs include a test-set evaluation; the tutorial's do not)")
    tutorial_total = EPOCHS * sum(tutorial.values())
    ours_total = EPOCHS * sum(ours[k] for k in KINDS) + ours["features"]
    print(f"whole tutorial, one seed ({EPOCHS} epochs of each kind): tutorial "
          f"{tutorial_total / 60:.1f} min, kdutils {ours_total / 60:.1f} min, ratio "
          f"{tutorial_total / ours_total:.1f}x; the teacher's training is "
          f"{EPOCHS * ours['teacher'] / ours_total:.0%} of kdutils' total")


if __name__ == "__main__":
    main()
