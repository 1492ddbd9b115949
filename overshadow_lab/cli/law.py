"""``overshadow-lab law``: fit the log-linear law to a results table, or predict R from it.

    overshadow-lab law fit FILE.csv --x COL --y COL [--where COL=VALUE ...] [--group-by COL] --json
    overshadow-lab law predict FILE.csv --factor P --value 40 [--x COL --y COL --where ...] --json
    overshadow-lab law predict FILE.csv --at P=40 --at L=10 --json
    overshadow-lab law transfer TASKS.csv --law LAW.json|SYNTH.csv --x P [--at 32] --json

All three read any CSV: the lab's sweep results (columns P, L, S, R, RR, ...) and the paper's
digitised figures (figure, task, factor, model, x, observed_R_pct, law_R_pct) alike. A sweep's
results table (it has a ``config_hash`` column) is read through the sweep's own reader, and its
rows must share every fixed setting (learning rate, data sizes, ...) unless ``--where`` or
``--group-by`` selects one configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import pandas as pd

from overshadow_lab import law
from overshadow_lab.lab.results import BadRowsWarning

EPILOG_FIT = """examples:
  overshadow-lab law fit results.csv --x P --y R --where factor=P --json
  overshadow-lab law fit paper_law_figures.csv --x x --y observed_R_pct \\
      --where figure=fig2 --where factor=P --group-by model --json

