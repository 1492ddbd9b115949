"""Speed of CoDA, four figures on the same prompts in one run (SmolLM2-135M-Instruct).

Run from the repository root, one heavy job at a time::

    OMP_NUM_THREADS=2 flock /tmp/overshadow-heavy.lock .venv/bin/python benchmarks/decode_speed.py
    .venv/bin/python benchmarks/decode_speed.py --quick        # fewer prompts, rows and tokens

1. **Per generated token**: CoDA against greedy decoding on ``--prompts`` MemoTrap prompts,
   ``--new-tokens`` tokens each without early stopping, detection included. CoDA with its
   defaults (detection once; greedy CoDA runs in the fused loop where each step is one forward
   pass for the prompts and their flagged masked prompts), with the contrast forced on every
   prompt (the worst case), and forced through ``model.generate`` with the logits processor
   (``fused=False``: a second pass per step, the path before the fused loop).
2. **End to end per MemoTrap row**: :func:`~overshadow_lab.benchmark_data.evaluate_generation`
   (chat template, stop at the answer's end) with greedy and with CoDA (the benchmark's default
   candidates: content words) on ``--memotrap-rows`` seeded MemoTrap rows spread over the
   subtasks.
3. **Detection**: the masked variants of every prompt in batched passes against one plain pass
   per masked variant, candidates = every token, on the prompts of 1. The two detectors are the
   entries of :data:`DETECTORS`; point one at another function to measure it.
4. **NQ-Swap**: rows per minute of CoDA and of greedy decoding on ``--nq-rows`` seeded NQ-Swap
   rows (long contexts, entity candidates), and the minutes a 500-row recording of greedy, CAD
   and CoDA would take at that pace.

``--dtype bfloat16`` times everything with the model the NQ-Swap recording uses (bfloat16 body,
float32 output layer); the ratios compare methods on the same model either way.

Parts 1, 2 and 3 run every configuration once untimed first (allocator and kernel warm-up) and
report the best of ``--repeats`` runs (part 2 also prints its first round's ratio: the greedy
time it divides by moved by 40 % between single runs); part 4 decodes its long rows with each
method once.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable

import torch

from overshadow_lab import benchmark_data as bm
from overshadow_lab.decoding import CoDAConfig, generate, with_options


def detect(model, prompts, cfg: CoDAConfig):
    """CoDA's detection alone on a batch of prompts: one generated token, contrast off."""
    cfg = with_options(cfg, amplify=False)
    return generate(model, prompts, "coda", 1, coda=cfg, batch_size=len(prompts)).detections


#: The two detectors of part 3, ``(model, prompts) -> detections``: edit here to measure another
#: implementation (for example a new batched detection function of the coda module).
DETECTORS: dict[str, Callable] = {
    "batched": lambda model, prompts: detect(model, prompts, CoDAConfig(candidates="token")),
    "per-variant": lambda model, prompts: detect(
        model, prompts, CoDAConfig(candidates="token", variant_batch_size=1)
    ),
}


