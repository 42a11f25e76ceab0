import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import kdutils as kd  # noqa: E402


def test_image_grid_has_one_titled_row_per_group():
    images = torch.randint(0, 256, (2, 3, 3, 8, 8), dtype=torch.uint8)
    fig = kd.plot_image_grid(images, ["cat", "dog"], title="picked")
    assert len(fig.axes) == 6
    assert [fig.axes[0].get_ylabel(), fig.axes[3].get_ylabel()] == ["cat", "dog"]
    shown = fig.axes[4].images[0].get_array()
    assert shown.shape == (8, 8, 3) and (shown == images[1, 1].permute(1, 2, 0).numpy()).all()
    plt.close(fig)


def test_comparison_is_a_dot_plot_with_each_mean_and_its_t_interval():
    fig = kd.plot_comparison({"alone": [90.0, 91.0, 92.0], "KD": [93.0, 93.0, 93.0]},
                             reference={"alone": 89.0})
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    assert low < 89.0 and high > 93.0  # every reference mark and interval is on the axis
    assert not ax.patches  # no bars
    mean, lower, upper = kd.stats.mean_interval([90.0, 91.0, 92.0])
    assert (mean, upper - mean) == pytest.approx((91.0, 4.302652729911275 / 3**0.5))
    plt.close(fig)


def test_history_bands_draw_one_mean_line_per_setting():
    runs = []
    for shift in (0.0, 1.0, 2.0):
        history = kd.History("run")
        history.rows = [{"epoch": e, "test_acc": 80 + e + shift} for e in (1, 2, 3)]
        runs.append(history)
    fig = kd.plot_history_bands({"alone": runs}, keys=("test_acc",))
    (line,) = fig.axes[0].get_lines()
    assert list(line.get_ydata()) == pytest.approx([82.0, 83.0, 84.0])
    plt.close(fig)


def test_forest_plot_puts_each_interval_on_its_row_with_zero_marked():
    gaps = {"KD": kd.paired_gap([92.0, 93.0, 94.0], [90.0, 90.5, 91.5]),
            "one seed": kd.paired_gap([92.0], [90.0])}
    fig = kd.plot_forest(gaps, published={"KD": "+0.8 (CIFAR-100)"})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["one seed", "KD"]
    assert any(t.get_text() == "+0.8 (CIFAR-100)" for t in ax.texts)
    assert "red x: cannot be judged" in ax.get_xlabel()  # the one-seed row
    low, high = ax.get_xlim()
    assert low < gaps["KD"].low and high > gaps["KD"].high
    plt.close(fig)


def test_forest_plot_saved_tight_keeps_the_published_notes():
    note = "+0.83, +1.66 (CIFAR-100, two CNN pairs; Tian et al. 2020)"
    fig = kd.plot_forest({"KD": kd.paired_gap([92.0, 93.0, 94.0], [90.0, 90.5, 91.5])},
                         published={"KD": note})
    renderer = fig.canvas.get_renderer()
    saved = fig.get_tightbbox(renderer)  # what bbox_inches="tight" (Jupyter's inline) keeps
    (text,) = [t for t in fig.axes[0].texts if t.get_text() == note]
    assert text.get_window_extent(renderer).x1 <= saved.x1 * fig.dpi + 1
    plt.close(fig)


def test_history_bands_accept_integer_columns():
    runs = []
    for errors in (100, 120):
        history = kd.History("run")
        history.rows = [{"epoch": e, "test_errors": errors - e} for e in (1, 2)]
        runs.append(history)
    fig = kd.plot_history_bands({"alone": runs}, keys=("test_errors",))
    (line,) = fig.axes[0].get_lines()
    assert list(line.get_ydata()) == pytest.approx([109.0, 108.0])
