"""Exercise check cells: right answers pass, wrong ones do not, and the answer stays hidden."""
from kdutils.classroom import exercises


def test_a_right_answer_passes_to_the_given_decimals(capsys):
    digest = exercises.answer_digest(-0.2413, 3)
    exercises.check_answer(-0.24129, digest, 3)
    assert capsys.readouterr().out == "right.\n"


def test_a_wrong_answer_fails_without_revealing_the_right_one(capsys):
    digest = exercises.answer_digest(-0.2413, 3)
    exercises.check_answer(0.2413, digest, 3)
    out = capsys.readouterr().out
    assert out.startswith("not yet: 0.241") and "-0.241" not in out
    for not_a_number in (float("nan"), "-0.241", None):
        exercises.check_answer(not_a_number, digest, 3)
        assert capsys.readouterr().out.startswith("not checked: give a number")


def test_negative_zero_rounds_like_zero():
    assert exercises.answer_digest(-0.0001, 2) == exercises.answer_digest(0.0, 2)


def test_numpy_scalars_and_one_value_tensors_are_checked_as_numbers(capsys):
    """Issue 27: they were answered 'not checked: give a number'."""
    import numpy as np
    import torch
    digest = exercises.answer_digest(-0.2413, 3)
    for value in (np.float32(-0.2413), np.float64(-0.2413), torch.tensor(-0.2413)):
        exercises.check_answer(value, digest, 3)
        assert capsys.readouterr().out == "right.\n"
    exercises.check_answer(torch.tensor([1.0, 2.0]), digest, 3)
    assert capsys.readouterr().out.startswith("not checked: give a number")
