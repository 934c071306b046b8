"""Acquisition and the HDF5 store on small files the tests write: layout,
atomicity, locking, versioning, checksums and every failure path."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

import data_fakes
from vaeas_np.data import FORMAT_VERSION, Dataset, load_dataset, prepare, store_path
from vaeas_np.data import store as store_mod
from vaeas_np.errors import (CacheNotWritableError, ChecksumMismatchError, CorruptFileError,
                             DataFileMissingError, StoreError)

S = data_fakes.SIZES


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    raw = tmp_path / "raw_mnist"
    arrays = data_fakes.write_fake_mnist(raw)
    data_fakes.install("mnist", raw, monkeypatch=monkeypatch)
    return raw, arrays


def listing(d):
    return sorted((str(p.relative_to(d)), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in Path(d).rglob("*"))


def assert_clean(home):
    assert data_fakes.leftovers(home) == []


def test_store_layout_and_values(fake_mnist, home):
    raw, arrays = fake_mnist
    before = listing(raw)
    ds = load_dataset("mnist", data_dir=raw, download=False)
    assert listing(raw) == before          # data_dir is never written
    assert ds.path == home / "mnist.h5" == store_path("mnist")
    imgs = arrays["train-images-idx3-ubyte.gz"].reshape(-1, 784)
    labs = arrays["train-labels-idx1-ubyte.gz"]
    ntr = S["train"]
    np.testing.assert_array_equal(ds.raw("train"), imgs[:ntr])
    np.testing.assert_array_equal(ds.raw("valid"), imgs[ntr:])
    np.testing.assert_array_equal(ds.raw("test"), arrays["t10k-images-idx3-ubyte.gz"].reshape(-1, 784))
    assert ds.raw("train").dtype == np.uint8
    np.testing.assert_allclose(ds.train, imgs[:ntr] / 255.0, rtol=1e-6)
    assert ds.train.dtype == np.float32 and ds.train.shape == (ntr, 784)
    np.testing.assert_array_equal(ds.train_labels, labs[:ntr])
    np.testing.assert_array_equal(ds.test_labels, arrays["t10k-labels-idx1-ubyte.gz"])
    assert ds.image_shape == (28, 28) and ds.name == "mnist" and ds.title == "MNIST"
    # fixed binarisation: binary, seeded, recorded
    tb = ds.test_binary
    assert tb.dtype == np.float32 and set(np.unique(tb)) <= {0.0, 1.0}
    expect = store_mod.binarize_fixed(ds.raw("test"), 255.0, ds.binarize_seed, 1)
    np.testing.assert_array_equal(tb, expect)
    with h5py.File(ds.path) as f:
        assert f.attrs["format_version"] == FORMAT_VERSION
        assert json.loads(f.attrs["split_sizes"]) == S
        assert f["test_binary"].attrs["binarize_seed"] == ds.binarize_seed
        files = json.loads(f.attrs["source_files"])
        assert set(files) == set(arrays)
        for name, sha in files.items():
            assert sha == data_fakes.sha256_file(raw / name)
        assert f["train"].compression == "gzip" and f["train"].chunks is not None
    # a second load reads the store without the raw files
    ds2 = load_dataset("mnist", download=False)
    np.testing.assert_array_equal(ds2.test_binary, tb)
    assert_clean(home)


def test_lazy_split(fake_mnist, home):
    raw, _ = fake_mnist
    ds = load_dataset("mnist", data_dir=raw, download=False)
    with ds.split("train") as lz:
        assert len(lz) == S["train"] and lz.dtype == np.float32
        np.testing.assert_array_equal(lz[3:7], ds.train[3:7])
        np.testing.assert_array_equal(lz[np.array([9, 2, 2, 5])], ds.train[[9, 2, 2, 5]])


def test_raw_files_in_data_home_are_found(fake_mnist, home):
    raw, _ = fake_mnist
    dest = home / "raw" / "mnist"
    dest.mkdir(parents=True)
    for p in raw.iterdir():
        (dest / p.name).write_bytes(p.read_bytes())
    ds = load_dataset("mnist", download=False)
    assert ds.split_sizes == S


def test_missing_files_offline_message(home, tmp_path, monkeypatch):
    from vaeas_np.data import fetch
    monkeypatch.setattr(fetch, "DOWNLOAD_RETRIES", 1)
    empty = tmp_path / "empty"
    empty.mkdir()
    for download in (False, True):
        with pytest.raises(DataFileMissingError) as e:
            load_dataset("mnist", data_dir=empty, download=download)
        msg = str(e.value)
        assert "train-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg
        assert "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609" in msg
        assert "https://" in msg and str(empty) in msg and "Put them in" in msg
        assert "vaeas-np data prepare mnist --from DIR" in msg
    assert "network disabled" in msg          # the download was attempted
    assert not (home / "mnist.h5").exists()
    assert_clean(home)


def test_offline_omniglot_message_says_no_public_url(tmp_path, monkeypatch):
    from vaeas_np.data import fetch
    monkeypatch.setattr(fetch, "DOWNLOAD_RETRIES", 1)
    with pytest.raises(DataFileMissingError) as e:
        load_dataset("omniglot", data_dir=tmp_path, download=True)
    msg = str(e.value)
    assert "chardata.mat" in msg and "016a3536ffe5e1d38e42563a18d7a78bfaf643ec" in msg
    assert "omniglot28.npz" in msg and "no public URL" in msg
    assert "d029fa94166fd766523e673f80bfc9e9c6711e6fb5199b8f7d1799fc0f71c677" in msg


def test_checksum_mismatch_is_refused(fake_mnist, home):
    raw, _ = fake_mnist
    p = raw / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(p.read_bytes())
    data[-12] ^= 0x01
    p.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError, match="does not have the registered checksum.*refused"):
        load_dataset("mnist", data_dir=raw, download=False)
    assert not (home / "mnist.h5").exists()
    assert_clean(home)


def test_corrupt_file_with_patched_checksum_fails_cleanly(fake_mnist, home, monkeypatch):
    """A file that passes its checksum but cannot be parsed (here: registry
    patched to its bytes) raises CorruptFileError and leaves nothing."""
    raw, _ = fake_mnist
    p = raw / "train-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:200])
    data_fakes.install("mnist", raw, monkeypatch=monkeypatch)
    with pytest.raises(CorruptFileError, match="truncated"):
        prepare("mnist", raw)
    assert not (home / "mnist.h5").exists()
    assert_clean(home)


def test_damaged_store_is_refused(fake_mnist, home):
    raw, _ = fake_mnist
    path = prepare("mnist", raw)
    with h5py.File(path, "r+") as f:
        f["test"][0, 0] = f["test"][0, 0] ^ 1
    with pytest.raises(StoreError, match="'test' does not match its recorded checksum"):
        load_dataset("mnist", download=False)
    # prepare(force=True) rebuilds it
    prepare("mnist", raw, force=True)
    load_dataset("mnist", download=False)
    with h5py.File(path, "r+") as f:
        del f["test_binary"]
    with pytest.raises(StoreError, match="lacks dataset 'test_binary'"):
        load_dataset("mnist", download=False)
    (home / "mnist.h5").write_bytes(b"not an hdf5 file")
    with pytest.raises(StoreError, match="cannot be opened"):
        load_dataset("mnist", download=False)
    assert_clean(home)


def test_older_format_version_is_rebuilt(fake_mnist, home):
    raw, _ = fake_mnist
    path = prepare("mnist", raw)
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = FORMAT_VERSION - 1
    ds = load_dataset("mnist", data_dir=raw, download=False)
    assert ds.format_version == FORMAT_VERSION
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = FORMAT_VERSION - 1
    with pytest.raises(DataFileMissingError):   # needs the raw files to rebuild
        load_dataset("mnist", download=False)


def test_prepare_keeps_a_good_store(fake_mnist, home):
    raw, _ = fake_mnist
    path = prepare("mnist", raw)
    mtime = path.stat().st_mtime_ns
    assert prepare("mnist", raw) == path
    assert path.stat().st_mtime_ns == mtime
    prepare("mnist", raw, force=True)
    assert path.stat().st_mtime_ns != mtime


def test_unwritable_cache(fake_mnist, tmp_path, monkeypatch):
    raw, _ = fake_mnist
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    monkeypatch.setenv("VAEAS_NP_DATA", str(blocker / "home"))
    with pytest.raises(CacheNotWritableError, match="cannot be written.*VAEAS_NP_DATA"):
        load_dataset("mnist", data_dir=raw, download=False)
    if hasattr(os, "geteuid") and os.geteuid() != 0:   # root ignores permissions
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        monkeypatch.setenv("VAEAS_NP_DATA", str(ro))
        try:
            with pytest.raises(CacheNotWritableError):
                load_dataset("mnist", data_dir=raw, download=False)
        finally:
            ro.chmod(0o700)


def test_write_failure_leaves_nothing(fake_mnist, home, monkeypatch):
    raw, _ = fake_mnist

    def boom(*a, **k):
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(store_mod, "binarize_fixed", boom)
    with pytest.raises(RuntimeError, match="simulated"):
        prepare("mnist", raw)
    assert not (home / "mnist.h5").exists()
    assert_clean(home)


def test_concurrent_prepare_leaves_one_good_store(fake_mnist, home):
    raw, _ = fake_mnist
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import data_fakes
        data_fakes.install("mnist", {str(raw)!r})
        from vaeas_np.data import prepare, Dataset
        p = prepare("mnist", {str(raw)!r}, force=True)
        Dataset(p).test_binary
    """)
    env = dict(os.environ, VAEAS_NP_DATA=str(home))
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    ds = Dataset(home / "mnist.h5")
    assert ds.split_sizes == S
    assert sorted(p.name for p in home.iterdir()) == [".locks", "mnist.h5"]
    assert_clean(home)


