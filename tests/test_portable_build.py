"""The compiled core builds for CPUs without AVX-512.

The kernels are built with -march=native, so on an AVX-512 machine the suite never
compiles the headers' other branches (``VAEAS_GEMM_AVAILABLE 0`` and the like): a
name declared only in the AVX-512 branch and used by a .pyx broke
``VAEAS_NP_ARCH=portable`` installs, and installs on any CPU without AVX-512, until
the sixteenth round.  This compiles every extension's generated C (left in ``_ext/`` by
the editable install) for the x86-64 baseline and for AVX2, syntax and types only
(``-fsyntax-only``: seconds, not the minutes of a full build).
"""
import glob
import os
import platform
import shutil
import subprocess
import sys
import sysconfig

import numpy as np
import pytest

EXT = os.path.join(os.path.dirname(__file__), "..", "_ext")
PYX = sorted(glob.glob(os.path.join(EXT, "*.pyx")))

pytestmark = pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                                reason="the -march targets below are x86-64's")


def compiler():
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    probe = subprocess.run([cc, "-fsyntax-only", "-fopenmp", "-x", "c", "-"],
                           input="int main(void) { return 0; }\n", capture_output=True,
                           text=True)
    if probe.returncode != 0:
        pytest.skip(f"{cc} does not take -fopenmp (the build's OpenMP flags differ here)")
    return cc


@pytest.mark.parametrize("march", ["x86-64", "x86-64-v3"])
@pytest.mark.parametrize("pyx", PYX, ids=lambda p: os.path.basename(p))
def test_extension_compiles_without_avx512(pyx, march):
    c_file = pyx[:-4] + ".c"
    if not os.path.exists(c_file) or os.path.getmtime(c_file) < os.path.getmtime(pyx):
        pytest.skip(f"{os.path.basename(c_file)} is missing or older than its .pyx (not an "
                    "editable build of this tree)")
    cmd = [compiler(), "-fsyntax-only", f"-march={march}", "-mno-avx512f", "-fopenmp",
           "-DNPY_NO_DEPRECATED_API=NPY_1_7_API_VERSION", "-I", EXT,
           "-I", np.get_include(), "-I", sysconfig.get_paths()["include"], c_file]
    r = subprocess.run(cmd, capture_output=True, text=True)
    errors = [line for line in r.stderr.splitlines() if "error" in line]
    assert r.returncode == 0, "\n".join(errors[:10]) or r.stderr[-2000:]


@pytest.mark.slow
def test_portable_build_passes_the_layer_and_model_tests(tmp_path):
    """The whole package built with ``VAEAS_NP_ARCH=portable`` (the x86-64 baseline: no
    AVX-512 kernels, the layers on np.matmul) in a copy of this tree, and the layer and
    model tests run against that build (about 3 minutes: a full compile)."""
    compiler()
    pytest.importorskip("Cython", reason="the build needs Cython (pip install cython)")
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    if not os.path.exists(os.path.join(root, "setup.py")):
        pytest.skip("not a source tree")
    copy = tmp_path / "src"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "build", "*.so", "*.c", ".hypothesis", ".pytest_cache",
        "__pycache__", "*.egg-info"))
    env = {**os.environ, "VAEAS_NP_ARCH": "portable"}
    build = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=copy,
                           env=env, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    check = subprocess.run([sys.executable, "-c", "import vaeas_np._ext.gemm as g; "
                            "print(g.available())"], cwd=copy, capture_output=True, text=True,
                           env={**env, "PYTHONPATH": str(copy)})
    assert check.stdout.strip() == "False", check.stderr    # really the portable kernels
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                          "tests/nn", "tests/models"], cwd=copy, capture_output=True,
                         text=True, env={**env, "PYTHONPATH": str(copy)})
    assert run.returncode == 0, run.stdout[-3000:]
