"""Text for a character-level language model: Jane Austen's six novels, a vocabulary of their
characters, and fixed windows of tokens that the training loop batches like images.

Held-out text is the last 10% of each novel, not one whole novel: every novel has its own
names and places, so a held-out novel would also measure how a model copes with names it never
saw, and the six novels differ in length (a held-out novel is 9% to 22% of the text). The last
tenth of each keeps the characters and the style, and is one contiguous stretch per novel, so no
window of training text overlaps it.
"""
from __future__ import annotations

import functools
import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checks import check_count
from ..runtime import DATA_ENV, display_path
from .datasets import UNLABELLED, random_positions
from .fingerprint import content_fingerprint, derived_fingerprint, positions
from .sources import CorruptDatasetError, DatasetNotFoundError, loaded_once, resolve_root

AUSTEN_NOVELS = ("emma", "mansfieldpark", "northangerabbey", "persuasion", "prideprejudice",
                 "sensesensibility")
HELD_OUT_FRACTION = 0.1
CHECKSUMS_FILE = "SHA256SUMS"
GUTENBERG_EBOOKS = {"emma": 158, "mansfieldpark": 141, "northangerabbey": 121,
                    "persuasion": 105, "prideprejudice": 1342, "sensesensibility": 161}


@dataclass(frozen=True)
class Corpus:
    """Texts by title and the vocabulary of their characters (sorted; token ``i`` is
    ``vocabulary[i]``)."""

    texts: dict[str, str]
    vocabulary: str
    source: str

    def encode(self, text: str) -> torch.Tensor:
        """The token ids of ``text`` as uint8 (the vocabulary has at most 256 characters)."""
        index = {char: i for i, char in enumerate(self.vocabulary)}
        unknown = sorted(set(text) - index.keys())
        if unknown:
            raise ValueError(f"text has characters outside the vocabulary: {unknown[:10]}; "
                             "encode only text made of this corpus's characters")
        return torch.tensor([index[char] for char in text], dtype=torch.uint8)

    def decode(self, tokens: torch.Tensor | list[int]) -> str:
        """The text of token ids."""
        ids = tokens.tolist() if isinstance(tokens, torch.Tensor) else tokens
        return "".join(self.vocabulary[i] for i in ids)

    def split(self, part: str) -> dict[str, str]:
        """``"train"``: the first 90% of each text; ``"held-out"``: the last 10%."""
        if part not in ("train", "held-out"):
            raise ValueError(f"part must be 'train' or 'held-out', got {part!r}")
        cuts = {title: round(len(text) * (1 - HELD_OUT_FRACTION))
                for title, text in self.texts.items()}
        return {title: text[:cuts[title]] if part == "train" else text[cuts[title]:]
                for title, text in self.texts.items()}


@dataclass(frozen=True)
class TokenWindows:
    """Fixed windows of text: ``samples`` ``(N, L)`` uint8 token ids and ``labels`` ``(N, L)``
    int64, the token that follows each position. The training loop batches them as it batches
    images: by index, so a teacher's outputs computed once are looked up per window."""

    samples: torch.Tensor
    labels: torch.Tensor
    vocabulary: str
    name: str
    source: str

    @functools.cached_property
    def fingerprint(self) -> str:
        """sha256 of the windows, their next tokens and the vocabulary."""
        return content_fingerprint(self.samples, self.labels, extra=self.vocabulary)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def classes(self) -> int:
        """The vocabulary's size: the number of possible next tokens."""
        return len(self.vocabulary)

    @property
    def labelled(self) -> torch.Tensor:
        """Mask ``(N, L)`` of the positions whose next token is known (all of them)."""
        return self.labels != UNLABELLED

    def normalize(self, samples: torch.Tensor) -> torch.Tensor:
        """The model's input: uint8 token ids as int64 (what ``nn.Embedding`` takes)."""
        return samples.long()

    def select(self, index: torch.Tensor, described: str) -> "TokenWindows":
        """The windows at positions ``index``; ``described`` extends the names."""
        picked = positions(index, len(self))
        selected = TokenWindows(self.samples[picked], self.labels[picked], self.vocabulary,
                                self.name + described, self.source + described)
        selected.__dict__["fingerprint"] = derived_fingerprint(self.fingerprint, "select", picked)
        return selected

    def subset(self, size: int, seed: int = 0) -> "TokenWindows":
        """``size`` windows drawn at random (kept in their order), for quick mode."""
        return self.select(random_positions(len(self), size, seed),
                           f" (random subset of {size}, seed {seed})")


def token_windows(corpus: Corpus, texts: dict[str, str], context: int, name: str
                  ) -> TokenWindows:
    """Consecutive windows of ``context`` tokens from each text, in title order; each window's
    labels are the next ``context`` tokens, so every token but a text's first is predicted
    exactly once. A text's last partial window is dropped; windows never cross texts."""
    check_count(context, "context")
    inputs, labels = [], []
    for title in sorted(texts):
        tokens = corpus.encode(texts[title])
        count = (len(tokens) - 1) // context
        inputs.append(tokens[:count * context].view(count, context))
        labels.append(tokens[1:count * context + 1].view(count, context).long())
    samples = torch.cat(inputs)
    if len(samples) == 0:
        raise ValueError(f"the texts are shorter than one window of context={context} tokens; "
                         "use a shorter context or more text")
    return TokenWindows(samples, torch.cat(labels), corpus.vocabulary, name,
                        f"{corpus.source}: {name}")


