"""``overshadow-lab decode eval``: exact match of a decoding method on a benchmark, as JSON.

Examples (offline: the development slices bundled with the package; ``--data full`` fetches the
full public set)::

    overshadow-lab decode eval --benchmark nq_swap \\
        --model smollm2-135m-instruct --method coda --limit 50 --seed 0 --json
    overshadow-lab decode eval --benchmark memotrap \\
        --model smollm2-135m-instruct --method greedy --subtask proverb --limit 40 --json
    overshadow-lab decode eval --benchmark synthetic --model _build/results/decoding/p10-model \\
        --method coda --json

Prints one JSON object: ``em`` (a fraction) with its bootstrap 95% interval, ``n``, per-subtask
EM for MemoTrap, and for CoDA the greedy EM and the alarm's precision/recall/F1/accuracy as a
prediction of "greedy gives the memorised (overshadowing) answer". A progress bar goes to stderr.
``--predictions FILE`` also writes every row's prediction and scores as CSV; ``--template``
chooses between the model's chat template (default, when it has one) and the plain prompt.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from overshadow_lab import benchmark_data as bm
from overshadow_lab.records import write_csv_atomic


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "decode",
        help="evaluate contrastive decoding (CoDA, CAD, ...) on benchmarks",
        description="Contrastive decoding against knowledge overshadowing.",
    )
    dsub = p.add_subparsers(dest="decode_command", metavar="ACTION")
    e = dsub.add_parser(
        "eval",
        help="exact match of one decoding method on a benchmark",
        description="Decode a benchmark with one method and print its exact match.",
    )
    e.add_argument("--benchmark", required=True, choices=["memotrap", "nq_swap", "synthetic"])
    e.add_argument(
        "--data",
        help="NQ-Swap: a JSONL file; MemoTrap: the folder of its CSVs or one CSV; "
        "synthetic: a save_run folder (default: the --model folder). Default: the local data "
        "folder, else downloaded",
    )
    e.add_argument(
        "--model",
        default="smollm2-135m-instruct",
        help="short name (smollm2-135m-instruct), hub id or local folder",
    )
    e.add_argument("--method", default="greedy", choices=["greedy", "coda", "cad", "cd", "dola"])
    e.add_argument(
        "--subtask",
        action="append",
        help="MemoTrap subtask (proverb, translate, hate, science); repeat for several",
    )
    e.add_argument(
        "--protocol",
        default="generation",
        choices=["generation", "loglik"],
        help="MemoTrap: generation + exact match (default) or log-likelihood classification",
    )
    e.add_argument(
        "--limit", type=int, help="a seeded random sample of N rows (spread over subtasks)"
    )
    e.add_argument("--seed", type=int, default=0, help="seed of the --limit sample (default 0)")
    e.add_argument(
        "--alpha", type=float, default=0.01, help="CoDA plausibility alpha (default 0.01)"
    )
    e.add_argument(
        "--candidates",
        choices=["token", "word", "content", "entity"],
        help="CoDA: what is masked (default: content for MemoTrap, entity for NQ-Swap, token for "
        "synthetic)",
    )
    e.add_argument("--mask", default="delete", choices=["delete", "replace"])
    e.add_argument("--select", default="max", choices=["max", "first"])
    e.add_argument("--detect", default="once", choices=["once", "every_step"])
    e.add_argument("--max-candidates", type=int, help="CoDA: keep only the last K candidate spans")
    e.add_argument("--cad-alpha", type=float, default=0.5, help="CAD weight alpha (default 0.5)")
    e.add_argument("--amateur", help="method cd: the amateur model (same tokenizer)")
    e.add_argument("--batch-size", type=int, default=8)
    e.add_argument("--max-new-tokens", type=int)
    e.add_argument("--device", help="cpu, cuda, ... (default: automatic)")
    e.add_argument(
        "--template",
        default="auto",
        choices=["auto", "chat", "plain"],
        help="prompt layout: the model's chat template when it has one (auto, the default), or "
        "the plain completion prompt of the benchmark's protocol",
    )
    e.add_argument(
        "--predictions",
        metavar="FILE",
        help="also write the per-row predictions (CSV: row, subtask, prediction, em, ... for the "
        "method and, for another method than greedy, greedy's beside it)",
    )
    e.add_argument("--json", action="store_true", help="print only the JSON object on stdout")
    e.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    e.set_defaults(func=run)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _clean(obj):
    if isinstance(obj, float):
        return None if math.isnan(obj) else round(obj, 6)
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item"):
        return _clean(obj.item())
    return obj


def _write_predictions(path, df, res, greedy) -> None:
    """The per-row results as CSV (atomically): the row's index among the evaluated rows (``row``), its
    ``source`` (file and line) where known, the method's columns, and greedy's prediction and EM
    (``greedy_prediction``, ``greedy_em``) when the method is another one."""
    table = res.copy()
    table.insert(0, "row", df.index.to_numpy() if df is not None else range(len(res)))
    if df is not None and "source" in df.columns:
        table.insert(1, "source", df["source"].to_numpy())
    if greedy is not None and greedy is not res:
        table["greedy_prediction"] = greedy["prediction"].to_numpy()
        table["greedy_em"] = greedy["em"].to_numpy()
    if "prediction" in table.columns:
        table["prediction"] = [
            " ".join(map(str, p)) if isinstance(p, list) else p for p in table["prediction"]
        ]
        if "greedy_prediction" in table.columns:
            table["greedy_prediction"] = [
                " ".join(map(str, p)) if isinstance(p, list) else p
                for p in table["greedy_prediction"]
            ]
    write_csv_atomic(table, Path(path).expanduser())


def run(args: argparse.Namespace) -> int:
    # Deferred on purpose, in this one place: these import torch and transformers (seconds), and
    # every sub-command's parser is built on each call of ``overshadow-lab``, ``--help`` included.
    from overshadow_lab.decoding import CoDAConfig, alarm_metrics
    from overshadow_lab.lab.models import load_sets
    from overshadow_lab.loading import load_model, model_kind

    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    if args.predictions and not Path(args.predictions).expanduser().parent.is_dir():
        raise ValueError(
            f"--predictions {args.predictions}: its folder does not exist; create it or choose "
            "another path"
        )
    start = time.perf_counter()
    coda_kw = {
        "alpha": args.alpha,
        "mask": args.mask,
        "select": args.select,
        "detect": args.detect,
        "max_candidates": args.max_candidates,
    }
    result: dict = {"benchmark": args.benchmark, "method": args.method, "model": args.model}

    if args.benchmark == "synthetic":
        folder = args.data or args.model
        sets = load_sets(folder)
        if sets is None:
            raise FileNotFoundError(
                f"{folder} holds no knowledge_sets.json; save the model with models.save_run"
            )
        model, _ = load_model(args.model, device=args.device)
        if args.limit:
            keep = np.sort(
                np.random.default_rng(args.seed).choice(
                    len(sets.subordinate),
                    size=min(args.limit, len(sets.subordinate)),
                    replace=False,
                )
            ).tolist()
            sets = dataclasses.replace(sets, subordinate=sets.subordinate.subset(keep))
        cfg = CoDAConfig(candidates=args.candidates or "token", **coda_kw)
        n = len(sets.subordinate)
        bar = tqdm(
            total=n * (2 if args.method != "greedy" else 1),
            file=sys.stderr,
            disable=args.no_progress,
            desc=f"synthetic {args.method}",
        )
        greedy = bm.evaluate_synthetic(model, sets, "greedy", progress=bar.update)
        res = (
            greedy
            if args.method == "greedy"
            else bm.evaluate_synthetic(model, sets, args.method, coda=cfg, progress=bar.update)
        )
        bar.close()
    else:
        for flag, name in (("--model", args.model), ("--amateur", args.amateur)):
            if name is not None and model_kind(name) == "lab run":
                raise ValueError(
                    f"{flag} {name} is a saved lab run (no tokenizer): it can only be evaluated "
                    "with --benchmark synthetic"
                )
        if args.benchmark == "memotrap":
            df = bm.load_memotrap(args.data, args.subtask)
            df = bm.sample_rows(df, args.limit, args.seed, by="subtask")
        else:
            if args.subtask:
                raise ValueError("--subtask applies to MemoTrap only")
            df = bm.sample_rows(bm.load_nq_swap(args.data), args.limit, args.seed)
        model, tok = load_model(args.model, device=args.device)
        amateur = load_model(args.amateur, device=args.device)[0] if args.amateur else None
        if args.method == "cd" and amateur is None:
            raise ValueError(
                "--method cd needs --amateur MODEL (a smaller model with the same tokenizer)"
            )
        if args.benchmark == "memotrap" and args.protocol == "loglik":
            if args.method != "greedy":
                raise ValueError("--protocol loglik scores the plain model; use --method greedy")
            ll = bm.memotrap_loglik(
                model, tok, df, batch_size=args.batch_size, template=args.template
            )
            result.update(bm.em_summary(ll["correct"]))
            result["protocol"] = "loglik"
            result["subtasks"] = {s: bm.em_summary(g["correct"]) for s, g in ll.groupby("subtask")}
            result["seconds"] = time.perf_counter() - start
            if args.predictions:
                _write_predictions(args.predictions, df, ll, None)
            print(json.dumps(_clean(result)))
            return 0
        spec = bm.BENCH_DEFAULTS[args.benchmark]
        cfg = CoDAConfig(candidates=args.candidates or spec["candidates"], **coda_kw)
        n = len(df)
        bar = tqdm(
            total=n * (2 if args.method != "greedy" else 1),
            file=sys.stderr,
            disable=args.no_progress,
            desc=f"{args.benchmark} {args.method}",
        )
        common = {
            "max_new_tokens": args.max_new_tokens,
            "batch_size": args.batch_size,
            "progress": bar.update,
            "template": args.template,
        }
        greedy = bm.evaluate_generation(model, tok, args.benchmark, df, "greedy", **common)
        res = (
            greedy
            if args.method == "greedy"
            else bm.evaluate_generation(
                model,
                tok,
                args.benchmark,
                df,
                args.method,
                coda=cfg,
                cad_alpha=args.cad_alpha,
                amateur=amateur,
                **common,
            )
        )
        bar.close()
        if "subtask" in res.columns:
            result["subtasks"] = {s: bm.em_summary(g["em"]) for s, g in res.groupby("subtask")}
        result["protocol"] = "generation"

    if args.predictions:
        _write_predictions(
            args.predictions, df if args.benchmark != "synthetic" else None, res, greedy
        )
        result["predictions"] = str(args.predictions)
    result.update(bm.em_summary(res["em"]))
    result["memorised_rate"] = float(res["memorised"].mean())
    if args.method != "greedy":
        result["greedy_em"] = float(greedy["em"].mean())
        result["difference"] = bm.paired_difference(res["em"], greedy["em"])
    if "alarm" in res.columns:
        result["alarm"] = alarm_metrics(res["alarm"], greedy["memorised"]) | {
            "target": "greedy decoding gives the memorised (overshadowing) answer"
        }
    result["seconds"] = time.perf_counter() - start
    result["coda_config"] = cfg.__dict__ if args.method == "coda" else None
    if not args.json:
        print(
            f"{args.benchmark} {args.method}: EM {result['em']:.3f} "
            f"[{result['em_lo']:.3f}, {result['em_hi']:.3f}] on n={result['n']}",
            file=sys.stderr,
        )
    print(json.dumps(_clean(result)))
    return 0
