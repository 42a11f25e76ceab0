"""Deployment costs and formats: figures that count what they say, ONNX Runtime agreeing with
PyTorch, int8 weights that still predict, and bad inputs refused with the fix."""
import pytest
import torch

import kdutils as kd
from kdutils import deploy

EXAMPLE = torch.zeros(1, 1, 4, 4)


def test_a_profile_counts_parameters_bytes_and_macs_of_the_layers():
    model = kd.mlp((16, 8, 3))
    profile = deploy.profile_model(model, EXAMPLE, batch=64, min_run_time=0.01)
    assert profile.parameters == 16 * 8 + 8 + 8 * 3 + 3
    assert profile.macs == 16 * 8 + 8 * 3, "one multiply-accumulate per weight of a Linear"
    assert profile.disk_bytes >= 4 * profile.parameters
    assert profile.latency_ms > 0 and profile.throughput > 0 and profile.batch == 64
    assert profile.peak_bytes >= 64 * (8 + 3) * 4, "the activations of a batch of 64"
    assert model.training, "the caller's model is left as it was"


def test_macs_of_a_convolution_match_the_formula():
    model = kd.mnist_cnn()
    first, second = 20 * 1 * 25 * 28 * 28, 50 * 20 * 25 * 14 * 14
    classifier = 2450 * 500 + 500 * 10
    assert deploy.count_macs(model, torch.zeros(2, 1, 28, 28)) == first + second + classifier


def test_onnx_runtime_gives_pytorchs_logits_and_int8_still_predicts(tmp_path, tiny_data):
    kd.seed_everything(0)
    model = kd.mlp((16, 32, 3))
    kd.fit(model, tiny_data, tiny_data, epochs=3, lr=1e-2, batch_size=16, progress=False)
    path = deploy.export_onnx(model, EXAMPLE, tmp_path / "model.onnx")
    session = deploy.onnx_session(path)
    logits = deploy.onnx_logits(session, tiny_data, batch_size=40)
    expected = kd.predict_logits(model, tiny_data)
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
    int8 = deploy.onnx_session(deploy.quantize_int8(path, tmp_path / "int8.onnx"))
    quantized = deploy.onnx_logits(int8, tiny_data)
    assert (tmp_path / "int8.onnx").stat().st_size < path.stat().st_size
    assert (quantized.argmax(1) == expected.argmax(1)).float().mean() > 0.9
    assert (quantized - expected).abs().max() < 1.0, "int8 weights round, they do not scramble"


def test_bad_input_shapes_are_refused_with_the_fix(tmp_path):
    model = kd.mlp((16, 8, 3))
    with pytest.raises(ValueError, match=r"example of shape \(1, 3, 32, 32\) does not fit the "
                                         r"model .*torch.zeros\(1, 1, 28, 28\)"):
        deploy.profile_model(model, torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="example must be a batch tensor"):
        deploy.export_onnx(model, [1, 2], tmp_path / "m.onnx")
    session = deploy.onnx_session(deploy.export_onnx(model, EXAMPLE, tmp_path / "m.onnx"))
    with pytest.raises(ValueError, match=r"inputs of shape \(2, 1, 5, 5\) do not fit the ONNX "
                                         r"model"):
        deploy.onnx_run(session, torch.zeros(2, 1, 5, 5))
