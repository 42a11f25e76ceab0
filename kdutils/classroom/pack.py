"""Teacher packs: train the teachers once per class, share one file, install it everywhere.

    python -m kdutils.pack export teachers.zip    # every trained model in the cache, one file
    python -m kdutils.pack import teachers.zip    # checked, then installed into the cache

A pack is a zip archive of checkpoint files with a ``manifest.json`` that lists each file's
sha256 and the key it was trained under (model, data fingerprints, settings, PyTorch's
``major.minor``). A pack is someone else's file, so import checks everything before it installs
anything (see :mod:`kdutils.classroom.pack_checks`): the archive's declared sizes, the manifest,
each member's digest as it is extracted, that each holds a trained model (never a dataset or
anything else), made for the key its name says, with tensors that fit that model, under this PyTorch
release. A pack that fails a check is refused with the reason and the cache is left as it was; each
file that passes goes in with an atomic rename, replacing a broken copy already there. Both commands
print the pack's sha256: import packs only from your instructor, and compare it with the digest they
announce."""
from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import os
import shutil
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable

import torch

from ..checkpoint import CACHE_ENV, cache_dir, checkpoint_path
from ..runtime import torch_release
from .pack_checks import (FORMAT, MANIFEST, MAX_MANIFEST_BYTES, PackError,
                          check_checkpoint_container, check_declared_sizes, check_manifest,
                          free_bytes, model_checkpoint_problem, summary)

__all__ = ["PackError", "export_pack", "import_pack", "main", "sha256_of"]
Log = Callable[[str], None]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _load(path: Path) -> Any:
    """A checkpoint file's payload (tensors and plain values only), or None if unreadable."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - unreadable files are reported by the caller
        return None


def _cache_folder() -> Path:
    """The cache folder, refused if it is a file."""
    folder = cache_dir()
    if folder.exists() and not folder.is_dir():
        raise PackError(f"the cache {folder} is a file, not a folder: point {CACHE_ENV} at a "
                        f"folder (or unset it to use the project's cache/)")
    return folder


def export_pack(file: Path, log: Log = lambda line: None) -> list[str]:
    """Write every trained model of the cache into the zip ``file``; returns their file names."""
    if file.is_dir():
        raise PackError(f"{file} is a folder: give the pack a file name, such as "
                        f"{file / 'teachers.zip'}")
    folder = _cache_folder()
    entries = []
    for path in sorted(folder.glob("*.pt")):
        payload = _load(path)
        problem = model_checkpoint_problem(payload)
        if problem is None and not _named_for_its_key(path.name, payload["key"]):
            problem = "its file name is not the one its key gives (renamed by hand?)"
        if problem is None:
            entries.append({"file": path.name, "sha256": sha256_of(path), "key": payload["key"]})
            log(f"  {path.name}: {summary(payload)}")
        else:
            log(f"  left out {path.name}: {problem}")
    if not entries:
        raise PackError(f"no trained model in the cache {folder}: run the notebooks in full "
                        f"mode first (or point {CACHE_ENV} at the cache that has them)")
    manifest = {"format": FORMAT, "torch": torch_release(), "checkpoints": entries}
    partial = file.with_name(f".{file.name}.partial")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
            for entry in entries:
                archive.write(folder / entry["file"], entry["file"])
        os.replace(partial, file)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise PackError(f"cannot write {file} ({error.strerror or error}): choose a writable "
                        f"place with room for the pack") from None
    return [entry["file"] for entry in entries]


def _read_manifest(archive: zipfile.ZipFile, file: Path) -> dict[str, Any]:
    """The manifest, read with a size bound, parsed and checked."""
    if MANIFEST not in archive.namelist():
        raise PackError(f"{file} has no {MANIFEST}: it is not a teacher pack (make one with "
                        f"python -m kdutils.pack export FILE)")
    with archive.open(MANIFEST) as stream:
        text = stream.read(MAX_MANIFEST_BYTES + 1)
    try:
        manifest = json.loads(text) if len(text) <= MAX_MANIFEST_BYTES else None
    except (ValueError, RecursionError):
        raise PackError(f"{MANIFEST} of {file} is not JSON: the pack is damaged; copy it again "
                        f"or ask for a new export") from None
    check_manifest(manifest, file, torch_release())
    if set(archive.namelist()) != {MANIFEST} | {e["file"] for e in manifest["checkpoints"]}:
        raise PackError(f"{file} holds other files than its manifest lists: a pack holds only "
                        f"the checkpoints of its manifest; ask for a new export")
    return manifest


def _extract(archive: zipfile.ZipFile, entry: dict[str, Any], staging: Path, file: Path) -> Path:
    """Copy one member into ``staging``, hashing as it goes and never past its declared size."""
    info, target, digest, written = archive.getinfo(entry["file"]), staging / entry["file"], \
        hashlib.sha256(), 0
    with archive.open(info) as source, open(target, "wb") as sink:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            written += len(chunk)
            if written > info.file_size:
                raise PackError(f"{entry['file']} in {file} is longer than it declares: the pack "
                                f"is malformed; ask for a new export")
            digest.update(chunk)
            sink.write(chunk)
    if digest.hexdigest() != entry["sha256"]:
        raise PackError(f"{entry['file']} in {file} is corrupt: its sha256 differs from the "
                        f"manifest's; copy the pack again from its source")
    return target


def _named_for_its_key(name: str, key: dict[str, Any]) -> bool:
    """Whether ``name`` is the file name that the cache gives ``key``."""
    try:
        return checkpoint_path(name.rsplit("-", 1)[0], key).name == name
    except ValueError:  # a stem or key the cache refuses
        return False


def _check_entry(entry: dict[str, Any], extracted: Path, file: Path) -> str:
    """A summary of an extracted checkpoint, refused unless it is a trained model made for the
    key its name and manifest give."""
    name = entry["file"]
    check_checkpoint_container(extracted, name, file)
    payload = _load(extracted)
    problem = model_checkpoint_problem(payload)
    if problem is not None:
        raise PackError(f"{name} in {file} is refused: {problem}")
    if not _named_for_its_key(name, entry["key"]) or payload["key"] != entry["key"]:
        raise PackError(f"{name} in {file} does not hold the checkpoint its name and manifest "
                        f"describe; the pack was altered: export it again")
    return summary(payload)


def _keep_existing(target: Path, entry: dict[str, Any]) -> str | None:
    """Why the cache's own ``target`` stays (the same file, or a sound model of the same key), or
    None when it is broken and the pack's copy replaces it."""
    if not target.exists():
        return None
    if sha256_of(target) == entry["sha256"]:
        return "already there"
    payload = _load(target)
    if isinstance(payload, dict) and payload.get("key") == entry["key"] \
            and isinstance(payload.get("value"), dict) and "state_dict" in payload["value"]:
        return "kept: the cache has its own copy, which loads"
    return None


