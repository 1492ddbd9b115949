"""Speed of CoDA: batched masking vs one forward pass per masked variant, and CoDA vs greedy.

Run from the repository root (one run prints everything side by side, same prompts)::

    .venv/bin/python benchmarks/decode_speed.py                 # SmolLM2 + a lab-sized model
    .venv/bin/python benchmarks/decode_speed.py --quick         # fewer prompts and tokens

Part 1 (detection): CoDA's default path against one plain forward pass per masked variant
(``variant_batch_size=1``: each variant's whole masked prompt, nothing shared), on MemoTrap
prompts of ``--min-tokens`` to ``--max-tokens`` tokens, candidates = every token (the paper's
vanilla masking), for SmolLM2-135M-Instruct and for a small GPT-NeoX of the lab's CPU family.
The default path batches the variants of all prompts (at most ``variant_batch_size=64`` per
forward pass) and lets each reuse its prompt's KV cache for the tokens before the masked span
(``share_prefix``: the prompts' keys and values come from generate's own first pass), so a
variant feeds only its tokens from the span on. Both produce the same tokens (checked). Part 2
(decoding): CoDA with its defaults (detection once, then one extra cached step per token for
flagged prompts) against plain greedy decoding, time per generated token with SmolLM2,
``--new-tokens`` tokens per prompt without early stopping. Every configuration runs once
untimed first (allocator and kernel warm-up); the time is the best of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from overshadow_lab.benchmark_data import load_memotrap
from overshadow_lab.decoding import CoDAConfig, generate
from overshadow_lab.hub import load_pretrained
from overshadow_lab.lab.models import make_model


def _timed(fn, repeats: int):
    fn()  # warm-up, untimed: the first run of a configuration pays for allocations
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--min-tokens", type=int, default=20)
    ap.add_argument("--max-tokens", type=int, default=40)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--detect-new-tokens", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.prompts, args.new_tokens, args.repeats = 2, 16, 1
    if args.threads:
        torch.set_num_threads(args.threads)

    model, tok = load_pretrained(args.model)
    df = load_memotrap(subtasks=["proverb", "hate"])
    prompts = []
    for text in df["prompt"]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        if args.min_tokens <= len(ids) <= args.max_tokens:
            prompts.append(ids)
        if len(prompts) == args.prompts:
            break
    lengths = [len(p) for p in prompts]
    rows = []

    # part 1: batched masking vs one pass per variant
    lab_model = make_model("mini", vocab_size=tok.vocab_size, seed=0).eval()
    lab_prompts = [[t % tok.vocab_size for t in p] for p in prompts]
    for name, m, ps in (
        ("SmolLM2-135M", model, prompts),
        ("lab GPT-NeoX 'mini'", lab_model, lab_prompts),
    ):
        timings, outs = {}, {}
        for label, cfg in (
            ("batched", CoDAConfig(candidates="token")),
            ("per-variant", CoDAConfig(candidates="token", variant_batch_size=1)),
        ):
            timings[label], res = _timed(
                lambda cfg=cfg, m=m, ps=ps: generate(
                    m, ps, "coda", args.detect_new_tokens, coda=cfg, batch_size=len(ps)
                ),
                args.repeats,
            )
            outs[label] = res.outputs
        rows.append(
            {
                "part": "detection",
                "model": name,
                "prompts": len(ps),
                "variants": sum(len(p) for p in ps),
                "batched_s": timings["batched"],
                "per_variant_s": timings["per-variant"],
                "speedup": timings["per-variant"] / timings["batched"],
                "same_tokens": outs["batched"] == outs["per-variant"],
            }
        )

    # part 2: CoDA vs greedy per generated token (no early stop: every prompt makes new_tokens)
    per_token = {}
    for label, method, cfg in (
        ("greedy", "greedy", None),
        ("coda", "coda", CoDAConfig(candidates="word")),
        ("coda (forced contrast)", "coda", CoDAConfig(candidates="word", threshold=-float("inf"))),
    ):
        seconds, res = _timed(
            lambda method=method, cfg=cfg: generate(
                model,
                prompts,
                method,
                args.new_tokens,
                coda=cfg,
                tokenizer=tok,
                min_new_tokens=args.new_tokens,
                batch_size=len(prompts),
            ),
            args.repeats,
        )
        per_token[label] = (
            seconds,
            res.new_tokens,
            seconds / max(1, res.new_tokens),
            sum(bool(d and d.alarm) for d in res.detections),
        )
    for label in ("coda", "coda (forced contrast)"):
        s, n, pt, alarms = per_token[label]
        rows.append(
            {
                "part": "per-token",
                "model": "SmolLM2-135M",
                "method": label,
                "seconds": s,
                "new_tokens": n,
                "ms_per_token": 1000 * pt,
                "greedy_ms_per_token": 1000 * per_token["greedy"][2],
                "ratio_vs_greedy": pt / per_token["greedy"][2],
                "alarms": alarms,
            }
        )

    meta = {
        "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "prompt_tokens": lengths,
        "new_tokens": args.new_tokens,
    }
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, default=float))
        return 0
    print(
        f"prompts: {len(prompts)} MemoTrap prompts of {lengths} tokens; torch threads {meta['threads']}"
    )
    print(
        "\n1. CoDA detection: masked variants in batched passes sharing the prompt's KV cache "
        f"(the default) vs one plain pass per variant ({args.detect_new_tokens} new tokens, "
        "candidates = every token)"
    )
    print(
        f"{'model':<22}{'variants':>9}{'batched s':>11}{'per-variant s':>15}{'speed-up':>10}{'same tokens':>13}"
    )
    for r in rows:
        if r["part"] == "detection":
            print(
                f"{r['model']:<22}{r['variants']:>9}{r['batched_s']:>11.2f}{r['per_variant_s']:>15.2f}"
                f"{r['speedup']:>9.1f}x{str(r['same_tokens']):>13}"
            )
    print(
        f"\n2. time per generated token with SmolLM2 ({args.new_tokens} tokens per prompt, "
        "detection included)"
    )
    print(f"{'method':<24}{'ms/token':>10}{'greedy ms/token':>17}{'ratio':>8}{'alarms':>8}")
    for r in rows:
        if r["part"] == "per-token":
            print(
                f"{r['method']:<24}{r['ms_per_token']:>10.1f}{r['greedy_ms_per_token']:>17.1f}"
                f"{r['ratio_vs_greedy']:>7.2f}x{r['alarms']:>8}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
