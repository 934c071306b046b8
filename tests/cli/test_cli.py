"""The vaeas-np command line, end to end on tiny data in temporary directories."""
import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import vaeas_np
from vaeas_np.cli import main
from vaeas_np.models.vae import VAE

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--latent-dim", "3", "--encoder-layers", "16", "--decoder-layers", "16",
        "--classifier-layers", "8", "--batch-size", "32", "--seed", "5", "--threads", "1",
        "--quiet"]


def write_h5(path, **arrays):
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
    return path


@pytest.fixture
def data_file(tmp_path):
    rng = np.random.default_rng(0)
    return write_h5(tmp_path / "d.h5", X=rng.random((200, 16)).astype(np.float32),
                    T=rng.random((50, 16)).astype(np.float32),
                    big=rng.random((20, 16)) * 3)


def env():
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "vaeas_np.cli", *map(str, args)], cwd=kw.pop(
        "cwd", None), env=env(), capture_output=True, text=True, timeout=120, **kw)


def state_equal(a, b):
    sa, sb = a._state_arrays(), b._state_arrays()
    return sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa)


def jsonl_epochs(path):
    return [json.loads(line)["epoch"] for line in Path(path).read_text().splitlines()
            if line.strip()]


# --------------------------------------------------------------------- help
@pytest.mark.parametrize("argv", [[], ["train"], ["evaluate"], ["data"], ["data", "prepare"],
                                  ["data", "info"]])
