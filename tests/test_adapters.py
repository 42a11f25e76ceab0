"""Your own data: tensors or a torchvision dataset become an ImageDataset (no download)."""
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets, transforms

import kdutils as kd


def fake_split(size: int, seed: int) -> datasets.FakeData:
    """A torchvision dataset made in memory: random 3x8x8 PIL images, 3 classes."""
    return datasets.FakeData(size=size, image_size=(3, 8, 8), num_classes=3, random_offset=seed)


def test_a_torchvision_dataset_becomes_an_image_dataset_that_trains_and_distils():
    train = kd.from_torchvision(fake_split(48, 0))
    test = kd.from_torchvision(fake_split(24, 1000), stats=train)
    assert train.images.shape == (48, 3, 8, 8) and train.images.dtype == torch.uint8
    image, label = fake_split(48, 0)[5]
    assert torch.equal(train.images[5], torch.from_numpy(np.array(image)).permute(2, 0, 1))
    assert train.labels[5] == int(label) and "FakeData" in train.source
    assert test.mean == train.mean and test.fingerprint != train.fingerprint
    kd.seed_everything(0)
    teacher, _ = kd.cached_fit(lambda: kd.mlp((192, 16, 3)), "fake-teacher", train, test,
                               epochs=1, lr=1e-3, batch_size=16, progress=False)
    history = kd.distill(kd.mlp((192, 8, 3)), teacher, train, test, T=2.0, alpha=0.5,
                         epochs=1, lr=1e-3, batch_size=16, progress=False)
    assert 0 <= history.final_accuracy <= 100


def test_from_tensors_computes_statistics_and_accepts_one_channel_images():
    images = torch.randint(0, 256, (10, 5, 5), dtype=torch.uint8)
    data = kd.from_tensors(images, list(range(10)), name="digits")
    assert data.images.shape == (10, 1, 5, 5)
    assert data.mean[0] == pytest.approx(images.double().mean().item() / 255)
    assert kd.from_tensors(images, list(range(10)), name="other name").fingerprint == \
        data.fingerprint
    images.zero_()  # the dataset keeps its own copy
    assert data.images.float().std() > 0


@pytest.mark.parametrize("images, labels, match", [
    (torch.rand(4, 1, 5, 5), [0, 1, 2, 3], "uint8"),
    (torch.zeros(4, 1, 5, 5, dtype=torch.uint8), [0, 1, 2], "4 integers"),
    (torch.zeros(4, 1, 5, 5, dtype=torch.uint8), [0, 1, 2, -3], ">= 0"),
    (torch.zeros(4, 1, 5, 5, dtype=torch.uint8), [0, 1, 2, 3], "standard deviation of 0"),
])
def test_from_tensors_refuses_what_it_cannot_use(images, labels, match):
    with pytest.raises(ValueError, match=match):
        kd.from_tensors(images, labels, name="bad")


def test_a_normalizing_transform_or_mixed_sizes_are_refused_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match="without a transform"):
        kd.from_torchvision(datasets.FakeData(size=4, image_size=(3, 8, 8),
                                              transform=transforms.ToTensor()))
    for i, size in enumerate([(8, 8), (8, 8), (6, 6)]):
        folder = tmp_path / "cls"
        folder.mkdir(exist_ok=True)
        Image.new("RGB", size).save(folder / f"{i}.png")
    with pytest.raises(ValueError, match="differ in size.*Resize"):
        kd.from_torchvision(datasets.ImageFolder(tmp_path))
