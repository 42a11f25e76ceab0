"""Teacher packs: export the cache's trained models, import them elsewhere, refuse bad packs."""
import hashlib
import io
import json
import re
import subprocess
import sys
import tempfile
import zipfile

import pytest
import torch

import kdutils as kd
from kdutils.classroom import pack
from kdutils.data import cifar as kd_cifar_module
from kdutils.data.sources import forget_loaded
from kdutils.training import fit as train


def cached_teacher(data):
    return kd.cached_fit(lambda: kd.mlp([16, 8, 3]), "toy-teacher", data, data, epochs=1,
                         lr=1e-2, batch_size=16, progress=False)


@pytest.fixture
def exported(tmp_path, monkeypatch, tiny_data):
    """A pack of one trained teacher, made in one cache; the test then uses an empty one."""
    monkeypatch.setenv("KD_CACHE_DIR", str(tmp_path / "instructor"))
    teacher, history = cached_teacher(tiny_data)
    file = tmp_path / "teachers.zip"
    assert pack.main(["export", str(file)]) == 0
    monkeypatch.setenv("KD_CACHE_DIR", str(tmp_path / "student"))
    return file, teacher, history


def never_train(*args, **kwargs):
    raise AssertionError("the teacher was trained again instead of loaded from the pack")


def test_an_imported_pack_makes_cached_fit_load_instead_of_train(exported, tiny_data, monkeypatch):
    file, teacher, history = exported
    assert pack.import_pack(file) == [p.name for p in kd.cache_dir().glob("*.pt")]
    monkeypatch.setattr(train, "fit", never_train)
    loaded, loaded_history = cached_teacher(tiny_data)
    assert all(torch.equal(a, b) for a, b in zip(teacher.state_dict().values(),
                                                 loaded.state_dict().values()))
    assert loaded_history.rows == history.rows
    assert pack.import_pack(file) == []  # a second import finds everything there


def test_a_pack_moves_between_patch_releases(tmp_path, monkeypatch, tiny_data):
    monkeypatch.setattr(torch, "__version__", "2.14.0+cpu")
    monkeypatch.setenv("KD_CACHE_DIR", str(tmp_path / "a"))
    cached_teacher(tiny_data)
    pack.export_pack(tmp_path / "p.zip")
    monkeypatch.setattr(torch, "__version__", "2.14.9")
    monkeypatch.setenv("KD_CACHE_DIR", str(tmp_path / "b"))
    assert len(pack.import_pack(tmp_path / "p.zip")) == 1
    monkeypatch.setattr(torch, "__version__", "2.15.0")
    monkeypatch.setenv("KD_CACHE_DIR", str(tmp_path / "c"))
    with pytest.raises(pack.PackError, match="made with PyTorch 2.14, this is 2.15"):
        pack.import_pack(tmp_path / "p.zip")
    assert not list(kd.cache_dir().glob("*"))


def rewrite(file, change):
    """Copy the pack with ``change(name, data) -> data`` applied to each member."""
    with zipfile.ZipFile(file) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(file, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, change(name, data))


def flip_last_byte(name, data):
    return data if name == pack.MANIFEST else data[:-1] + bytes([data[-1] ^ 1])


def other_key(name, data):
    if name != pack.MANIFEST:
        return data
    manifest = json.loads(data)
    manifest["checkpoints"][0]["key"]["epochs"] = 99
    return json.dumps(manifest).encode()


@pytest.mark.parametrize("change, message", [
    (flip_last_byte, "is corrupt: its sha256 differs"),
    (other_key, "the pack was altered"),
])
def test_a_damaged_pack_is_refused_and_the_cache_left_as_it_was(exported, change, message):
    file, _, _ = exported
    rewrite(file, change)
    with pytest.raises(pack.PackError, match=message):
        pack.import_pack(file)
    assert not list(kd.cache_dir().glob("*.pt"))


def test_what_is_not_a_pack_is_refused_with_the_fix(tmp_path, capsys):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    assert pack.main(["import", str(junk)]) == 2  # issue 27: every refusal exits with status 2
    assert "cannot read" in capsys.readouterr().err
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(pack.PackError, match="not a teacher pack"):
        pack.import_pack(tmp_path / "empty.zip")


def test_exporting_an_empty_cache_says_what_to_do(tmp_path):
    with pytest.raises(pack.PackError, match="run the notebooks in full mode first"):
        pack.export_pack(tmp_path / "p.zip")
    assert not (tmp_path / "p.zip").exists()


