"""What the teacher sees when the student's images are augmented: the same view, the clean
image or an independent view, live or from the teacher's stored logits per view."""
import pytest
import torch

import kdutils as kd
from kdutils.training import teacher_outputs
from kdutils.data import iterate_batches


def small_mlp():
    return kd.mlp((16, 8, 3))


def test_shift_views_are_numbered_and_drawn_as_before():
    shift = kd.RandomShift(1)
    images = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4).repeat(9, 1, 1, 1)
    views = torch.arange(9)
    shifted = shift.apply(images, views)
    assert shift.views == 9 and torch.equal(shifted[shift.identity_view], images[0])
    assert shifted[0, 0, 1, 1] == images[0, 0, 0, 0]  # view 0: content moved down and right
    drawn = shift(images, torch.Generator().manual_seed(5))
    again = shift.apply(images, shift.draw(9, torch.Generator().manual_seed(5)))
    assert torch.equal(drawn, again)


@pytest.mark.parametrize("views, match", [(torch.tensor([0, 9]), "0..8"),
                                          (torch.tensor([0]), "one view number per image")])
def test_shift_refuses_views_it_does_not_have(views, match):
    with pytest.raises(ValueError, match=match):
        kd.RandomShift(1).apply(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), views)


def test_batches_carry_the_view_each_sample_got(tiny_data):
    shift = kd.RandomShift(1)
    for batch in iterate_batches(tiny_data, 32, shuffle=True,
                                 generator=torch.Generator().manual_seed(0), augment=shift):
        expected = tiny_data.normalize(shift.apply(tiny_data.images[batch.index], batch.view))
        torch.testing.assert_close(batch.inputs, expected)
    assert next(iterate_batches(tiny_data, 32)).view is None


def test_view_logits_are_the_teacher_on_each_view_and_cached(tiny_data, monkeypatch):
    teacher, shift = small_mlp(), kd.RandomShift(1)
    table = kd.teacher_view_logits(teacher, tiny_data, shift)
    assert table.shape == (len(tiny_data), 9, 3)
    for view in (0, shift.identity_view, 8):
        shifted = tiny_data.normalize(shift.apply(tiny_data.images,
                                                  torch.full((len(tiny_data),), view)))
        torch.testing.assert_close(table[:, view], teacher(shifted).detach())
    monkeypatch.setattr(teacher_outputs, "_logits_per_view", lambda *a, **k: pytest.fail("recomputed"))
    torch.testing.assert_close(kd.teacher_view_logits(teacher, tiny_data, shift), table)


def _lookup(teacher_view, table, data, shift, seed=0):
    return teacher_outputs.view_lookup(table, data, shift, teacher_view,
                                       torch.Generator().manual_seed(seed), torch.device("cpu"))


def test_same_view_lookup_is_the_live_teacher_and_clean_is_the_untransformed_image(tiny_data):
    teacher, shift = small_mlp(), kd.RandomShift(1)
    table = kd.teacher_view_logits(teacher, tiny_data, shift)
    live = teacher_outputs.live_logits(teacher, teacher)
    clean = kd.teacher_logits(teacher, tiny_data)
    for batch in iterate_batches(tiny_data, 32, shuffle=True,
                                 generator=torch.Generator().manual_seed(1), augment=shift):
        torch.testing.assert_close(_lookup("same", table, tiny_data, shift)(batch), live(batch))
        torch.testing.assert_close(_lookup("clean", table, tiny_data, shift)(batch),
                                   clean[batch.index])


def test_independent_views_are_drawn_apart_from_the_students(tiny_data):
    teacher, shift = small_mlp(), kd.RandomShift(1)
    table = kd.teacher_view_logits(teacher, tiny_data, shift)
    batch = next(iterate_batches(tiny_data, 96, augment=shift,
                                 generator=torch.Generator().manual_seed(0)))
    independent = _lookup("independent", table, tiny_data, shift, seed=1)(batch)
    same = _lookup("same", table, tiny_data, shift)(batch)
    matches = (independent == same).all(1).float().mean().item()
    assert matches < 0.4  # 1 in 9 on average when the views are independent
    torch.testing.assert_close(_lookup("independent", table, tiny_data, shift, seed=1)(batch),
                               independent)


@pytest.mark.parametrize("settings, match", [
    ({"teacher_view": "clean view"}, "must be one of"),
    ({"teacher_view": "independent"}, "needs augment"),
    ({"teacher_view": "independent", "augment": lambda images, g: images}, "numbered views"),
    ({"view_logits": torch.zeros(96, 9, 3)}, "numbered views"),
])
def test_teacher_views_the_augmentation_cannot_give_are_refused(tiny_data, settings, match):
    with pytest.raises(ValueError, match=match):
        kd.distill(small_mlp(), small_mlp(), tiny_data, tiny_data, T=2.0, alpha=0.5, epochs=1,
                   lr=0.05, batch_size=16, progress=False, **settings)


@pytest.mark.parametrize("teacher_view", ["same", "clean", "independent"])
def test_distill_trains_with_each_teacher_view_from_the_table(tiny_data, teacher_view):
    teacher, shift = small_mlp(), kd.RandomShift(1)
    table = kd.teacher_view_logits(teacher, tiny_data, shift)
    history = kd.distill(small_mlp(), teacher, tiny_data, tiny_data, T=2.0, alpha=0.5, epochs=2,
                         lr=0.05, batch_size=16, augment=shift, teacher_view=teacher_view,
                         view_logits=table, progress=False)
    assert len(history.rows) == 2


def test_same_view_from_the_table_trains_as_the_live_teacher(tiny_data):
    teacher, shift = small_mlp(), kd.RandomShift(1)
    settings = dict(T=2.0, alpha=0.5, epochs=2, lr=0.05, batch_size=16, augment=shift,
                    progress=False)
    kd.seed_everything(3)
    live = kd.distill(small_mlp(), teacher, tiny_data, tiny_data, **settings)
    kd.seed_everything(3)
    table = kd.distill(small_mlp(), teacher, tiny_data, tiny_data,
                       view_logits=kd.teacher_view_logits(teacher, tiny_data, shift), **settings)
    for a, b in zip(live.rows, table.rows):
        assert a["test_acc"] == b["test_acc"]
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)


def test_clean_view_takes_stored_logits_with_augment(tiny_data):
    teacher = small_mlp()
    history = kd.distill(small_mlp(), teacher, tiny_data, tiny_data, T=2.0, alpha=0.5, epochs=1,
                         lr=0.05, batch_size=16, augment=kd.RandomShift(1), teacher_view="clean",
                         cached_logits=kd.teacher_logits(teacher, tiny_data), progress=False)
    assert len(history.rows) == 1


def test_cached_distill_keys_students_by_teacher_view_and_checks_view_logits(tiny_data):
    teacher, other, shift = small_mlp(), small_mlp(), kd.RandomShift(1)

    def run(teacher_view, view_logits=None):
        return kd.cached_distill(lambda: kd.mlp((16, 3)), "toy", teacher, tiny_data, tiny_data,
                                 T=2.0, alpha=0.5, epochs=1, lr=0.05, batch_size=16,
                                 augment=shift, teacher_view=teacher_view,
                                 view_logits=view_logits, progress=False)[1]

    table = kd.teacher_view_logits(teacher, tiny_data, shift)
    same, clean = run("same", table), run("clean", table)
    assert same.rows[0]["seconds"] != clean.rows[0]["seconds"]  # two runs, not one loaded twice
    assert run("same", table).rows == same.rows
    with pytest.raises(ValueError, match="another teacher"):
        run("same", kd.teacher_view_logits(other, tiny_data, shift))
