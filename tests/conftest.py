"""Shared test settings: hypothesis without deadlines (the machines are noisy),
and the location of the real data files in ../shared/data (when present)."""
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("vaeas", deadline=None, max_examples=25,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", deadline=None, max_examples=300,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "vaeas"))

SHARED_DATA = Path(os.environ.get(
    "VAEAS_NP_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


@pytest.fixture
def shared_data():
    """Path of ../shared/data, or skip when it is not there."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (set VAEAS_NP_SHARED_DATA)")
    return SHARED_DATA
