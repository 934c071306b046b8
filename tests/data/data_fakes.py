"""Small raw data files written by the tests, and a registry patch that
makes vaeas_np.data accept them (sizes and checksums of the small files)."""
from __future__ import annotations

import dataclasses
import gzip
import os
from pathlib import Path

import numpy as np

from vaeas_np.data import sources
from vaeas_np.data.fetch import sha256_file
from vaeas_np.data.readers import write_idx

SHARED_ENV = "VAEAS_NP_SHARED_DATA"


def shared_data_dir() -> Path:
    """/work/shared/data (or $VAEAS_NP_SHARED_DATA), located from the repo."""
    env = os.environ.get(SHARED_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


SIZES = {"train": 40, "valid": 8, "test": 12}


def _images(rng, n):
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def write_fake_mnist(d, seed=0):
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ntr = SIZES["train"] + SIZES["valid"]
    arrays = {
        "train-images-idx3-ubyte.gz": _images(rng, ntr),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, ntr, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": _images(rng, SIZES["test"]),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, SIZES["test"], dtype=np.uint8),
    }
    for name, a in arrays.items():
        write_idx(d / name, a)
    return arrays


def write_amat(path, x, compress=None):
    text = "\n".join(" ".join(str(int(v)) for v in row) for row in x) + "\n"
    data = text.encode()
    if compress is None:
        compress = str(path).endswith(".gz")
    Path(path).write_bytes(gzip.compress(data, mtime=0) if compress else data)


def write_fake_bmnist(d, seed=0):
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for s in ("train", "valid", "test"):
        x = (rng.random((SIZES[s], 784)) < 0.2).astype(np.uint8)
        write_amat(d / f"binarized_mnist_{s}.amat.gz", x)
        out[s] = x
    return out


def write_fake_npz(d, seed=0, n_train=40, n_test=12):
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {"train": _images(rng, n_train), "test": _images(rng, n_test),
              "train_character": rng.integers(0, 1623, n_train).astype(np.int16),
              "test_character": rng.integers(0, 1623, n_test).astype(np.int16),
              "train_alphabet": rng.integers(0, 50, n_train).astype(np.int16),
              "test_alphabet": rng.integers(0, 50, n_test).astype(np.int16)}
    np.savez_compressed(d / "omniglot28.npz", **arrays)
    return arrays


def write_fake_chardata(d, seed=0, n_train=40, n_test=12):
    """Upright images (n, 28, 28) float in [0, 1], stored as Burda does:
    784 x n, each column the Fortran-order flattening of one image."""
    import scipy.io
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    up_tr = rng.random((n_train, 28, 28))
    up_te = rng.random((n_test, 28, 28))
    data = np.stack([im.reshape(-1, order="F") for im in up_tr], axis=1)
    testdata = np.stack([im.reshape(-1, order="F") for im in up_te], axis=1)
    target = np.zeros((50, n_train))
    target[rng.integers(0, 50, n_train), np.arange(n_train)] = 1
    scipy.io.savemat(d / "chardata.mat", {"data": data, "testdata": testdata, "target": target})
    return up_tr, up_te, target.argmax(0)


def _patched_variant(v, sizes, directory):
    files = {}
    for role, rf in v.files.items():
        p = next((Path(directory) / n for n in rf.names if (Path(directory) / n).is_file()), None)
        if p is None:
            files[role] = rf
            continue
        files[role] = dataclasses.replace(rf, sha256s=(sha256_file(p),), content_sha256=None,
                                          git_blob_sha1=None, urls=(), diagnose=None)
    return dataclasses.replace(v, files=files, sizes=dict(sizes))


def install(name, directory, sizes=None, monkeypatch=None):
    """Replace the registry entry of ``name`` by one whose checksums and
    sizes are those of the small files in ``directory``."""
    sizes = dict(SIZES if sizes is None else sizes)
    spec = sources.DATASETS[name]
    new = dataclasses.replace(spec, variants=[_patched_variant(v, sizes, directory)
                                              for v in spec.variants])
    if monkeypatch is not None:
        monkeypatch.setitem(sources.DATASETS, name, new)
    else:
        sources.DATASETS[name] = new
    return new


def leftovers(home) -> list:
    """Temporary or partial files left in the data home."""
    home = Path(home)
    if not home.exists():
        return []
    return sorted(str(p.relative_to(home)) for p in home.rglob("*")
                  if p.is_file() and (".tmp" in p.name or p.name.endswith(".part")
                                      or p.name.startswith("tmp")))
