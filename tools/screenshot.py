"""Screenshot a built page with its maths typeset, offline: the check that the maths renders.

    python tools/screenshot.py PAGE.html OUT.png [--mathjax PATH] [--height PX] [--tile PX]

The book's pages load MathJax 3 from a CDN, which a machine without the internet cannot reach,
so the page would show raw TeX. This script writes a copy of the page beside the original (so
its relative links to ``_static`` still work) whose MathJax comes from a local copy instead,
MathJax 2 as Debian ships it (``apt-get install libjs-mathjax``, in
``/usr/share/javascript/mathjax``), configured to typeset Sphinx's ``\\(..\\)`` and ``\\[..\\]``
inside elements of class ``math``. It then asks a headless Chromium
(``apt-get install chromium-headless-shell``, or ``chromium``) for a screenshot of a tall window,
waiting for MathJax through Chromium's virtual time budget, and, with ``--tile``, cuts the image
into tiles of that height (``OUT-01.png``, ...) that an image viewer can show at full size.

It is a manual check (the build's automatic one is ``tools/check_html.py``); it exits with 2 and
one line naming what is missing when MathJax or Chromium is not installed.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

MATHJAX_CANDIDATES = (
    Path("/usr/share/javascript/mathjax/MathJax.js"),
    Path("/usr/share/mathjax/MathJax.js"),
)
BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")

#: MathJax 2 configuration: typeset what Sphinx marks as maths, even inside the notebook
#: containers that myst-nb marks ``tex2jax_ignore`` (so that a ``$`` in an output is left alone).
MATHJAX2_CONFIG = """<script>
window.MathJax = {
  tex2jax: {inlineMath: [["\\\\(", "\\\\)"]], displayMath: [["\\\\[", "\\\\]"]],
            processEscapes: false, processClass: "math", ignoreClass: "tex2jax_ignore"},
  TeX: {extensions: ["AMSmath.js", "AMSsymbols.js"]},
  messageStyle: "none"
};
</script>"""

_CDN_SCRIPT = re.compile(r"<script[^>]*src=\"[^\"]*mathjax[^\"]*\"[^>]*>\s*</script>", re.I)
_V3_CONFIG = re.compile(r"<script>\s*window\.MathJax\s*=.*?</script>", re.S)


def localize_mathjax(html: str, mathjax_js: Path) -> str:
    """``html`` with its CDN MathJax replaced by the local MathJax 2 at ``mathjax_js``.

    Raises ``ValueError`` when the page loads no MathJax at all (nothing to replace).
    """
    if not _CDN_SCRIPT.search(html):
        raise ValueError("the page loads no MathJax script: build it with the book's theme first")
    html = _V3_CONFIG.sub("", html)
    local = f'{MATHJAX2_CONFIG}\n<script src="file://{mathjax_js}?config=TeX-AMS_CHTML"></script>'
    return _CDN_SCRIPT.sub(lambda _: local, html, count=1)


def find_mathjax(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit) if Path(explicit).is_file() else None
    return next((p for p in MATHJAX_CANDIDATES if p.is_file()), None)


def find_browser() -> str | None:
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


def screenshot(page: Path, out: Path, mathjax_js: Path, browser: str, width: int, height: int):
    """Write ``out``: a ``width`` x ``height`` screenshot of ``page`` with local MathJax."""
    copy = page.with_name(page.stem + ".offline-mathjax.html")
    copy.write_text(localize_mathjax(page.read_text(encoding="utf-8"), mathjax_js), "utf-8")
    try:
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--allow-file-access-from-files",
            f"--window-size={width},{height}",
            "--virtual-time-budget=20000",
            f"--screenshot={out.resolve()}",
            copy.resolve().as_uri(),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        if done.returncode != 0 or not out.is_file():
            raise RuntimeError(f"{browser} failed: {done.stderr.strip()[-400:]}")
    finally:
        copy.unlink(missing_ok=True)


def tile(out: Path, height: int) -> list[Path]:
    """Cut ``out`` into tiles ``height`` pixels tall; blank tiles at the end are dropped."""
    from PIL import Image, ImageStat  # deferred: only this optional step needs Pillow

    image = Image.open(out)
    tiles = []
    for i, top in enumerate(range(0, image.height, height), start=1):
        part = image.crop((0, top, image.width, min(top + height, image.height)))
        if ImageStat.Stat(part.convert("L")).stddev[0] < 1.0:  # a blank strip: the page ended
            break
        path = out.with_name(f"{out.stem}-{i:02d}.png")
        part.save(path)
        tiles.append(path)
    return tiles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("page", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--mathjax", help="path to MathJax.js (MathJax 2); default: Debian's")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=8000)
    parser.add_argument("--tile", type=int, default=0, help="cut into tiles this many px tall")
    args = parser.parse_args(argv)
    if not args.page.is_file():
        print(f"screenshot: no page at {args.page}: build the book first", file=sys.stderr)
        return 2
    mathjax = find_mathjax(args.mathjax)
    if mathjax is None:
        print("screenshot: no local MathJax; apt-get install libjs-mathjax", file=sys.stderr)
        return 2
    browser = find_browser()
    if browser is None:
        print("screenshot: no Chromium; apt-get install chromium-headless-shell", file=sys.stderr)
        return 2
    screenshot(args.page, args.out, mathjax, browser, args.width, args.height)
    print(f"screenshot: wrote {args.out}")
    for path in tile(args.out, args.tile) if args.tile else []:
        print(f"screenshot: tile {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
