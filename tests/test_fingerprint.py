"""Caches and teacher outputs are tied to the exact data they were made from, never to a name."""
import dataclasses

import pytest
import torch

import kdutils as kd


def relabelled(data: kd.ImageDataset) -> kd.ImageDataset:
    """Other data (labels shifted) under the very same name and source."""
    return kd.ImageDataset(data.images, (data.labels + 1) % 3, data.mean, data.std, data.name,
                           data.source)


def test_fingerprint_follows_the_data_not_the_name(tiny_data):
    same_content = kd.ImageDataset(tiny_data.images.clone(), tiny_data.labels.clone(),
                                   tiny_data.mean, tiny_data.std, "another name", "elsewhere")
    assert same_content.fingerprint == tiny_data.fingerprint
    assert relabelled(tiny_data).fingerprint != tiny_data.fingerprint
    other_stats = kd.ImageDataset(tiny_data.images, tiny_data.labels, (0.4,), tiny_data.std,
                                  tiny_data.name, tiny_data.source)
    assert other_stats.fingerprint != tiny_data.fingerprint


def test_selections_with_the_same_description_get_different_fingerprints(tiny_data):
    first = tiny_data.select(torch.arange(10), "")
    second = tiny_data.select(torch.arange(1, 11), "")
    assert first.name == second.name
    assert first.fingerprint != second.fingerprint
    assert tiny_data.select(torch.arange(10), "x").fingerprint == first.fingerprint
    mask = torch.zeros(len(tiny_data), dtype=torch.bool)
    mask[:10] = True
    assert tiny_data.select(mask, "").fingerprint == first.fingerprint
    hidden = tiny_data.hide_labels(torch.arange(5))
    assert hidden.fingerprint not in {tiny_data.fingerprint, tiny_data.hide_labels(
        torch.arange(6)).fingerprint}


def test_cached_fit_does_not_return_a_teacher_trained_on_other_data_of_the_same_name(tiny_data):
    settings = dict(epochs=1, lr=0.01, batch_size=16, progress=False)
    _, history = kd.cached_fit(lambda: kd.mlp((16, 3)), "teacher", tiny_data, tiny_data,
                               **settings)
    other = relabelled(tiny_data)
    _, other_history = kd.cached_fit(lambda: kd.mlp((16, 3)), "teacher", other, other,
                                     **settings)
    assert other_history.rows != history.rows  # trained anew, not the cached history
    assert len(list(kd.cache_dir().glob("teacher-*.pt"))) == 2


def test_distill_refuses_teacher_logits_of_other_data_or_order(tiny_data):
    kd.seed_everything(0)
    teacher, student = kd.mlp((16, 3)), kd.mlp((16, 3))
    settings = dict(T=2.0, alpha=0.5, epochs=1, lr=0.01, batch_size=16, progress=False)
    reversed_order = tiny_data.select(torch.arange(len(tiny_data) - 1, -1, -1), " reversed")
    for wrong in (kd.teacher_logits(teacher, reversed_order),
                  kd.teacher_logits(teacher, relabelled(tiny_data))):
        with pytest.raises(ValueError, match="other data than train.*kd.teacher_logits"):
            kd.distill(student, teacher, tiny_data, tiny_data, cached_logits=wrong, **settings)
    right = kd.teacher_logits(teacher, tiny_data)
    kd.distill(student, teacher, tiny_data, tiny_data, cached_logits=right, **settings)


def test_selected_rows_of_teacher_logits_match_the_selected_samples(tiny_data):
    kd.seed_everything(0)
    teacher, student = kd.mlp((16, 3)), kd.mlp((16, 3))
    logits = kd.teacher_logits(teacher, tiny_data)
    picked = torch.tensor([5, 3, 40, 41, 7, 90, 12, 60])
    part = tiny_data.select(picked, " (part)")
    rows = kd.select_rows(logits, picked)
    torch.testing.assert_close(rows, kd.teacher_logits(teacher, part))
    settings = dict(T=2.0, alpha=0.5, epochs=1, lr=0.01, batch_size=4, progress=False)
    kd.distill(student, teacher, part, part, cached_logits=rows, **settings)
    with pytest.raises(ValueError, match="other data"):
        kd.distill(student, teacher, part, part,
                   cached_logits=kd.select_rows(logits, picked.flip(0)), **settings)


def test_untagged_logits_are_accepted_with_a_warning(tiny_data):
    kd.seed_everything(0)
    teacher = kd.mlp((16, 3))
    hand_made = kd.predict_logits(teacher, tiny_data)
    with pytest.warns(UserWarning, match="no data fingerprint"):
        kd.distill(kd.mlp((16, 3)), teacher, tiny_data, tiny_data, T=2.0, alpha=0.5, epochs=1,
                   lr=0.01, batch_size=16, cached_logits=hand_made, progress=False)


def test_distill_hint_refuses_features_of_other_data(make_dataset):
    data = make_dataset(n=24)
    images = torch.randint(0, 256, (24, 3, 32, 32), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    data = kd.ImageDataset(images, data.labels, (0.5,) * 3, (0.25,) * 3, "tiny", "tiny")
    kd.seed_everything(0)
    teacher = kd.deep_nn()
    shuffled = data.select(torch.randperm(24, generator=torch.Generator().manual_seed(1)), "")
    wrong = kd.teacher_features(teacher, shuffled, pooled_size=1024)["pooled"]
    with pytest.raises(ValueError, match="other data than train.*kd.teacher_features"):
        kd.distill_hint(kd.light_nn(), wrong, data, data, hint_loss=kd.cosine_hint_loss,
                        hint_weight=0.25, ce_weight=0.75, epochs=1, lr=1e-3, batch_size=8,
                        progress=False)


def test_a_dataset_changed_with_dataclasses_replace_gets_its_own_fingerprint(tiny_data):
    part = tiny_data.select(torch.arange(10), "")
    relabelled_part = dataclasses.replace(part, labels=torch.zeros(10, dtype=torch.long))
    assert relabelled_part.fingerprint != part.fingerprint
