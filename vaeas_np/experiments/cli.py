"""The ``reproduce`` command of the ``vaeas-np`` CLI.

``vaeas-np reproduce {table1,table2,table3,fig2,fig3,fig4,fig5,noise} [--epochs N]
[--seeds 0,1,2 | --seeds 3] [--nll-samples K] [--nll-examples M] [--out DIR]
[--data-dir DIR] [--threads T]`` runs :func:`vaeas_np.experiments.runner.reproduce`.
The main CLI calls :func:`add_reproduce_parser` and :func:`run_reproduce`;
``python -m vaeas_np.experiments.cli ...`` runs it stand-alone.
"""
from __future__ import annotations

import argparse
import sys

from .runner import TARGETS

__all__ = ["add_reproduce_parser", "run_reproduce", "parse_seeds", "main"]


def parse_seeds(text):
    """``"0,1,2"`` -> (0, 1, 2); ``"3"`` -> a count: (0, 1, 2); ``"5,"`` -> (5,)."""
    text = str(text).strip()
    try:
        if "," in text:
            seeds = tuple(int(s) for s in text.split(",") if s.strip())
        else:
            n = int(text)
            if n < 1:
                raise ValueError
            seeds = tuple(range(n))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--seeds takes a comma-separated list of seeds (0,1,2; one seed: 5,) or a "
            f"count >= 1 (3 = seeds 0,1,2), got {text!r}")
    if not seeds or any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"seeds must be integers >= 0, got {text!r}")
    return seeds


def _positive(text):
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return v


def add_reproduce_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``reproduce`` command to an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "reproduce", help="reproduce a table or figure of the paper",
        description="Train the runs of one of the paper's tables/figures (reusing finished "
                    "runs under OUT/runs) and write OUT/NAME.md, OUT/NAME.csv (and NAME.png) "
                    "with our numbers next to the paper's.")
    p.add_argument("name", choices=TARGETS, metavar="NAME",
                   help="one of " + ", ".join(TARGETS))
    p.add_argument("--epochs", type=_positive, default=300,
                   help="training epochs per run (paper: 300; default %(default)s)")
    p.add_argument("--seeds", type=parse_seeds, default=(0,),
                   help="seeds as a list (0,1,2; one seed: 5,) or a count (3); default 0")
    p.add_argument("--nll-samples", type=_positive, default=4096,
                   help="IWAE importance samples for NLL_test (default %(default)s)")
    p.add_argument("--nll-examples", type=_positive, default=None,
                   help="evaluate NLL_test on the first M test images (default: all)")
    p.add_argument("--out", default="results", metavar="DIR",
                   help="output folder (default %(default)s/)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="folder with the raw data files (when the store is not built yet)")
    p.add_argument("--threads", type=_positive, default=None,
                   help="threads for BLAS and the compiled kernels (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=run_reproduce)
    return p


def run_reproduce(args) -> int:
    """Run the command parsed by :func:`add_reproduce_parser`; returns the exit code."""
    from ..errors import DataError, VaeasError
    from .runner import reproduce
    try:
        res = reproduce(args.name, args.out, epochs=args.epochs, seeds=args.seeds,
                        nll_samples=args.nll_samples, nll_examples=args.nll_examples,
                        data_dir=args.data_dir, n_threads=args.threads,
                        progress=not getattr(args, "quiet", False))
    except (DataError, VaeasError, ImportError) as e:   # exit 1, as the rest of the CLI
        print(f"vaeas-np reproduce: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("vaeas-np reproduce: interrupted; finished runs are kept and reused by the "
              "next call", file=sys.stderr)
        return 130
    for key in ("md", "csv", "png"):
        if res.get(key) is not None:
            print(res[key])
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="vaeas-np")
    sub = parser.add_subparsers(dest="command")
    sub.required = True
    add_reproduce_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
