"""The ``data`` command of the ``vaeas-np`` CLI.

``vaeas-np data prepare NAME --from DIR [--force]`` builds the store of
``NAME`` in the data home (``$VAEAS_NP_DATA`` or ``~/.cache/vaeas_np``) from
the raw files in ``DIR`` (only read).  ``vaeas-np data info NAME`` prints what
a store holds.  The main CLI calls :func:`add_data_parser` and
:func:`run_data`; ``python -m vaeas_np.cli_data ...`` runs it stand-alone.
"""
from __future__ import annotations

import argparse
import sys
import time

__all__ = ["add_data_parser", "run_data", "main"]

NAMES = ("mnist", "binarized_mnist", "omniglot")


def add_data_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``data`` command (subcommands ``prepare``, ``info``) to an
    argparse ``subparsers`` object; returns the ``data`` parser."""
    p = subparsers.add_parser(
        "data", help="prepare and inspect data sets",
        description="Prepare data sets (MNIST, binarised MNIST, Omniglot) into the HDF5 store.")
    sub = p.add_subparsers(dest="data_command", metavar="{prepare,info}")
    sub.required = True
    pp = sub.add_parser(
        "prepare", help="build the store of a data set from local raw files",
        description="Build <data home>/NAME.h5 from the raw files in DIR (DIR is only read).")
    pp.add_argument("name", metavar="NAME", choices=NAMES, help="one of " + ", ".join(NAMES))
    pp.add_argument("--from", dest="from_dir", metavar="DIR", required=True,
                    help="directory holding the raw files")
    pp.add_argument("--force", action="store_true", help="rebuild even if a good store exists")
    pp.add_argument("--download", action="store_true",
                    help="download raw files missing from DIR")
    pi = sub.add_parser("info", help="print what the store of a data set holds")
    pi.add_argument("name", metavar="NAME", choices=NAMES)
    p.set_defaults(func=run_data)
    return p


def run_data(args) -> int:
    """Run a parsed ``data`` command; returns the exit status (0 on success).
    Errors of the library (``VaeasError``) are printed to stderr, status 1."""
    from .errors import VaeasError
    from . import data as D

    try:
        if args.data_command == "prepare":
            t0 = time.perf_counter()
            path = D.prepare(args.name, args.from_dir, force=args.force, download=args.download)
            ds = D.Dataset(path)
            sizes = ", ".join(f"{k} {v:,}" for k, v in ds.split_sizes.items())
            print(f"{ds.title}: {sizes} -> {path} ({time.perf_counter() - t0:.1f} s)")
            return 0
        if args.data_command == "info":
            path = D.store_path(args.name)
            if not path.exists():
                print(f"no store for {args.name} at {path}; run `vaeas-np data prepare "
                      f"{args.name} --from DIR`", file=sys.stderr)
                return 1
            ds = D.Dataset(path)
            print(repr(ds))
            print(f"source: {ds.source}; files: {ds.source_files}; "
                  f"format {ds.format_version}; binarize seed {ds.binarize_seed}")
            return 0
    except VaeasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    raise SystemExit(f"unknown data command {args.data_command!r}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="vaeas-np")
    add_data_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