def _timed(fn, repeats: int):
    fn()  # warm-up, untimed: the first run of a configuration pays for allocations
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _once(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def per_token(model, tok, prompts, new_tokens: int, repeats: int) -> list[dict]:
    """Part 1: seconds per generated token of greedy and of CoDA (three ways)."""
    word = CoDAConfig(candidates="word")
    forced = with_options(word, threshold=-float("inf"))
    runs = {}
    for label, method, cfg, fused in (
        ("greedy", "greedy", None, None),
        ("coda", "coda", word, None),
        ("coda, contrast forced", "coda", forced, None),
        ("coda, contrast forced, generate path", "coda", forced, False),
    ):
        seconds, res = _timed(
            lambda method=method, cfg=cfg, fused=fused: generate(
                model,
                prompts,
                method,
                new_tokens,
                coda=cfg,
                tokenizer=tok,
                min_new_tokens=new_tokens,
                batch_size=len(prompts),
                fused=fused,
            ),
            repeats,
        )
        runs[label] = (seconds, res)
    greedy = runs["greedy"][0] / max(1, runs["greedy"][1].new_tokens)
    rows = []
    for label, (seconds, res) in runs.items():
        pt = seconds / max(1, res.new_tokens)
        rows.append(
            {
                "method": label,
                "new_tokens": res.new_tokens,
                "ms_per_token": 1000 * pt,
                "ratio_vs_greedy": pt / greedy,
                "alarms": sum(bool(d and d.alarm) for d in res.detections),
            }
        )
    return rows


def end_to_end(model, tok, benchmark: str, df, methods, repeats: int = 0) -> dict[str, float]:
    """Parts 2 and 4: seconds of :func:`evaluate_generation` per method on the same rows.

    ``repeats`` = 0: each method once, as it comes (part 4: long rows). Otherwise (part 2) the
    methods take turns: a first, untimed round, then ``repeats`` timed rounds whose best counts
    for each method, as in parts 1 and 3; the first round's seconds are kept under ``"first "``
    + method."""

    def run(m):
        return _once(lambda: bm.evaluate_generation(model, tok, benchmark, df, m, batch_size=8))[0]

    if not repeats:
        return {m: run(m) for m in methods}
    first = {m: run(m) for m in methods}
    best = dict.fromkeys(methods, float("inf"))
    for _ in range(repeats):
        for m in methods:
            best[m] = min(best[m], run(m))
    return best | {f"first {m}": s for m, s in first.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--min-tokens", type=int, default=20)
    ap.add_argument("--max-tokens", type=int, default=40)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--memotrap-rows", type=int, default=16)
    ap.add_argument("--nq-rows", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--dtype",
        default="float32",
        choices=bm.RECORD_DTYPES,
        help="the model's floating-point type, as in scripts/record_benchmarks.py (bfloat16 "
        "keeps the output layer in float32)",
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.prompts, args.new_tokens, args.repeats = 2, 16, 1
        args.memotrap_rows, args.nq_rows = 8, 4
    if args.threads:
        torch.set_num_threads(args.threads)

    model, tok = bm.recording_model(args.model, args.dtype)
    df = bm.load_memotrap(subtasks=["proverb", "hate"])
    prompts = []
    for text in df["prompt"]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        if args.min_tokens <= len(ids) <= args.max_tokens:
            prompts.append(ids)
        if len(prompts) == args.prompts:
            break
    lengths = [len(p) for p in prompts]

    tokens = per_token(model, tok, prompts, args.new_tokens, args.repeats)

    memotrap = bm.sample_rows(bm.load_memotrap(), args.memotrap_rows, seed=1, by="subtask")
    mt = end_to_end(model, tok, "memotrap", memotrap, ("greedy", "coda"), args.repeats)

    timings, found = {}, {}
    for label, fn in DETECTORS.items():
        timings[label], found[label] = _timed(lambda fn=fn: fn(model, prompts), args.repeats)
    same = all(
        a.span == b.span and a.alarm == b.alarm
        for a, b in zip(found["batched"], found["per-variant"], strict=True)
    )

    nq = bm.sample_rows(bm.load_nq_swap(), args.nq_rows, seed=1)
    nq_s = end_to_end(model, tok, "nq_swap", nq, ("greedy", "cad", "coda"))
    per_min = {m: 60 * len(nq) / s for m, s in nq_s.items()}

    result = {
        "meta": {
            "machine": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "dtype": args.dtype,
            "prompt_tokens": lengths,
            "new_tokens": args.new_tokens,
        },
        "per_token": tokens,
        "memotrap": {
            "rows": len(memotrap),
            "seconds": mt,
            "seconds_per_row": {m: s / len(memotrap) for m, s in mt.items()},
            "ratio": mt["coda"] / mt["greedy"],
            "ratio_first_round": mt["first coda"] / mt["first greedy"],
        },
        "detection": {
            "variants": sum(lengths),
            "batched_s": timings["batched"],
            "per_variant_s": timings["per-variant"],
            "speedup": timings["per-variant"] / timings["batched"],
            "same_detections": same,
        },
        "nq_swap": {
            "rows": len(nq),
            "rows_per_minute": per_min,
            "minutes_for_500_rows_all_methods": sum(500 / r for r in per_min.values()),
        },
    }
    if args.json:
        print(json.dumps(result, default=float))
        return 0
    meta = result["meta"]
    print(
        f"prompts: {len(prompts)} MemoTrap prompts of {lengths} tokens; "
        f"torch threads {meta['threads']}, {meta['dtype']}"
    )
    print(
        f"\n1. time per generated token ({args.new_tokens} tokens per prompt, detection included)"
    )
    print(f"{'method':<40}{'ms/token':>10}{'ratio':>8}{'alarms':>8}")
    for r in tokens:
        print(
            f"{r['method']:<40}{r['ms_per_token']:>10.1f}{r['ratio_vs_greedy']:>7.2f}x"
            f"{r['alarms']:>8}"
        )
    m = result["memotrap"]
    print(
        f"\n2. end to end per MemoTrap row ({m['rows']} rows, best of {args.repeats} after a "
        f"first round): greedy {m['seconds_per_row']['greedy']:.2f} s, CoDA "
        f"{m['seconds_per_row']['coda']:.2f} s, ratio {m['ratio']:.2f}x "
        f"(first round {m['ratio_first_round']:.2f}x)"
    )
    d = result["detection"]
    print(
        f"\n3. detection, {d['variants']} masked variants: batched {d['batched_s']:.2f} s, "
        f"one pass per variant {d['per_variant_s']:.2f} s, speed-up {d['speedup']:.1f}x, "
        f"same detections {d['same_detections']}"
    )
    q = result["nq_swap"]
    print(
        f"\n4. NQ-Swap ({q['rows']} rows): rows per minute "
        + ", ".join(f"{k} {v:.1f}" for k, v in q["rows_per_minute"].items())
        + f"; 500 rows of all three would take {q['minutes_for_500_rows_all_methods']:.0f} min"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
