"""The module map: every module of the package, grouped by the part of the book it serves.

:data:`PARTS` is the one source of the module lists that readers see: the package docstring
(``help(overshadow_lab)``), the package's row of README's "What is where" table and the list
in CONTRIBUTING's "Where things go". The two documents hold the rendered text between
``<!-- modules:start -->`` and ``<!-- modules:end -->``; after changing the map, run

    python tools/module_map.py --write

``tests/test_module_map.py`` fails, naming the modules or files concerned, when the map and the
package's files disagree or when either document is out of date. Every ``*.py`` file of the
package is listed, a package by its own name (``overshadow_lab.lab`` for ``lab/__init__.py``).
"""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = "overshadow_lab"

#: part of the book -> {dotted module: what it holds, in one line}
PARTS: dict[str, dict[str, str]] = {
    "Shared": {
        "overshadow_lab": "the package: version, compute tiers and paths at the top level",
        "overshadow_lab.__main__": "`python -m overshadow_lab` runs the command line",
        "overshadow_lab._modules": "this module map, rendered into README, CONTRIBUTING and "
        "the package docstring",
        "overshadow_lab.device": "where computations run (`get_device`) and how big they are "
        "(compute tiers)",
        "overshadow_lab.paths": "where the data, the caches and the results live",
        "overshadow_lab.configs": "configuration dataclasses: keyword overrides checked in one "
        "place",
        "overshadow_lab.records": "results on disk: atomic writes, provenance, the code hash, "
        "recorded results",
        "overshadow_lab.metrics": "recall rate RR, hallucination rate HR and R = HR / RR",
        "overshadow_lab.hub": "pretrained models by short name, hub id or local folder",
        "overshadow_lab.loading": "one door for loading a model: size name, short name, hub id "
        "or folder",
        "overshadow_lab.paper": "the papers' own numbers, for comparison beside ours",
        "overshadow_lab.probe": "a pretrained model probed for amalgamated hallucination: "
        "natural prompts and in-context knowledge sets",
        "overshadow_lab.claims": "numbers glued into the book's prose, and asserted claims",
        "overshadow_lab.style": "one look for every figure: theme and one colour per method",
    },
    "The lab": {
        "overshadow_lab.lab": "the lab: synthetic data, small models, training and sweeps",
        "overshadow_lab.lab.data": "synthetic knowledge sets with a controlled imbalance",
        "overshadow_lab.lab.models": "causal language models by size name, hub id or folder",
        "overshadow_lab.lab.neox": "a lean GPT-NeoX training forward, checked against transformers",
        "overshadow_lab.lab.short_attention": "causal attention for short sequences as a small "
        "C kernel built on first use (torch's attention where it cannot be)",
        "overshadow_lab.lab.train": "the training loop: causal LM loss, AdamW, stopping rules",
        "overshadow_lab.lab.protocols": "the named training protocols (fixed epochs, equal "
        "exposure, loss plateau, recall), each with its rationale",
        "overshadow_lab.lab.dynamics": "training dynamics: HR, RR, answer probabilities and loss "
        "on a schedule of steps",
        "overshadow_lab.lab.grids": "the recorded grids of the Data imbalance chapter, and their "
        "seeded re-check",
        "overshadow_lab.lab.prefixes": "positions of a batch that share their whole prefix, so "
        "the output layer runs once for them",
        "overshadow_lab.lab.stacked": "several same-shape models trained in one step (batched "
        "products), equal to one at a time",
        "overshadow_lab.lab.sweep": "resumable, shardable sweeps over P, L or model size S",
        "overshadow_lab.lab.results": "a sweep's results table: whole-row appends, checked rows, "
        "shards and merging",
        "overshadow_lab.lab.workers": "the CPUs a process may use, and worker pools that die with "
        "their parent",
    },
    "Generalization bound": {
        "overshadow_lab.theory": "the theory: the bound and an exactly solvable model",
        "overshadow_lab.theory.bound": "the generalization bound, term by term, with checks",
        "overshadow_lab.theory.solvable": "an exactly solvable model: regularised softmax "
        "regression",
    },
    "Fine-tuning": {
        "overshadow_lab.finetuning": "fine-tuning pretrained models on natural-language tasks",
        "overshadow_lab.finetuning.tasks": "natural-language task families with a controlled "
        "imbalance",
        "overshadow_lab.finetuning.tokenizers": "word- and byte-level tokenizers, token counting",
        "overshadow_lab.finetuning.finetune": "fine-tuning on task slices and task grids",
        "overshadow_lab.finetuning.speed": "training throughput, peak FLOPs and MFU",
        "overshadow_lab.finetuning.gpu_tier": "the GPU tier: the size comparison at the "
        "paper's scale, and the full plan over processes",
        "overshadow_lab.finetuning.exposure": "how often a run showed each statement, and "
        "equal-exposure checks",
    },
    "The law": {
        "overshadow_lab.law": "the log-linear law: fitting, uncertainty and prediction",
        "overshadow_lab.law.inputs": "checks and cleaning before any fit",
        "overshadow_lab.law.distributions": "the t and normal quantiles the intervals need",
        "overshadow_lab.law.fit": "one factor's law by least squares or Huber, with intervals",
        "overshadow_lab.law.bootstrap": "bootstrap intervals of the law, and their coverage",
        "overshadow_lab.law.joint": "several factors at once, and a test for a bend",
        "overshadow_lab.law.predict": "prediction and held-out checks",
        "overshadow_lab.law.transfer": "carrying a synthetic law over to tasks: transfer choices, "
        "baselines, scores",
        "overshadow_lab.law.query": "the `--where` query language and grouped fits",
        "overshadow_lab.law.plot": "drawing a law on log axes",
    },
    "Contrastive decoding": {
        "overshadow_lab.decoding": "contrastive decoding against overshadowing: CoDA and its "
        "baselines",
        "overshadow_lab.decoding.coda": "the CoDA definition and its readable reference loop",
        "overshadow_lab.decoding.detection": "detection alone: batched masked variants, span "
        "ranks, alarm precision-recall",
        "overshadow_lab.decoding.ablations": "the lab ablations: oracle span vs detection, "
        "detection rules, intervals",
        "overshadow_lab.decoding.spans": "candidate spans of a prompt, and masking one",
        "overshadow_lab.decoding.padding": "left padding of a batch, and its positions",
        "overshadow_lab.decoding.kv_cache": "the KV-cache engine (the one module that knows "
        "transformers' cache internals)",
        "overshadow_lab.decoding.packing": "detection's masked variants packed end to end in "
        "rows under a 4-D attention mask",
        "overshadow_lab.decoding.processors": "CoDA as a transformers LogitsProcessor",
        "overshadow_lab.decoding.baselines": "CAD, expert-amateur contrastive decoding and DoLa",
        "overshadow_lab.decoding.driver": "batched generation with any method",
        "overshadow_lab.benchmark_data": "MemoTrap and NQ-Swap: loaders, prompts, scoring, "
        "evaluation",
        "overshadow_lab.benchmark_data.memotrap": "MemoTrap: loading and prompts",
        "overshadow_lab.benchmark_data.nq_swap": "NQ-Swap: loading and prompts",
        "overshadow_lab.benchmark_data.fetch": "the full public sets, pinned and verified",
        "overshadow_lab.benchmark_data.sampling": "seeded samples of benchmark rows",
        "overshadow_lab.benchmark_data.scoring": "answer extraction, exact and contains match, "
        "Wilson intervals, McNemar's test",
        "overshadow_lab.benchmark_data.prompts": "benchmark prompts in the model's chat template, "
        "and where CoDA may mask",
        "overshadow_lab.benchmark_data.synthetic": "lab models' knowledge sets as a benchmark",
        "overshadow_lab.benchmark_data.evaluate": "running and comparing methods on a benchmark",
        "overshadow_lab.benchmark_data.recording": "recorded benchmark runs: resumable chunks, "
        "loading, paired summaries",
    },
    "Teaching": {
        "overshadow_lab.exercises": "`check_<name>(student_fn)` for every exercise in the book",
        "overshadow_lab.exercises.framework": "the machinery behind every graded exercise",
        "overshadow_lab.exercises.introduction": "exercises of the Introduction",
        "overshadow_lab.exercises.data_imbalance": "exercises of Data imbalance",
        "overshadow_lab.exercises.generalization_bound": "exercises of Generalization bound",
        "overshadow_lab.exercises.finetuning": "exercises of Natural-language tasks and "
        "fine-tuning, and Model size",
        "overshadow_lab.exercises.law": "exercises of The law",
        "overshadow_lab.exercises.contrastive_decoding": "exercises of Contrastive decoding",
        "overshadow_lab.grading": "grade a folder of student submissions with the checks",
        "overshadow_lab.grading.sandbox": "the grader's side of the sandbox: limits, process "
        "groups, bubblewrap",
        "overshadow_lab.grading.runner": "the sandboxed child that runs one submission",
    },
    "Command line": {
        "overshadow_lab.cli": "the `overshadow-lab` command; each subcommand loads only its "
        "own module",
        "overshadow_lab.cli.__main__": "`python -m overshadow_lab.cli` runs the command line",
        "overshadow_lab.cli.grade": "`overshadow-lab grade`: grade a folder of submissions",
        "overshadow_lab.cli.sweep": "`overshadow-lab sweep`: run a resumable sweep",
        "overshadow_lab.cli.law": "`overshadow-lab law`: fit the law to a table, or predict R",
        "overshadow_lab.cli.decode": "`overshadow-lab decode eval`: a decoding method on a "
        "benchmark",
    },
}

