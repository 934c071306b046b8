"""Reproduce the paper's tables and figures (SPEC section 5) from one call.

:func:`reproduce` ``(name, out_dir, *, epochs=300, seeds=(0,), nll_samples=4096,
nll_examples=None, data_dir=None, n_threads=None, progress=True)`` with ``name`` one of
:data:`TARGETS`:

- ``table1``: active units of a plain VAE against decoder depth 1..5 (MNIST), + a PNG;
- ``table2`` / ``table3``: the paper's alpha/beta grid on MNIST / Omniglot (the paper's
  rows: 13 for Table 2, 14 for Table 3), columns NLL_test, KL_test, AU, NLL_train,
  KL_train, MI, MD, SC, ours next to the paper's;
- ``fig2``: MI and MD per epoch by Monte Carlo (S = N exact aggregate, 10000, 5000, 1000,
  500, 100) and by the VAE-AS classifiers with V = N and V = 10000;
- ``fig3``: MI + MD against the mean KL over training (the same runs as fig2);
- ``fig4`` / ``fig5``: reconstructions of train and test images at alpha = 0.2 and 5.0
  (MNIST / Omniglot; the same runs as the table rows with those alphas);
- ``noise``: a VAE trained on pure-noise images; the KL falls to ~0 (posterior collapse).

Every (configuration, seed) trains one model, saved under
``out_dir/runs/<run-name>/model.h5`` with its ``metrics.json``.  The run name holds the
data set, configuration, epochs, seed and a hash of the model's parameters.  A run whose
``metrics.json`` exists (with the same evaluation settings) is reused, not redone; a run
with a finished ``model.h5`` but other evaluation settings is only re-evaluated; a
``model.h5`` of fewer epochs (a checkpoint, written every 10 epochs) is trained on from
where it stopped.

Outputs: ``out_dir/<name>.md`` and ``out_dir/<name>.csv`` (and ``<name>.png`` for the
figures and table1).  PNGs need matplotlib (``pip install vaeas_np[plot]``).
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import paper
from .._files import atomic_write_text, json_default

__all__ = ["reproduce", "TARGETS", "load_dataset"]

TARGETS = ("table1", "table2", "table3", "fig2", "fig3", "fig4", "fig5", "noise")
DATASET_OF = {"table1": "mnist", "table2": "mnist", "table3": "omniglot", "fig2": "mnist",
              "fig3": "mnist", "fig4": "mnist", "fig5": "omniglot", "noise": None}
#: seed of the one fixed binarisation of the training set used for NLL_train, KL_train, MI...
TRAIN_BINARIZE_SEED = 20240601
_NOT_HASHED = ("n_threads", "verbose", "epochs", "seed")


def load_dataset(name, data_dir=None):
    """The data set ``name`` (a hook: tests replace it with small fake data)."""
    from ..data import load_dataset as _load
    return _load(name, data_dir=data_dir)


# ---------------------------------------------------------------------------- helpers
class _Context:
    def __init__(self, name, out_dir, epochs, seeds, nll_samples, nll_examples, data_dir,
                 n_threads, progress, model_overrides, mi_points, n_show):
        self.name = name
        self.out = Path(out_dir)
        self.epochs = int(epochs)
        self.seeds = tuple(int(s) for s in seeds)
        self.nll_samples = int(nll_samples)
        self.nll_examples = None if nll_examples is None else int(nll_examples)
        self.data_dir = data_dir
        self.n_threads = n_threads
        self.progress = progress
        self.overrides = dict(model_overrides or {})
        self.mi_points = int(mi_points)
        self.n_show = int(n_show)
        self.checkpoint_every = 10
        self._data = {}
        self._train_bin = {}
        self.n_fits = 0

    def log(self, msg):
        if self.progress:
            print(f"[reproduce {self.name} {time.strftime('%H:%M:%S')}] {msg}",
                  file=sys.stderr, flush=True)

    def dataset(self, name):
        if name not in self._data:
            self.log(f"loading data set {name!r}")
            self._data[name] = load_dataset(name, self.data_dir)
        return self._data[name]

    def train_binary(self, name):
        """The training set binarised once with a fixed seed (for the train metrics)."""
        if name not in self._train_bin:
            X = np.asarray(self.dataset(name).train, np.float32)
            rng = np.random.default_rng(TRAIN_BINARIZE_SEED)
            self._train_bin[name] = (rng.random(X.shape, dtype=np.float32) < X).astype(
                np.float32)
        return self._train_bin[name]

    def eval_settings(self):
        return {"nll_samples": self.nll_samples, "nll_examples": self.nll_examples,
                "mi_points": self.mi_points}


def _dataset_title(ds, name):
    if getattr(ds, "is_substitute", False):
        return "Omniglot (omniglot28 substitute)"
    return getattr(ds, "title", None) or name


def _fmt_num(v):
    return ("%g" % v) if isinstance(v, float) else str(v)


def _model_params(kind, params, ctx, seed):
    from ..models.vae import VAE
    from ..models.vaeas import VAEAS
    cls = VAEAS if kind == "VAEAS" else VAE
    allowed = cls._param_names()
    p = {**{k: v for k, v in ctx.overrides.items() if k in allowed}, **params}
    p.update(epochs=ctx.epochs, seed=int(seed), n_threads=ctx.n_threads, verbose=False)
    return cls, {k: v for k, v in p.items() if k in allowed}


def _run_dir(ctx, dataset, label, kind, params, seed):
    cls, full = _model_params(kind, params, ctx, seed)
    key = {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(full.items())
           if k not in _NOT_HASHED}
    digest = hashlib.sha1(json.dumps({"kind": kind, "dataset": dataset, "params": key},
                                     sort_keys=True, default=str).encode()).hexdigest()[:8]
    return ctx.out / "runs" / f"{dataset}-{label}-e{ctx.epochs}-s{seed}-{digest}"


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_json(path, obj):
    atomic_write_text(path, json.dumps(obj, indent=1, default=json_default))


def _train(ctx, run_dir, kind, params, seed, X, callbacks=(), fresh=False):
    """Train (or load, or continue) the model of one run; saves run_dir/model.h5."""
    from ..models.io import load_model
    cls, full = _model_params(kind, params, ctx, seed)
    path = run_dir / "model.h5"
    model = None
    if path.exists() and not fresh:
        try:
            model = load_model(path)
            model.n_threads = ctx.n_threads
            model.verbose = False
        except Exception as e:                          # a damaged file: train again
            ctx.log(f"{run_dir.name}: cannot reuse {path} ({e}); training again")
            model = None
        if model is not None and model.epoch_ >= ctx.epochs:
            ctx.log(f"{run_dir.name}: reusing the trained model ({model.epoch_} epochs)")
            return model
    t0 = time.perf_counter()
    cbs = list(callbacks)
    if ctx.progress:
        def _progress(m, rec):
            ctx.log(f"{run_dir.name}: epoch {rec['epoch']}/{ctx.epochs} " + " ".join(
                f"{k}={rec[k]:.3f}" for k in ("recon", "kl", "mi", "sc") if k in rec))
        cbs.append(_progress)
    every = ctx.checkpoint_every
    if every and not fresh:
        run_dir.mkdir(parents=True, exist_ok=True)

        def _checkpoint(m, rec):
            if rec["epoch"] % every == 0 and rec["epoch"] < ctx.epochs:
                m.save(path)                          # atomic; a killed run resumes here
        cbs.append(_checkpoint)
    ctx.n_fits += 1
    if model is not None:
        ctx.log(f"{run_dir.name}: continuing from epoch {model.epoch_} to {ctx.epochs}")
        model.epochs = ctx.epochs
        model.fit(X, callbacks=cbs, warm_start=True)
    else:
        ctx.log(f"{run_dir.name}: training {cls.__name__} for {ctx.epochs} epochs")
        model = cls(**full)
        model.fit(X, callbacks=cbs)
    run_dir.mkdir(parents=True, exist_ok=True)
    model.save(path)
    ctx.log(f"{run_dir.name}: trained in {time.perf_counter() - t0:.1f} s")
    return model


# --------------------------------------------------------------------------- metrics
def _table_metrics(ctx, model, dsname, seed, full=True):
    """The paper's columns for one trained model (SPEC section 4)."""
    from ..metrics import (active_units, exact_aggregate_mi_md, iwae_nll, kl_divergence,
                           reconstruction)
    ds = ctx.dataset(dsname)
    out = {}
    test = np.asarray(ds.test_binary, np.float32)
    if full:
        Xn = test if ctx.nll_examples is None else test[:ctx.nll_examples]
        t0 = time.perf_counter()
        out["NLL_test"] = iwae_nll(model, Xn, k=ctx.nll_samples, rng=[seed, 1])
        ctx.log(f"  NLL_test={out['NLL_test']:.2f} (IWAE k={ctx.nll_samples}, "
                f"{Xn.shape[0]} images, {time.perf_counter() - t0:.1f} s)")
    mu, lv = model.encode(test)
    out["KL_test"] = kl_divergence(mu, lv)
    out["AU"] = active_units(mu, 0.01)
    train = ctx.train_binary(dsname)
    out["NLL_train"] = reconstruction(model, train, rng=[seed, 2])
    mu, lv = model.encode(train)
    out["KL_train"] = kl_divergence(mu, lv)
    if full:
        m = min(ctx.mi_points, mu.shape[0])
        ex = exact_aggregate_mi_md(mu, lv, n_points=m, rng=[seed, 3], n_threads=ctx.n_threads)
        out["MI_exact"], out["MD_exact"] = ex["MI"], ex["MD"]
        if hasattr(model, "estimates"):
            est = model.estimates(train, entropy=False, rng=[seed, 4])
            out["MI"], out["MD"], out["SC"] = est["MI"], est["MD"], est["SC"]
        else:
            out["MI"], out["MD"], out["SC"] = ex["MI"], ex["MD"], None
    return {k: (None if v is None else (int(v) if k == "AU" else float(v)))
            for k, v in out.items()}


