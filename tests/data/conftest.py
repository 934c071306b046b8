"""Fixtures of the data-layer tests: every test runs with a temporary data
home (VAEAS_NP_DATA) and with downloads disabled unless it opts in."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import data_fakes  # noqa: E402

_REAL_RETRIEVE = None


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """A fresh, empty data home; never the user's real cache."""
    h = tmp_path / "home"
    monkeypatch.setenv("VAEAS_NP_DATA", str(h))
    return h


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """pooch.retrieve fails as if offline (tests that serve files locally
    restore the real one through the ``real_retrieve`` fixture)."""
    import pooch
    global _REAL_RETRIEVE
    if _REAL_RETRIEVE is None:
        _REAL_RETRIEVE = pooch.retrieve

    def offline(url, *a, **k):
        raise ConnectionError(f"network disabled in tests ({url})")

    monkeypatch.setattr(pooch, "retrieve", offline)


@pytest.fixture
def real_retrieve(monkeypatch):
    import pooch
    monkeypatch.setattr(pooch, "retrieve", _REAL_RETRIEVE)


@pytest.fixture(scope="session")
def shared():
    d = data_fakes.shared_data_dir()
    return d


def need(path):
    if not Path(path).exists():
        pytest.skip(f"real data file {path} not available (set VAEAS_NP_SHARED_DATA)")
    return Path(path)