def test_decoded_datasets_stay_out_of_a_pack(tmp_path, monkeypatch, tiny_data):
    monkeypatch.setenv("KD_CACHE_DIR", str(tmp_path / "instructor"))
    cached_teacher(tiny_data)
    kd.checkpoint.cached("decoded-images", {"files": "abc"}, lambda: {"images": torch.zeros(2)})
    pack.export_pack(tmp_path / "p.zip")
    with zipfile.ZipFile(tmp_path / "p.zip") as archive:
        names = archive.namelist()
    assert names[0] == pack.MANIFEST and len(names) == 2 and names[1].startswith("toy-teacher-")


# Issue 27: a pack is someone else's file. Each test below failed before the fix.

def write_pack(file, entries, extra=None, manifest=None):
    """A pack written by hand, as a hostile classmate would: ``entries`` maps a member name to
    (its key, its payload)."""
    buffers = {}
    listed = []
    for name, (key, payload) in entries.items():
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        buffers[name] = buffer.getvalue()
        listed.append({"file": name, "sha256": hashlib.sha256(buffers[name]).hexdigest(),
                       "key": key})
    manifest = manifest if manifest is not None else {
        "format": pack.FORMAT, "torch": kd.runtime.torch_release(), "checkpoints": listed}
    with zipfile.ZipFile(file, "w") as archive:
        archive.writestr(pack.MANIFEST, manifest if isinstance(manifest, (str, bytes))
                         else json.dumps(manifest))
        for name, data in {**buffers, **(extra or {})}.items():
            archive.writestr(name, data)
    return file


def test_a_pack_cannot_replace_a_decoded_dataset(tmp_path, monkeypatch):
    """A forged decoded-CIFAR-10 entry (airplanes only) is refused, and its key is unguessable."""
    tests_cifar = pytest.importorskip("test_cifar")
    tests_cifar.write_jpeg_folder(tmp_path / "data")
    genuine = kd.load_cifar10(root=tmp_path / "data")
    folder = tmp_path / "data" / "cifar10-jpeg" / "train"
    files = kd_cifar_module._jpeg_files(folder)
    key = {"split": "train", "files": kd_cifar_module._files_digest(folder, files)}  # the old key
    forged = {"images": torch.zeros(10, 3, 32, 32, dtype=torch.uint8),
              "labels": torch.zeros(10, dtype=torch.long), "state_dict": {}}
    name = kd.checkpoint.checkpoint_path("cifar10-jpeg-train", key).name
    file = write_pack(tmp_path / "evil.zip", {name: (key, {"key": key, "value": forged})})
    with pytest.raises(pack.PackError, match="packs hold models only"):
        pack.import_pack(file)
    forget_loaded()
    again = kd.load_cifar10(root=tmp_path / "data")
    assert torch.equal(again.images, genuine.images) and len(again) == 20
    assert not any(kd.cache_dir().glob(name)), "a file of the old key is never looked up"


def test_import_and_export_show_the_digest_and_what_is_installed(exported, capsys):
    file, _, history = exported
    assert pack.main(["import", str(file)]) == 0
    out = capsys.readouterr().out
    assert f"pack sha256: {pack.sha256_of(file)}" in out and "instructor" in out
    assert re.search(r"toy-teacher-\w+\.pt \(installed\): Sequential with 163 values, "
                     r"epochs=1, seed=0, .*test accuracy "
                     + re.escape(f"{history.final_accuracy:.2f}%"), out)
    assert pack.main(["export", str(file.with_name("again.zip"))]) == 0
    assert "pack sha256: " in capsys.readouterr().out


def test_sizes_are_checked_before_anything_is_written(exported, tmp_path, monkeypatch):
    file, _, _ = exported
    with zipfile.ZipFile(file) as archive:
        manifest = archive.read(pack.MANIFEST)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(pack.MANIFEST, manifest + b" " * (32 << 20))  # 32 MiB of blanks
    assert bomb.stat().st_size < 100_000
    written = []
    monkeypatch.setattr(pack, "_extract", lambda *args: written.append(args))
    with pytest.raises(pack.PackError, match="declares 33,5.*over the limit"):
        pack.import_pack(bomb)
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(pack.MANIFEST, manifest)
        archive.writestr("toy-teacher-0123456789abcdef.pt", b"\0" * (64 << 20))
    with pytest.raises(pack.PackError, match="expands .* far more than a checkpoint compresses"):
        pack.import_pack(bomb)
    assert not written and not cache_files()