def austen_windows(part: str, context: int, root: str | Path | None = None,
                   download: bool = True) -> TokenWindows:
    """Windows of ``context`` characters from the ``part`` (``"train"`` or ``"held-out"``) of
    Jane Austen's novels (:func:`load_austen`)."""
    corpus = load_austen(root, download)
    return token_windows(corpus, corpus.split(part), context, f"Austen, {part}")


def _folder(root: Path) -> Path:
    return root / "austen"


def _missing_message(folder: Path, missing: list[str]) -> str:
    books = ", ".join(f"{title} (ebook {number})" for title, number in GUTENBERG_EBOOKS.items())
    return (f"Jane Austen's novels are not all in {display_path(folder)}: missing "
            f"{', '.join(f'{title}.txt' for title in missing)}. Put the six files "
            f"{', '.join(f'{title}.txt' for title in AUSTEN_NOVELS)} there (the course's offline "
            f"mirror, austen.tar.gz, unpacks to austen/), or point {DATA_ENV} at a folder that "
            f"has austen/. They are Project Gutenberg's texts without its header and licence "
            f"footer ({books}), which load_austen downloads when it can; see data/README.md.")


def _read_checksums(folder: Path) -> dict[str, str]:
    """``{file name: sha256}`` from the folder's SHA256SUMS, or ``{}`` when there is none."""
    sums = folder / CHECKSUMS_FILE
    if not sums.is_file():
        return {}
    entries = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            entries[name.lstrip("*")] = digest
    return entries


def _read_novel(path: Path, expected_sha256: str | None) -> str:
    """A novel's text, checked: UTF-8, not empty, and matching its checksum when one is given."""
    data = path.read_bytes()
    if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise CorruptDatasetError(f"{display_path(path)} does not match its sha256 in "
                                  f"{CHECKSUMS_FILE} (a truncated or edited copy); replace it "
                                  "with the original file, or remove SHA256SUMS if you use "
                                  "another transcription on purpose")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CorruptDatasetError(f"{display_path(path)} is not UTF-8 text ({error}); save it "
                                  "as UTF-8") from error
    if not text.strip():
        raise CorruptDatasetError(f"{display_path(path)} is empty; replace it with the novel's "
                                  "text")
    return text


GUTENBERG_URL = "https://www.gutenberg.org/cache/epub/{number}/pg{number}.txt"
_START, _END = "*** START OF", "*** END OF"


def gutenberg_body(text: str) -> str:
    """A Project Gutenberg file's text between its ``*** START OF`` and ``*** END OF`` lines,
    with Windows line ends made plain and the blank lines around it removed."""
    lines = text.replace("\r\n", "\n").split("\n")
    starts = [i for i, line in enumerate(lines) if line.startswith(_START)]
    ends = [i for i, line in enumerate(lines) if line.startswith(_END)]
    if not starts or not ends or ends[0] <= starts[0]:
        raise ValueError("not a Project Gutenberg text: no '*** START OF' and '*** END OF' lines")
    return "\n".join(lines[starts[0] + 1:ends[0]]).strip("\n") + "\n"


def _download_novels(folder: Path, titles: list[str]) -> None:
    """Fetch ``titles`` from Project Gutenberg into ``folder``, header and footer removed; each
    file appears whole or not at all. Any failure raises :class:`DatasetNotFoundError`."""
    folder.mkdir(parents=True, exist_ok=True)
    for title in titles:
        url = GUTENBERG_URL.format(number=GUTENBERG_EBOOKS[title])
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                body = gutenberg_body(response.read().decode("utf-8-sig"))
        except (OSError, ValueError, UnicodeDecodeError) as error:
            raise DatasetNotFoundError(_missing_message(folder, titles) + f" (downloading "
                                       f"{url} failed: {error})") from error
        partial = folder / f".{title}.txt.part"
        partial.write_text(body, encoding="utf-8")
        os.replace(partial, folder / f"{title}.txt")


@loaded_once
def _load_austen(root: Path, download: bool) -> Corpus:
    folder = _folder(root)
    missing = [title for title in AUSTEN_NOVELS if not (folder / f"{title}.txt").is_file()]
    if missing and download:
        _download_novels(folder, missing)
    elif missing:
        raise DatasetNotFoundError(_missing_message(folder, missing))
    checksums = _read_checksums(folder)
    texts = {title: _read_novel(folder / f"{title}.txt", checksums.get(f"{title}.txt"))
             for title in AUSTEN_NOVELS}
    vocabulary = "".join(sorted(set("".join(texts.values()))))
    if len(vocabulary) > 256:
        raise CorruptDatasetError(f"the novels in {display_path(folder)} use {len(vocabulary)} "
                                  "distinct characters, more than the 256 a uint8 token holds; "
                                  "these are not the plain-text novels the course expects")
    return Corpus(texts, vocabulary, f"Jane Austen's novels ({display_path(folder)})")


def load_austen(root: str | Path | None = None, download: bool = True) -> Corpus:
    """Jane Austen's six novels from ``root/austen/*.txt`` (default: the course's data folder),
    read once per process; checked against ``SHA256SUMS`` when the folder has one.

    Missing novels are downloaded from Project Gutenberg (``download=True``) and stripped of
    Gutenberg's header and licence footer. Gutenberg's current files can differ slightly from
    the course's offline mirror (the janeaustenr package's copy), so numbers measured on them can
    differ a little from the notebooks'.
    """
    return _load_austen(resolve_root(root), download)
