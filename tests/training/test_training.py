"""vaeas_np.training: checkpoints, metric logs, train() runs with resume and divergence."""
import csv
import json
import math

import numpy as np
import pytest

import vaeas_np
from vaeas_np.errors import InvalidParameterError, TrainingDivergedError
from vaeas_np.models.vae import VAE
from vaeas_np.training import (CheckpointCallback, MetricsLogger, RunDivergedError, read_config,
                               train)


def tiny_data(n=120, d=12, seed=0):
    return np.random.default_rng(seed).random((n, d)).astype(np.float32)


def small(cls=vaeas_np.VAE, **kw):
    params = dict(latent_dim=2, encoder_layers=(8,), decoder_layers=(8,), batch_size=16,
                  epochs=4, seed=7, n_threads=1, verbose=False)
    if cls is vaeas_np.VAEAS:
        params["classifier_layers"] = (6,)
    params.update(kw)
    return cls(**params)


def state_equal(a, b):
    sa, sb = a._state_arrays(), b._state_arrays()
    assert sa.keys() == sb.keys()
    return all(np.array_equal(sa[k], sb[k]) for k in sa)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ----------------------------------------------------------------- callbacks
def test_checkpoint_callback_writes_a_loadable_model(tmp_path):
    X = tiny_data()
    ck = CheckpointCallback(tmp_path / "ck.h5", every=2)
    model = small(epochs=3).fit(X, callbacks=[ck])
    assert ck.last_epoch == 3                       # epoch 2 by `every`, 3 as the last
    back = vaeas_np.load_model(tmp_path / "ck.h5")
    assert back.epoch_ == 3 and state_equal(back, model)
    assert [p.name for p in tmp_path.iterdir()] == ["ck.h5"]


def test_metrics_logger_appends_once_and_continues(tmp_path):
    j, c = tmp_path / "m.jsonl", tmp_path / "m.csv"
    log = MetricsLogger(j, c)
    log(None, {"epoch": 1, "loss": 2.5, "kl": float("nan")})
    log(None, {"epoch": 2, "loss": 2.0, "kl": 0.5, "extra": 1})
    log(None, {"epoch": 2, "loss": 9.0, "kl": 9.0})      # already logged: skipped
    again = MetricsLogger(j, c)                            # a new process continues the files
    again(None, {"epoch": 2, "loss": 9.0, "kl": 9.0})
    again(None, {"epoch": 3, "loss": 1.5, "kl": 0.25})
    recs = read_jsonl(j)
    assert [r["epoch"] for r in recs] == [1, 2, 3]
    assert recs[0]["kl"] == "nan" and recs[1]["extra"] == 1
    rows = list(csv.reader(c.open()))
    assert rows[0] == ["epoch", "loss", "kl"]            # header once, fixed by the first record
    assert [r[0] for r in rows[1:]] == ["1", "2", "3"]
    assert float(rows[2][1]) == 2.0


def test_metrics_logger_sync_with_a_restored_model(tmp_path):
    j, c = tmp_path / "m.jsonl", tmp_path / "m.csv"
    log = MetricsLogger(j, c)
    for e in (1, 2, 3):
        log(None, {"epoch": e, "loss": float(e)})
    with j.open("a") as fh:
        fh.write('{"epoch": 4, "lo')                     # torn by a kill
    history = [{"epoch": e, "loss": float(e)} for e in (1, 2)]
    MetricsLogger(j, c).sync(history, upto_epoch=2)      # checkpoint at epoch 2
    assert [r["epoch"] for r in read_jsonl(j)] == [1, 2]
    assert [r[0] for r in list(csv.reader(c.open()))[1:]] == ["1", "2"]
    # a checkpoint newer than the logs: missing epochs come from the history
    history = [{"epoch": e, "loss": float(e)} for e in (1, 2, 3)]
    MetricsLogger(j, c).sync(history, upto_epoch=3)
    assert [r["epoch"] for r in read_jsonl(j)] == [1, 2, 3]
    assert len(list(csv.reader(c.open()))) == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


