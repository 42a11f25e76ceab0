"""The language-model pieces: text windows, the character GPT, the per-position divergences
(checked against GKD's formula in float64), training through the one loop, and sampling."""
import hashlib
import math

import pytest
import torch

import kdutils as kd
from kdutils.models.gpt import CharGPT
from kdutils.inference.sampling import continuation_scores, distinct_ngrams, sample
from kdutils.data.sources import CorruptDatasetError, DatasetNotFoundError, forget_loaded
from kdutils.data.text import AUSTEN_NOVELS, Corpus, load_austen, token_windows

TEXTS = {"one": "the cat sat on the mat. " * 8, "two": "a dog ran to the log! " * 6}


@pytest.fixture
def corpus() -> Corpus:
    vocabulary = "".join(sorted(set("".join(TEXTS.values()))))
    return Corpus(dict(TEXTS), vocabulary, "synthetic")


def tiny_gpt(vocab_size: int, context: int = 8, seed: int = 0) -> CharGPT:
    torch.manual_seed(seed)
    return CharGPT(vocab_size, context, width=16, layers=1, heads=2)


# --- text -------------------------------------------------------------------------------------

def test_encode_decode_round_trip(corpus):
    tokens = corpus.encode("the dog")
    assert tokens.dtype == torch.uint8
    assert corpus.decode(tokens) == "the dog"


def test_encode_names_unknown_characters(corpus):
    with pytest.raises(ValueError, match=r"outside the vocabulary: \['Z', 'b'\]"):
        corpus.encode("Zebra")


def test_windows_predict_each_token_once_and_never_cross_texts(corpus):
    windows = token_windows(corpus, corpus.texts, context=5, name="all")
    assert windows.samples.shape[1] == 5 and windows.labels.shape == windows.samples.shape
    torch.testing.assert_close(windows.labels[:, :-1], windows.samples[:, 1:].long())
    first = corpus.encode(TEXTS["one"])
    count_one = (len(first) - 1) // 5
    torch.testing.assert_close(windows.samples[:count_one].flatten(), first[:count_one * 5])
    torch.testing.assert_close(windows.labels[:count_one].flatten(),
                               first[1:count_one * 5 + 1].long())
    second = corpus.encode(TEXTS["two"])
    torch.testing.assert_close(windows.samples[count_one], second[:5])  # a window of "two"


def test_split_holds_out_the_last_tenth_of_each_text(corpus):
    train, held_out = corpus.split("train"), corpus.split("held-out")
    for title, text in TEXTS.items():
        assert train[title] + held_out[title] == text
        assert len(held_out[title]) == len(text) - round(len(text) * 0.9)
    with pytest.raises(ValueError, match="part must be"):
        corpus.split("test")


def test_selected_windows_get_a_derived_fingerprint(corpus):
    windows = token_windows(corpus, corpus.texts, context=5, name="all")
    picked = windows.select(torch.tensor([0, 2]), " (two)")
    assert len(picked) == 2 and picked.fingerprint != windows.fingerprint
    assert picked.fingerprint == windows.select(torch.tensor([0, 2]), " (again)").fingerprint
    assert windows.subset(3, seed=1).fingerprint == windows.subset(3, seed=1).fingerprint


def write_novels(folder, text="Some text.\n"):
    folder.mkdir(parents=True)
    for title in AUSTEN_NOVELS:
        (folder / f"{title}.txt").write_text(text)


