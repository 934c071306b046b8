"""The real files in ../shared/data (skipped when absent): full stores
built through the CLI hook, pixel sums against the raw files, and corrupted
copies of real files refused with specific messages."""
import argparse
import gzip
import os

import numpy as np
import pytest

import data_fakes
from conftest import need
from vaeas_np.cli_data import add_data_parser, run_data
from vaeas_np.data import load_dataset, prepare, readers
from vaeas_np.errors import ChecksumMismatchError

SHARED = data_fakes.shared_data_dir()
MNIST = SHARED / "mnist"
BMNIST = SHARED / "binarized_mnist"
OMNI = SHARED / "omniglot"


def cli(argv):
    parser = argparse.ArgumentParser(prog="vaeas-np")
    add_data_parser(parser.add_subparsers(dest="command", required=True))
    return run_data(parser.parse_args(argv))


@pytest.fixture(scope="module")
def real_home(tmp_path_factory):
    return tmp_path_factory.mktemp("real_home")


@pytest.fixture
def at_real_home(real_home, monkeypatch):
    monkeypatch.setenv("VAEAS_NP_DATA", str(real_home))
    return real_home


def _sum(a):
    return int(np.asarray(a).sum(dtype=np.int64))


def test_mnist_prepare_cli_and_pixel_sums(at_real_home, capsys):
    need(MNIST / "train-images-idx3-ubyte.gz")
    assert cli(["data", "prepare", "mnist", "--from", str(MNIST)]) == 0
    assert "train 55,000, valid 5,000, test 10,000" in capsys.readouterr().out
    ds = load_dataset("mnist", download=False)
    assert ds.path == at_real_home / "mnist.h5"
    tr = readers.read_idx_images(MNIST / "train-images-idx3-ubyte.gz", n=60000)
    te = readers.read_idx_images(MNIST / "t10k-images-idx3-ubyte.gz", n=10000)
    assert ds.train.shape == (55000, 784) and ds.valid.shape == (5000, 784) and ds.test.shape == (10000, 784)
    assert _sum(ds.raw("train")) == _sum(tr[:55000])
    assert _sum(ds.raw("valid")) == _sum(tr[55000:])
    assert _sum(ds.raw("test")) == _sum(te)
    np.testing.assert_array_equal(ds.raw("test"), te.reshape(10000, 784))
    assert ds.train.dtype == np.float32 and 0 <= ds.train.min() and ds.train.max() == 1
    labels = readers.read_idx_labels(MNIST / "train-labels-idx1-ubyte.gz")
    np.testing.assert_array_equal(ds.valid_labels, labels[55000:])
    assert ds.test_labels.shape == (10000,)
    tb = ds.test_binary
    assert set(np.unique(tb)) == {0.0, 1.0}
    assert abs(tb.mean() - ds.test.mean()) < 0.002
    assert cli(["data", "info", "mnist"]) == 0
    assert "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609" in capsys.readouterr().out


def test_mnist_epoch_of_minibatches(at_real_home):
    need(MNIST / "train-images-idx3-ubyte.gz")
    ds = load_dataset("mnist", data_dir=MNIST, download=False)
    from vaeas_np.data import iterate_minibatches
    n = 0
    for idx, x in iterate_minibatches(ds.train, 128, shuffle_rng=np.random.default_rng(0),
                                      binarize_rng=np.random.default_rng(1)):
        n += len(idx)
    assert n == 55000


def test_binarized_mnist_real(at_real_home):
    need(BMNIST / "binarized_mnist_train.amat.gz")
    path = prepare("binarized_mnist", BMNIST)
    ds = load_dataset("binarized_mnist", download=False)
    assert ds.path == path
    for split, n in (("train", 50000), ("valid", 10000), ("test", 10000)):
        x = readers.read_amat(BMNIST / f"binarized_mnist_{split}.amat.gz", n=n)
        got = ds.raw(split)
        assert got.shape == (n, 784) and got.dtype == np.uint8
        assert _sum(got) == _sum(x)
    np.testing.assert_array_equal(ds.test_binary, ds.test)