def test_binarized_mnist_small(tmp_path, home, monkeypatch):
    raw = tmp_path / "bm"
    x = data_fakes.write_fake_bmnist(raw)
    data_fakes.install("binarized_mnist", raw, monkeypatch=monkeypatch)
    ds = load_dataset("binarized_mnist", data_dir=raw, download=False)
    for s in ("train", "valid", "test"):
        np.testing.assert_array_equal(ds.raw(s), x[s])
    np.testing.assert_array_equal(ds.test_binary, x["test"])   # already binary
    assert ds.train_labels is None and ds.test_labels is None


def test_omniglot_prefers_chardata(tmp_path, home, monkeypatch):
    raw = tmp_path / "om"
    up_tr, up_te, labels = data_fakes.write_fake_chardata(raw)
    data_fakes.write_fake_npz(raw, n_test=14)
    data_fakes.install("omniglot", raw, sizes={"train": 40, "valid": 8, "test": 12},
                       monkeypatch=monkeypatch)
    ds = load_dataset("omniglot", data_dir=raw, download=False)
    assert ds.source == "chardata.mat" and not ds.is_substitute
    assert ds.title == "Omniglot (Burda et al. chardata.mat)"
    np.testing.assert_allclose(ds.train, up_tr.reshape(40, 784).astype(np.float32))
    assert ds.raw("train").dtype == np.float64
    np.testing.assert_array_equal(ds.valid, ds.train[-8:])      # valid is inside train
    assert ds.valid_in_train
    np.testing.assert_array_equal(ds.train_labels, labels)


