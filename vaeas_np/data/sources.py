"""Registry of the data sets: their raw files, checksums, mirrors, split
sizes, and how their splits are built from the raw files.

``DATASETS[name]`` is a :class:`DatasetSpec` with one or more
:class:`Variant` (Omniglot has two: Burda's ``chardata.mat``, preferred,
and the ``omniglot28.npz`` substitute).  Each variant's ``build`` turns the
located raw files into a :class:`Content` that :mod:`.store` writes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict

import numpy as np

from . import readers
from .fetch import RawFile

__all__ = ["Content", "Variant", "DatasetSpec", "DATASETS", "get_spec"]


@dataclass
class Content:
    """What a store holds, before writing: splits in the source's own dtype
    and values (divide by ``scale`` for [0, 1]), labels, extra arrays and
    attributes."""
    title: str
    source: str
    splits: Dict[str, np.ndarray]
    scale: float
    labels: Dict[str, np.ndarray] = field(default_factory=dict)
    extra: Dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)


@dataclass
class Variant:
    """One way of building a data set from a set of raw files."""
    source: str                      # short id recorded in the store
    title: str                       # human label, e.g. "Omniglot (omniglot28 substitute)"
    files: Dict[str, RawFile]        # role -> raw file
    sizes: Dict[str, int]            # split -> number of rows
    build: Callable                  # build(variant, paths: dict role -> Path) -> Content
    downloadable: bool = True
    note: str = ""


@dataclass
class DatasetSpec:
    name: str
    variants: list


# ---------------------------------------------------------------- MNIST
_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


def _mnist_file(stem, gz_sha, raw_sha, diagnose):
    return RawFile(
        names=(stem + ".gz", stem, stem.replace("-idx", ".idx")),
        sha256s=(gz_sha, raw_sha), content_sha256=raw_sha,
        urls=tuple(m + stem + ".gz" for m in _MNIST_MIRRORS), diagnose=diagnose)


def _build_mnist(v: Variant, paths) -> Content:
    n_tr, n_va, n_te = v.sizes["train"], v.sizes["valid"], v.sizes["test"]
    xtr = readers.read_idx_images(paths["train_images"], n=n_tr + n_va)
    ytr = readers.read_idx_labels(paths["train_labels"], n=n_tr + n_va)
    xte = readers.read_idx_images(paths["test_images"], n=n_te)
    yte = readers.read_idx_labels(paths["test_labels"], n=n_te)
    xtr = xtr.reshape(len(xtr), -1)
    xte = xte.reshape(len(xte), -1)
    return Content(
        title=v.title, source=v.source, scale=255.0,
        splits={"train": xtr[:n_tr], "valid": xtr[n_tr:], "test": xte},
        labels={"train": ytr[:n_tr], "valid": ytr[n_tr:], "test": yte},
        attrs={"valid_in_train": False,
               "split_rule": f"train = first {n_tr} of the IDX training images, "
                             f"valid = last {n_va}, test = the {n_te} t10k images"})


MNIST = DatasetSpec("mnist", [Variant(
    source="mnist-idx", title="MNIST",
    files={
        "train_images": _mnist_file(
            "train-images-idx3-ubyte",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            lambda p: readers.read_idx_images(p, n=60000)),
        "train_labels": _mnist_file(
            "train-labels-idx1-ubyte",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            lambda p: readers.read_idx_labels(p, n=60000)),
        "test_images": _mnist_file(
            "t10k-images-idx3-ubyte",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            lambda p: readers.read_idx_images(p, n=10000)),
        "test_labels": _mnist_file(
            "t10k-labels-idx1-ubyte",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            lambda p: readers.read_idx_labels(p, n=10000)),
    },
    sizes={"train": 55000, "valid": 5000, "test": 10000},
    build=_build_mnist)])


# ------------------------------------------------------ binarised MNIST
_BMNIST_URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"


def _bmnist_file(split, raw_sha, gz_sha, n):
    stem = f"binarized_mnist_{split}.amat"
    return RawFile(
        names=(stem, stem + ".gz"), sha256s=(raw_sha, gz_sha), content_sha256=raw_sha,
        urls=(_BMNIST_URL + stem,), diagnose=lambda p: readers.read_amat(p, n=n))


def _build_bmnist(v: Variant, paths) -> Content:
    splits = {s: readers.read_amat(paths[s], n=v.sizes[s]) for s in ("train", "valid", "test")}
    return Content(title=v.title, source=v.source, scale=1.0, splits=splits,
                   attrs={"valid_in_train": False, "already_binary": True,
                          "split_rule": "the three .amat files of Larochelle & Murray (2011)"})


BINARIZED_MNIST = DatasetSpec("binarized_mnist", [Variant(
    source="larochelle-amat", title="Binarized MNIST (Larochelle & Murray)",
    files={
        "train": _bmnist_file("train", "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",
                              "af247bd6075cf9adc4715459dcd5f13eaa99a2c92d8d81379a05da94770b6c0e", 50000),
        "valid": _bmnist_file("valid", "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",
                              "533b71bc0198f4d73c54ae5fe6c96fc08dc3cf1b3fae24c5521dbc0452507e38", 10000),
        "test": _bmnist_file("test", "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c",
                             "32a3c54d03504632bf9f131b4a148c7567aa6fc87da017049b044bdc14c2a0f2", 10000),
    },
    sizes={"train": 50000, "valid": 10000, "test": 10000},
    build=_build_bmnist)])


# ------------------------------------------------------------- Omniglot
def _omniglot_content(v: Variant, data, scale) -> Content:
    n_va = v.sizes["valid"]
    train, test = data["train"], data["test"]
    labels = {"train": data.get("train_labels"), "test": data.get("test_labels")}
    labels = {k: a for k, a in labels.items() if a is not None}
    if "train" in labels:
        labels["valid"] = labels["train"][-n_va:]
    extra = {k: data[k] for k in ("train_alphabet", "test_alphabet") if k in data}
    return Content(
        title=v.title, source=v.source, scale=scale,
        splits={"train": train, "valid": train[-n_va:], "test": test},
        labels=labels, extra=extra,
        attrs={"valid_in_train": True,
               "split_rule": f"train = all {len(train)} training images; valid = the last "
                             f"{n_va} of them (a subset of train, not held out); "
                             f"test = {len(test)} images"})


def _build_chardata(v: Variant, paths) -> Content:
    data = readers.read_chardata_mat(paths["chardata"], n_train=v.sizes["train"],
                                     n_test=v.sizes["test"])
    return _omniglot_content(v, data, scale=1.0)


def _build_omniglot28(v: Variant, paths) -> Content:
    data = readers.read_omniglot28_npz(paths["npz"], n_train=v.sizes["train"],
                                       n_test=v.sizes["test"])
    return _omniglot_content(v, data, scale=255.0)


OMNIGLOT = DatasetSpec("omniglot", [
    Variant(
        source="chardata.mat", title="Omniglot (Burda et al. chardata.mat)",
        files={"chardata": RawFile(
            names=("chardata.mat",),
            git_blob_sha1="016a3536ffe5e1d38e42563a18d7a78bfaf643ec",
            urls=("https://github.com/yburda/iwae/raw/master/datasets/OMNIGLOT/chardata.mat",
                  "https://raw.githubusercontent.com/yburda/iwae/master/datasets/OMNIGLOT/chardata.mat"),
            diagnose=lambda p: readers.read_chardata_mat(p, n_train=24345, n_test=8070))},
        sizes={"train": 24345, "valid": 1345, "test": 8070},
        build=_build_chardata),
    Variant(
        source="omniglot28.npz", title="Omniglot (omniglot28 substitute)",
        files={"npz": RawFile(
            names=("omniglot28.npz",),
            sha256s=("d029fa94166fd766523e673f80bfc9e9c6711e6fb5199b8f7d1799fc0f71c677",),
            diagnose=lambda p: readers.read_omniglot28_npz(p, n_train=24345, n_test=8115))},
        sizes={"train": 24345, "valid": 1345, "test": 8115},
        build=_build_omniglot28, downloadable=False,
        note="omniglot28.npz has no public URL: it is built from Lake's original 105x105 "
             "images (see the project's data/SOURCES.md); copy it into the data directory"),
])

DATASETS: Dict[str, DatasetSpec] = {s.name: s for s in (MNIST, BINARIZED_MNIST, OMNIGLOT)}


def get_spec(name: str) -> DatasetSpec:
    from ..errors import InvalidParameterError
    key = str(name).lower().replace("-", "_")
    if key not in DATASETS:
        raise InvalidParameterError(
            f"unknown data set {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[key]