def import_pack(file: Path, log: Log = lambda line: None) -> list[str]:
    """Check the pack ``file`` whole, then install its checkpoints; returns the files installed.

    Nothing is written before the archive's sizes and manifest pass; each file goes in with an
    atomic rename (if the disk fails mid-way, the files installed so far stay, each whole).

    ``log`` receives one line per checkpoint: what it is and what was done with it.
    """
    folder = _cache_folder()
    try:
        archive = zipfile.ZipFile(file)
    except (OSError, zipfile.BadZipFile) as error:
        raise PackError(f"cannot read {file} as a teacher pack ({error}); copy it again") from None
    with archive:
        try:
            check_declared_sizes(archive, file, free_bytes(_existing_parent(folder)))
            manifest = _read_manifest(archive, file)
        except DAMAGED as error:
            raise PackError(f"{file} is damaged ({error}); copy it again") from None
        staging = _staging_folder(folder)
        try:
            checked = [(entry, _check_entry(entry, _extract(archive, entry, staging, file), file))
                       for entry in manifest["checkpoints"]]
            return _install(checked, staging, folder, log)
        except DAMAGED as error:
            raise PackError(f"{file} is damaged ({error}); copy it again") from None
        except OSError as error:
            raise PackError(f"cannot install into the cache {folder} ({error.strerror or error})"
                            f": make it writable, or point {CACHE_ENV} at a writable folder") \
                from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)


DAMAGED = (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError, zlib.error,
           lzma.LZMAError)
"""What reading a damaged archive raises (besides OSError, which is the disk's)."""
STALE_STAGING_SECONDS = 3600


def _existing_parent(folder: Path) -> Path:
    """``folder``, or its nearest ancestor that exists (for the free space of its disk)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _staging_folder(folder: Path) -> Path:
    """A new ``.pack-*`` folder in the cache (a rename away from it), after removing those that
    imports killed mid-way left behind."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - STALE_STAGING_SECONDS
        for old in folder.glob(".pack-*"):
            if old.is_dir() and old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(dir=folder, prefix=".pack-"))
    except OSError as error:
        raise PackError(f"cannot install into the cache {folder} ({error.strerror or error}): "
                        f"make it writable, or point {CACHE_ENV} at a writable folder") from None


def _install(checked: list[tuple[dict[str, Any], str]], staging: Path, folder: Path,
             log: Log) -> list[str]:
    """Move every checked checkpoint into ``folder`` unless a sound copy is there already."""
    installed = []
    for entry, described in checked:
        target = folder / entry["file"]
        kept = _keep_existing(target, entry)
        if kept is None:
            action = "replaced a broken copy" if target.exists() else "installed"
            os.replace(staging / entry["file"], target)
            installed.append(entry["file"])
        log(f"  {entry['file']} ({kept or action}): {described}")
    return installed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdutils.pack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["export", "import"])
    parser.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "export":
            names = export_pack(args.file, log=print)
            size = args.file.stat().st_size / 2**20
            print(f"exported {len(names)} trained models to {args.file} ({size:.1f} MiB)")
            print(f"pack sha256: {sha256_of(args.file)}  (announce it with the pack)")
        else:
            print(f"pack sha256: {sha256_of(args.file)}  (compare it with the digest your "
                  f"instructor announced; import packs only from them)")
            names = import_pack(args.file, log=print)
            print(f"installed {len(names)} trained models into {cache_dir()}"
                  + ("" if names else " (all were there already)"))
    except (PackError, OSError) as error:
        reason = error if isinstance(error, PackError) else f"cannot read {args.file} ({error})"
        print(f"error: {reason}", file=sys.stderr)
        return 2
    return 0

