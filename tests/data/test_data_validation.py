"""check_array and load_array on user data."""
import h5py
import numpy as np
import pytest

from vaeas_np.data import check_array, load_array
from vaeas_np.errors import CorruptFileError, DataFileMissingError, InvalidInputError, StoreError


def test_valid_inputs():
    X = check_array([[0, 0.5], [1, 0.25]])
    assert X.dtype == np.float32 and X.flags.c_contiguous and X.shape == (2, 2)
    Y = np.asfortranarray(np.random.default_rng(0).random((5, 3)))
    out = check_array(Y, dtype=np.float64)
    assert out.flags.c_contiguous and out.dtype == np.float64
    np.testing.assert_array_equal(out, Y)
    assert check_array(np.ones((2, 3), bool)).dtype == np.float32
    assert check_array(np.ones((2, 3), np.uint8)).max() == 1


def test_nan_and_inf():
    X = np.zeros((10, 20))
    X[5, 17] = np.nan
    X[7, 1] = np.nan
    X[8, 2] = np.nan
    with pytest.raises(InvalidInputError, match=r"X contains 3 NaN values \(first at row 5, column 17\); clean or impute"):
        check_array(X)
    X = np.zeros((4, 4), np.float32)
    X[2, 3] = np.inf
    with pytest.raises(InvalidInputError, match=r"1 infinite value \(first at row 2, column 3\)"):
        check_array(X, name="data")


def test_out_of_range():
    X = np.zeros((3, 4))
    X[0, 0], X[1, 1] = -0.2, 255.0
    with pytest.raises(InvalidInputError, match=r"outside \[0, 1\] \(min -0.2, max 255\)"):
        check_array(X)
    with pytest.raises(InvalidInputError, match="divide uint8 images by 255"):
        check_array(np.full((2, 2), 200, np.uint8))


@pytest.mark.parametrize("bad, msg", [
    (np.zeros(5), "must be 2-D.*reshape\\(1, -1\\)"),
    (np.zeros((3, 28, 28)), "flatten images.*\\(3, 784\\)"),
    (np.zeros((0, 4)), "at least one sample"),
    (np.array([["a", "b"]]), "non-numeric"),
    (np.array([[1 + 1j]]), "complex"),
    ([[0.1, 0.2], [0.3]], "cannot be converted|non-numeric"),
])
def test_bad_shapes_and_types(bad, msg):
    with pytest.raises(InvalidInputError, match=msg):
        check_array(bad)


def test_h5py_dataset_and_load_array(tmp_path):
    p = tmp_path / "user.h5"
    X = np.random.default_rng(0).random((6, 4))
    with h5py.File(p, "w") as f:
        f["X"] = X
        f.create_group("g")["bad"] = np.full((2, 2), np.nan)
    with h5py.File(p, "r") as f:
        np.testing.assert_allclose(check_array(f["X"]), X.astype(np.float32))
    np.testing.assert_allclose(load_array(p), X.astype(np.float32))
    with pytest.raises(StoreError, match=r"no dataset 'images' \(datasets found: \['X', 'g/bad'\]\)"):
        load_array(p, dataset="images")
    with pytest.raises(InvalidInputError, match="NaN"):
        load_array(p, dataset="g/bad")
    with pytest.raises(DataFileMissingError, match="does not exist"):
        load_array(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(CorruptFileError, match="cannot be opened as an HDF5 file"):
        load_array(tmp_path / "text.h5")
