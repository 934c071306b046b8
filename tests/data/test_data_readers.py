"""Readers: IDX (with a hypothesis round trip), .amat, chardata.mat, omniglot28.npz."""
import gzip

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from vaeas_np.data import readers
from vaeas_np.errors import CorruptFileError, DataFileMissingError

import data_fakes

IDX_DTYPES = [np.uint8, np.int8, np.dtype(">i2"), np.dtype("<i4"), np.float32, np.float64]


@settings(deadline=None, max_examples=40)
@given(data=st.data(), compress=st.booleans())
def test_idx_round_trip(tmp_path_factory, data, compress):
    dtype = data.draw(st.sampled_from(IDX_DTYPES))
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6))
    arr = data.draw(hnp.arrays(dtype, shape, elements={"allow_nan": False}
                               if np.dtype(dtype).kind == "f" else None))
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if compress else "a.idx")
    readers.write_idx(path, arr)
    back = readers.read_idx(path)
    assert back.shape == arr.shape
    assert back.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(back, arr)


def _idx_images(tmp_path, n=5, rows=28, compress=True):
    a = np.arange(n * rows * 28, dtype=np.uint64).astype(np.uint8).reshape(n, rows, 28)
    p = tmp_path / ("img.gz" if compress else "img")
    readers.write_idx(p, a)
    return p, a


def test_idx_images_and_labels(tmp_path):
    p, a = _idx_images(tmp_path)
    np.testing.assert_array_equal(readers.read_idx_images(p, n=5), a)
    lab = np.array([0, 9, 3], np.uint8)
    readers.write_idx(tmp_path / "lab", lab)
    np.testing.assert_array_equal(readers.read_idx_labels(tmp_path / "lab", n=3), lab)


def test_missing_file(tmp_path):
    with pytest.raises(DataFileMissingError, match="does not exist"):
        readers.read_idx(tmp_path / "nope.gz")


def test_truncated_gzip(tmp_path):
    p, _ = _idx_images(tmp_path, n=50)
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptFileError, match="truncated"):
        readers.read_idx_images(p)


def test_flipped_bytes_gzip(tmp_path):
    p, _ = _idx_images(tmp_path, n=50)
    raw = bytearray(p.read_bytes())
    for i in range(20, len(raw) - 10, 7):
        raw[i] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match="damaged gzip|truncated"):
        readers.read_idx_images(p)


def test_wrong_magic(tmp_path):
    p, a = _idx_images(tmp_path, compress=False)
    raw = bytearray(p.read_bytes())
    raw[0:4] = b"PK\x03\x04"
    p.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match="wrong magic number"):
        readers.read_idx_images(p)
    # also under gzip
    g = tmp_path / "x.gz"
    g.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(CorruptFileError, match="wrong magic number"):
        readers.read_idx(g)


def test_wrong_length(tmp_path):
    p, _ = _idx_images(tmp_path, compress=False)
    raw = p.read_bytes()
    p.write_bytes(raw[:-10])
    with pytest.raises(CorruptFileError, match="truncated.*announces shape"):
        readers.read_idx(p)
    p.write_bytes(raw + b"\0\0")
    with pytest.raises(CorruptFileError, match="too long"):
        readers.read_idx(p)


def test_wrong_shape_and_count(tmp_path):
    p, _ = _idx_images(tmp_path, rows=27)
    with pytest.raises(CorruptFileError, match="27x28"):
        readers.read_idx_images(p)
    p, _ = _idx_images(tmp_path, n=5)
    with pytest.raises(CorruptFileError, match="holds 5 images, expected 6"):
        readers.read_idx_images(p, n=6)
    with pytest.raises(CorruptFileError, match="dimensions"):
        readers.read_idx_labels(p)
    readers.write_idx(tmp_path / "lab", np.array([1, 12], np.uint8))
    with pytest.raises(CorruptFileError, match="label 12"):
        readers.read_idx_labels(tmp_path / "lab")


@pytest.mark.parametrize("name", ["b.amat", "b.amat.gz"])
def test_amat_round_trip(tmp_path, name):
    x = (np.random.default_rng(0).random((7, 784)) < 0.3).astype(np.uint8)
    data_fakes.write_amat(tmp_path / name, x)
    np.testing.assert_array_equal(readers.read_amat(tmp_path / name, n=7), x)