def test_load_austen_names_missing_files(tmp_path):
    write_novels(tmp_path / "austen")
    (tmp_path / "austen" / "emma.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"missing emma\.txt.*ebook 158"):
        load_austen(tmp_path, download=False)


GUTENBERG_FILE = ("The Project Gutenberg eBook of Emma\r\n\r\n*** START OF THE PROJECT GUTENBERG "
                  "EBOOK EMMA ***\r\n\r\nEMMA\r\n\r\nBy Jane Austen\r\n\r\n*** END OF THE "
                  "PROJECT GUTENBERG EBOOK EMMA ***\r\nlicence text\r\n")


class FakeResponse:
    def __init__(self, body: bytes):
        self.body = body

    def read(self):
        return self.body

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_load_austen_downloads_missing_novels_without_gutenbergs_header(tmp_path, monkeypatch):
    write_novels(tmp_path / "austen")
    (tmp_path / "austen" / "emma.txt").unlink()
    asked = []

    def fake_urlopen(url, timeout):
        asked.append(url)
        return FakeResponse(GUTENBERG_FILE.encode())

    monkeypatch.setattr("urllib.request.urlopen", fake_urlopen)
    corpus = load_austen(tmp_path)
    assert asked == ["https://www.gutenberg.org/cache/epub/158/pg158.txt"]
    assert corpus.texts["emma"] == "EMMA\n\nBy Jane Austen\n"
    assert sorted(p.name for p in (tmp_path / "austen").iterdir()) == sorted(
        f"{title}.txt" for title in AUSTEN_NOVELS)


def test_a_failed_download_explains_and_leaves_nothing(tmp_path, monkeypatch):
    def offline(url, timeout):
        raise OSError("no network")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(DatasetNotFoundError, match="downloading .*pg158.txt failed: no network"):
        load_austen(tmp_path)
    assert list((tmp_path / "austen").iterdir()) == []


def test_load_austen_checks_sums_and_encoding(tmp_path):
    folder = tmp_path / "austen"
    write_novels(folder)
    digest = hashlib.sha256(b"Some text.\n").hexdigest()
    (folder / "SHA256SUMS").write_text(
        "".join(f"{digest}  {title}.txt\n" for title in AUSTEN_NOVELS))
    assert load_austen(tmp_path).vocabulary == "\n .Semotx"
    (folder / "persuasion.txt").write_text("Some text, edited.\n")
    forget_loaded()
    with pytest.raises(CorruptDatasetError, match="persuasion.txt does not match its sha256"):
        load_austen(tmp_path)
    (folder / "SHA256SUMS").unlink()
    (folder / "persuasion.txt").write_bytes(b"\xff\xfe broken")
    forget_loaded()
    with pytest.raises(CorruptDatasetError, match="persuasion.txt is not UTF-8"):
        load_austen(tmp_path)


# --- the model --------------------------------------------------------------------------------

def test_gpt_is_causal():
    model = tiny_gpt(10).eval()
    tokens = torch.randint(0, 10, (2, 8), generator=torch.Generator().manual_seed(0))
    changed = tokens.clone()
    changed[:, 5:] = (changed[:, 5:] + 1) % 10
    out, out_changed = model(tokens), model(changed)
    assert out.shape == (2, 8, 10)
    torch.testing.assert_close(out[:, :5], out_changed[:, :5])
    assert not torch.allclose(out[:, 5:], out_changed[:, 5:])


def test_gpt_refuses_bad_settings_and_long_inputs():
    with pytest.raises(ValueError, match=r"width \(10\) must be a multiple of heads \(4\)"):
        CharGPT(5, 8, width=10, layers=1, heads=4)
    with pytest.raises(ValueError, match="context is 8"):
        tiny_gpt(5)(torch.zeros(1, 9, dtype=torch.long))


# --- divergences ------------------------------------------------------------------------------

STUDENT = torch.tensor([[1.0, 2.0, 0.5, -1.0], [0.0, -1.0, 3.0, 0.2]], dtype=torch.float64)
TEACHER = torch.tensor([[4.0, 1.0, 0.0, -2.0], [1.0, 1.0, 6.0, 0.5]], dtype=torch.float64)


def softmax(row, T):
    z = sum(math.exp(v / T) for v in row)
    return [math.exp(v / T) / z for v in row]


def kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q))