def test_omniglot_substitute_real(at_real_home):
    need(OMNI / "omniglot28.npz")
    prepare("omniglot", OMNI)
    ds = load_dataset("omniglot", download=False)
    assert ds.title == "Omniglot (omniglot28 substitute)" and ds.is_substitute
    with np.load(OMNI / "omniglot28.npz", allow_pickle=False) as z:
        tr, te = z["train"], z["test"]
    assert ds.train.shape == (24345, 784) and ds.valid.shape == (1345, 784) and ds.test.shape == (8115, 784)
    assert _sum(ds.raw("train")) == _sum(tr) and _sum(ds.raw("test")) == _sum(te)
    np.testing.assert_array_equal(ds.valid, ds.train[-1345:])
    assert abs(float(ds.train.mean()) - 0.0805) < 0.001


def _copy_set(src, dst, names):
    dst.mkdir(parents=True, exist_ok=True)
    for n in names:
        os.symlink(src / n, dst / n)


MNIST_FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def _truncate(b):
    return b[: len(b) // 2]


def _flip(b):
    b = bytearray(b)
    for i in range(len(b) // 3, len(b) // 3 + 40, 4):
        b[i] ^= 0xFF
    return bytes(b)


def _wrong_header(b):
    raw = bytearray(gzip.decompress(b))
    raw[2] = 0x0D                       # type code "float" instead of "ubyte"
    raw[3] = 0x02
    return gzip.compress(bytes(raw))


@pytest.mark.parametrize("corrupt, victim, message", [
    (_truncate, "t10k-images-idx3-ubyte.gz", "truncated: its gzip stream ends"),
    (_flip, "t10k-labels-idx1-ubyte.gz", "damaged gzip file"),
    (_wrong_header, "t10k-labels-idx1-ubyte.gz", "2 dimensions in its IDX header, expected 1"),
    (lambda b: gzip.compress(b"\x08\x03" + gzip.decompress(b)[2:]), "t10k-images-idx3-ubyte.gz",
     "wrong magic number 0x0803"),
])
def test_corrupted_real_mnist(tmp_path, home, corrupt, victim, message):
    need(MNIST / victim)
    d = tmp_path / "bad"
    _copy_set(MNIST, d, [n for n in MNIST_FILES if n != victim])
    (d / victim).write_bytes(corrupt((MNIST / victim).read_bytes()))
    with pytest.raises(ChecksumMismatchError) as e:
        prepare("mnist", d)
    msg = str(e.value)
    assert victim in msg and "refused" in msg and message in msg, msg
    assert not home.exists() or sorted(p.name for p in home.iterdir()) in ([], [".locks"])
    assert data_fakes.leftovers(home) == []


def test_corrupted_real_amat_and_npz(tmp_path, home):
    need(BMNIST / "binarized_mnist_test.amat.gz")
    need(OMNI / "omniglot28.npz")
    d = tmp_path / "bad"
    _copy_set(BMNIST, d, ["binarized_mnist_train.amat.gz", "binarized_mnist_valid.amat.gz"])
    raw = gzip.decompress((BMNIST / "binarized_mnist_test.amat.gz").read_bytes())
    (d / "binarized_mnist_test.amat.gz").write_bytes(gzip.compress(raw[: 1568 * 9000]))
    with pytest.raises(ChecksumMismatchError, match="holds 9000 rows, expected 10000"):
        prepare("binarized_mnist", d)
    (d / "omniglot28.npz").write_bytes(_truncate((OMNI / "omniglot28.npz").read_bytes()))
    with pytest.raises(ChecksumMismatchError, match="cannot be read as an .npz"):
        prepare("omniglot", d)
    assert data_fakes.leftovers(home) == []
    assert not any(home.glob("*.h5")) if home.exists() else True
