"""Record the experiments of the chapter "Contrastive decoding" that exceed its CPU budget.

    python scripts/record_coda_lab.py                 # every part (about 10 minutes on 2 cores)
    python scripts/record_coda_lab.py --part lab      # one part: lab, text or prompt
    python scripts/record_coda_lab.py --quick --out /tmp/coda  # smoke test, not recorded

Parts, each written with its provenance by ``overshadow_lab.records.save_recorded`` into
``overshadow_lab/recorded/`` (or ``--out``):

* ``lab`` -> ``coda_lab_methods`` and ``coda_lab_detection``: lab models over P (L = 5) and L
  (P = 10), the distinct token at the end of the prompt or at a random position, seeds 0-2;
  for each model the counts of :func:`~overshadow_lab.decoding.ablations.method_summary`
  (greedy, T = 0.6 sampling, the oracle contrast, CoDA with every detection rule, the escaping
  penalty) and :func:`~overshadow_lab.decoding.ablations.detection_summary` (the rank of the
  true span, the alarm's precision and average precision). The paper's Fig. 5 on our models.
* ``text`` -> ``coda_text_detection``: SmolLM2-135M-Instruct on MemoTrap rows whose instruction
  quotes its condition (proverb, hate; 25 rows each): the rank of the quoted span under each detection rule,
  and the alarm score, with ``memorised`` (log-likelihood prefers the memorised ending).
* ``prompt`` -> ``coda_prompt_baseline``: MemoTrap by log-likelihood classification with the
  plain prompt and with an instruction to attend to every condition (the paper's Table 8
  prompt baseline, our wording), 30 rows per subtask.

``tests/decoding/test_recorded_coda.py`` re-runs one lab model and a few text rows and checks
them against these tables.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(ROOT))

from overshadow_lab import benchmark_data as bm  # noqa: E402
from overshadow_lab.decoding.ablations import (  # noqa: E402
    detection_summary,
    method_summary,
    prompt_outcomes,
    text_outcomes,
    train_lab_model,
)
from overshadow_lab.metrics import evaluate  # noqa: E402
from overshadow_lab.records import provenance, save_recorded  # noqa: E402

#: (P, L) of the lab grid: P at L = 5, then L at P = 10 (the CPU tier's sweep values)
LAB_GRID = [(2, 5), (5, 5), (10, 5), (25, 5), (100, 5), (10, 2), (10, 10)]
POSITIONS = ("end", "random")
SEEDS = (0, 1, 2)
TEXT_ROWS = 25  # per subtask (proverb, hate)
PROMPT_ROWS = 30  # per subtask
#: the prompt baseline's instruction (our wording; the paper's Table 8 prompt is not in our spec)
ATTEND = (
    "Read the instruction carefully and follow every condition it states, even when the text "
    "suggests a familiar ending.\n"
)


def lab_part(quick: bool) -> dict[str, pd.DataFrame]:
    grid = LAB_GRID[2:3] if quick else LAB_GRID
    seeds = SEEDS[:1] if quick else SEEDS
    methods, detection = [], []
    for P, L in grid:
        for position in POSITIONS:
            for seed in seeds:
                t0 = time.perf_counter()
                model, sets = train_lab_model(P, L, position, seed)
                ev = evaluate(model, sets)
                out = prompt_outcomes(model, sets)
                keys = {"P": P, "L": L, "position": position, "seed": seed, "RR": ev["RR"]}
                methods.append(method_summary(out).assign(**keys))
                detection.append(detection_summary(out).assign(**keys))
                print(
                    f"lab P={P} L={L} {position} seed {seed}: HR {ev['HR']:.2f}, "
                    f"{time.perf_counter() - t0:.0f} s",
                    flush=True,
                )
    return {
        "coda_lab_methods": pd.concat(methods, ignore_index=True),
        "coda_lab_detection": pd.concat(detection, ignore_index=True),
    }


def _memotrap_rows(subtasks, per: int) -> pd.DataFrame:
    mt = bm.load_memotrap()
    mt = mt[mt["subtask"].isin(subtasks)]
    parts = [g.sample(min(per, len(g)), random_state=0) for _, g in mt.groupby("subtask")]
    return pd.concat(parts).reset_index(drop=True)


def text_part(quick: bool) -> dict[str, pd.DataFrame]:
    from overshadow_lab.hub import load_pretrained

    model, tok = load_pretrained("smollm2-135m-instruct")
    rows = _memotrap_rows(["proverb", "hate"], 3 if quick else TEXT_ROWS)
    out = text_outcomes(model, tok, rows)
    loglik = bm.memotrap_loglik(model, tok, rows)
    out["memorised"] = (~loglik["correct"].astype(bool)).to_numpy()[out["row"]]
    return {"coda_text_detection": out}


def prompt_part(quick: bool) -> dict[str, pd.DataFrame]:
    from overshadow_lab.hub import load_pretrained

    model, tok = load_pretrained("smollm2-135m-instruct")
    rows = _memotrap_rows(["proverb", "translate", "hate", "science"], 3 if quick else PROMPT_ROWS)
    plain = bm.memotrap_loglik(model, tok, rows)
    told = bm.memotrap_loglik(model, tok, rows.assign(prompt=ATTEND + rows["prompt"]))
    table = pd.DataFrame(
        {
            "subtask": rows["subtask"],
            "correct_plain": plain["correct"].astype(bool),
            "correct_prompt": told["correct"].astype(bool),
            "margin_plain": plain["margin"],
            "margin_prompt": told["margin"],
        }
    )
    return {"coda_prompt_baseline": table}


PARTS = {"lab": lab_part, "text": text_part, "prompt": prompt_part}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=[*PARTS, "all"], default="all")
    ap.add_argument("--quick", action="store_true", help="a tiny subset (a smoke test)")
    ap.add_argument("--out", default=None, help="folder (default: overshadow_lab/recorded)")
    args = ap.parse_args(argv)
    if args.quick and args.out is None:
        ap.error("--quick results must not replace the recorded tables: give --out")
    for name in PARTS if args.part == "all" else [args.part]:
        t0 = time.perf_counter()
        tables = PARTS[name](args.quick)
        wall = time.perf_counter() - t0
        for table_name, table in tables.items():
            prov = provenance("cpu", wall) | {"command": " ".join(sys.argv), "part": name}
            csv, _ = save_recorded(table, prov, table_name, args.out)
            print(f"{name}: wrote {csv} ({len(table)} rows) in {wall:.0f} s", flush=True)


if __name__ == "__main__":
    main()
