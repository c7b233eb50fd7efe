"""The ``mcsample`` command (also ``python -m mcsample``)."""

from __future__ import annotations

import argparse
import sys


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
    x = ref.to_reference_scale(idata.posterior["x"].values.reshape(-1, target.dim))
    err = np.abs(x.mean(0) - ref.mean) / ref.sd
    sd_ratio = x.std(0, ddof=1) / ref.sd
    print(f"against the reference ({ref.source}): max |mean error| / sd = {err.max():.3f}, "
          f"sd ratio in [{sd_ratio.min():.3f}, {sd_ratio.max():.3f}]")


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.command == "sample":
        try:
            _sample(args)
        except ValueError as err:
            print(f"mcsample: error: {err}", file=sys.stderr)
            return 2
    elif args.command == "targets":
        import targets
        print("\n".join(targets.available()))
    elif args.command == "samplers":
        import mcsample as mc
        print("\n".join(mc.samplers.available()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
