"""Compare a re-run notebook's outputs with a committed version, cell by cell.

    python .ci/compare_outputs.py notebooks/02_mnist_distillation.ipynb [REV] [REPO]

Text outputs are compared exactly (stream chunks joined), images by hash; progress-bar widgets
and their stderr text are left out. REV defaults to HEAD, REPO to the current folder. Used to
check that a change to kdutils left a notebook's results as they were.
"""
import argparse
import hashlib
import json
import re
import subprocess
import sys


def outputs(cell: dict) -> list[tuple[str, str]]:
    """The comparable outputs of a code cell, as (kind, text or image hash) pairs."""
    found: list[tuple[str, str]] = []
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if "application/vnd.jupyter.widget-view+json" in data:
            continue
        if "text" in output:
            text = "".join(output["text"])
            if output.get("name") == "stderr" and re.search(r"it/s|s/it|\d+%\|", text):
                continue
            found.append(("text", text))
        for kind, value in data.items():
            value = "".join(value) if isinstance(value, list) else value
            found.append((kind, hashlib.md5(value.encode()).hexdigest()
                          if kind.startswith("image") else value))
    joined: list[tuple[str, str]] = []
    for kind, value in found:
        if joined and kind == "text" and joined[-1][0] == "text":
            joined[-1] = ("text", joined[-1][1] + value)
        else:
            joined.append((kind, value))
    return joined


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="the notebook, as re-run")
    parser.add_argument("rev", nargs="?", default="HEAD", help="the committed version to compare")
    parser.add_argument("repo", nargs="?", default=".", help="the git repository holding it")
    args = parser.parse_args()
    path, rev, repo = args.path, args.rev, args.repo
    committed = subprocess.run(["git", "-C", repo, "show", f"{rev}:{path}"], check=True,
                               capture_output=True, text=True).stdout
    old = [c for c in json.loads(committed)["cells"] if c["cell_type"] == "code"]
    new = [c for c in json.load(open(path))["cells"] if c["cell_type"] == "code"]
    same_source = len(old) == len(new) and all(a["source"] == b["source"] for a, b in zip(old, new))
    print(f"{len(new)} code cells; sources identical: {same_source}")
    differing = 0
    for number, (a, b) in enumerate(zip(old, new)):
        if outputs(a) != outputs(b):
            differing += 1
            print(f"code cell {number} differs:\n  before: {outputs(a)}\n  after:  {outputs(b)}")
    print(f"{len(new) - differing} of {len(new)} code cells have identical outputs")
    return 1 if differing or not same_source else 0


if __name__ == "__main__":
    sys.exit(main())
