"""The ``mcsample`` command (also ``python -m mcsample``)."""

from __future__ import annotations

import argparse
import sys


DEFAULT_COMPARISON = ("gmm40_d2", "eight_schools_noncentered")
DEFAULT_BUDGET = 2e5


def _parser():
    p = argparse.ArgumentParser(prog="mcsample", description="Sample built-in targets and compare samplers.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample", help="sample a catalogue target and print the ArviZ summary")
    s.add_argument("target", help="a name from `mcsample targets`")
    s.add_argument("--sampler", default="nuts")
    s.add_argument("--draws", type=int, default=1000)
    s.add_argument("--tune", type=int, default=1000)
    s.add_argument("--chains", type=int, default=4)
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    c = sub.add_parser("compare", help="run samplers side by side at an equal evaluation budget")
    c.add_argument("--target", action="append", default=None,
                   help="catalogue name (repeatable); default: " + ", ".join(DEFAULT_COMPARISON))
    c.add_argument("--samplers", default=None, help="comma-separated; default: every available sampler")
    c.add_argument("--budget", type=float, default=None,
                   help="target evaluations per sampler, warmup included (default 2e5 per target)")
    c.add_argument("--chains", type=int, default=4)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", default="mcsample-comparison", help="directory for the table, netCDF and plots")
    c.add_argument("--sinkhorn", action="store_true", help="also the entropic W2 (reg 0.05; slow on the CPU)")
    c.add_argument("--no-progress", action="store_true")
    sub.add_parser("targets", help="list the catalogue")
    sub.add_parser("samplers", help="list the samplers")
    return p


def _sample(args):
    import numpy as np
    import pandas as pd

    import mcsample as mc
    import targets
    from mcsample import _arviz

    target, ref = targets.get(args.target)
    idata = mc.sample(target, args.sampler, draws=args.draws, tune=args.tune, chains=args.chains,
                      seed=args.seed, progressbar=not args.no_progress)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(_arviz.summary(idata))
    a = idata.attrs
    s = idata.sample_stats
    print(f"\n{target.name}: {args.sampler}, {args.chains} chains x {args.draws} draws (+{args.tune} warmup), seed {a['seed']}")
    print(f"gradient evaluations {a['n_grad']}, log-density evaluations {a['n_logp']}, "
          f"sampling {a['wall_time']:.2f} s, compile {a['compile_time']:.2f} s")
    if "diverging" in s:
        print(f"divergences {int(s['diverging'].sum())}")
    if "exhausted" in s:
        print(f"updates that gave up at max_proposals {int(s['exhausted'].sum())}")
    x = ref.to_reference_scale(idata.posterior["x"].values.reshape(-1, target.dim))
    err = np.abs(x.mean(0) - ref.mean) / ref.sd
    sd_ratio = x.std(0, ddof=1) / ref.sd
    print(f"against the reference ({ref.source}): max |mean error| / sd = {err.max():.3f}, "
          f"sd ratio in [{sd_ratio.min():.3f}, {sd_ratio.max():.3f}]")


def _compare(args):
    from pathlib import Path

    import targets
    from mcsample.compare import compare, format_table
    from mcsample import samplers

    names = args.target or [t for t in DEFAULT_COMPARISON if t in targets.available()]
    sampler_list = args.samplers or ",".join(samplers.available())
    for name in names:
        out = Path(args.out) / name
        print(f"\n== {name}: {sampler_list} ==", flush=True)
        budget = DEFAULT_BUDGET if args.budget is None else args.budget  # 0 is an error, not the default
        ds = compare(name, sampler_list, budget=budget, chains=args.chains,
                         seed=args.seed, progressbar=not args.no_progress, out=out, sinkhorn=args.sinkhorn)
        print(format_table(ds))
        print(f"(written to {out}/: comparison.nc, table.md, *.png)")


def _list_targets(args):
    import targets
    print("\n".join(targets.available()))


def _list_samplers(args):
    import mcsample as mc
    print("\n".join(mc.samplers.available()))


_COMMANDS = {"sample": _sample, "compare": _compare, "targets": _list_targets, "samplers": _list_samplers}


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        _COMMANDS[args.command](args)
    except ValueError as err:  # bad names or settings: a message, not a traceback
        print(f"mcsample: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `mcsample targets | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