def gkd_reference(beta, T):
    """Agarwal et al. (2024), eq. 1: beta KL(P || M) + (1 - beta) KL(Q || M), M = beta P +
    (1 - beta) Q, P the teacher's distribution and Q the student's; batch mean, times T**2."""
    total = 0.0
    for s_row, t_row in zip(STUDENT.tolist(), TEACHER.tolist()):
        p, q = softmax(t_row, T), softmax(s_row, T)
        m = [beta * a + (1 - beta) * b for a, b in zip(p, q)]
        total += beta * kl(p, m) + (1 - beta) * kl(q, m)
    return total / len(STUDENT) * T**2


@pytest.mark.parametrize("beta", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("T", [1.0, 2.0])
def test_generalized_jsd_matches_the_paper(beta, T):
    value = kd.GeneralizedJSD(beta)(STUDENT, TEACHER, T).item()
    assert value == pytest.approx(gkd_reference(beta, T), rel=1e-12)


@pytest.mark.parametrize("T", [1.0, 2.0])
def test_reverse_kl_matches_plain_python(T):
    expected = sum(kl(softmax(s, T), softmax(t, T)) for s, t in
                   zip(STUDENT.tolist(), TEACHER.tolist())) / len(STUDENT) * T**2
    assert kd.reverse_kl_loss(STUDENT, TEACHER, T).item() == pytest.approx(expected, rel=1e-12)


def test_generalized_jsd_ends_are_forward_and_reverse_kl():
    torch.testing.assert_close(kd.GeneralizedJSD(0.0)(STUDENT, TEACHER, 1.0),
                               kd.kd_loss(STUDENT, TEACHER, 1.0))
    torch.testing.assert_close(kd.GeneralizedJSD(1.0)(STUDENT, TEACHER, 1.0),
                               kd.reverse_kl_loss(STUDENT, TEACHER, 1.0))
    small = kd.GeneralizedJSD(1e-6)(STUDENT, TEACHER, 1.0) / 1e-6
    torch.testing.assert_close(small, kd.kd_loss(STUDENT, TEACHER, 1.0), rtol=1e-4, atol=0)
    with pytest.raises(ValueError, match="beta is a loss weight"):
        kd.GeneralizedJSD(1.5)


def test_reverse_kl_sends_no_gradient_to_the_teacher():
    student, teacher = STUDENT.clone().requires_grad_(), TEACHER.clone().requires_grad_()
    kd.reverse_kl_loss(student, teacher, 2.0).backward()
    assert teacher.grad is None and student.grad.abs().sum() > 0


# --- training through the one loop ------------------------------------------------------------

@pytest.fixture
def splits(corpus):
    return (token_windows(corpus, corpus.split("train"), 8, "train"),
            token_windows(corpus, corpus.split("held-out"), 8, "held-out"))


def test_fit_reports_held_out_bits_per_character(splits):
    train, held_out = splits
    model = tiny_gpt(train.classes)
    history = kd.fit(model, train, held_out, epochs=3, lr=1e-2, batch_size=4, progress=False)
    bpc = history.column("test_bpc")
    assert bpc[-1] < bpc[0] < math.log2(train.classes) + 1
    assert 0 <= history.final_accuracy <= 100


@pytest.mark.parametrize("soft_loss", [kd.kd_loss, kd.reverse_kl_loss, kd.GeneralizedJSD(0.5)])
def test_distill_per_position_from_stored_teacher_logits(splits, soft_loss):
    train, held_out = splits
    teacher = tiny_gpt(train.classes, seed=1)
    logits = kd.teacher_logits(teacher, train)
    assert logits.shape == (len(train), 8, train.classes)
    student = tiny_gpt(train.classes, seed=2)
    history = kd.distill(student, teacher, train, held_out, T=1.0, alpha=0.0, epochs=1, lr=1e-2,
                         batch_size=4, soft_loss=soft_loss, cached_logits=logits,
                         progress=False)
    assert history.rows[0]["kd"] > 0 and history.rows[0]["ce"] == 0


# --- sampling ---------------------------------------------------------------------------------

def test_sampling_is_repeatable_and_top_1_is_greedy():
    model = tiny_gpt(10)
    prompts = torch.randint(0, 10, (3, 4), generator=torch.Generator().manual_seed(0))
    first = sample(model, prompts, 5, generator=torch.Generator().manual_seed(7))
    again = sample(model, prompts, 5, generator=torch.Generator().manual_seed(7))
    assert first.shape == (3, 9) and torch.equal(first, again)
    assert torch.equal(first[:, :4], prompts)
    greedy = sample(model, prompts, 1, top_k=1, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model.eval()(prompts)[:, -1].argmax(1)
    torch.testing.assert_close(greedy[:, -1], expected)
    with pytest.raises(ValueError, match="top_k=11 is more than the vocabulary's 10"):
        sample(model, prompts, 1, top_k=11)


def test_continuation_scores_match_a_direct_computation():
    model = tiny_gpt(10).eval()
    tokens = torch.randint(0, 10, (2, 8), generator=torch.Generator().manual_seed(3))
    scores = continuation_scores(model, tokens, prompt_length=3)
    with torch.no_grad():
        log_p = torch.log_softmax(model(tokens[:, :-1]), -1)[:, 2:]
    nats = -log_p.gather(2, tokens[:, 3:, None]).mean().item()
    assert scores["bits_per_char"] == pytest.approx(nats / math.log(2), rel=1e-5)
    entropy = -(log_p.exp() * log_p).sum(-1).mean().item()
    assert scores["entropy_bits"] == pytest.approx(entropy / math.log(2), rel=1e-5)


def test_distinct_ngrams_counts_repeats():
    assert distinct_ngrams(torch.tensor([[1, 2, 1, 2, 1]]), 2) == pytest.approx(2 / 4)
    assert distinct_ngrams(torch.tensor([[1, 2, 3], [4, 5, 6]]), 3) == 1.0
    with pytest.raises(ValueError, match="no 4-grams"):
        distinct_ngrams(torch.tensor([[1, 2, 3]]), 4)


def test_key_value_cache_gives_the_logits_of_a_full_pass():
    model = tiny_gpt(10).eval()
    tokens = torch.randint(0, 10, (2, 8), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        full = model(tokens)
        logits, past = model.extend(tokens[:, :3], None)
        steps = [logits]
        for position in range(3, 8):
            logits, past = model.extend(tokens[:, position:position + 1], past)
            steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-5, atol=1e-5)


# --- a teacher's top-k logits -----------------------------------------------------------------

def test_top_k_logits_look_up_as_dense_rows_with_minus_infinity(splits):
    train, _ = splits
    logits = kd.teacher_logits(tiny_gpt(train.classes, seed=1), train)
    table = kd.top_k_logits(logits, 4)
    assert table.shape == logits.shape and table.data_fingerprint == train.fingerprint
    rows = table[torch.tensor([2, 0])]
    assert rows.shape == (2, 8, train.classes)
    assert (torch.isfinite(rows).sum(-1) == 4).all()
    kept = torch.isfinite(rows)
    torch.testing.assert_close(rows[kept], logits[[2, 0]][kept])
    assert table.nbytes < logits.numel() * 4
    assert table.agrees_with(logits[:3]) and not table.agrees_with(logits[:3] + 1)
    with pytest.raises(ValueError, match=r"k=99 is more than the"):
        kd.top_k_logits(logits, 99)


def test_top_k_teacher_is_its_renormalized_top_k():
    teacher = torch.tensor([[3.0, 1.0, 0.5, -2.0]])
    student = torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    sparse = kd.top_k_logits(teacher, 2)[:]
    p = torch.softmax(teacher[0, :2] / 2, 0)
    q = torch.log_softmax(student[0] / 2, 0)[:2]
    expected = (p * (p.log() - q)).sum() * 4
    torch.testing.assert_close(kd.kd_loss(student, sparse, 2.0), expected)
    assert torch.isfinite(kd.GeneralizedJSD(0.5)(student, sparse, 2.0))
    with pytest.raises(ValueError, match="reverse KL is infinite"):
        kd.reverse_kl_loss(student, sparse, 2.0)


def test_distill_from_top_k_logits_checks_the_teacher(splits):
    train, held_out = splits
    teacher = tiny_gpt(train.classes, seed=1)
    table = kd.top_k_logits(kd.teacher_logits(teacher, train), 4)
    history = kd.cached_distill(lambda: tiny_gpt(train.classes, seed=2), "lm", teacher, train,
                                held_out, T=1.0, alpha=0.0, epochs=1, lr=1e-2, batch_size=4,
                                cached_logits=table, progress=False)[1]
    assert history.rows[0]["kd"] > 0
    other = tiny_gpt(train.classes, seed=3)
    with pytest.raises(ValueError, match="computed by another teacher"):
        kd.cached_distill(lambda: tiny_gpt(train.classes, seed=2), "lm", other, train, held_out,
                          T=1.0, alpha=0.0, epochs=1, lr=1e-2, batch_size=4, cached_logits=table,
                          progress=False)


# --- text written by a model ------------------------------------------------------------------

def test_positions_labelled_unlabelled_leave_the_loss():
    logits = torch.randn(2, 3, 5)
    labels = torch.tensor([[kd.UNLABELLED, 1, 2], [0, kd.UNLABELLED, 4]])
    from kdutils.inference.predict import per_position
    rows, kept, teacher = per_position(logits, labels, logits * 2)
    assert rows.shape == (4, 5) and kept.tolist() == [1, 2, 0, 4]
    torch.testing.assert_close(teacher, rows * 2)


def test_teacher_text_keeps_the_prompts_and_is_cached(splits):
    train, held_out = splits
    teacher = tiny_gpt(train.classes, seed=1)
    text = kd.teacher_text(teacher, train, prompt_length=3, seed=5)
    assert text.samples.shape == train.samples.shape
    assert torch.equal(text.samples[:, :3], train.samples[:, :3])
    assert (text.labels[:, :2] == kd.UNLABELLED).all() and (text.labels[:, 2:] >= 0).all()
    torch.testing.assert_close(text.labels[:, 2:-1], text.samples[:, 3:].long())
    again = kd.teacher_text(teacher, train, prompt_length=3, seed=5)
    assert torch.equal(again.samples, text.samples)
    history = kd.fit(tiny_gpt(train.classes), text, held_out, epochs=1, lr=1e-2, batch_size=4,
                     progress=False)
    assert history.rows[0]["ce"] > 0
    with pytest.raises(ValueError, match="prompt_length=8 leaves nothing to sample"):
        kd.teacher_text(teacher, train, prompt_length=8)


def test_on_policy_batches_replace_a_share_with_the_students_samples(splits):
    train, _ = splits
    student = tiny_gpt(train.classes, seed=2)
    batch = next(kd.data.iterate_batches(train, 4))
    prepared = kd.OnPolicy(fraction=0.5, prompt_length=3).batches(student, seed=0)(batch)
    assert torch.equal(prepared.inputs[2:], batch.inputs[2:])
    assert torch.equal(prepared.labels[2:], batch.labels[2:])
    assert torch.equal(prepared.inputs[:2, :3], batch.inputs[:2, :3])
    assert (prepared.labels[:2, :2] == kd.UNLABELLED).all()
    again = kd.OnPolicy(fraction=0.5, prompt_length=3).batches(student, seed=0)(batch)
    assert torch.equal(again.inputs, prepared.inputs)


def test_on_policy_distillation_trains_and_refuses_labels(splits):
    train, held_out = splits
    teacher = tiny_gpt(train.classes, seed=1)
    settings = dict(epochs=1, lr=1e-2, batch_size=4, progress=False,
                    on_policy=kd.OnPolicy(fraction=0.5, prompt_length=3))
    history = kd.distill(tiny_gpt(train.classes, seed=2), teacher, train, held_out, T=1.0,
                         alpha=0.0, soft_loss=kd.reverse_kl_loss, **settings)
    assert history.rows[0]["kd"] > 0
    with pytest.raises(ValueError, match="no true next tokens"):
        kd.distill(tiny_gpt(train.classes, seed=2), teacher, train, held_out, T=1.0, alpha=0.5,
                   **settings)
    with pytest.raises(ValueError, match="runs the teacher live"):
        kd.distill(tiny_gpt(train.classes, seed=2), teacher, train, held_out, T=1.0, alpha=0.0,
                   cached_logits=kd.teacher_logits(teacher, train), **settings)
    with pytest.raises(ValueError, match=r"fraction must be a share in \[0, 1\]"):
        kd.OnPolicy(fraction=2.0)


def test_cached_distill_can_start_from_trained_weights(splits):
    train, held_out = splits
    teacher = tiny_gpt(train.classes, seed=1)
    first = tiny_gpt(train.classes, seed=7)
    settings = dict(T=1.0, alpha=0.0, epochs=1, lr=1e-3, batch_size=4, progress=False,
                    on_policy=kd.OnPolicy(fraction=0.0, prompt_length=3))
    from_first = kd.cached_distill(lambda: tiny_gpt(train.classes), "lm", teacher, train,
                                   held_out, start_from=first, **settings)[1]
    from_seed = kd.cached_distill(lambda: tiny_gpt(train.classes), "lm", teacher, train,
                                  held_out, **settings)[1]
    assert from_first.rows[0]["kd"] != from_seed.rows[0]["kd"]  # two runs, not one cache entry


def test_a_language_model_teacher_travels_in_a_pack(splits, tmp_path, monkeypatch):
    from kdutils.classroom import pack
    from kdutils.training import fit as training
    train, held_out = splits

    def cached_teacher():
        return kd.cached_fit(lambda: tiny_gpt(train.classes), "lm-teacher", train, held_out,
                             epochs=1, lr=1e-2, batch_size=4, progress=False)

    monkeypatch.setenv("KD_CACHE_DIR", str(tmp_path / "instructor"))
    teacher, history = cached_teacher()
    assert "test_bpc" in history.rows[-1]
    file = tmp_path / "teachers.zip"
    assert pack.main(["export", str(file)]) == 0
    monkeypatch.setenv("KD_CACHE_DIR", str(tmp_path / "student"))
    assert len(pack.import_pack(file)) == 1
    monkeypatch.setattr(training, "fit", lambda *a, **k: pytest.fail("trained again"))
    loaded, loaded_history = cached_teacher()
    assert loaded_history.rows == history.rows
    assert all(torch.equal(a, b) for a, b in zip(teacher.state_dict().values(),
                                                 loaded.state_dict().values()))


def test_top_k_and_full_logits_students_do_not_share_a_cache_entry(splits):
    train, held_out = splits
    teacher = tiny_gpt(train.classes, seed=1)
    full = kd.teacher_logits(teacher, train)
    settings = dict(T=1.0, alpha=0.0, epochs=1, lr=1e-2, batch_size=4, progress=False)
    from_full = kd.cached_distill(lambda: tiny_gpt(train.classes, seed=2), "lm", teacher, train,
                                  held_out, cached_logits=full, **settings)[1]
    from_top_2 = kd.cached_distill(lambda: tiny_gpt(train.classes, seed=2), "lm", teacher, train,
                                   held_out, cached_logits=kd.top_k_logits(full, 2), **settings)[1]
    assert from_top_2.rows[0]["kd"] != from_full.rows[0]["kd"]
