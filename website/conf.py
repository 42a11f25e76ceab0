"""Sphinx configuration of the course's website.

Build from the repository root (see README, "The course as a website"):

    python -m sphinx -W --keep-going -b html -c website . _build/site

The pages are the committed notebooks with their outputs (nothing is executed), the README as
the landing page, and the results, data and benchmark notes it links to. Every asset is served
from the built folder itself, MathJax included, so the site works offline from any static file
server (`python -m http.server -d _build/site`).
"""

from __future__ import annotations

import importlib.util
import posixpath
import shutil
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx

project = "Knowledge distillation, hands-on"
author = "the course's authors"
copyright = "2026, the course's authors"

extensions = ["myst_nb"]
root_doc = "README"
include_patterns = [
    "README.md",
    "RESULTS.md",
    "data/README.md",
    "benchmarks/README.md",
    "notebooks/*.ipynb",
    "solutions/*.ipynb",
]
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]

nb_execution_mode = "off"  # the committed outputs are real full-mode runs: never re-execute
nb_ipywidgets_js = {}  # no widget scripts from a CDN
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_dmath_double_inline = True  # $$...$$ inside a paragraph, as JupyterLab shows it
myst_heading_anchors = 3
suppress_warnings = ["mystnb.unknown_mime_type"]  # widget state, which the site cannot show

html_theme = "sphinx_book_theme"
html_title = project
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "use_download_button": True,
}
html_context = {"default_mode": "light"}  # the figures have white backgrounds
html_sourcelink_suffix = ""  # the download button gives the notebook itself, not a .txt copy
html_last_updated_fmt = None

# MathJax 3 from the package django-static-mathjax, copied next to the pages (no CDN).
MATHJAX_SOURCE = (
    Path(importlib.util.find_spec("mathjax").submodule_search_locations[0])
    / "static" / "mathjax" / "es5"
)
mathjax_path = "mathjax/tex-mml-chtml.js"  # relative to _static

# The sidebar, in course order: the notebooks, their solutions, then the notes.
SIDEBAR = """

```{toctree}
:caption: Notebooks
:hidden:
:glob:

notebooks/*
```

```{toctree}
:caption: Solutions
:hidden:
:glob:

solutions/*
```

```{toctree}
:caption: Notes
:hidden:

RESULTS
benchmarks/README
data/README
```
"""

INDEX_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Knowledge distillation, hands-on</title>
<meta http-equiv="refresh" content="0; url=README.html"></head>
<body><p><a href="README.html">Knowledge distillation, hands-on</a></p></body></html>
"""


def add_sidebar(app: Sphinx, docname: str, source: list[str]) -> None:
    """Append the course's table of contents to the landing page's source."""
    if docname == root_doc:
        source[0] += SIDEBAR


def add_run_locally_note(app: Sphinx, doctree: nodes.document) -> None:
    """Put a note under each notebook's title: where to get it and how to run it."""
    docname = app.env.docname
    if not docname.startswith(("notebooks/", "solutions/")):
        return
    path = f"{docname}.ipynb"
    download = posixpath.relpath(f"_sources/{path}", posixpath.dirname(docname))
    paragraph = nodes.paragraph(
        "", "",
        nodes.Text("Run this notebook yourself: "),
        nodes.reference("", "download it", refuri=download),
        nodes.Text(" or, from a clone of the course after "),
        nodes.literal("", "pip install -r requirements.txt"),
        nodes.Text(", open it with "),
        nodes.literal("", f"jupyter lab {path}"),
        nodes.Text(". With "),
        nodes.literal("", "KD_QUICK=1"),
        nodes.Text(" it runs in quick mode, a smoke test of a few minutes; the outputs on this "
                   "page come from a full-mode run."))
    note = nodes.note("", paragraph)
    title_section = doctree.next_node(nodes.section)
    title_section.insert(1, note)


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    """Serve MathJax from the site itself."""
    if exception is None and app.builder.format == "html":
        shutil.copytree(MATHJAX_SOURCE, Path(app.outdir) / "_static" / "mathjax", dirs_exist_ok=True)


def add_index_page(app: Sphinx, exception: Exception | None) -> None:
    """Let the site's address open the landing page (README.html)."""
    if exception is None and app.builder.format == "html":
        (Path(app.outdir) / "index.html").write_text(INDEX_PAGE, encoding="utf-8")


def setup(app: Sphinx) -> None:
    app.connect("source-read", add_sidebar)
    app.connect("doctree-read", add_run_locally_note)
    app.connect("build-finished", copy_mathjax)
    app.connect("build-finished", add_index_page)
