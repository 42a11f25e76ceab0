"""What a teacher pack must pass before anything of it is written or installed: it is input from
someone else. Bounds on the archive's declared sizes, the manifest's shape, each member's name,
and each checkpoint's contents (trained weights only, tensors that fit the recorded model)."""
from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..identity import signature_from_repr, tensor_signature

MANIFEST = "manifest.json"
FORMAT = 1
MAX_MANIFEST_BYTES = 1 << 20
MAX_CHECKPOINT_BYTES = 1 << 31
MAX_CHECKPOINTS = 10_000
MAX_COMPRESSION_RATIO = 20  # checkpoints barely compress; a zip bomb's ratio is in the thousands
RATIO_CHECKED_ABOVE = 1 << 20
CHECKPOINT_FILE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*-[0-9a-f]{16}\.pt")
SHA256 = re.compile(r"[0-9a-f]{64}")
RUN_KEY_FIELDS = ("architecture", "train", "test", "torch")
REEXPORT = "ask for a pack made with `python -m kdutils.pack export`"


class PackError(ValueError):
    """A teacher pack that cannot be installed: corrupt, tampered with or made for other code."""


def check_declared_sizes(archive: zipfile.ZipFile, file: Path, free_bytes: int) -> None:
    """Refuse, before extracting anything, members too large, too compressed, too many, or more
    than the disk has room for."""
    infos = archive.infolist()
    names = [info.filename for info in infos]
    if len(infos) > MAX_CHECKPOINTS + 1 or len(set(names)) != len(names):
        raise PackError(f"{file} holds {len(infos)} members ({len(names) - len(set(names))} "
                        f"repeated); a pack holds at most {MAX_CHECKPOINTS} distinct checkpoints "
                        f"and its manifest: {REEXPORT}")
    for info in infos:
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) \
                or info.flag_bits & 0x1:
            raise PackError(f"{info.filename} in {file} is encrypted or compressed in a way "
                            f"packs never are (export writes stored members): {REEXPORT}")
        limit = MAX_MANIFEST_BYTES if info.filename == MANIFEST else MAX_CHECKPOINT_BYTES
        if info.file_size > limit:
            raise PackError(f"{info.filename} in {file} declares {info.file_size:,} bytes, over "
                            f"the limit of {limit:,}: {REEXPORT}")
        if info.file_size > RATIO_CHECKED_ABOVE and \
                info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            raise PackError(f"{info.filename} in {file} expands {info.compress_size:,} bytes into "
                            f"{info.file_size:,}, far more than a checkpoint compresses: the "
                            f"pack is malformed or hostile; {REEXPORT}")
    total = sum(info.file_size for info in infos)
    if total > free_bytes:
        raise PackError(f"{file} needs {total / 2**20:,.0f} MiB and the cache's disk has "
                        f"{free_bytes / 2**20:,.0f} MiB free: free some space first")


def free_bytes(folder: Path) -> int:
    """Free space on the disk of ``folder``."""
    return shutil.disk_usage(folder).free


def _manifest_problem(manifest: Any) -> str | None:
    """What is wrong with the shape of a parsed manifest, or None."""
    if not isinstance(manifest, dict):
        return f"it is a JSON {type(manifest).__name__}, not an object"
    entries = manifest.get("checkpoints")
    if not isinstance(entries, list) or not isinstance(manifest.get("torch"), str):
        return "it lacks a 'checkpoints' list or a 'torch' release"
    if not entries:
        return "it lists no checkpoint: the pack is empty"
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), dict) \
                or not isinstance(entry.get("file"), str) \
                or not SHA256.fullmatch(str(entry.get("sha256"))):
            return f"an entry is not {{'file', 'sha256', 'key'}}: {str(entry)[:80]}"
        if not CHECKPOINT_FILE.fullmatch(entry["file"]) or ".." in entry["file"]:
            return (f"{entry['file']!r} is not a checkpoint file name (<name>-<16 hex>.pt, no "
                    f"folder, no backslash)")
    files = [entry["file"] for entry in entries]
    if len(set(files)) != len(files):
        return "it lists a file twice"
    return None