def _table_run(ctx, dsname, label, kind, params, seed, full=True):
    run_dir = _run_dir(ctx, dsname, label, kind, params, seed)
    mpath = run_dir / "metrics.json"
    settings = ctx.eval_settings() if full else {"full": False}
    old = _read_json(mpath)
    if old is not None and old.get("eval") == settings and old.get("epochs") == ctx.epochs:
        ctx.log(f"{run_dir.name}: finished before, reusing its metrics")
        return old["metrics"]
    X = np.asarray(ctx.dataset(dsname).train, np.float32)
    model = _train(ctx, run_dir, kind, params, seed, X)
    t0 = time.perf_counter()
    metrics = _table_metrics(ctx, model, dsname, seed, full)
    ctx.log(f"{run_dir.name}: evaluated in {time.perf_counter() - t0:.1f} s")
    _write_json(mpath, {"run": run_dir.name, "kind": kind, "dataset": dsname,
                        "params": _model_params(kind, params, ctx, seed)[1],
                        "epochs": ctx.epochs, "seed": seed, "eval": settings,
                        "metrics": metrics, "history": model.history_})
    return metrics


# ---------------------------------------------------------------------------- tables
def _agg(values):
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return None, None
    mean = float(np.mean(vals))
    std = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
    return mean, std