#: dotted module -> what it holds, over all parts
MODULES: dict[str, str] = {name: what for part in PARTS.values() for name, what in part.items()}

START, END = "<!-- modules:start -->", "<!-- modules:end -->"
_BLOCK = re.compile(re.escape(START) + r"(.*?)" + re.escape(END), re.DOTALL)
WRITE_COMMAND = "python tools/module_map.py --write"
DOCUMENTS = ("README.md", "CONTRIBUTING.md", "book/98_api.md")


def package_modules(package_dir: Path | None = None) -> set[str]:
    """The dotted names of every ``*.py`` file under the package folder (a package's
    ``__init__.py`` by the package's name)."""
    root = Path(__file__).resolve().parent if package_dir is None else Path(package_dir)
    names = set()
    for file in root.rglob("*.py"):
        parts = [PACKAGE, *file.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names.add(".".join(parts))
    return names


def map_problems(package_dir: Path | None = None) -> list[str]:
    """One line per module that has a file but no entry in the map, or an entry but no file."""
    on_disk, mapped = package_modules(package_dir), set(MODULES)
    missing = [
        f"missing from the map: {m} (add it to PARTS in {__name__})" for m in on_disk - mapped
    ]
    stale = [
        f"stale in the map: {m} (no such file; remove it from PARTS)" for m in mapped - on_disk
    ]
    return sorted(missing) + sorted(stale)


def _short(name: str) -> str:
    return name.removeprefix(PACKAGE + ".") if name != PACKAGE else PACKAGE


def readme_row() -> str:
    """The package's cell in README's "What is where" table: each part's modules, by name,
    a subpackage's modules in brackets after it (the entry points ``__main__`` left out)."""
    parts = []
    for title, modules in PARTS.items():
        groups: dict[str, list[str]] = {}
        for m in modules:
            if m == PACKAGE or m.endswith("__main__"):
                continue
            top, _, rest = _short(m).partition(".")
            groups.setdefault(top, [])
            if rest:
                groups[top].append(rest)
        names = [
            f"`{top}/` ({', '.join(f'`{c}`' for c in children)})" if children else f"`{top}`"
            for top, children in groups.items()
        ]
        parts.append(f"{title.lower()}: {', '.join(names)}")
    return "the package, by part of the book: " + "; ".join(parts)


def contributing_list() -> str:
    """CONTRIBUTING's list of the modules: one bullet per part, one line per module."""
    lines = []
    for title, modules in PARTS.items():
        lines.append(f"- **{title}**")
        lines.extend(f"  - `{_short(m)}`: {what}" for m, what in modules.items())
    return "\n".join(lines)


def package_doc() -> str:
    """The map as plain text, appended to the package docstring."""
    lines = ["Modules, by part of the book:"]
    for title, modules in PARTS.items():
        lines.append(f"\n{title}")
        lines.extend(f"    {_short(m):<32} {what.replace('`', '')}" for m, what in modules.items())
    return "\n".join(lines)


#: Everything a module defines, private helpers too (docstrings refer to them by name, and a
#: reader of the reference implementation wants the whole of it); what a package re-exports is
#: documented once, in the module that defines it.
_AUTODOC_OPTIONS = (
    "   :members:",
    "   :undoc-members:",
    "   :private-members:",
    "   :ignore-module-all:",
)


def api_page() -> str:
    """The API page's body: for each part, every module's docstring and members (Sphinx
    autodoc), in the map's order; the entry points ``__main__`` are left out (importing one
    runs the command line)."""
    lines = []
    for title, modules in PARTS.items():
        lines += [f"## {title}", ""]
        for m in modules:
            if m.endswith("__main__"):
                continue
            lines += ["```{eval-rst}", f".. automodule:: {m}", *_AUTODOC_OPTIONS, "```", ""]
    return "\n".join(lines).rstrip()


def rendered(document: str) -> str:
    """What belongs between the markers of ``document`` (``"README.md"`` or
    ``"CONTRIBUTING.md"``)."""
    if document == "README.md":
        return START + readme_row() + END
    if document == "CONTRIBUTING.md":
        return f"{START}\n{contributing_list()}\n{END}"
    if document == "book/98_api.md":
        return f"{START}\n{api_page()}\n{END}"
    raise ValueError(
        f"no module-map block is defined for {document!r}: use one of {', '.join(DOCUMENTS)}"
    )


def block(text: str, document: str = "document") -> re.Match[str]:
    """The one ``<!-- modules:start -->...<!-- modules:end -->`` block of ``text``."""
    found = list(_BLOCK.finditer(text))
    if len(found) != 1:
        raise ValueError(
            f"{document} must hold exactly one {START} ... {END} block, found {len(found)}; "
            "add the markers where the module list belongs"
        )
    return found[0]


def document_problems(root: Path) -> list[str]:
    """One line per document under ``root`` whose marked block differs from the map."""
    out = []
    for document in DOCUMENTS:
        try:
            current = block((root / document).read_text(encoding="utf-8"), document).group(0)
        except ValueError as err:
            out.append(str(err))
            continue
        if current != rendered(document):
            out.append(f"{document}: the module list is out of date; run `{WRITE_COMMAND}`")
    return out