def test_a_checkpoint_whose_tensors_do_not_fit_its_model_is_refused(exported, tmp_path):
    file, teacher, _ = exported
    with zipfile.ZipFile(file) as archive:
        name = next(n for n in archive.namelist() if n != pack.MANIFEST)
        payload = torch.load(io.BytesIO(archive.read(name)), weights_only=True)
    payload["value"]["state_dict"]["1.weight"] = torch.zeros(3, 3)  # the model has (8, 16)
    forged = write_pack(tmp_path / "forged.zip", {name: (payload["key"], payload)})
    with pytest.raises(pack.PackError, match="do not fit the architecture its key records"):
        pack.import_pack(forged)
    legacy = {k: v for k, v in payload["key"].items() if k != "parameters"}  # kdutils 0.1's key
    payload["key"] = legacy
    legacy_name = kd.checkpoint.checkpoint_path("toy-teacher", legacy).name
    forged = write_pack(tmp_path / "old.zip", {legacy_name: (legacy, payload)})
    with pytest.raises(pack.PackError, match="do not fit the architecture its key records"):
        pack.import_pack(forged)


def test_a_pack_made_before_tensor_signatures_still_imports_and_loads(tmp_path, tiny_data,
                                                                    monkeypatch):
    """kdutils 0.1 keyed models without "parameters": its packs and caches keep working."""
    monkeypatch.setenv("KD_CACHE_DIR", str(tmp_path / "old"))
    teacher, history = cached_teacher(tiny_data)
    path = next(kd.cache_dir().glob("toy-teacher-*.pt"))
    payload = torch.load(path, weights_only=True)
    payload["key"].pop("parameters")
    old_name = kd.checkpoint.checkpoint_path("toy-teacher", payload["key"]).name
    file = write_pack(tmp_path / "old.zip", {old_name: (payload["key"], payload)})
    monkeypatch.setenv("KD_CACHE_DIR", str(tmp_path / "new"))
    assert pack.import_pack(file) == [old_name]
    monkeypatch.setattr(train, "fit", never_train)
    loaded, loaded_history = cached_teacher(tiny_data)
    assert loaded_history.rows == history.rows
    assert torch.equal(loaded.state_dict()["1.weight"], teacher.state_dict()["1.weight"])
    assert len(list(kd.cache_dir().glob("toy-teacher-*.pt"))) == 2, "re-keyed once, old kept"


def test_a_broken_local_copy_is_replaced_from_the_pack(exported, tiny_data, monkeypatch, capsys):
    file, teacher, _ = exported
    pack.import_pack(file)
    local = next(kd.cache_dir().glob("toy-teacher-*.pt"))
    local.write_bytes(b"truncated")
    assert pack.main(["import", str(file)]) == 0
    assert "(replaced a broken copy)" in capsys.readouterr().out
    monkeypatch.setattr(train, "fit", never_train)
    loaded, _ = cached_teacher(tiny_data)
    assert torch.equal(loaded.state_dict()["1.weight"], teacher.state_dict()["1.weight"])


def cache_files():
    """What the cache folder holds (nothing when a refused import did not even create it)."""
    return list(kd.cache_dir().iterdir()) if kd.cache_dir().exists() else []


def manifest_of(exported_file):
    with zipfile.ZipFile(exported_file) as archive:
        return json.loads(archive.read(pack.MANIFEST))