--where COL=VALUE keeps the rows whose COL equals VALUE (numeric columns compare as numbers);
repeat it for several conditions (all must hold; the same column twice means either value).
On a lab results table (a 'factor' column naming each row's sweep), --x P alone fits the rows
of the P sweep, as if --where factor=P were given.
The JSON object holds slope (points of R per decade of x for --log-base 10), intercept,
x_c = base^(-intercept/slope) (where the line reaches R = 0), r2, slope_ci [lo, hi], and
more; with --group-by, one such object per group, keyed by the group's value. Rows with a
missing R, or RR = 0 when the table has an RR column, are dropped with a warning on stderr.
Values that are undefined (x_c of a flat line, R^2 when R never varies) are null.

On a sweep's results table (a config_hash column), every row must share the sweep's fixed
settings other than the factor (lr, n_sets, size, ...): a table that mixes configurations is
refused with the differing columns named; select one with --where (e.g. --where lr=0.003) or
fit each with --group-by.

--ci bootstrap resamples the runs within each x (or whole clusters with --cluster); with one
run at every x there is nothing to resample there, so it resamples the residuals around the
line instead and says so (ci_scheme in the JSON). With a handful of points a percentile
interval runs narrower than it should (about 86% coverage at a nominal 95% for six points, one
run each); the default t interval is the better-calibrated one there.
"""

EPILOG_PREDICT = """examples:
  overshadow-lab law predict results.csv --factor P --value 40 --json
  overshadow-lab law predict paper_law_figures.csv --factor P --value 40 --x x \\
      --y observed_R_pct --where figure=fig2 --where model=Llama-2-7B --json
  overshadow-lab law predict results.csv --at P=40 --at L=10 --json

--factor F --value V fits the one-factor law R = a*log(x) + b on the rows of factor F (when
the table's 'factor' column holds F, rows with factor == F are selected unless --where says
otherwise; the x column is F, or --x) and predicts R at x = V. --at COL=VALUE (repeatable)
fits the joint law R = sum_f a_f*log(f) + d over the factors P, L, S that vary in the table
and predicts at the given values. Either way the output is the predicted R (percent) with a
prediction interval for one new run at --level, and whether V lies outside the fitted range.
"""


EPILOG_TRANSFER = """examples:
  overshadow-lab law fit synthetic.csv --x P --y R --json > law.json
  overshadow-lab law transfer tasks.csv --law law.json --x P --y R --task-col task --json
  overshadow-lab law transfer tasks.csv --law synthetic.csv --law-where task=synthetic \\
      --where part=scratch --method keep --method constant --at 32

TASKS.csv holds one row per run: a task column (--task-col), the factor (--x) and R (--y);
the runs of each (task, x) are averaged into one point (rows with a missing R, or RR = 0 when
the table has an RR column, are dropped with a warning). --law is the synthetic law: the JSON
object that 'law fit --json' prints (without --group-by), or a CSV of synthetic runs, fitted
here on --law-x/--law-y (default: --x/--y) and the rows chosen by --law-where.

Every point is predicted without the task's runs at that x, by each --method (default: all):
  synthetic  the synthetic line as it is (nothing from the task)
  keep       the synthetic slope, the intercept re-anchored on the task's other points
  refit      slope and intercept fitted on the task's other points
  constant   the mean of the task's other points
  loto       a line fitted on every other task (leave one task out)
  oracle     a line fitted on all of the task's points, the target included (not a prediction)
The output gives each prediction with its prediction interval at --level, then per method the
mean relative error |predicted - actual| / actual (the law paper's Eq. 5; points with R = 0 are
left out of it and counted) and the share of points inside their interval, each with a
bootstrap interval over tasks. --at X adds every task's prediction at a planned X, from all of
its points.
"""


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE.csv", help="results table (CSV)")
    p.add_argument("--y", default="R", help="column holding R in percent (default: R)")
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="COL=VALUE",
        help="keep rows with COL == VALUE (repeatable)",
    )
    p.add_argument("--log-base", default="10", help="base of the log of x: 10 (default) or e")
    p.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    p.add_argument("--robust", action="store_true", help="Huber fit instead of least squares")
    p.add_argument(
        "--rr-col",
        default="RR",
        help="recall-rate column; rows with RR = 0 are dropped (default: RR, if present)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "law",
        help="fit the log-linear law R = a*log10(x) + b, or predict R from it",
        description="Fit the log-linear law of knowledge overshadowing to a results table, "
        "with confidence intervals, or predict R for a planned configuration.",
    )
    lsub = p.add_subparsers(dest="law_command", metavar="{fit,predict,transfer}")
    f = lsub.add_parser(
        "fit",
        help="fit R = a*log(x) + b (per group)",
        description="Fit R = slope*log(x) + intercept by least squares and report slope, "
        "intercept, x_c, R^2 and a confidence interval of the slope.",
        epilog=EPILOG_FIT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(f)
    f.add_argument("--x", required=True, help="column holding the factor's value (> 0)")
    f.add_argument("--group-by", metavar="COL", help="fit each value of COL separately")
    f.add_argument(
        "--ci",
        choices=["t", "bootstrap"],
        default="t",
        help="slope interval: Student t (default) or percentile bootstrap",
    )
    f.add_argument(
        "--cluster",
        metavar="COL",
        help="with --ci bootstrap: resample whole clusters of COL (e.g. seed); "
        "default resamples the replicate runs within each x",
    )
    f.add_argument(
        "--n-boot",
        type=int,
        default=2000,
        help=f"bootstrap resamples, at least {law.MIN_BOOT} (default 2000)",
    )
    f.set_defaults(func=run)

    q = lsub.add_parser(
        "predict",
        help="predict R with a prediction interval for a planned configuration",
        description="Predict R (percent) before training, from the law fitted to a table.",
        epilog=EPILOG_PREDICT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(q)
    q.add_argument("--factor", help="the factor to predict along (P, L or S)")
    q.add_argument("--value", type=float, help="the planned value of --factor")
    q.add_argument("--x", help="column holding the factor's value (default: the --factor name)")
    q.add_argument(
        "--at",
        action="append",
        default=[],
        metavar="COL=VALUE",
        help="joint law: the planned value of a factor column (repeatable)",
    )
    q.set_defaults(func=run)

    t = lsub.add_parser(
        "transfer",
        help="predict each task's R from a synthetic law, beside baselines, and score it",
        description="Carry a synthetic law over to natural-language tasks (keep its slope and "
        "re-anchor, or refit), predict each task's R without its own runs, and score the "
        "predictions (Eq. 5 and interval coverage) beside constant, leave-one-task-out and "
        "oracle baselines.",
        epilog=EPILOG_TRANSFER,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(t)
    t.add_argument("--law", required=True, metavar="LAW", help="law fit --json output, or a CSV")
    t.add_argument("--x", default="P", help="column holding the factor's value (default: P)")
    t.add_argument("--task-col", default="task", help="column naming the task (default: task)")
    t.add_argument("--law-x", help="x column of a synthetic CSV (default: --x)")
    t.add_argument("--law-y", help="R column of a synthetic CSV (default: --y)")
    t.add_argument(
        "--law-where",
        action="append",
        default=[],
        metavar="COL=VALUE",
        help="keep synthetic rows with COL == VALUE (repeatable)",
    )
    t.add_argument(
        "--method",
        action="append",
        choices=law.METHODS,
        help="a transfer method or baseline (repeatable; default: all)",
    )
    t.add_argument("--at", type=float, metavar="X", help="also predict every task at planned X")
    t.add_argument(
        "--n-boot",
        type=int,
        default=2000,
        help=f"bootstrap resamples over tasks, at least {law.MIN_BOOT} (default 2000)",
    )
    t.set_defaults(func=run)
    p.set_defaults(func=run, law_parser=p)


def run(args: argparse.Namespace) -> int:
    command = getattr(args, "law_command", None)
    if command is None:
        args.law_parser.print_help()
        return 2
    at = _check_options(args)
    with warnings.catch_warnings():
        warnings.simplefilter("always", law.LawDataWarning)
        warnings.simplefilter("always", law.LawFitWarning)
        warnings.simplefilter("always", BadRowsWarning)
        warnings.showwarning = _warn_to_stderr
        if command == "fit":
            return _run_fit(args)
        if command == "transfer":
            return _run_transfer(args)
        return _run_predict(args, at)


def _check_options(args: argparse.Namespace) -> dict[str, float]:
    """Check every numeric option before the table is read (one line each when wrong).

    Returns the planned values of ``predict --at`` (empty for ``fit``).
    """
    law.check_level(args.level)
    law.log_base_value(args.log_base)
    if args.law_command == "transfer":
        law.check_n_boot(args.n_boot)
        if args.at is not None:
            law.check_factor_value(args.at, "--at")
        if args.at is not None and args.method and set(args.method) == {"oracle"}:
            raise ValueError("--at needs a method other than oracle (it has no measured R)")
        return {}
    if args.law_command == "fit":
        law.check_n_boot(args.n_boot)
        if args.cluster and args.ci != "bootstrap":
            raise ValueError("--cluster only applies with --ci bootstrap")
        return {}
    if args.value is not None:
        law.check_factor_value(args.value, "--value")
    return _parse_at(args.at)


def _parse_at(items: list[str]) -> dict[str, float]:
    """``--at P=40 --at L=10`` -> ``{"P": 40.0, "L": 10.0}``, each value positive and finite."""
    at = {}
    for col, vals in law.parse_where(items).items():
        if len(vals) != 1:
            raise ValueError(f"--at {col} given more than once")
        try:
            value = float(vals[0])
        except ValueError:
            raise ValueError(f"--at {col} takes a number, got {vals[0]!r}") from None
        at[col] = law.check_factor_value(value, f"--at {col}")
    return at


def _read(path: str) -> tuple[pd.DataFrame, list[str]]:
    """The table, and the fixed settings its rows must share (none unless it is a sweep's).

    A sweep's results table is recognised by its ``config_hash`` column and read through the
    sweep's own reader, which checks its rows; its fixed settings are the sweep's
    (:func:`overshadow_lab.lab.sweep.tier_defaults`) that the table holds.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        columns = pd.read_csv(file, nrows=0).columns
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty: there is no table to fit") from None
    if "config_hash" not in columns:
        return pd.read_csv(file), []
    # Deferred on purpose, the one such import here: the sweep module brings torch, which only
    # a sweep's table needs (the paper's figures and other tables are read without it).
    from overshadow_lab.lab.sweep import read_results, tier_defaults

    df = read_results(file)
    return df, [c for c in tier_defaults("cpu") if c in df.columns]


def _fixed(settings: list[str], factors: set[str]) -> list[str]:
    """The settings that must hold one value when ``factors`` are fitted (S comes from size)."""
    varying = factors | ({"size"} if "S" in factors else set())
    return [c for c in settings if c not in varying]


def _emit(obj: dict, as_json: bool, text: str) -> None:
    print(json.dumps(law.json_safe(obj), indent=2) if as_json else text)


def _num(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _fmt_fit(name: str, d: dict) -> str:
    lo, hi = d["slope_ci"]
    return (
        f"{name:<36} slope {_num(d['slope'], '7.2f')} [{_num(lo, '6.2f')}, {_num(hi, '6.2f')}]  "
        f"intercept {_num(d['intercept'], '7.2f')}  x_c {_num(d['x_c'], '.3g'):>9}  "
        f"R2 {_num(d['r2'], '.3f')}  n {d['n']}"
    )


def _warn_to_stderr(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"overshadow-lab law: warning: {message}", file=sys.stderr)


def _run_fit(args: argparse.Namespace) -> int:
    df, settings = _read(args.file)
    where = law.parse_where(args.where)
    if _is_sweep_factor(df, args.x) and "factor" not in where and args.group_by != "factor":
        where["factor"] = [args.x]
        print(
            f"overshadow-lab law: note: fitting the rows with factor == {args.x} "
            "(the sweep over that factor); pass --where factor=... to choose others",
            file=sys.stderr,
        )
    result = law.fit_law_frame(
        df,
        args.x,
        args.y,
        where=where,
        group_by=args.group_by,
        settings=_fixed(settings, {args.x}),
        rr_col=args.rr_col,
        log_base=args.log_base,
        level=args.level,
        robust=args.robust,
        ci=args.ci,
        cluster=args.cluster,
        n_boot=args.n_boot,
    )
    if isinstance(result, dict):
        out = {k: v.to_dict() for k, v in result.items()}
        text = "\n".join(_fmt_fit(k, d) for k, d in out.items())
    else:
        out = result.to_dict()
        text = _fmt_fit(f"{args.y} vs log{args.log_base}({args.x})", out)
    _emit(out, args.json, text)
    return 0


def _is_sweep_factor(df: pd.DataFrame, x: str) -> bool:
    """A lab results table: a 'factor' column naming which sweep each row belongs to."""
    return "factor" in df.columns and x in set(df["factor"].astype(str))


def _run_predict(args: argparse.Namespace, at: dict[str, float]) -> int:
    if at and (args.factor or args.value is not None):
        raise ValueError("use either --factor/--value (one-factor law) or --at (joint law)")
    if not at and (not args.factor or args.value is None):
        raise ValueError("give --factor F --value V (one-factor law) or --at COL=VALUE (joint law)")
    df, settings = _read(args.file)
    where = law.parse_where(args.where)
    if at:
        data = law.select_rows(df, where) if where else df
        factors = [c for c in ("P", "L", "S") if c in data.columns]
        factors += [c for c in at if c not in factors]
        law.check_one_configuration(data, _fixed(settings, set(factors)))
        joint = law.fit_joint_law(
            data, factors, args.y, rr_col=args.rr_col, log_base=args.log_base, level=args.level
        )
        pred = law.predict_planned(joint, **at)
        out = {
            **pred,
            "at": at,
            "law": {
                "coef": joint.coef,
                "intercept": joint.intercept,
                "held": joint.held,
                "r2": joint.r2,
                "n": joint.n,
            },
        }
        text = (
            f"predicted R at {at}: {pred['predicted']:.1f}% "
            f"({100 * args.level:g}% prediction interval {pred['pi_lo']:.1f} to "
            f"{pred['pi_hi']:.1f}); joint law on {joint.factors}, R2 {_num(joint.r2, '.3f')}"
        )
        _emit(out, args.json, text)
        return 0
    x = args.x or args.factor
    if _is_sweep_factor(df, args.factor) and "factor" not in where:
        where["factor"] = [args.factor]
    fit = law.fit_law_frame(
        df,
        x,
        args.y,
        where=where,
        settings=_fixed(settings, {x}),
        rr_col=args.rr_col,
        log_base=args.log_base,
        level=args.level,
        robust=args.robust,
    )
    pred = law.predict_planned(fit, x=args.value)
    out = {**pred, "factor": args.factor, "value": args.value, "law": fit.to_dict()}
    note = " (extrapolated beyond the fitted range)" if pred["extrapolated"] else ""
    text = (
        f"predicted R at {args.factor} = {args.value:g}: {pred['predicted']:.1f}% "
        f"({100 * args.level:g}% prediction interval {pred['pi_lo']:.1f} to "
        f"{pred['pi_hi']:.1f}){note}; law slope {fit.slope:.2f} per decade, n {fit.n}"
    )
    _emit(out, args.json, text)
    return 0


def _synthetic_law(args: argparse.Namespace) -> law.LawFit:
    """The synthetic law of ``--law``: a ``law fit --json`` object, or a CSV fitted here."""
    path = Path(args.law)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {args.law} (--law)")
    if path.suffix.lower() == ".json":
        try:
            obj = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(
                f"--law {args.law} is not valid JSON ({err.msg}, line {err.lineno})"
            ) from None
        return law.law_from_dict(obj)
    df, settings = _read(args.law)
    x, y = args.law_x or args.x, args.law_y or args.y
    where = law.parse_where(args.law_where)
    if _is_sweep_factor(df, x) and "factor" not in where:
        where["factor"] = [x]
    return law.fit_law_frame(
        df,
        x,
        y,
        where=where,
        settings=_fixed(settings, {x}),
        rr_col=args.rr_col,
        log_base=args.log_base,
        level=args.level,
        robust=args.robust,
    )


def _run_transfer(args: argparse.Namespace) -> int:
    source = _synthetic_law(args)
    df, _ = _read(args.file)
    where = law.parse_where(args.where)
    data = law.select_rows(df, where) if where else df
    if data.empty:
        raise ValueError(f"no rows of {args.file} match the --where conditions")
    rr = args.rr_col if args.rr_col in data.columns else None
    points = law.task_points(data, task=args.task_col, x=args.x, y=args.y, rr=rr)
    methods = args.method or list(law.METHODS)
    pred, scores = law.transfer_report(
        points, source, methods=methods, level=args.level, n_boot=args.n_boot
    )
    planned = None
    if args.at is not None:
        planned = law.predict_tasks_at(
            points, source, args.at, methods=[m for m in methods if m != "oracle"], level=args.level
        )
    out = {
        "law": source.to_dict(),
        "level": args.level,
        "scores": {m: row.to_dict() for m, row in scores.iterrows()},
        "predictions": pred.drop(columns="point").to_dict("records"),
    }
    if planned is not None:
        out["planned"] = planned.to_dict("records")
    _emit(out, args.json, _transfer_text(source, pred, scores, planned, args.level))
    return 0


def _transfer_text(source, pred, scores, planned, level: float) -> str:
    pct = f"{100 * level:g}%"
    lines = [
        f"synthetic law: slope {source.slope:.2f} per decade [{source.slope_ci[0]:.2f}, "
        f"{source.slope_ci[1]:.2f}], intercept {source.intercept:.2f}",
        f"each point predicted without its task's runs at that x ({pct} prediction intervals):",
        f"{'task':<24} {'x':>7} {'actual':>7}  {'method':<9} {'predicted':>9}  interval",
    ]
    for r in pred.itertuples():
        lines.append(
            f"{r.task:<24} {r.x:7g} {r.actual:7.1f}  {r.method:<9} {_num(r.predicted, '9.1f')}  "
            f"[{_num(r.pi_lo, '.1f')}, {_num(r.pi_hi, '.1f')}]"
        )
    lines.append(f"scores, mean over tasks ({pct} bootstrap intervals over tasks):")
    for m, s in scores.iterrows():
        lines.append(
            f"  {m:<9} relative error {100 * s.mean_rel_error:5.1f}% "
            f"[{100 * s.rel_lo:.1f}, {100 * s.rel_hi:.1f}]  coverage {100 * s.coverage:5.1f}% "
            f"[{100 * s.cov_lo:.1f}, {100 * s.cov_hi:.1f}]  mean |error| {s.mean_abs_error:.1f} "
            f"points  ({int(s.n_points)} points, {int(s.n_zero)} with R = 0, {int(s.n_missing)} not predicted)"
        )
    if planned is not None:
        lines.append("planned value, from all of each task's points:")
        for r in planned.itertuples():
            note = " (extrapolated)" if r.extrapolated else ""
            lines.append(
                f"{r.task:<24} {r.x:7g}  {r.method:<9} {_num(r.predicted, '9.1f')}  "
                f"[{_num(r.pi_lo, '.1f')}, {_num(r.pi_hi, '.1f')}]{note}"
            )
    return "\n".join(lines)
