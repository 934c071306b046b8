"""End-to-end tests of the reproduction runner on a tiny fake data set."""
import csv
import types

import numpy as np
import pytest

from vaeas_np.experiments import paper, runner
from vaeas_np.models.vae import VAE

TINY = {"latent_dim": 3, "encoder_layers": (8,), "decoder_layers": (8,),
        "classifier_layers": (8,), "batch_size": 32}


def _fake_dataset(name, data_dir=None):
    rng = np.random.default_rng(0)
    train = rng.random((96, 784), dtype=np.float32)
    test = rng.random((40, 784), dtype=np.float32)
    return types.SimpleNamespace(
        name=name, title=name.upper(), is_substitute=(name == "omniglot"),
        train=train, valid=train[:8], test=test,
        test_binary=(test > 0.5).astype(np.float32), image_shape=(28, 28))


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(runner, "load_dataset", _fake_dataset)
    fits = []
    orig = VAE.fit

    def counting_fit(self, *a, **k):
        fits.append(type(self).__name__)
        return orig(self, *a, **k)

    monkeypatch.setattr(VAE, "fit", counting_fit)
    return fits


def _run(name, out, **kw):
    return runner.reproduce(name, out, epochs=1, seeds=(0,), nll_samples=4, nll_examples=10,
                            n_threads=1, progress=False, model_overrides=TINY, mi_points=50,
                            n_show=4, **kw)


def test_paper_tables_match_the_paper():
    assert len(paper.TABLE2) == 13 and len(paper.TABLE3) == 14
    assert paper.TABLE2[0]["method"] == "VAE" and paper.TABLE2[0]["MI"] is None
    assert paper.TABLE2[1]["NLL_test"] == 96.32 and paper.TABLE3[7]["beta"] == 10.0
    assert paper.TABLE1 == {1: 23, 2: 21, 3: 17, 4: 12, 5: 8}


def test_table2_end_to_end_and_reuse(tmp_path, fake):
    res = _run("table2", tmp_path)
    assert len(fake) == 13 and fake.count("VAE") == 1
    md = res["md"].read_text()
    head = next(line for line in md.splitlines() if line.startswith("| Method"))
    cells = [c.strip() for c in head.strip("|").split("|")]
    for col in paper.COLUMNS:
        i = cells.index(f"{col} (ours)")
        assert cells[i + 1] == f"{col} (paper)"            # adjacent columns
    assert "Epochs: 1 (paper: 300)" in md and "not comparable" in md
    body = [line for line in md.splitlines() if line.startswith("| VAE")]
    assert len(body) == 13
    with open(res["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 13
    assert float(rows[1]["NLL_test (paper)"]) == 96.32
    for r in rows:
        for col in ("NLL_test", "KL_test", "AU", "NLL_train", "KL_train", "MI", "MD"):
            assert np.isfinite(float(r[f"{col} (ours)"]))
    assert rows[0]["SC (ours)"] == "" and np.isfinite(float(rows[1]["SC (ours)"]))
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 13 and all((d / "model.h5").exists() and (d / "metrics.json").exists()
                                   for d in runs)
    # a second call reuses every finished run
    del fake[:]
    res2 = _run("table2", tmp_path)
    assert fake == [] and res2["n_fits"] == 0
    assert res2["csv"].read_text() == res["csv"].read_text()


def test_substitute_label_and_seed_count(tmp_path, fake, monkeypatch):
    # only the first three rows of Table 3, two seeds: labels and mean ± std
    monkeypatch.setattr(paper, "TABLE3", paper.TABLE3[:3])
    res = runner.reproduce("table3", tmp_path, epochs=1, seeds=2, nll_samples=2,
                           nll_examples=5, n_threads=1, progress=False,
                           model_overrides=TINY, mi_points=20)
    md = res["md"].read_text()
    assert "Omniglot (omniglot28 substitute)" in md and "±" in md
    assert len(fake) == 6


def test_fig4_png(tmp_path, fake):
    pytest.importorskip("matplotlib")
    res = _run("fig4", tmp_path)
    assert res["png"].exists() and res["png"].stat().st_size > 1000
    assert len(fake) == 2
    assert "alpha" in res["md"].read_text()


def test_cli_parses_and_runs(tmp_path, fake, monkeypatch):
    import argparse
    from vaeas_np.experiments import cli
    assert cli.parse_seeds("0,1,2") == (0, 1, 2)
    assert cli.parse_seeds("3") == (0, 1, 2)
    assert cli.parse_seeds("5,") == (5,)
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_seeds("0")
    parser = argparse.ArgumentParser()
    cli.add_reproduce_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["reproduce", "noise", "--epochs", "2", "--seeds", "1,",
                              "--out", str(tmp_path), "--threads", "1", "--quiet"])
    assert args.seeds == (1,) and args.out == str(tmp_path) and args.nll_samples == 4096
    calls = {}

    def fake_reproduce(name, out, **kw):
        calls.update(kw, name=name, out=out)
        return {"md": tmp_path / "noise.md", "csv": None, "png": None}

    monkeypatch.setattr(runner, "reproduce", fake_reproduce)
    assert cli.run_reproduce(args) == 0
    assert calls["name"] == "noise" and calls["epochs"] == 2 and calls["n_threads"] == 1
    assert calls["seeds"] == (1,) and calls["progress"] is False


def test_fig2_curves(tmp_path, fake):
    pytest.importorskip("matplotlib")
    res = _run("fig2", tmp_path)
    assert res["png"].exists() and len(fake) == 2
    with open(res["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1]
    assert {"MI_S96", "MD_S96", "MI_V96", "MI_V48"} <= set(rows[0])
    # fig3 reuses the fig2 runs
    del fake[:]
    res3 = runner.reproduce("fig3", tmp_path, epochs=1, nll_samples=4, nll_examples=10,
                            n_threads=1, progress=False, model_overrides=TINY, mi_points=50)
    assert fake == [] and res3["png"].exists()


def test_unknown_name(tmp_path):
    from vaeas_np.errors import InvalidParameterError
    with pytest.raises(InvalidParameterError):
        runner.reproduce("table9", tmp_path)


def test_interrupted_run_resumes_from_checkpoint(tmp_path, fake, monkeypatch):
    # one row; a checkpoint every epoch; the run is killed after epoch 2 of 3
    monkeypatch.setattr(paper, "TABLE2", paper.TABLE2[:1])
    orig_init = runner._Context.__init__

    def init(self, *a, **k):
        orig_init(self, *a, **k)
        self.checkpoint_every = 1
    monkeypatch.setattr(runner._Context, "__init__", init)

    class Killed(Exception):
        pass

    def kill_after_2(model, rec):
        if rec["epoch"] == 2:
            raise Killed
    orig_fit = VAE.fit
    monkeypatch.setattr(VAE, "fit", lambda self, X, callbacks=(), warm_start=False: orig_fit(
        self, X, callbacks=list(callbacks) + ([kill_after_2] if not warm_start else []),
        warm_start=warm_start))
    kw = dict(epochs=3, nll_samples=2, nll_examples=5, n_threads=1, progress=False,
              model_overrides=TINY, mi_points=20)
    with pytest.raises(Killed):
        runner.reproduce("table2", tmp_path, **kw)
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "model.h5").exists() and not (run / "metrics.json").exists()
    from vaeas_np import load_model
    assert load_model(run / "model.h5").epoch_ == 2
    runner.reproduce("table2", tmp_path, **kw)
    m = load_model(run / "model.h5")
    assert m.epoch_ == 3 and [h["epoch"] for h in m.history_] == [1, 2, 3]
