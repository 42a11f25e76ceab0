import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
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