def test_help_everywhere(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    assert "usage: vaeas-np" in capsys.readouterr().out


def test_reproduce_registered_only_when_available(monkeypatch, capsys):
    import types
    monkeypatch.setitem(sys.modules, "vaeas_np.experiments.cli", None)   # import fails
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "reproduce" not in capsys.readouterr().out
    fake = types.ModuleType("vaeas_np.experiments.cli")
    fake.add_reproduce_parser = lambda sub: sub.add_parser("reproduce", help="the paper")
    fake.run_reproduce = lambda args: 0
    monkeypatch.setitem(sys.modules, "vaeas_np.experiments.cli", fake)
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "reproduce" in capsys.readouterr().out
    assert main(["reproduce"]) == 0


# ------------------------------------------------------------- end to end
def test_train_then_evaluate(tmp_path, data_file, capsys):
    run = tmp_path / "run"
    rc = main(["train", "--data", data_file, "--data-key", "X", "--epochs", "2",
               "--run-dir", run, *TINY])
    out = capsys.readouterr().out
    assert rc == 0 and "model.h5" in out
    for name in ("config.json", "checkpoint.h5", "metrics.jsonl", "metrics.csv", "model.h5"):
        assert (run / name).is_file(), name
    assert jsonl_epochs(run / "metrics.jsonl") == [1, 2]
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"] and {"loss", "kl", "mi"} <= set(rows[0])
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "vaeas" and config["params"]["latent_dim"] == 3
    model = vaeas_np.load_model(run / "model.h5")
    assert type(model) is vaeas_np.VAEAS and model.epoch_ == 2

    rc = main(["evaluate", run / "model.h5", "--data", data_file, "--data-key", "X",
               "--nll-samples", "8", "--nll-examples", "20"])
    out = capsys.readouterr().out
    assert rc == 0
    for name in ("NLL_test", "neg_ELBO_test", "KL_test", "AU", "NLL_train", "KL_train", "MI",
                 "MI_entropy", "MI_fano", "fano_bound", "MD", "SC"):
        assert f"| {name} |" in out, name
    # --json, the data taken from the run's config.json, a run directory as MODEL
    rc = main(["evaluate", run, "--nll-samples", "4", "--no-entropy", "--json"])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and res["class"] == "VAEAS" and res["nll_examples"] == 200
    m = res["metrics"]
    assert "MI_entropy" not in m and isinstance(m["AU"], int) and 0 <= m["AU"] <= 3
    assert all(math.isfinite(v) for v in m.values())
    assert m["NLL_test"] <= m["neg_ELBO_test"] + 1.0
    # an evaluation set that is not the training set: classifier metrics are skipped
    rc = main(["evaluate", run, "--data", data_file, "--data-key", "T", "--nll-samples", "4",
               "--json"])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and "MI" not in res["metrics"] and res["notes"]


def test_config_file_and_flag_override(tmp_path, data_file, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('model = "vae"\nlatent_dim = 2\nencoder_layers = [8]\n'
                   'decoder_layers = [8]\nepochs = 3\nbatch_size = 50\nseed = 1\n')
    rc = main(["train", "--config", cfg, "--data", data_file, "--epochs", "1", "--quiet",
               "--run-dir", tmp_path / "r"])
    assert rc == 0
    model = vaeas_np.load_model(tmp_path / "r" / "model.h5")
    assert type(model) is vaeas_np.VAE and model.latent_dim == 2 and model.epoch_ == 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"latent_dims": 3}')
    assert main(["train", "--config", bad, "--data", data_file, "--run-dir",
                 tmp_path / "r2"]) == 1
    assert "latent_dims" in capsys.readouterr().err


# ------------------------------------------------------------------ errors
def test_bad_input_exits_1_with_one_line(tmp_path, data_file):
    p = cli("train", "--data", data_file, "--data-key", "big", "--epochs", "1",
            "--run-dir", tmp_path / "r", *TINY)
    assert p.returncode == 1, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "[0, 1]" in lines[0]
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize("argv, needle", [
    (["train", "--data", "{tmp}/missing.h5"], "does not exist"),
    (["train", "--data", "{data}", "--data-key", "nope"], "no dataset 'nope'"),
    (["train", "--data", "{data}", "--model", "vae", "--alpha", "2"], "only applies"),
    (["train", "--data", "{data}", "--encoder-layers", "5,x"], "encoder_layers"),
    (["train", "--resume"], "--run-dir"),
    (["evaluate", "{tmp}/missing.h5", "--data", "{data}"], "does not exist"),
])
def test_errors_exit_1(tmp_path, data_file, capsys, argv, needle):
    argv = [a.format(tmp=tmp_path, data=data_file) for a in argv]
    assert main([*argv, "--quiet"] if argv[0] == "train" else argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and "Traceback" not in err


# -------------------------------------------------------------- divergence
def test_divergence_exits_2_and_keeps_the_checkpoint(tmp_path, data_file, capsys, monkeypatch):
    args = ["train", "--data", data_file, *TINY]          # VAEAS (inherits the patch)
    assert main([*args, "--epochs", "2", "--run-dir", tmp_path / "ref"]) == 0
    original = VAE._forward_backward

    def nan_at_epoch_3(self, x, eps, idx=None, **kw):
        stats = original(self, x, eps, idx, **kw)
        if self.epoch_ >= 2:
            stats["loss"] = float("nan")
        return stats

    monkeypatch.setattr(VAE, "_forward_backward", nan_at_epoch_3)
    run = tmp_path / "run"
    capsys.readouterr()
    assert main([*args, "--epochs", "5", "--run-dir", run]) == 2
    err = capsys.readouterr().err
    assert "diverged" in err and "last good checkpoint" in err and "epoch 2" in err
    assert "Traceback" not in err
    kept = vaeas_np.load_model(run / "checkpoint.h5")
    assert kept.epoch_ == 2
    assert state_equal(kept, vaeas_np.load_model(tmp_path / "ref" / "model.h5"))
    assert not (run / "model.h5").exists()
    assert jsonl_epochs(run / "metrics.jsonl") == [1, 2]


# --------------------------------------------------------- kill and resume
def test_sigkill_then_resume_is_bit_identical(tmp_path):
    rng = np.random.default_rng(1)
    data = write_h5(tmp_path / "k.h5", X=rng.random((4000, 200)).astype(np.float32))
    epochs = 10
    args = ["train", "--data", data, "--epochs", epochs, "--latent-dim", "4",
            "--encoder-layers", "128", "--decoder-layers", "128", "--classifier-layers", "16",
            "--batch-size", "8", "--seed", "11", "--threads", "1", "--quiet"]
    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "vaeas_np.cli", *map(str, args),
                             "--run-dir", str(run)], env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        # wait for the first checkpoint and two logged epochs, then kill mid-training
        while time.monotonic() < deadline and proc.poll() is None:
            if (run / "checkpoint.h5").exists() and (run / "metrics.jsonl").exists() and len(
                    jsonl_epochs(run / "metrics.jsonl")) >= 2:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the training finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not (run / "model.h5").exists()
    at_kill = vaeas_np.load_model(run / "checkpoint.h5").epoch_
    assert 1 <= at_kill < epochs

    p = cli(*args, "--run-dir", run, "--resume")
    assert p.returncode == 0, p.stderr
    assert main([*args, "--run-dir", tmp_path / "straight"]) == 0     # uninterrupted, same seed

    resumed = vaeas_np.load_model(run / "model.h5")
    straight = vaeas_np.load_model(tmp_path / "straight" / "model.h5")
    assert resumed.epoch_ == straight.epoch_ == epochs
    for k, v in straight._state_arrays().items():
        assert np.array_equal(resumed._state_arrays()[k], v), k
    drop = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert drop(resumed.history_) == drop(straight.history_)
    assert jsonl_epochs(run / "metrics.jsonl") == list(range(1, epochs + 1))
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == list(range(1, epochs + 1))
    assert not [p.name for p in run.iterdir() if p.name.startswith(".tmp")]
