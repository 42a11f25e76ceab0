"""Teacher packs: train the teachers once per class, share one file, install it everywhere.

    python -m kdutils.pack export teachers.zip    # every trained model in the cache, one file
    python -m kdutils.pack import teachers.zip    # checked, then installed into the cache

A pack is a zip archive of checkpoint files with a ``manifest.json`` that lists each file's
sha256 and the key it was trained under (architecture, data fingerprints, settings, PyTorch's
``major.minor``). Import checks everything before it installs anything: the archive, every
file's digest, that each checkpoint loads and was made for the key its name says, and that it
was trained under this PyTorch release. A pack that fails a check is refused with the reason and
the cache is left as it was; each file that passes goes in with an atomic rename.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from .checkpoint import cache_dir, checkpoint_path
from .runtime import torch_release

MANIFEST = "manifest.json"
FORMAT = 1


class PackError(ValueError):
    """A teacher pack that cannot be installed: corrupt, tampered with or made for other code."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _trained_model(path: Path) -> dict[str, Any] | None:
    """The key of a checkpoint holding trained weights (not decoded images), else None."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - unreadable files are the cache's business, not a pack's
        return None
    if isinstance(payload, dict) and isinstance(payload.get("value"), dict) \
            and "state_dict" in payload["value"]:
        return payload["key"]
    return None


def export_pack(file: Path) -> list[str]:
    """Write every trained model of the cache into the zip ``file``; returns their file names."""
    entries = []
    for path in sorted(cache_dir().glob("*.pt")):
        key = _trained_model(path)
        if key is not None:
            entries.append({"file": path.name, "sha256": sha256_of(path), "key": key})
    if not entries:
        raise PackError(f"no trained model in the cache {cache_dir()}: run the notebooks in full "
                        f"mode first (or point KD_CACHE_DIR at the cache that has them)")
    manifest = {"format": FORMAT, "torch": torch_release(), "checkpoints": entries}
    file.parent.mkdir(parents=True, exist_ok=True)
    partial = file.with_name(f".{file.name}.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
        for entry in entries:
            archive.write(cache_dir() / entry["file"], entry["file"])
    os.replace(partial, file)
    return [entry["file"] for entry in entries]


def _read_manifest(archive: zipfile.ZipFile, file: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(archive.read(MANIFEST))
    except KeyError:
        raise PackError(f"{file} has no {MANIFEST}: it is not a teacher pack (make one with "
                        f"python -m kdutils.pack export FILE)") from None
    if manifest.get("format") != FORMAT:
        raise PackError(f"{file} is a pack of format {manifest.get('format')!r}; this kdutils "
                        f"reads format {FORMAT}: update the course, or export the pack again")
    if manifest.get("torch") != torch_release():
        raise PackError(f"{file} was made with PyTorch {manifest.get('torch')}, this is "
                        f"{torch_release()}: its teachers would never be looked up; export it "
                        f"again under PyTorch {torch_release()} (or install that release)")
    return manifest


def _check_entry(entry: dict[str, Any], extracted: Path, file: Path) -> None:
    """Refuse a checkpoint whose bytes, contents or name do not match the manifest."""
    name = entry["file"]
    if sha256_of(extracted) != entry["sha256"]:
        raise PackError(f"{name} in {file} is corrupt: its sha256 differs from the manifest's; "
                        f"copy the pack again from its source")
    stem = name.rsplit("-", 1)[0]
    if checkpoint_path(stem, entry["key"]).name != name or _trained_model(extracted) != entry["key"]:
        raise PackError(f"{name} in {file} does not hold the checkpoint its name and manifest "
                        f"describe; the pack was altered: export it again")


def import_pack(file: Path) -> list[str]:
    """Check the pack ``file`` whole, then install its checkpoints; returns the new file names."""
    try:
        archive = zipfile.ZipFile(file)
    except (OSError, zipfile.BadZipFile) as error:
        raise PackError(f"cannot read {file} as a teacher pack ({error}); copy it again") from None
    with archive, tempfile.TemporaryDirectory(dir=_staging_parent()) as staging:
        manifest = _read_manifest(archive, file)
        for entry in manifest["checkpoints"]:
            if entry["file"] not in archive.namelist() or "/" in entry["file"]:
                raise PackError(f"{file} lists {entry['file']!r} but does not hold it as a plain "
                                f"file; export the pack again")
            try:
                extracted = Path(archive.extract(entry["file"], staging))
            except (zipfile.BadZipFile, OSError) as error:
                raise PackError(f"{entry['file']} in {file} cannot be read ({error}); copy the "
                                f"pack again") from None
            _check_entry(entry, extracted, file)
        installed = []
        for entry in manifest["checkpoints"]:  # every check passed: install
            target = cache_dir() / entry["file"]
            if not target.exists():
                os.replace(Path(staging) / entry["file"], target)
                installed.append(entry["file"])
        return installed


def _staging_parent() -> Path:
    """A folder beside the cache, so that installing is a rename on the same file system."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    return cache_dir()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdutils.pack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["export", "import"])
    parser.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "export":
            names = export_pack(args.file)
            size = args.file.stat().st_size / 2**20
            print(f"exported {len(names)} trained models to {args.file} ({size:.1f} MiB): "
                  + ", ".join(names))
        else:
            names = import_pack(args.file)
            print(f"installed {len(names)} trained models into {cache_dir()}"
                  + (": " + ", ".join(names) if names else " (all were there already)"))
    except PackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