def _cell(mean, std, digits=2):
    if mean is None:
        return "-"
    s = f"{mean:.{digits}f}"
    return s if std is None else f"{s} ± {std:.{digits}f}"


def _write_table(ctx, stem, title_lines, key_cols, rows, columns, extra_cols, footnotes):
    """rows: list of dicts {key col: value, "ours": {col: [values]}, "paper": {col: v}}."""
    ctx.out.mkdir(parents=True, exist_ok=True)
    md = list(title_lines) + [""]
    head = list(key_cols) + ["seeds"]
    for c in columns:
        head += [f"{c} (ours)", f"{c} (paper)"]
    head += [f"{c} (ours)" for c in extra_cols]
    md.append("| " + " | ".join(head) + " |")
    md.append("|" + "|".join("---" for _ in head) + "|")
    csv_head = list(key_cols) + ["seeds"]
    for c in columns:
        csv_head += [f"{c} (ours)", f"{c} (paper)"]
    csv_head += [f"{c} (ours)" for c in extra_cols]
    csv_head += [f"{c} (ours std)" for c in list(columns) + list(extra_cols)]
    csv_rows = []
    for r in rows:
        n = max((len(v) for v in r["ours"].values()), default=0)
        cells, crow, stds = [], [], []
        for k in key_cols:
            v = r.get(k)
            cells.append("-" if v is None else _fmt_num(v))
            crow.append("" if v is None else v)
        cells.append(str(n))
        crow.append(n)
        for c in list(columns) + list(extra_cols):
            mean, std = _agg(r["ours"].get(c, []))
            digits = 1 if c == "AU" and std is not None else (0 if c == "AU" else 2)
            cells.append(_cell(mean, std, digits))
            crow.append("" if mean is None else mean)
            stds.append("" if std is None else std)
            if c in columns:
                p = r["paper"].get(c)
                cells.append("-" if p is None else (str(p) if c == "AU" else f"{p:.2f}"))
                crow.append("" if p is None else p)
        md.append("| " + " | ".join(cells) + " |")
        csv_rows.append(crow + stds)
    md += [""] + [f"- {n}" for n in footnotes]
    md_path, csv_path = ctx.out / f"{stem}.md", ctx.out / f"{stem}.csv"
    _write_text(md_path, "\n".join(md) + "\n")
    tmp = csv_path.with_name(f".{csv_path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(csv_head)
        w.writerows(csv_rows)
    os.replace(tmp, csv_path)
    return md_path, csv_path


def _write_text(path, text):
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _common_header(ctx, title, dstitle, paper_epochs=300, substitute=False, nll=True):
    lines = [f"# {title}", "", f"Paper: {paper.CAPTIONS[ctx.name]}", "",
             f"- Dataset: {dstitle}",
             f"- Epochs: {ctx.epochs} (paper: {paper_epochs or 'not stated'})",
             f"- Seeds: {', '.join(map(str, ctx.seeds))} (ours: mean ± sample std over "
             f"{len(ctx.seeds)} seed(s))"]
    if nll:
        ex = "all" if ctx.nll_examples is None else f"the first {ctx.nll_examples}"
        lines.append(f"- NLL_test: IWAE bound with k = {ctx.nll_samples} importance samples "
                     f"(paper: 4096) on {ex} fixed-binarised test images")
    if paper_epochs and ctx.epochs < paper_epochs:
        lines.append(f"- **Note:** these runs have {ctx.epochs} epochs against the paper's "
                     f"{paper_epochs}: they are not comparable with the paper's numbers in "
                     "absolute terms (at most in trends).")
    if substitute:
        lines.append("- **Note:** the data set is the omniglot28 substitute built from Lake's "
                     "images, not Burda's chardata.mat: compare trends, not absolute values.")
    return lines


_TABLE_FOOTNOTES = [
    "Columns: NLL_test = IWAE NLL on the test set; KL_test / KL_train = mean analytic "
    "KL(q(z|x)||p(z)); AU = latent dims with Cov_x(E_q[z_d]) >= 0.01 on the test set; "
    "NLL_train = mean reconstruction term -log p(x|z), one z ~ q(z|x), on the training set "
    "binarised once with a fixed seed; MI, MD, SC for VAE-AS rows: the trained classifier's "
    "estimates (Barber-Agakov I_hat = log V + mean log s(e_i|z_i), MD = KL - I_hat, SC = "
    "softmax cross-entropy) over one full pass of the training set.",
    "VAE row: MI and MD (the paper leaves them empty) are the exact-aggregate estimates: "
    "q(z) is the mixture of all N training posteriors, evaluated at one z ~ q(z|x_j) for "
    "the training examples counted in the header's 'MI_exact points' (Hoffman & Johnson); "
    "SC does not exist.",
    "MI_exact, MD_exact (ours only): the same exact-aggregate estimate for every row, as a "
    "check on the classifier's estimate.",
]


def _grid_rows(table):
    return [("VAE", "VAE", {}) if r["method"] == "VAE" else
            (f"vaeas-a{_fmt_num(r['alpha'])}-b{_fmt_num(r['beta'])}", "VAEAS",
             {"alpha": r["alpha"], "beta": r["beta"]}) for r in table]


def _reproduce_grid(ctx, dsname, table, stem, title):
    rows = []
    grid = _grid_rows(table)
    total = len(grid) * len(ctx.seeds)
    i = 0
    for prow, (label, kind, params) in zip(table, grid):
        ours = {}
        for seed in ctx.seeds:
            i += 1
            ctx.log(f"run {i}/{total}: {prow['method']} alpha={prow['alpha']} "
                    f"beta={prow['beta']} seed={seed}")
            m = _table_run(ctx, dsname, label.lower(), kind, params, seed)
            for k, v in m.items():
                ours.setdefault(k, []).append(v)
        rows.append({"Method": prow["method"], "alpha": prow["alpha"], "beta": prow["beta"],
                     "ours": ours, "paper": prow})
    ds = ctx.dataset(dsname)
    header = _common_header(ctx, title, _dataset_title(ds, dsname),
                            substitute=getattr(ds, "is_substitute", False))
    header.append(f"- MI_exact points: up to {ctx.mi_points} training examples")
    notes = list(_TABLE_FOOTNOTES)
    vae = next((r for r in rows if r["Method"] == "VAE"), None)
    ones = next((r for r in rows if r["alpha"] == 1.0 and r["beta"] == 1.0), None)
    if vae is not None and ones is not None:
        same = all(vae["ours"].get(c) == ones["ours"].get(c)
                   for c in ("NLL_test", "KL_test", "NLL_train", "KL_train"))
        notes.append(
            "VAE-AS(alpha=1, beta=1) and VAE: with alpha = beta the encoder's and decoder's "
            "gradients are exactly the plain VAE's (SPEC section 3); the paper reports "
            "VAE-AS(1,1) better than VAE. " + (
                "Here the two rows, trained with the same seeds, have identical NLL and KL "
                "columns: only the classifier (MI, MD, SC) differs." if same else
                "Here their NLL/KL columns differ; compare them over several seeds."))
    return _write_table(ctx, stem, header, ("Method", "alpha", "beta"), rows, paper.COLUMNS,
                        ("MI_exact", "MD_exact"), notes)


def _reproduce_table1(ctx):
    rows = []
    for depth in range(1, 6):
        ours = {}
        for seed in ctx.seeds:
            m = _table_run(ctx, "mnist", f"vae-dec{depth}", "VAE",
                           {"decoder_layers": (_width(ctx),) * depth}, seed, full=False)
            for k, v in m.items():
                ours.setdefault(k, []).append(v)
        rows.append({"decoder layers": depth, "ours": ours,
                     "paper": {"AU": paper.TABLE1[depth]}})
    ds = ctx.dataset("mnist")
    header = _common_header(ctx, "Table 1 — active units against decoder depth (ours vs paper)",
                            _dataset_title(ds, "mnist"), nll=False)
    md, cs = _write_table(ctx, "table1", header, ("decoder layers",), rows, ("AU",),
                          ("KL_test", "NLL_train", "KL_train"),
                          ["AU: latent dims with Cov_x(E_q[z_d]) >= 0.01 over the test set "
                           "(Burda et al. 2015); plain VAE, encoder and latent size as in "
                           "section 5.3; only the decoder's depth changes."])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    depths = [r["decoder layers"] for r in rows]
    au = [_agg(r["ours"]["AU"])[0] for r in rows]
    ax.plot(depths, au, "o-", label=f"ours ({ctx.epochs} epochs)")
    ax.plot(depths, [paper.TABLE1[d] for d in depths], "s--", label="paper (300 epochs)")
    ax.set_xlabel("decoder hidden layers")
    ax.set_ylabel("active units (of latent dims)")
    ax.set_xticks(depths)
    ax.legend()
    ax.set_title("Table 1: active units vs decoder depth (MNIST)")
    png = _savefig(fig, ctx.out / "table1.png")
    return md, cs, png


def _width(ctx):
    """Hidden width of the decoder used by table1 (500, or the override's first width)."""
    dec = ctx.overrides.get("decoder_layers")
    return int(dec[0]) if dec else 500


# --------------------------------------------------------------------------- figures
def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("the figures need matplotlib: pip install 'vaeas_np[plot]' "
                          "(or pip install matplotlib)") from e
    return plt


def _integer_epochs(ax):
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _savefig(fig, path):
    import matplotlib.pyplot as plt
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.tight_layout()
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _curve_runs(ctx):
    """The two fig2/fig3 runs (V = N and V = 10000) with per-epoch estimator curves."""
    from ..metrics import exact_aggregate_mi_md, kl_divergence, monte_carlo_mi_md
    ds = ctx.dataset("mnist")
    X = np.asarray(ds.train, np.float32)
    train = ctx.train_binary("mnist")
    N = X.shape[0]
    s_list = []
    for S in paper.SETTINGS["fig2"]["mc_samples"]:
        S = min(S, N)
        if S not in s_list:
            s_list.append(S)
    v_small = min(10000, max(2, N // 2))
    fig2 = paper.SETTINGS["fig2"]
    base = {"alpha": 1.0, "beta": 1.0, "decoder_layers": fig2["decoder_layers"],
            "batch_size": fig2["batch_size"]}
    for k in ("decoder_layers", "batch_size"):
        if k in ctx.overrides:
            base[k] = ctx.overrides[k]
    seed = ctx.seeds[0]
    out = {}
    for V, mc in ((N, True), (v_small, False)):
        params = dict(base, n_labels=None if V == N else V)
        run_dir = _run_dir(ctx, "mnist", f"curves-V{V}", "VAEAS", params, seed)
        mpath = run_dir / "metrics.json"
        settings = dict(ctx.eval_settings(), curves=True, s_list=s_list)
        old = _read_json(mpath)
        if old is not None and old.get("eval") == settings and old.get("epochs") == ctx.epochs:
            ctx.log(f"{run_dir.name}: finished before, reusing its curves")
            out[V] = old["curves"]
            continue
        curves = []

        def cb(model, rec, mc=mc, curves=curves):
            t0 = time.perf_counter()
            mu, lv = model.encode(train)
            row = {"epoch": rec["epoch"], "KL": kl_divergence(mu, lv), "recon": rec["recon"],
                   "MI_train_pass": rec.get("mi"), "SC_train_pass": rec.get("sc")}
            est = model.estimates(train, entropy=False, rng=[seed, 10, rec["epoch"]])
            row.update(MI_classifier=est["MI"], MD_classifier=est["MD"], SC=est["SC"])
            if mc:
                for S in s_list:
                    r = [seed, 11, rec["epoch"], S]
                    if S >= N:
                        e = exact_aggregate_mi_md(mu, lv, n_points=min(ctx.mi_points, N),
                                                  rng=r, n_threads=ctx.n_threads)
                    else:
                        e = monte_carlo_mi_md(mu, lv, S, rng=r, n_threads=ctx.n_threads)
                    row[f"MI_S{S}"], row[f"MD_S{S}"] = e["MI"], e["MD"]
            curves.append({k: (None if v is None else float(v)) for k, v in row.items()})
            ctx.log(f"  estimators at epoch {rec['epoch']}: {time.perf_counter() - t0:.1f} s")

        model = _train(ctx, run_dir, "VAEAS", params, seed, X, callbacks=[cb], fresh=True)
        _write_json(mpath, {"run": run_dir.name, "epochs": ctx.epochs, "seed": seed,
                            "eval": settings, "curves": curves, "V": V,
                            "params": _model_params("VAEAS", params, ctx, seed)[1],
                            "history": model.history_})
        out[V] = curves
    return out, s_list, N, v_small


def _curves_csv(ctx, stem, cols, rows):
    path = ctx.out / f"{stem}.csv"
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch"] + [c for c, _ in cols])
        for i, ep in enumerate(rows["epoch"]):
            w.writerow([ep] + ["" if rows[c][i] is None else rows[c][i] for c, _ in cols])
    os.replace(tmp, path)
    return path


def _md_curve_table(cols, rows, max_rows=12):
    n = len(rows["epoch"])
    pick = list(range(n)) if n <= max_rows else sorted(
        set(np.linspace(0, n - 1, max_rows).round().astype(int).tolist()))
    lines = ["| epoch | " + " | ".join(label for _, label in cols) + " |",
             "|" + "---|" * (len(cols) + 1)]
    for i in pick:
        lines.append(f"| {int(rows['epoch'][i])} | " + " | ".join(
            "-" if rows[c][i] is None else f"{rows[c][i]:.3f}" for c, _ in cols) + " |")
    return lines


def _reproduce_fig2_fig3(ctx):
    curves, s_list, N, v_small = _curve_runs(ctx)
    big, small = curves[N], curves[v_small]
    rows = {"epoch": [int(r["epoch"]) for r in big]}
    cols = []
    for S in s_list:
        lab = f"S={S} (exact aggregate)" if S >= N else f"MC S={S}"
        for q in ("MI", "MD"):
            rows[f"{q}_S{S}"] = [r[f"{q}_S{S}"] for r in big]
            cols.append((f"{q}_S{S}", f"{q} {lab}"))
    for V, cur in ((N, big), (v_small, small)):
        for q in ("MI", "MD"):
            rows[f"{q}_V{V}"] = [r[f"{q}_classifier"] for r in cur]
            cols.append((f"{q}_V{V}", f"{q} VAE-AS_{V}"))
        rows[f"SC_V{V}"] = [r["SC"] for r in cur]
        rows[f"KL_V{V}"] = [r["KL"] for r in cur]
    cols += [(f"KL_V{N}", f"KL (VAE-AS_{N} run)"), (f"SC_V{N}", f"SC VAE-AS_{N}"),
             (f"KL_V{v_small}", f"KL (VAE-AS_{v_small} run)"),
             (f"SC_V{v_small}", f"SC VAE-AS_{v_small}")]
    dstitle = _dataset_title(ctx.dataset("mnist"), "mnist")
    plt = _pyplot()
    if ctx.name == "fig2":
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        for ax, q in zip(axes, ("MI", "MD")):
            for S in s_list:
                lab = f"MC S={N} (exact aggregate)" if S >= N else f"MC S={S}"
                ax.plot(rows["epoch"], rows[f"{q}_S{S}"], "-", lw=1.2, label=lab)
            for V, st in ((N, "k--"), (v_small, "k:")):
                ax.plot(rows["epoch"], rows[f"{q}_V{V}"], st, lw=2, label=f"VAE-AS_{V}")
            ax.set_xlabel("epoch")
            _integer_epochs(ax)
            ax.set_ylabel(f"{q} (nats)")
            ax.set_title("mutual information I(z, x)" if q == "MI" else
                         "marginal divergence KL(q(z)||p(z))")
            if q == "MI":
                ax.axhline(math.log(N), color="grey", lw=0.8)
                ax.text(rows["epoch"][0], math.log(N), f" log N = {math.log(N):.2f}",
                        va="top", fontsize=8, color="grey")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                   ncol=4, fontsize=8, frameon=False)
        fig.suptitle(f"Figure 2 (ours, {dstitle}, {ctx.epochs} epochs)")
        png = _savefig(fig, ctx.out / "fig2.png")
        md_cols = [c for c in cols if not c[0].startswith(("KL_", "SC_"))]
        csv_cols = cols
        notes = [
            "MC S=n: Hoffman & Johnson's estimate with n training examples drawn without "
            "replacement (one z each, q(z) the mixture of those n posteriors); the S=N row "
            "uses all N training posteriors as q(z) (exact aggregate) at up to "
            f"{ctx.mi_points} points. All Monte Carlo curves are computed on the encoder of "
            f"the VAE-AS_{N} run; the VAE-AS_{v_small} curve is that run's own classifier "
            f"(a second model, same settings, V = {v_small} labels).",
            "VAE-AS_V: the classifier's Barber-Agakov estimate log V + mean log s(e_i|z_i) "
            "over one full pass of the training set at the end of each epoch; MD = KL - MI.",
            "Settings of the paper's section 5.2: alpha = beta = 1, decoder of 3 hidden "
            "layers, minibatch 100 (the paper trains 120 epochs).",
        ]
    else:
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        ax.plot(rows["epoch"], rows[f"KL_V{N}"], "k-", lw=2.5, label="mean KL(q(z|x)||p(z))")
        for S in s_list:
            lab = f"MI+MD, S={N} (exact aggregate)" if S >= N else f"MI+MD, MC S={S}"
            rows[f"SUM_S{S}"] = [a + b for a, b in zip(rows[f"MI_S{S}"], rows[f"MD_S{S}"])]
            ax.plot(rows["epoch"], rows[f"SUM_S{S}"], "-", lw=1, label=lab)
        rows[f"SUM_V{N}"] = [a + b for a, b in zip(rows[f"MI_V{N}"], rows[f"MD_V{N}"])]
        ax.plot(rows["epoch"], rows[f"SUM_V{N}"], "r--", lw=1.5,
                label=f"MI+MD, VAE-AS_{N} (= KL by construction)")
        ax2 = ax.twinx()
        ax2.plot(rows["epoch"], rows[f"SC_V{N}"], "m:", lw=1.5, label=f"SC VAE-AS_{N}")
        ax2.set_ylabel("SC (nats)", color="m")
        ax.set_xlabel("epoch")
        _integer_epochs(ax)
        ax.set_ylabel("nats")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        fig.legend(h1 + h2, l1 + l2, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                   ncol=2, fontsize=7, frameon=False)
        ax.set_title(f"Figure 3 (ours, {dstitle}, {ctx.epochs} epochs)")
        png = _savefig(fig, ctx.out / "fig3.png")
        md_cols = [(f"KL_V{N}", "mean KL")] + [
            (f"SUM_S{S}", f"MI+MD {'exact' if S >= N else f'MC S={S}'}") for S in s_list] + [
            (f"SUM_V{N}", f"MI+MD VAE-AS_{N}"), (f"SC_V{N}", f"SC VAE-AS_{N}")]
        csv_cols = md_cols
        notes = [
            "MI+MD against the mean analytic KL over the training set, per epoch, on the "
            f"VAE-AS_{N} run of fig2 (alpha = beta = 1, 3-layer decoder, minibatch 100).",
            "For the classifier, MD_hat is defined as KL - I_hat (SPEC section 3), so its "
            "MI+MD equals the KL exactly; the informative comparison is the Monte Carlo "
            "estimators' MI+MD (= the sample KL) converging to the mean KL, and SC.",
        ]
    header = _common_header(ctx, f"{'Figure 2' if ctx.name == 'fig2' else 'Figure 3'} "
                            "(ours)", dstitle, paper_epochs=120, nll=False)
    md = header + ["", f"![{ctx.name}]({png.name})", ""] + _md_curve_table(md_cols, rows) + \
        [""] + [f"- {n}" for n in notes]
    md_path = ctx.out / f"{ctx.name}.md"
    _write_text(md_path, "\n".join(md) + "\n")
    cs = _curves_csv(ctx, ctx.name, csv_cols, rows)
    return md_path, cs, png


def _image_grid(X, shape, n_side):
    h, w = shape
    n = min(X.shape[0], n_side * n_side)
    grid = np.ones((n_side * (h + 1) + 1, n_side * (w + 1) + 1), np.float32)
    for i in range(n):
        r, c = divmod(i, n_side)
        grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + c * (w + 1):1 + c * (w + 1) + w] = \
            X[i].reshape(h, w)
    return grid


def _reproduce_recon(ctx, dsname):
    ds = ctx.dataset(dsname)
    table = paper.TABLE2 if dsname == "mnist" else paper.TABLE3
    grid = {r["alpha"]: g for r, g in zip(table, _grid_rows(table))
            if r["beta"] == 1.0 and r["alpha"] in (0.2, 5.0)}
    X = np.asarray(ds.train, np.float32)
    shape = tuple(getattr(ds, "image_shape", (28, 28)))
    n_side = max(1, int(math.isqrt(ctx.n_show)))
    n = n_side * n_side
    test_o, train_o = np.asarray(ds.test[:n], np.float32), X[:n]
    recons, errs = {}, {}
    seed = ctx.seeds[0]
    for alpha in (0.2, 5.0):
        label, kind, params = grid[alpha]
        run_dir = _run_dir(ctx, dsname, label.lower(), kind, params, seed)
        model = _train(ctx, run_dir, kind, params, seed, X)
        for split, orig in (("test", test_o), ("train", train_o)):
            rec = model.reconstruct(orig)
            recons[(alpha, split)] = rec
            p = np.clip(rec.astype(np.float64), 1e-6, 1 - 1e-6)
            errs[(alpha, split)] = float(-(orig * np.log(p) + (1 - orig) * np.log1p(-p))
                                         .sum(axis=1).mean())
    plt = _pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(10, 7))
    panels = [("(a) alpha=0.2, test reconstruction", recons[(0.2, "test")]),
              ("(b) test originals", test_o),
              ("(c) alpha=5.0, test reconstruction", recons[(5.0, "test")]),
              ("(d) alpha=0.2, train reconstruction", recons[(0.2, "train")]),
              ("(e) train originals", train_o),
              ("(f) alpha=5.0, train reconstruction", recons[(5.0, "train")])]
    for ax, (title, imgs) in zip(axes.ravel(), panels):
        ax.imshow(_image_grid(imgs, shape, n_side), cmap="gray", vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    dstitle = _dataset_title(ds, dsname)
    fig.suptitle(f"{'Figure 4' if dsname == 'mnist' else 'Figure 5'} (ours): {dstitle}, "
                 f"VAE-AS beta=1, {ctx.epochs} epochs")
    png = _savefig(fig, ctx.out / f"{ctx.name}.png")
    header = _common_header(ctx, f"{'Figure 4' if dsname == 'mnist' else 'Figure 5'} (ours)",
                            dstitle, substitute=getattr(ds, "is_substitute", False), nll=False)
    lines = header + ["", f"![{ctx.name}]({png.name})", "",
                      "| alpha | split | images | mean cross-entropy of the reconstruction "
                      "(nats/image) |", "|---|---|---|---|"]
    csv_rows = []
    for (alpha, split), e in errs.items():
        lines.append(f"| {alpha} | {split} | {n} | {e:.2f} |")
        csv_rows.append([alpha, 1.0, split, n, e])
    lines += ["", "Reconstructions are the Bernoulli means p(x | z = E_q[z|x]) of the first "
              f"{n} images of each split (intensities in [0, 1], not binarised); the models "
              "are the table rows (alpha, beta = 1) with the same settings, shared with "
              f"{'table2' if dsname == 'mnist' else 'table3'}."]
    md_path = ctx.out / f"{ctx.name}.md"
    _write_text(md_path, "\n".join(lines) + "\n")
    cs = ctx.out / f"{ctx.name}.csv"
    with open(cs, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["alpha", "beta", "split", "images", "recon_cross_entropy"])
        w.writerows(csv_rows)
    return md_path, cs, png


def _reproduce_noise(ctx, n_train=10000, n_test=1000, n_features=784):
    from ..metrics import active_units, kl_divergence
    seed = ctx.seeds[0]
    rng = np.random.default_rng([seed, 99])
    X = rng.random((n_train, n_features), dtype=np.float32)           # pure uniform noise
    Xt = (rng.random((n_test, n_features)) < rng.random((n_test, n_features))).astype(
        np.float32)
    run_dir = _run_dir(ctx, f"noise{n_train}", "vae", "VAE", {}, seed)
    mpath = run_dir / "metrics.json"
    old = _read_json(mpath)
    if old is not None and old.get("epochs") == ctx.epochs:
        res = old
    else:
        model = _train(ctx, run_dir, "VAE", {}, seed, X)
        mu, lv = model.encode(Xt)
        res = {"run": run_dir.name, "epochs": ctx.epochs, "seed": seed,
               "history": model.history_,
               "KL_heldout": kl_divergence(mu, lv), "AU_heldout": active_units(mu)}
        _write_json(mpath, res)
    hist = res["history"]
    ep = [h["epoch"] for h in hist]
    kl = [h["kl"] for h in hist]
    rc = [h["recon"] for h in hist]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ep, kl, "o-", label="mean KL(q(z|x)||p(z)) (training pass)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("KL (nats)")
    ax.set_ylim(bottom=0)
    ax2 = ax.twinx()
    ax2.plot(ep, rc, "s:", color="tab:orange", label="reconstruction")
    ax2.set_ylabel("reconstruction -log p(x|z) (nats)", color="tab:orange")
    ax2.ticklabel_format(axis="y", useOffset=False)
    _integer_epochs(ax)
    ax.set_title(f"VAE on pure-noise images ({n_train} uniform-noise 28x28 images)")
    ax.legend(loc="upper right", fontsize=8)
    png = _savefig(fig, ctx.out / "noise.png")
    collapsed = res["KL_heldout"] < 0.1
    header = _common_header(ctx, "Section 2.2 — VAE on pure noise (ours)",
                            f"{n_train} images of uniform noise, 784 pixels, dynamically "
                            "binarised", paper_epochs=None, nll=False)
    lines = header + [
        "", f"![noise]({png.name})", "",
        f"Held-out noise images ({n_test}): mean KL = {res['KL_heldout']:.4f} nats, "
        f"active units = {res['AU_heldout']}; reconstruction at 784 log 2 = "
        f"{784 * math.log(2):.1f} nats is the best any model can do on this data.",
        "", ("**Posterior collapse: the KL fell to ~0** (the paper: 'the KL-Divergence will "
             "soon tend to 0')." if collapsed else
             "**The KL did not fall below 0.1 nats in these epochs.**"),
        "", "| epoch | KL | recon |", "|---|---|---|"]
    lines += [f"| {e} | {k:.4f} | {r:.2f} |" for e, k, r in zip(ep, kl, rc)]
    md_path = ctx.out / "noise.md"
    _write_text(md_path, "\n".join(lines) + "\n")
    cs = ctx.out / "noise.csv"
    with open(cs, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "KL", "recon"])
        w.writerows(zip(ep, kl, rc))
    return md_path, cs, png


