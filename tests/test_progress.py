"""Progress bars: a notebook's saved output keeps the finished bar as text."""
import IPython.display

from kdutils.training import progress


class FakeHandle:
    def __init__(self, shown):
        self.shown = shown

    def update(self, obj):
        self.shown.append(repr(obj))


def test_a_notebook_bar_leaves_its_final_state_as_plain_text(monkeypatch):
    shown = []

    def display(obj, display_id=False):
        assert display_id is True  # one output, updated in place
        shown.append(repr(obj))
        return FakeHandle(shown)

    monkeypatch.setattr(IPython.display, "display", display)
    with progress.NotebookBar(total=4, desc="alone s0") as bar:
        for _ in range(4):
            bar.update()
        bar.set_postfix(test_acc="91.00%")
    assert shown[0].startswith("alone s0:   0%")
    assert shown[-1].startswith("alone s0: 100%") and "4/4" in shown[-1]
    assert "test_acc=91.00%" in shown[-1]


def test_a_worker_bar_forwards_its_total_and_counts():
    sent = []
    progress.forward_bars_to(sent.append)
    try:
        with progress.progress_bar(10, "s1") as bar:
            for _ in range(10):
                bar.update()
    finally:
        progress.forward_bars_to(None)
    assert sent[0] == ("start", 10, "s1")
    assert sum(message[1] for message in sent[1:]) == 10