def check_manifest(manifest: Any, file: Path, torch_release: str) -> None:
    """Refuse a manifest of the wrong shape, format or PyTorch release."""
    if isinstance(manifest, dict) and manifest.get("format") != FORMAT:
        raise PackError(f"{file} is a pack of format {manifest.get('format')!r}; this kdutils "
                        f"reads format {FORMAT}: update the course, or export the pack again")
    problem = _manifest_problem(manifest)
    if problem is not None:
        raise PackError(f"{MANIFEST} of {file} is not a pack manifest ({problem}): {REEXPORT}")
    if manifest["torch"] != torch_release:
        raise PackError(f"{file} was made with PyTorch {manifest['torch']}, this is "
                        f"{torch_release}: its teachers would never be looked up; export it "
                        f"again under PyTorch {torch_release} (or install that release)")


def check_checkpoint_container(path: Path, name: str, file: Path) -> None:
    """Refuse a checkpoint file whose own records would expand when loaded: ``torch.save``
    writes a zip of stored (uncompressed) records, so what loads is never larger than the file.
    Checked before ``torch.load``, so a small member cannot ask for gigabytes of memory."""
    try:
        with zipfile.ZipFile(path) as container:
            records = container.infolist()
    except (zipfile.BadZipFile, OSError):
        raise PackError(f"{name} in {file} is not a checkpoint written by torch.save: "
                        f"{REEXPORT}") from None
    if any(r.compress_type != zipfile.ZIP_STORED for r in records) \
            or sum(r.file_size for r in records) > path.stat().st_size:
        raise PackError(f"{name} in {file} holds compressed records, which torch.save never "
                        f"writes (loading it could take far more memory than its size): "
                        f"{REEXPORT}")


def expected_signature(key: dict[str, Any]) -> list[str] | None:
    """The tensors a checkpoint of ``key`` must hold: the key's own record (kdutils 0.2 on), or
    what its architecture's repr implies (keys of earlier versions)."""
    recorded = key.get("parameters")
    if isinstance(recorded, list) and all(isinstance(line, str) for line in recorded):
        return recorded
    return signature_from_repr(key["architecture"])


def model_checkpoint_problem(payload: Any) -> str | None:
    """Why ``payload`` (a loaded checkpoint) is not a trained model of a training run, or None.

    A pack may only ever hold these: ``{"key": run key, "value": {"state_dict", "result"}}``,
    with tensors that fit the model the key records.
    """
    if not isinstance(payload, dict) or set(payload) != {"key", "value"}:
        return "it is not a checkpoint ({'key', 'value'})"
    key, value = payload["key"], payload["value"]
    if not isinstance(key, dict) or not all(isinstance(key.get(f), str) for f in RUN_KEY_FIELDS):
        return "it is not a trained model (its key is not a training run's): packs hold models only"
    if not isinstance(value, dict) or set(value) != {"state_dict", "result"} \
            or not isinstance(value["state_dict"], dict) \
            or not all(isinstance(t, torch.Tensor) for t in value["state_dict"].values()):
        return "it does not hold trained weights ({'state_dict', 'result'}): packs hold models only"
    expected = expected_signature(key)
    if expected is None:
        return "its recorded architecture cannot be read, so its tensors cannot be checked"
    if sorted(tensor_signature(value["state_dict"])) != sorted(expected):
        return "its tensors do not fit the architecture its key records"
    return None


def summary(payload: dict[str, Any]) -> str:
    """One line on a checked model checkpoint: its model, its run and its final test accuracy."""
    key, value = payload["key"], payload["value"]
    size = sum(t.numel() for t in value["state_dict"].values())
    run = ", ".join(f"{name}={key[name]}" for name in ("epochs", "seed", "T", "alpha")
                    if name in key)
    result = value["result"]
    last = result[-1] if isinstance(result, list) and result else {}
    accuracy = last.get("test_acc") if isinstance(last, dict) else None
    scored = (f"test accuracy {accuracy:.2f}% in its history" if isinstance(accuracy, float)
              else "no test accuracy in its history")
    return (f"{key['architecture'].split('(')[0]} with {size:,} values, {run}, trained on data "
            f"{key['train'][:12]}; {scored}")
