"""The course's figures."""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import torch

from ..training.loop import History
from .stats import Gap, mean_interval


def _epoch_panels(keys: Sequence[str], title: str,
                  draw: Callable[[plt.Axes, str], None]) -> plt.Figure:
    """One panel per key, epochs on the x axis; ``draw(ax, key)`` fills each panel."""
    fig, axes = plt.subplots(1, len(keys), figsize=(5.5 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        draw(ax, key)
        ax.set(xlabel="epoch", ylabel=key)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_histories(histories: Sequence[History], keys: Sequence[str] = ("loss", "test_acc"),
                   title: str = "") -> plt.Figure:
    """One panel per key (e.g. training loss, test accuracy) with one line per run, by epoch."""
    def draw(ax: plt.Axes, key: str) -> None:
        for history in histories:
            if key in history.rows[0]:
                ax.plot(history.column("epoch"), history.column(key), marker=".",
                        label=history.label)

    return _epoch_panels(keys, title, draw)


def plot_comparison(results: Mapping[str, Sequence[float]], ylabel: str = "test accuracy (%)",
                    title: str = "", reference: Mapping[str, float] | None = None) -> plt.Figure:
    """Each setting's seeds as dots and their mean with its 95% t-interval (a dot plot: no bar
    from a truncated axis); optional published values as red marks."""
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(results)), 4))
    for i, (label, values) in enumerate(results.items()):
        mean, low, high = mean_interval(values)
        ax.errorbar(i, mean, yerr=[[mean - low], [high - mean]], fmt="o", color="tab:blue",
                    ms=8, capsize=6, label="mean, 95% interval" if i == 0 else None)
        ax.plot([i + 0.12] * len(values), values, "k.", ms=5,
                label="one seed" if i == 0 else None)
        if reference and label in reference:
            ax.plot(i, reference[label], "r_", ms=30, mew=2,
                    label="published" if "published" not in ax.get_legend_handles_labels()[1]
                    else None)
    ax.set_xticks(range(len(results)), list(results), rotation=20, ha="right")
    ax.set_xlim(-0.5, len(results) - 0.5)
    ax.set(ylabel=ylabel, title=title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # never over a point
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_history_bands(groups: Mapping[str, Sequence[History]], keys: Sequence[str] = ("test_acc",),
                       title: str = "") -> plt.Figure:
    """One panel per key; per group of runs (a setting over its seeds), the mean by epoch with a
    band from the lowest to the highest seed."""
    def draw(ax: plt.Axes, key: str) -> None:
        for label, histories in groups.items():
            values = torch.tensor([h.column(key) for h in histories], dtype=torch.float64)
            epochs = histories[0].column("epoch")
            line, = ax.plot(epochs, values.mean(0), marker=".", label=f"{label} (n={len(values)})")
            ax.fill_between(epochs, values.min(0).values, values.max(0).values,
                            color=line.get_color(), alpha=0.2)

    return _epoch_panels(keys, title, draw)


def plot_forest(gaps: Mapping[str, Gap], published: Mapping[str, str] | None = None,
                xlabel: str = "gain over the student alone (points)", title: str = ""
                ) -> plt.Figure:
    """One row per comparison: its difference with the 95% interval, a line at 0, and the
    published effect as text on the right (papers measure on other data, so not on the axis).
    A gap that cannot be judged (no spread) is a red x."""
    labels = list(gaps)
    fig, ax = plt.subplots(figsize=(12, 0.55 * len(labels) + 1.4))
    notes = []
    for row, label in enumerate(labels):
        gap = gaps[label]
        y = len(labels) - 1 - row
        if gap.unjudgeable is None:
            ax.errorbar(gap.difference, y, xerr=[[gap.difference - gap.low],
                                                 [gap.high - gap.difference]],
                        fmt="o", color="tab:blue" if gap.exceeds_noise else "tab:gray", capsize=4)
        else:
            ax.plot(gap.difference, y, "x", color="tab:red")
        if published and label in published:
            notes.append(ax.annotate(published[label], (1.02, y),
                                     xycoords=("axes fraction", "data"), va="center", fontsize=8))
    if published:
        notes.append(ax.annotate("published, on the paper's data", (1.02, 1.0),
                                 xycoords="axes fraction", va="bottom", fontsize=8, weight="bold"))
    ax.axvline(0, color="k", lw=1)
    ax.set_yticks(range(len(labels)), labels[::-1])
    legend = "blue: the 95% interval excludes 0, gray: unresolved"
    if any(gap.unjudgeable is not None for gap in gaps.values()):
        legend += ", red x: cannot be judged"
    ax.set_xlabel(f"{xlabel}; {legend}")
    ax.set_title(title, loc="left")  # clear of the notes' heading on the right
    ax.grid(axis="x", alpha=0.3)
    for note in notes:  # the layout gives the notes the figure's right-hand third ...
        note.set_in_layout(False)
    fig.tight_layout(rect=(0, 0, 0.66 if published else 1, 1))
    for note in notes:  # ... and a figure saved with bbox_inches="tight" (Jupyter) keeps them
        note.set_in_layout(True)
    return fig


def plot_soft_targets(images: torch.Tensor, probabilities: Mapping[float, torch.Tensor],
                      titles: Sequence[str]) -> plt.Figure:
    """Each image beside its soft-target distribution at several temperatures (bars per T)."""
    n = len(images)
    fig, axes = plt.subplots(n, 2, figsize=(9, 2.2 * n), gridspec_kw={"width_ratios": [1, 4]},
                             squeeze=False)
    width = 0.8 / len(probabilities)
    for row, (image, title) in enumerate(zip(images, titles)):
        axes[row][0].imshow(image.squeeze(0), cmap="gray")
        axes[row][0].set_title(title, fontsize=9)
        axes[row][0].axis("off")
        for k, (T, probs) in enumerate(probabilities.items()):
            x = torch.arange(probs.shape[1]) + (k - (len(probabilities) - 1) / 2) * width
            axes[row][1].bar(x, probs[row], width=width, label=f"T={T:g}")
        axes[row][1].set_xticks(range(probs.shape[1]))
        axes[row][1].set_ylabel("probability")
    axes[0][1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_image_grid(images: torch.Tensor, row_titles: Sequence[str], title: str = ""
                    ) -> plt.Figure:
    """uint8 images ``(rows, columns, channels, height, width)`` in a grid, one title per row."""
    rows, columns = images.shape[:2]
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 0.9 + 1.2, rows * 0.9),
                             squeeze=False)
    for r in range(rows):
        for c in range(columns):
            axes[r][c].imshow(images[r, c].permute(1, 2, 0).squeeze(-1).numpy(),
                              cmap="gray" if images.shape[2] == 1 else None)
            axes[r][c].set_xticks([])
            axes[r][c].set_yticks([])
        axes[r][0].set_ylabel(row_titles[r], rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