def test_amat_fallback_parser(tmp_path):
    x = (np.random.default_rng(1).random((3, 784)) < 0.5).astype(np.uint8)
    text = "\r\n".join("  ".join(str(v) for v in r) for r in x) + "\r\n"
    (tmp_path / "c.amat").write_text(text)
    np.testing.assert_array_equal(readers.read_amat(tmp_path / "c.amat"), x)


def test_amat_errors(tmp_path):
    x = np.zeros((3, 784), np.uint8)
    data_fakes.write_amat(tmp_path / "a.amat", x)
    with pytest.raises(CorruptFileError, match="holds 3 rows, expected 4"):
        readers.read_amat(tmp_path / "a.amat", n=4)
    data_fakes.write_amat(tmp_path / "w.amat", np.zeros((3, 780), np.uint8))
    with pytest.raises(CorruptFileError, match="780 values per line"):
        readers.read_amat(tmp_path / "w.amat")
    (tmp_path / "v.amat").write_text("0.5 " * 783 + "1\n")
    with pytest.raises(CorruptFileError, match="other than 0 and 1"):
        readers.read_amat(tmp_path / "v.amat")
    (tmp_path / "e.amat").write_text("")
    with pytest.raises(CorruptFileError, match="empty"):
        readers.read_amat(tmp_path / "e.amat")


def test_chardata_fortran_order(tmp_path):
    up_tr, up_te, labels = data_fakes.write_fake_chardata(tmp_path, n_train=6, n_test=4)
    out = readers.read_chardata_mat(tmp_path / "chardata.mat", n_train=6, n_test=4)
    np.testing.assert_array_equal(out["train"], up_tr.reshape(6, 784))
    np.testing.assert_array_equal(out["test"], up_te.reshape(4, 784))
    np.testing.assert_array_equal(out["train_labels"], labels)
    assert out["train"].dtype == np.float64  # the source's own dtype


def test_chardata_errors(tmp_path):
    import scipy.io
    scipy.io.savemat(tmp_path / "a.mat", {"data": np.zeros((784, 3))})
    with pytest.raises(CorruptFileError, match="no variable 'testdata'"):
        readers.read_chardata_mat(tmp_path / "a.mat")
    scipy.io.savemat(tmp_path / "b.mat", {"data": np.zeros((700, 3)), "testdata": np.zeros((784, 2))})
    with pytest.raises(CorruptFileError, match=r"shape \(700, 3\)"):
        readers.read_chardata_mat(tmp_path / "b.mat")
    scipy.io.savemat(tmp_path / "c.mat", {"data": np.full((784, 3), 2.0), "testdata": np.zeros((784, 2))})
    with pytest.raises(CorruptFileError, match="outside"):
        readers.read_chardata_mat(tmp_path / "c.mat")
    (tmp_path / "d.mat").write_bytes(b"garbage" * 30)
    with pytest.raises(CorruptFileError):
        readers.read_chardata_mat(tmp_path / "d.mat")


def test_npz(tmp_path):
    arrays = data_fakes.write_fake_npz(tmp_path, n_train=5, n_test=3)
    out = readers.read_omniglot28_npz(tmp_path / "omniglot28.npz", n_train=5, n_test=3)
    np.testing.assert_array_equal(out["train"], arrays["train"].reshape(5, 784))
    np.testing.assert_array_equal(out["test_labels"], arrays["test_character"])
    with pytest.raises(CorruptFileError, match="holds|expected uint8 \\(4"):
        readers.read_omniglot28_npz(tmp_path / "omniglot28.npz", n_train=4)
    np.savez(tmp_path / "f.npz", train=np.zeros((2, 28, 28), np.float32), test=np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(CorruptFileError, match="float32"):
        readers.read_omniglot28_npz(tmp_path / "f.npz")
    np.savez(tmp_path / "g.npz", train=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(CorruptFileError, match="no array 'test'"):
        readers.read_omniglot28_npz(tmp_path / "g.npz")
    raw = (tmp_path / "omniglot28.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptFileError, match="cannot be read as an .npz"):
        readers.read_omniglot28_npz(tmp_path / "t.npz")