@pytest.mark.parametrize("change, message", [
    (lambda m: "{not json", "is not JSON"),
    (lambda m: [m], "not a pack manifest \\(it is a JSON list"),
    (lambda m: {**m, "checkpoints": "all"}, "lacks a 'checkpoints' list"),
    (lambda m: {**m, "checkpoints": []}, "the pack is empty"),
    (lambda m: {**m, "checkpoints": [{**m["checkpoints"][0],
                                      "file": "..\\" + m["checkpoints"][0]["file"]}]},
     "not a checkpoint file name .*backslash"),
])
def test_a_bad_manifest_ends_in_one_error_line_with_status_2(exported, tmp_path, capsys, change,
                                                              message):
    file, _, _ = exported
    manifest = change(manifest_of(file))
    with zipfile.ZipFile(file) as archive:
        members = {n: archive.read(n) for n in archive.namelist() if n != pack.MANIFEST}
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr(pack.MANIFEST, manifest if isinstance(manifest, str)
                         else json.dumps(manifest))
        for name, data in members.items():
            archive.writestr(name, data)
    assert pack.main(["import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert re.search(message, err)
    assert not cache_files(), "nothing left behind"


def test_cache_and_destination_problems_end_in_one_error_line_with_status_2(
        exported, tmp_path, monkeypatch, capsys):
    file, _, _ = exported
    not_a_folder = tmp_path / "cache-file"
    not_a_folder.write_text("")
    monkeypatch.setenv("KD_CACHE_DIR", str(not_a_folder))
    assert pack.main(["import", str(file)]) == 2
    assert "is a file, not a folder: point KD_CACHE_DIR at a folder" in capsys.readouterr().err
    monkeypatch.setenv("KD_CACHE_DIR", str(tmp_path / "read-only"))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)  # root ignores a read-only mode bit
    assert pack.main(["import", str(file)]) == 2
    err = capsys.readouterr().err
    assert "Permission denied): make it writable, or point KD_CACHE_DIR" in err
    assert len(err.strip().splitlines()) == 1
    monkeypatch.undo()
    monkeypatch.setenv("KD_CACHE_DIR", str(tmp_path / "instructor"))
    folder = tmp_path / "packs"
    folder.mkdir()
    assert pack.main(["export", str(folder)]) == 2
    assert "is a folder: give the pack a file name" in capsys.readouterr().err
    assert not list(folder.iterdir()) and not list(tmp_path.glob(".*.partial"))


def test_a_checkpoint_that_would_expand_when_loaded_is_refused_before_loading(exported, tmp_path,
                                                                            monkeypatch):
    """A .pt file is a zip too: deflated records inside it could load into gigabytes."""
    file, _, _ = exported
    with zipfile.ZipFile(file) as archive:
        name = next(n for n in archive.namelist() if n != pack.MANIFEST)
        original = archive.read(name)
        key = json.loads(archive.read(pack.MANIFEST))["checkpoints"][0]["key"]
    with zipfile.ZipFile(io.BytesIO(original)) as inner:
        records = {info.filename: inner.read(info) for info in inner.infolist()}
    deflated = io.BytesIO()
    with zipfile.ZipFile(deflated, "w", compression=zipfile.ZIP_DEFLATED) as inner:
        for record, data in records.items():
            inner.writestr(record, data)
    bomb = tmp_path / "bomb.zip"
    data = deflated.getvalue()
    manifest = {"format": pack.FORMAT, "torch": kd.runtime.torch_release(),
                "checkpoints": [{"file": name, "sha256": hashlib.sha256(data).hexdigest(),
                                 "key": key}]}
    with zipfile.ZipFile(bomb, "w") as archive:
        archive.writestr(pack.MANIFEST, json.dumps(manifest))
        archive.writestr(name, data)
    monkeypatch.setattr(pack, "_load", lambda path: pytest.fail("loaded before the check"))
    with pytest.raises(pack.PackError, match="holds compressed records, which torch.save never"):
        pack.import_pack(bomb)
    assert not list(kd.cache_dir().glob("*.pt")) and not list(kd.cache_dir().glob(".pack-*"))


def test_a_damaged_stream_or_odd_name_ends_in_one_error_line(exported, tmp_path, capsys):
    file, _, _ = exported
    manifest = manifest_of(file)
    entry = manifest["checkpoints"][0]
    with zipfile.ZipFile(file) as archive:
        data = archive.read(entry["file"])
    deflated = tmp_path / "deflated.zip"
    with zipfile.ZipFile(deflated, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(pack.MANIFEST, json.dumps(manifest))
        archive.writestr(entry["file"], data)
    raw = bytearray(deflated.read_bytes())
    start = raw.index(entry["file"].encode()) + len(entry["file"])  # the member's data follows
    raw[start + 100:start + 140] = b"\xff" * 40
    deflated.write_bytes(bytes(raw))
    dotted = dict(manifest, checkpoints=[{**entry, "file": "a..b-0123456789abcdef.pt"}])
    odd = write_pack(tmp_path / "odd.zip", {}, extra={"a..b-0123456789abcdef.pt": data},
                     manifest=dotted)
    for bad, message in ((deflated, "is damaged"), (odd, "not a checkpoint file name")):
        assert pack.main(["import", str(bad)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and message in err, err


def test_export_leaves_out_and_names_a_renamed_checkpoint(tmp_path, monkeypatch, tiny_data,
                                                          capsys):
    monkeypatch.setenv("KD_CACHE_DIR", str(tmp_path / "instructor"))
    cached_teacher(tiny_data)
    path = next(kd.cache_dir().glob("toy-teacher-*.pt"))
    path.rename(path.with_name("renamed-0123456789abcdef.pt"))
    with pytest.raises(pack.PackError, match="no trained model in the cache"):
        pack.export_pack(tmp_path / "p.zip", log=print)
    assert "left out renamed-0123456789abcdef.pt: its file name is not the one its key gives" \
        in capsys.readouterr().out


def test_the_pack_command_keeps_its_address():
    """`python -m kdutils.pack`, as the README and classes use it, after the package's folders."""
    done = subprocess.run([sys.executable, "-m", "kdutils.pack", "--help"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0 and "usage: python -m kdutils.pack" in done.stdout
