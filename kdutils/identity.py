"""What identifies a model in a cache key: its repr, the names, dtypes and shapes of its tensors,
and the code of every class in it that neither PyTorch nor kdutils defines.

PyTorch's and kdutils' own classes are covered by the installed releases (PyTorch's is in every
key; kdutils' architectures do not change under a name), so their code is not hashed and the
keys of the course's models stay what they were. A class of yours (a notebook's ``nn.Module``)
adds the digest of its source. What no key can see: code that such a class calls outside itself
(a helper function, a global variable, another module).
"""
from __future__ import annotations

import ast
import hashlib
import inspect
import re
from types import CodeType, FunctionType
from typing import Any

import torch
from torch import nn

OWN_PACKAGES = ("torch", "kdutils")


def tensor_signature(tensors: dict[str, torch.Tensor]) -> list[str]:
    """``["<name> <dtype> <shape>", ...]`` for a state dict, e.g. ``"0.weight float32 (20, 784)"``."""
    return [f"{name} {str(t.dtype).removeprefix('torch.')} {tuple(t.shape)}"
            for name, t in tensors.items() if isinstance(t, torch.Tensor)]


def is_own_class(cls: type) -> bool:
    """True for classes defined by PyTorch or kdutils (covered by their releases)."""
    return cls.__module__.split(".")[0] in OWN_PACKAGES or cls.__module__ == "builtins"


_MEMORY_ADDRESS = re.compile(r"\bat 0x[0-9a-fA-F]+")


def _stable_repr(value: Any) -> str:
    """``repr(value)`` that is the same in every run: memory addresses removed, the items of
    sets (whose order changes with string hashing) sorted, code objects by their contents."""
    if isinstance(value, CodeType):
        return _code_text(value)
    if isinstance(value, (set, frozenset)):
        return f"{type(value).__name__}({sorted(_stable_repr(item) for item in value)})"
    return _MEMORY_ADDRESS.sub("", repr(value))


def _code_text(code: CodeType) -> str:
    """A stable text of compiled code (bytecode, names, constants; no file names or lines)."""
    constants = [_stable_repr(c) for c in code.co_consts]
    return f"{code.co_code.hex()}|{code.co_names}|{code.co_varnames}|{constants}"


def _function_text(function: FunctionType) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):  # defined where no source file is kept
        return _code_text(function.__code__)


def class_source(cls: type) -> str:
    """The code of ``cls`` as it runs: the source of each of its methods (their bytecode where
    ``inspect`` cannot read it), and the reprs of its other attributes. Read from the class
    object, not its file, so a method replaced at run time or a class redefined in a notebook
    cell counts."""
    parts = []
    for name, value in sorted(vars(cls).items()):
        value = getattr(value, "__func__", getattr(value, "fget", value))  # static/class/property
        if isinstance(value, FunctionType):
            parts.append(f"{name}: {_function_text(value)}")
        elif not name.startswith("__"):
            parts.append(f"{name} = {_stable_repr(value)}")
    return "\n".join(parts)


def user_classes(model: nn.Module) -> list[type]:
    """The classes of ``model``'s modules (and their bases) that neither torch nor kdutils define."""
    found = {base for module in model.modules() for base in type(module).__mro__
             if not is_own_class(base)}
    return sorted(found, key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


def code_entry(model: nn.Module) -> dict[str, Any]:
    """``{"code": {class name: digest of its source}}`` for a model with classes of yours, else
    ``{}`` (so the keys of models made of torch and kdutils classes do not change)."""
    digests = {f"{cls.__module__}.{cls.__qualname__}":
               hashlib.sha256(class_source(cls).encode()).hexdigest()[:16]
               for cls in user_classes(model)}
    return {"code": digests} if digests else {}


def model_identity(model: nn.Module) -> dict[str, Any]:
    """A model's part of a cache key: its repr, its tensors' signature and its own code."""
    return {"architecture": repr(model), "parameters": tensor_signature(model.state_dict()),
            **code_entry(model)}


def legacy_key(key: dict[str, Any]) -> dict[str, Any] | None:
    """The key that kdutils before 0.2 gave the same run (no tensor signature), or None when the
    run involves code of yours, which such keys never covered."""
    teacher = key.get("teacher")
    if "code" in key or (isinstance(teacher, dict) and "code" in teacher):
        return None
    return {name: value for name, value in key.items() if name != "parameters"}


LAYERS_WITH_TENSORS = {cls.__name__: cls for cls in (
    nn.Linear, nn.Conv1d, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.Embedding)}
_MODULE_LINE = re.compile(r"(?:\((?P<name>\w+)\): )?(?P<kind>\w+)\((?P<rest>.*)")


def _layer_from_repr(kind: str, arguments: str) -> nn.Module | None:
    """The torch layer ``kind(arguments)`` built on the meta device, or None if it cannot be.

    Only literal arguments are read (``ast.literal_eval``): nothing in the text is executed.
    """
    try:
        call = ast.parse(f"layer({arguments})", mode="eval").body
        args = [ast.literal_eval(arg) for arg in call.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg is not None}
        return LAYERS_WITH_TENSORS[kind](*args, **kwargs, device="meta")
    except (SyntaxError, ValueError, TypeError, AttributeError):
        return None


def signature_from_repr(architecture: str) -> list[str] | None:
    """The :func:`tensor_signature` (float32) that a model printed as ``architecture`` has, or
    None when the text is not made of torch modules this function knows.

    Reads the nested ``(name): Layer(...)`` lines of ``repr(model)``; the layers of
    :data:`LAYERS_WITH_TENSORS` are rebuilt from their arguments, any other leaf is taken to
    hold no tensors (so a leaf that has some leaves them unexplained, and the check fails).
    """
    open_paths: list[list[str]] = []
    signature: list[str] = []
    for line in architecture.strip().splitlines():
        text = line.strip()
        if text == ")":
            if not open_paths:
                return None
            open_paths.pop()
            continue
        match = _MODULE_LINE.fullmatch(text)
        if match is None or (match["name"] is None and open_paths):
            return None
        path = (open_paths[-1] if open_paths else []) + ([match["name"]] if match["name"] else [])
        if match["rest"] == "":  # a container opens
            open_paths.append(path)
            continue
        if not match["rest"].endswith(")"):
            return None
        if match["kind"] in LAYERS_WITH_TENSORS:
            layer = _layer_from_repr(match["kind"], match["rest"][:-1])
            if layer is None:
                return None
            signature += tensor_signature({".".join(path + [name]): tensor for name, tensor
                                           in layer.state_dict().items()})
    return signature if not open_paths else None
