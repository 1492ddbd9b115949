"""Sphinx extension: an "Open in Colab" badge at the top of every chapter with a notebook.

Colab opens only .ipynb files, and the chapters are MyST markdown, so `tools/notebooks.py`
generates one notebook per chapter into `notebooks/`, and a student version with the solutions
replaced by stubs into `notebooks/student/`. This extension links each page to both on the
repository and branch set once in `_config.yml` (`repository:`).
"""

from __future__ import annotations

from pathlib import Path

from docutils import nodes

BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


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
    html = (
        f'<p class="colab-badge"><a href="{url}" target="_blank" rel="noopener">'
        f'<img src="{BADGE}" alt="Open in Colab"></a>{extra}</p>'
    )
    badge = nodes.raw("", html, format="html")
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        doctree.insert(0, badge)
        return
    titles = [i for i, child in enumerate(section.children) if isinstance(child, nodes.title)]
    section.insert(titles[0] + 1 if titles else 0, badge)


def setup(app):
    app.add_config_value("colab_notebooks_dir", "notebooks", "env")
    app.connect("doctree-read", add_badge)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1.0"}