# ------------------------------------------------------------------------------ main
def reproduce(name, out_dir, *, epochs=300, seeds=(0,), nll_samples=4096, nll_examples=None,
              data_dir=None, n_threads=None, progress=True, model_overrides=None,
              mi_points=10000, n_show=64):
    """Reproduce one of the paper's tables or figures; returns a dict of output paths.

    name : one of :data:`TARGETS`.
    out_dir : folder for ``<name>.md``, ``<name>.csv``, ``<name>.png`` and ``runs/``.
    epochs : training epochs per run (the paper: 300; a few for a smoke run).
    seeds : seeds (an int n means seeds 0..n-1); tables report mean ± std over them,
        figures use the first.
    nll_samples, nll_examples : IWAE importance samples k and the number of test images
        (None: all) for NLL_test.
    data_dir : folder with the raw data files (used when the store is not built yet).
    n_threads : threads for BLAS / compiled kernels (None: all cores).
    progress : log progress lines to stderr.
    model_overrides : constructor parameters applied to every model (e.g. small widths).
    mi_points : evaluation points of the exact-aggregate MI/MD (all N training
        posteriors form q(z)).
    n_show : images per panel of the reconstruction figures.
    """
    if name not in TARGETS:
        from ..errors import InvalidParameterError
        raise InvalidParameterError(f"unknown experiment {name!r}; choose one of {TARGETS}")
    if isinstance(seeds, (int, np.integer)):
        seeds = tuple(range(int(seeds)))
    if not seeds:
        from ..errors import InvalidParameterError
        raise InvalidParameterError("seeds must name at least one seed")
    ctx = _Context(name, out_dir, epochs, seeds, nll_samples, nll_examples, data_dir,
                   n_threads, progress, model_overrides, mi_points, n_show)
    ctx.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if name in ("table2", "table3"):
        ds = DATASET_OF[name]
        table = paper.TABLE2 if name == "table2" else paper.TABLE3
        title = ("Table 2 — MNIST: the alpha/beta grid (ours vs paper)" if name == "table2"
                 else "Table 3 — Omniglot: the alpha/beta grid (ours vs paper)")
        md, cs = _reproduce_grid(ctx, ds, table, name, title)
        png = None
    elif name == "table1":
        md, cs, png = _reproduce_table1(ctx)
    elif name in ("fig2", "fig3"):
        md, cs, png = _reproduce_fig2_fig3(ctx)
    elif name in ("fig4", "fig5"):
        md, cs, png = _reproduce_recon(ctx, DATASET_OF[name])
    else:
        md, cs, png = _reproduce_noise(ctx)
    ctx.log(f"wrote {md} ({time.perf_counter() - t0:.1f} s, {ctx.n_fits} model(s) trained)")
    return {"md": md, "csv": cs, "png": png, "n_fits": ctx.n_fits,
            "seconds": time.perf_counter() - t0}
