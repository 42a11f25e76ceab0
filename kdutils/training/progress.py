"""Progress bars that read well live and once saved, and that worker processes forward.

In a Jupyter kernel a bar is a line of text shown through an IPython display handle: JupyterLab
updates it in place, and a saved notebook keeps its final state (GitHub and nbviewer show the
finished bar, not the static "0%" of a widget's text fallback). In a terminal it is tqdm's text
bar. In a worker process of :func:`kdutils.run_parallel`, it forwards its counts to the parent,
which draws one overall bar.
"""
from __future__ import annotations

import io
import time
from typing import Any, Callable

from tqdm.std import tqdm

Forward = Callable[[tuple], None]
_forward: Forward | None = None  # set in a worker process: where its bars send their counts
FORWARD_INTERVAL = 0.5  # seconds between a worker bar's messages


def forward_bars_to(send: Forward | None) -> None:
    """Make every bar created from now on send its counts through ``send`` (None: draw them)."""
    global _forward
    _forward = send


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, nbconvert, nbval)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in shell.config


class _Text:
    """Plain text for IPython's display: its repr is the text itself."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class NotebookBar(tqdm):
    """tqdm's text bar, drawn into one IPython display that each refresh replaces."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._handle = None
        super().__init__(*args, file=io.StringIO(), ncols=100, ascii=False, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        from IPython.display import display
        text = _Text(str(self) if msg is None else msg)
        if self._handle is None:
            self._handle = display(text, display_id=True)
        else:
            self._handle.update(text)
        return True


class ForwardingBar:
    """The part of tqdm's interface the loops use, sending its counts to the parent process."""

    def __init__(self, total: int, desc: str, send: Forward) -> None:
        self._send, self._pending, self._last = send, 0, time.monotonic()
        send(("start", total, desc))

    def update(self, n: int = 1) -> None:
        self._pending += n
        if time.monotonic() - self._last >= FORWARD_INTERVAL:
            self._flush()

    def set_postfix(self, **values: Any) -> None:
        """Ignored: the parent's overall bar shows counts only."""

    def _flush(self) -> None:
        if self._pending:
            self._send(("advance", self._pending))
        self._pending, self._last = 0, time.monotonic()

    def close(self) -> None:
        self._flush()

    def __enter__(self) -> "ForwardingBar":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(total: int, desc: str, enabled: bool = True) -> tqdm | ForwardingBar:
    """A bar of ``total`` steps: forwarded in a worker, a display in a notebook, else text."""
    if _forward is not None:
        return ForwardingBar(total, desc, _forward)
    bar_class = NotebookBar if in_notebook() else tqdm
    return bar_class(total=total, desc=desc, disable=not enabled, mininterval=0.5)