# --------------------------------------------------------------------- train
@pytest.mark.parametrize("cls", [vaeas_np.VAE, vaeas_np.VAEAS])
def test_train_interrupted_and_resumed_equals_uninterrupted(tmp_path, cls):
    X = tiny_data()
    full = train(small(cls), X, run_dir=tmp_path / "full")
    for name in ("config.json", "checkpoint.h5", "metrics.jsonl", "metrics.csv", "model.h5"):
        assert (tmp_path / "full" / name).is_file()
    assert read_config(tmp_path / "full")["model"] == cls.__name__.lower()

    stop_at_2 = lambda model, rec: rec["epoch"] < 2       # noqa: E731  "interrupted" after 2
    run = tmp_path / "cut"
    train(small(cls), X, run_dir=run, callbacks=[stop_at_2])
    (run / "model.h5").unlink()                           # as if killed before the end
    (run / ".tmp-checkpoint.h5-x.h5").write_bytes(b"partial")   # a save torn by a kill
    resumed = train(small(cls), X, run_dir=run, resume=True)
    assert resumed.epoch_ == 4 and state_equal(resumed, full)
    assert [r["epoch"] for r in read_jsonl(run / "metrics.jsonl")] == [1, 2, 3, 4]
    assert not [p for p in run.iterdir() if p.name.startswith(".tmp")]
    final = vaeas_np.load_model(run / "model.h5")
    assert state_equal(final, full)
    # more epochs later: allowed; other parameter changes are refused
    more = train(small(cls, epochs=5), X, run_dir=run, resume=True)
    assert more.epoch_ == 5
    with pytest.raises(InvalidParameterError, match="beta"):
        train(small(cls, epochs=6, beta=2.0), X, run_dir=run, resume=True)


def test_train_refuses_an_existing_run_without_resume(tmp_path):
    X = tiny_data()
    train(small(epochs=1), X, run_dir=tmp_path)
    with pytest.raises(InvalidParameterError, match="resume"):
        train(small(epochs=1), X, run_dir=tmp_path)


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    model = train(small(epochs=2), tiny_data(), run_dir=tmp_path / "new", resume=True)
    assert model.epoch_ == 2


def test_divergence_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    X = tiny_data()
    good = small(epochs=2).fit(X)
    original = VAE._forward_backward

    def nan_at_epoch_3(self, x, eps, idx=None, **kw):
        stats = original(self, x, eps, idx, **kw)
        if self.epoch_ >= 2:
            stats["loss"] = math.nan
        return stats

    monkeypatch.setattr(VAE, "_forward_backward", nan_at_epoch_3)
    with pytest.raises(RunDivergedError, match="last good checkpoint") as info:
        train(small(epochs=5), X, run_dir=tmp_path)
    assert isinstance(info.value, TrainingDivergedError)
    assert info.value.epoch == 2 and info.value.checkpoint == tmp_path / "checkpoint.h5"
    kept = vaeas_np.load_model(tmp_path / "checkpoint.h5")
    assert kept.epoch_ == 2 and state_equal(kept, good)
    assert not (tmp_path / "model.h5").exists()
    assert [r["epoch"] for r in read_jsonl(tmp_path / "metrics.jsonl")] == [1, 2]


def test_divergence_in_the_first_epoch_has_no_checkpoint(tmp_path, monkeypatch):
    original = VAE._forward_backward

    def always_inf(self, x, eps, idx=None, **kw):
        stats = original(self, x, eps, idx, **kw)
        stats["loss"] = math.inf
        return stats

    monkeypatch.setattr(VAE, "_forward_backward", always_inf)
    with pytest.raises(RunDivergedError, match="no checkpoint") as info:
        train(small(epochs=3), tiny_data(), run_dir=tmp_path)
    assert info.value.checkpoint is None and info.value.epoch == 0
    assert not (tmp_path / "checkpoint.h5").exists() and not (tmp_path / "model.h5").exists()
