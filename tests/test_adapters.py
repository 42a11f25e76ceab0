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


# Issue 27: adapters refuse or convert what they used to guess, naming the sample and the fix.

class Samples(torch.utils.data.Dataset):
    def __init__(self, samples):
        self.samples = samples

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        return self.samples[i]


def rgb(seed):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (4, 4, 3), np.uint8))


def test_a_fractional_label_is_refused_and_whole_numbers_of_any_type_are_taken():
    with pytest.raises(ValueError, match="sample 1 has label 1.7, not a class number"):
        kd.from_torchvision(Samples([(rgb(0), 0), (rgb(1), 1.7)]))
    data = kd.from_torchvision(Samples([(rgb(0), np.int64(2)), (rgb(1), torch.tensor(1)),
                                        (rgb(2), 0.0)]))
    assert data.labels.tolist() == [2, 1, 0]


def test_channels_last_images_are_refused_with_the_permute_that_fixes_them():
    cifar_like = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), np.uint8)
    for images in (cifar_like, torch.from_numpy(cifar_like)):
        with pytest.raises(ValueError, match=r"channels-last .*permute\(0, 3, 1, 2\)"):
            kd.from_tensors(images, [0] * 6, name="cifar-like")
    data = kd.from_tensors(torch.from_numpy(cifar_like).permute(0, 3, 1, 2), [0] * 6, name="ok")
    assert data.images.shape == (6, 3, 32, 32)
    with pytest.raises(ValueError, match="sample 0 has shape \\(32, 32, 3\\), channels-last"):
        kd.from_torchvision(Samples([(torch.from_numpy(cifar_like[0]), 0)]))


def test_a_palette_image_keeps_its_colours():
    palette = Image.new("P", (4, 4))
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)  # index 0 red, index 1 blue
    palette.putpixel((0, 0), 1)
    data = kd.from_torchvision(Samples([(palette, 0), (rgb(0), 1)]))
    assert data.images.shape == (2, 3, 4, 4)
    assert data.images[0, :, 0, 0].tolist() == [0, 0, 255] and \
        data.images[0, :, 1, 1].tolist() == [255, 0, 0]
    with pytest.raises(ValueError, match="sample 0 is a PIL image of mode 'I;16'"):
        kd.from_torchvision(Samples([(Image.new("I;16", (4, 4)), 0)]))


def test_a_single_pixel_gives_no_nan_statistics():
    with pytest.raises(ValueError, match="cannot be estimated .*pass stats="):
        kd.from_tensors(torch.full((1, 1, 1, 1), 7, dtype=torch.uint8), [0], name="one pixel")


def test_stats_may_be_a_mean_std_pair_and_anything_else_is_refused_clearly():
    images = torch.randint(0, 256, (4, 3, 2, 2), dtype=torch.uint8)
    data = kd.from_tensors(images, [0, 1, 0, 1], name="paired", stats=((0.5,) * 3, (0.25,) * 3))
    assert data.mean == (0.5,) * 3 and data.std == (0.25,) * 3
    with pytest.raises(ValueError, match=r"stats must be the training split .* \(mean, std\)"):
        kd.from_tensors(images, [0, 1, 0, 1], name="bad", stats=0.5)


def test_mixed_grayscale_and_rgb_images_are_told_to_convert_not_resize():
    with pytest.raises(ValueError, match="sample 0 has 1 channel\\(s\\) and sample 1 3.*Grayscale"):
        kd.from_torchvision(Samples([(rgb(0).convert("L"), 0), (rgb(1), 1)]))


def test_labels_beyond_the_models_classes_are_refused_before_training():
    images = torch.randint(0, 256, (8, 1, 4, 4), dtype=torch.uint8)
    data = kd.from_tensors(images, [0, 1, 2, 3, 4, 0, 1, 2], name="five classes")
    with pytest.raises(ValueError, match="train's sample 3 has label 3, but the model predicts "
                                         "3 classes .*with 5 outputs"):
        kd.fit(kd.mlp((16, 8, 3)), data, data, epochs=1, lr=1e-2, batch_size=4, progress=False)