def test_omniglot_substitute(tmp_path, home, monkeypatch):
    raw = tmp_path / "om"
    arrays = data_fakes.write_fake_npz(raw, n_test=14)
    data_fakes.install("omniglot", raw, sizes={"train": 40, "valid": 8, "test": 14},
                       monkeypatch=monkeypatch)
    ds = load_dataset("omniglot", data_dir=raw, download=False)
    assert ds.source == "omniglot28.npz" and ds.is_substitute
    assert ds.title == "Omniglot (omniglot28 substitute)"
    np.testing.assert_array_equal(ds.raw("test"), arrays["test"].reshape(14, 784))
    np.testing.assert_array_equal(ds.test_labels, arrays["test_character"])
    with h5py.File(ds.path) as f:
        assert f.attrs["source"] == "omniglot28.npz"
        np.testing.assert_array_equal(f["train_alphabet"][()], arrays["train_alphabet"])


def test_download_from_local_server(tmp_path, home, monkeypatch, real_retrieve):
    """The pooch path: a checksum-verified download into the data home, and
    a bad download refused and removed."""
    import functools
    import http.server
    import threading
    import dataclasses
    from vaeas_np.data import fetch, sources

    srv_dir = tmp_path / "srv"
    data_fakes.write_fake_mnist(srv_dir)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(srv_dir))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        spec = data_fakes.install("mnist", srv_dir, monkeypatch=monkeypatch)
        v = spec.variants[0]
        files = {r: dataclasses.replace(rf, urls=("http://127.0.0.1:9/dead/", url + rf.name))
                 for r, rf in v.files.items()}
        monkeypatch.setitem(sources.DATASETS, "mnist",
                            dataclasses.replace(spec, variants=[dataclasses.replace(v, files=files)]))
        monkeypatch.setattr(fetch, "DOWNLOAD_RETRIES", 1)
        monkeypatch.setattr(fetch, "DOWNLOAD_TIMEOUT", 5)
        ds = load_dataset("mnist", data_dir=tmp_path / "nothing_here")
        assert ds.split_sizes == S
        assert sorted(p.name for p in (home / "raw" / "mnist").iterdir()) == sorted(
            rf.name for rf in files.values())
        # a mirror serving other bytes: refused, nothing kept
        bad = dataclasses.replace(files["test_labels"], sha256s=("0" * 64,))
        with pytest.raises(DataFileMissingError, match="could not download"):
            fetch.download_raw_file(bad, tmp_path / "dl")
        assert list((tmp_path / "dl").iterdir()) == []
    finally:
        server.shutdown()
    assert_clean(home)


def test_lazy_split_streamed(fake_mnist, home):
    """A store split larger than the budget is streamed; values match."""
    from vaeas_np.data import iterate_minibatches
    raw, _ = fake_mnist
    ds = load_dataset("mnist", data_dir=raw, download=False)
    with ds.split("train") as lz:
        got = list(iterate_minibatches(lz, 4, shuffle_rng=np.random.default_rng(0),
                                       binarize=None, max_memory_bytes=240_000))
    idx = np.concatenate([i for i, _ in got])
    assert sorted(idx.tolist()) == list(range(S["train"]))
    for i, x in got:
        np.testing.assert_array_equal(x, ds.train[i])


def test_cli_error_exit_status(tmp_path, capsys):
    from vaeas_np.cli_data import main
    assert main(["data", "prepare", "mnist", "--from", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the raw files of data set 'mnist' were not found")
    assert main(["data", "info", "mnist"]) == 1
