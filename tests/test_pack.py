"""Teacher packs: export the cache's trained models, import them elsewhere, refuse bad packs."""
import json
import zipfile

import pytest
import torch

import kdutils as kd
from kdutils import pack, train


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
    assert pack.main(["import", str(junk)]) == 1
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
