"""What a model costs at deployment, measured with PyTorch's own tools: parameters, bytes on
disk, multiply-accumulates (``torch.utils.flop_counter``), latency and throughput
(``torch.utils.benchmark``), peak memory of a forward pass (``torch.profiler``); and the formats
a CPU deployment uses: ONNX export, an ONNX Runtime session, int8 weights by ONNX Runtime's
quantizer. Timings on a shared CPU drift: compare figures measured in the same run."""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

# torch.utils.benchmark imports cpp_extension, which logs a warning on machines with a CUDA
# build of PyTorch but no GPU; nothing here compiles C++, so the notice is noise.
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)

from torch import nn  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402
from torch.utils import benchmark  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from ..data.datasets import ImageDataset, check_not_empty, iterate_batches  # noqa: E402
from .predict import EVAL_BATCH, logits_of  # noqa: E402


@dataclass(frozen=True)
class Profile:
    """A model's costs; latencies in milliseconds, per sample figures for one input."""

    parameters: int
    disk_bytes: int
    macs: int                 # multiply-accumulates per sample
    latency_ms: float         # median at batch 1
    latency_iqr_ms: float     # interquartile range of the batch-1 timings
    throughput: float         # samples per second at batch ``batch``
    batch: int
    peak_bytes: int           # memory allocated at the peak of a batch-``batch`` forward pass
    threads: int


def check_example(model: nn.Module, example: torch.Tensor) -> None:
    """Refuse an ``example`` batch that is not a tensor the model can run on, with the fix."""
    if not isinstance(example, torch.Tensor) or example.dim() < 2 or len(example) < 1:
        raise ValueError(f"example must be a batch tensor (N, ...) of the model's inputs, got "
                         f"{getattr(example, 'shape', type(example).__name__)}; e.g. "
                         "torch.zeros(1, 1, 28, 28) for MNIST, torch.zeros(1, 3, 32, 32) for "
                         "CIFAR-10")
    try:
        with torch.no_grad():
            model(example)
    except RuntimeError as error:
        raise ValueError(f"example of shape {tuple(example.shape)} does not fit the model "
                         f"({str(error).splitlines()[0]}); pass one batch of its inputs, e.g. "
                         "torch.zeros(1, 1, 28, 28) for MNIST, torch.zeros(1, 3, 32, 32) for "
                         "CIFAR-10") from None


def count_macs(model: nn.Module, example: torch.Tensor) -> int:
    """Multiply-accumulates of one sample's forward pass (FlopCounterMode's FLOPs / 2)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(example)
    return counter.get_total_flops() // 2 // len(example)


def disk_bytes(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``: what a checkpoint of it weighs."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def time_call(call: Callable[[], Any], threads: int = 1,
              min_run_time: float = 1.0) -> benchmark.Measurement:
    """``call()`` timed by ``torch.utils.benchmark.Timer.blocked_autorange`` on ``threads``
    PyTorch threads (warm-up, blocks of repeats, CUDA synchronised); ``.median``, ``.iqr``."""
    timer = benchmark.Timer(stmt="call()", globals={"call": call}, num_threads=threads)
    return timer.blocked_autorange(min_run_time=min_run_time)


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Hide what C++ code writes to file descriptor 2 (the profiler's start/stop lines)."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_forward_bytes(model: nn.Module, example: torch.Tensor) -> int:
    """Memory allocated at the peak of one forward pass on ``example``, beyond what existed
    before (the weights and the input): the activations. Measured by ``torch.profiler``'s memory
    events on the CPU, by ``torch.cuda.max_memory_allocated`` on CUDA."""
    if example.device.type == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        with torch.no_grad():
            model(example)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    with _native_stderr_silenced(), torch.no_grad(), \
            profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        model(example)
    allocated = peak = 0
    for event in sorted(profiler.events(), key=lambda e: e.time_range.start):
        allocated += event.self_cpu_memory_usage
        peak = max(peak, allocated)
    return peak


def profile_model(model: nn.Module, example: torch.Tensor, *, threads: int = 1,
                  batch: int = 1024, min_run_time: float = 1.0) -> Profile:
    """The costs of ``model`` (a copy in eval mode, on ``example``'s device) for inputs shaped
    like one sample of ``example``: latency at batch 1, throughput and peak memory at ``batch``,
    on ``threads`` threads."""
    check_example(model, example)
    model = copy.deepcopy(model).eval().to(example.device)
    one, many = example[:1], example[:1].expand(batch, *example.shape[1:]).contiguous()
    with torch.no_grad():
        latency = time_call(lambda: model(one), threads, min_run_time)
        bulk = time_call(lambda: model(many), threads, min_run_time)
    return Profile(parameters=sum(p.numel() for p in model.parameters()),
                   disk_bytes=disk_bytes(model), macs=count_macs(model, one),
                   latency_ms=latency.median * 1e3, latency_iqr_ms=latency.iqr * 1e3,
                   throughput=batch / bulk.median, batch=batch,
                   peak_bytes=peak_forward_bytes(model, many), threads=threads)


def export_onnx(model: nn.Module, example: torch.Tensor, path: str | Path) -> Path:
    """``model`` (on the CPU, eval mode) as an ONNX file at ``path``, by
    ``torch.onnx.export(..., dynamo=True)``, with a batch dimension of any size."""
    check_example(model, example)
    model = copy.deepcopy(model).eval().cpu()
    batch = torch.export.Dim("batch")
    program = torch.onnx.export(model, (example.cpu(),), dynamo=True, verbose=False,
                                dynamic_shapes=({0: batch},))
    program.save(str(path))
    return Path(path)


def onnx_session(path: str | Path, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session of the model at ``path`` on ``threads`` intra-op threads."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_run(session: Any, inputs: torch.Tensor) -> torch.Tensor:
    """``session``'s logits for a batch of normalized ``inputs`` (a CPU tensor)."""
    expected = session.get_inputs()[0]
    if list(inputs.shape[1:]) != list(expected.shape[1:]):
        raise ValueError(f"inputs of shape {tuple(inputs.shape)} do not fit the ONNX model, which "
                         f"takes {expected.shape} (batch first): pass the batch it was exported "
                         "for")
    return torch.from_numpy(session.run(None, {expected.name: inputs.cpu().numpy()})[0])


def onnx_logits(session: Any, data: ImageDataset, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """``session``'s logits for every sample of ``data``, in order (normalized as kdutils does)."""
    check_not_empty(data, "data")
    return torch.cat([onnx_run(session, batch.inputs)
                      for batch in iterate_batches(data, batch_size)])


def quantize_int8(path: str | Path, output: str | Path) -> Path:
    """The ONNX model at ``path`` with int8 weights (ONNX Runtime's dynamic quantization: weights
    stored as int8, activations quantized on the fly), after its recommended pre-processing."""
    from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic

    with tempfile.TemporaryDirectory() as folder:
        prepared = Path(folder) / "prepared.onnx"
        quant_pre_process(str(path), str(prepared))
        quantize_dynamic(str(prepared), str(output), weight_type=QuantType.QInt8)
    return Path(output)


def torch_logits(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """``model``'s logits for ``inputs`` without gradients: eager PyTorch, for comparisons."""
    with torch.no_grad():
        return logits_of(model(inputs))
