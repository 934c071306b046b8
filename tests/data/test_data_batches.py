"""iterate_minibatches: coverage, determinism, binarisation modes, HDF5
streaming under a memory bound."""
import tracemalloc

import h5py
import numpy as np
import pytest

from vaeas_np.data import iterate_minibatches
from vaeas_np.errors import InvalidInputError, InvalidParameterError


@pytest.fixture
def X():
    return np.random.default_rng(0).random((1003, 784)).astype(np.float32)


def _epoch(X, bs=128, seed=(1, 2), **kw):
    return list(iterate_minibatches(X, bs, shuffle_rng=np.random.default_rng(seed[0]),
                                    binarize_rng=np.random.default_rng(seed[1]), **kw))


def test_one_epoch_covers_every_row_once(X):
    batches = _epoch(X)
    idx = np.concatenate([i for i, _ in batches])
    assert idx.dtype == np.int64
    assert sorted(idx.tolist()) == list(range(len(X)))
    assert [len(i) for i, _ in batches] == [128] * 7 + [1003 - 7 * 128]
    for i, x in batches:
        assert x.dtype == np.float32 and x.shape == (len(i), 784)
        assert set(np.unique(x)) <= {0.0, 1.0}
    assert len(_epoch(X, drop_last=True)) == 7
    assert not np.array_equal(idx, np.arange(len(X)))  # shuffled


def test_deterministic_given_generators(X):
    a, b = _epoch(X), _epoch(X)
    for (i1, x1), (i2, x2) in zip(a, b):
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(x1, x2)
    c = _epoch(X, seed=(1, 3))
    assert not all(np.array_equal(x1, x2) for (_, x1), (_, x2) in zip(a, c))
    # a generator advances: the next epoch has another order
    g = np.random.default_rng(5)
    e1 = next(iterate_minibatches(X, 50, shuffle_rng=g, binarize=None))[0]
    e2 = next(iterate_minibatches(X, 50, shuffle_rng=g, binarize=None))[0]
    assert not np.array_equal(e1, e2)


def test_dynamic_is_bernoulli(X):
    p = np.full((20000, 8), 0.3, np.float32)
    xs = np.concatenate([x for _, x in iterate_minibatches(p, 1000, binarize_rng=np.random.default_rng(0))])
    assert abs(xs.mean() - 0.3) < 0.005
    # fresh draws for the same rows in another epoch
    g = np.random.default_rng(1)
    a = next(iterate_minibatches(X, 64, binarize_rng=g))[1]
    b = next(iterate_minibatches(X, 64, binarize_rng=g))[1]
    assert not np.array_equal(a, b)


def test_static_and_threshold(X):
    for mode in ("static", None):
        for i, x in _epoch(X, binarize=mode):
            np.testing.assert_array_equal(x, X[i])
    for i, x in _epoch(X, binarize="threshold"):
        np.testing.assert_array_equal(x, (X[i] > 0.5).astype(np.float32))
    # no shuffle: rows in order; other dtypes are converted
    Xu = (X > 0.5).astype(np.uint8)
    got = list(iterate_minibatches(Xu, 100, binarize=None))
    np.testing.assert_array_equal(np.concatenate([i for i, _ in got]), np.arange(len(X)))
    np.testing.assert_array_equal(np.concatenate([x for _, x in got]), Xu.astype(np.float32))


def test_fresh_versus_reused_buffers(X):
    fresh = list(iterate_minibatches(X, 100, binarize=None))
    assert fresh[0][1] is not fresh[1][1]
    np.testing.assert_array_equal(fresh[0][1], X[:100])  # still intact
    it = iterate_minibatches(X, 100, binarize=None, reuse_buffer=True)
    _, a = next(it)
    _, b = next(it)
    assert np.shares_memory(a, b)


def test_bad_parameters(X):
    with pytest.raises(InvalidParameterError, match="batch_size"):
        iterate_minibatches(X, 0)
    with pytest.raises(InvalidParameterError, match="binarize must be"):
        iterate_minibatches(X, 10, binarize="bernoulli")
    with pytest.raises(InvalidParameterError, match="needs binarize_rng"):
        iterate_minibatches(X, 10)
    with pytest.raises(InvalidParameterError, match="Generator"):
        iterate_minibatches(X, 10, binarize=None, shuffle_rng=np.random.RandomState(0))
    with pytest.raises(InvalidInputError, match="2-D"):
        iterate_minibatches(X[0], 10, binarize=None)


@pytest.fixture
def h5(tmp_path):
    rng = np.random.default_rng(3)
    raw = rng.integers(0, 256, (3000, 784), dtype=np.uint8)
    p = tmp_path / "s.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("u8", data=raw, chunks=(256, 784), compression="gzip")
        f.create_dataset("f32", data=raw.astype(np.float32) / 255, chunks=(100, 784))
    with h5py.File(p, "r") as f:
        yield f, raw


def test_h5py_small_enough_is_read_whole_and_matches_memory(h5):
    f, raw = h5
    a = _epoch(f["f32"])
    b = _epoch(f["f32"][()])
    for (i1, x1), (i2, x2) in zip(a, b):
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(x1, x2)


@pytest.mark.parametrize("shuffle", [False, True])
def test_streamed_under_memory_bound(h5, shuffle):
    f, raw = h5
    ds = f["f32"]
    data_bytes = ds.shape[0] * ds.shape[1] * 4          # 9.4 MB as float32
    budget = 2_000_000                                   # much smaller than the data
    X = ds[()]
    tracemalloc.start()
    try:
        seen = []
        g = np.random.default_rng(0) if shuffle else None
        for i, x in iterate_minibatches(ds, 64, shuffle_rng=g, binarize=None,
                                        max_memory_bytes=budget):
            np.testing.assert_array_equal(x, X[i])
            seen.append(i)
            del x
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # X (the reference copy) was allocated before tracing started
    assert peak < budget < data_bytes, (peak, budget)
    idx = np.concatenate(seen)
    assert sorted(idx.tolist()) == list(range(len(X)))
    assert all(len(i) == 64 for i in seen[:-1])
    if shuffle:
        assert not np.array_equal(idx, np.arange(len(X)))
    else:
        np.testing.assert_array_equal(idx, np.arange(len(X)))


def test_streamed_is_deterministic_and_dynamic(h5):
    f, raw = h5
    runs = [_epoch(f["u8"], bs=100, max_memory_bytes=3_000_000) for _ in range(2)]
    for (i1, x1), (i2, x2) in zip(*runs):
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(x1, x2)
    # h5py uint8 data read as is (the caller is responsible for [0, 1])
    with pytest.raises(InvalidParameterError, match="too small"):
        iterate_minibatches(f["f32"], 512, binarize=None, max_memory_bytes=100_000)


@pytest.mark.parametrize("binarize", ["dynamic", "static", "threshold"])
def test_float64_batches_hold_the_same_values(X, h5, binarize):
    """dtype=float64 (a float64 model's training) yields the float32 batches' values,
    in memory and streamed from HDF5."""
    for src, kw in ((X, {}), (h5[0]["f32"], dict(bs=100, max_memory_bytes=3_000_000))):
        a = _epoch(src, binarize=binarize, **kw)
        b = _epoch(src, binarize=binarize, dtype=np.float64, **kw)
        for (i1, x1), (i2, x2) in zip(a, b):
            assert x1.dtype == np.float32 and x2.dtype == np.float64
            np.testing.assert_array_equal(i1, i2)
            np.testing.assert_array_equal(x1, x2)
    with pytest.raises(InvalidParameterError, match="dtype"):
        iterate_minibatches(X, 10, binarize=None, dtype=np.int32)
