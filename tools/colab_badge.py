"""Sphinx extension: an "Open in Colab" badge and `.ipynb` downloads on every chapter page.

Colab opens only .ipynb files, and the chapters are MyST markdown, so `tools/notebooks.py`
generates one notebook per chapter into `notebooks/`, and a student version with the solutions
replaced by stubs into `notebooks/student/`. This extension links each page to both on the
repository and branch set once in `_config.yml` (`repository:`), and copies both into the
built book (`_notebooks/`) so that each page offers them as downloads, also offline.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from docutils import nodes

BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
#: where the notebooks are copied in the built HTML
DOWNLOADS = "_notebooks"


def _colab_url(app, stem: str, student: bool = False) -> str | None:
    opts = app.config.html_theme_options or {}
    repo = str(opts.get("repository_url", "")).rstrip("/")
    if not repo.startswith("https://github.com/"):
        return None
    branch = opts.get("repository_branch") or "main"
    folder = app.config.colab_notebooks_dir.strip("/") + ("/student" if student else "")
    slug = repo[len("https://github.com/") :]
    return f"https://colab.research.google.com/github/{slug}/blob/{branch}/{folder}/{stem}.ipynb"


def add_badge(app, doctree) -> None:
    stem = Path(app.env.docname).name
    notebook = Path(app.srcdir) / app.config.colab_notebooks_dir / f"{stem}.ipynb"
    if not notebook.is_file():
        return
    url = _colab_url(app, stem)
    if url is None:
        return
    student = notebook.parent / "student" / notebook.name
    student_url = _colab_url(app, stem, student=True) if student.is_file() else None
    extra = (
        f' <a href="{student_url}" target="_blank" rel="noopener">student version</a>'
        " (solutions replaced by stubs)"
        if student_url
        else ""
    )
    up = "../" * app.env.docname.count("/")
    downloads = f' · download <a href="{up}{DOWNLOADS}/{stem}.ipynb" download>.ipynb</a>'
    if student.is_file():
        downloads += f' (<a href="{up}{DOWNLOADS}/student/{stem}.ipynb" download>student</a>)'
    html = (
        f'<p class="colab-badge"><a href="{url}" target="_blank" rel="noopener">'
        f'<img src="{BADGE}" alt="Open in Colab"></a>{extra}{downloads}</p>'
    )
    badge = nodes.raw("", html, format="html")
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        doctree.insert(0, badge)
        return
    titles = [i for i, child in enumerate(section.children) if isinstance(child, nodes.title)]
    section.insert(titles[0] + 1 if titles else 0, badge)


def copy_notebooks(app, exception) -> None:
    """Copy the chapter and student notebooks into the HTML output, for the download links."""
    if exception is not None or app.builder.format != "html":
        return
    source = Path(app.srcdir) / app.config.colab_notebooks_dir
    for nb in sorted(source.glob("*.ipynb")) + sorted(source.glob("student/*.ipynb")):
        target = Path(app.outdir) / DOWNLOADS / nb.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(nb, target)


def setup(app):
    app.add_config_value("colab_notebooks_dir", "notebooks", "env")
    app.connect("doctree-read", add_badge)
    app.connect("build-finished", copy_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1.0"}
