"""Build the compiled core: every ``_ext/*.pyx`` becomes ``vaeas_np._ext.<name>``.

OpenMP is used when the compiler supports it (checked by compiling a tiny
program); otherwise the kernels are built serial and ``n_threads`` only
reaches BLAS.  Without a C compiler the build stops with a clear message.
"""
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _has_compiler():
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) is not None or shutil.which("gcc") is not None


def _compiles(src, cflags=(), lflags=()):
    """True if the C compiler builds the program ``src`` with these flags."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()
    with tempfile.TemporaryDirectory() as tmp:
        c = os.path.join(tmp, "t.c")
        with open(c, "w") as f:
            f.write(src)
        try:
            r = subprocess.run(cc + list(cflags) + [c, "-o", os.path.join(tmp, "t")]
                               + list(lflags), capture_output=True)
        except OSError:
            return False
        return r.returncode == 0


def _openmp_flags():
    """Return (compile_args, link_args) for OpenMP, or ([], []) if unsupported."""
    if os.environ.get("VAEAS_NP_NO_OPENMP"):
        return [], []
    if sys.platform == "darwin":
        candidates = [(["-Xpreprocessor", "-fopenmp"], ["-lomp"])]
    elif sys.platform == "win32":
        candidates = [(["/openmp"], [])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
    src = "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n"
    for cflags, lflags in candidates:
        if _compiles(src, cflags, lflags):
            return cflags, lflags
    print("vaeas_np: OpenMP not available; compiled kernels will run on one thread.",
          file=sys.stderr)
    return [], []


class BuildExt(build_ext):
    def run(self):
        if not _has_compiler():
            raise SystemExit(
                "vaeas_np needs a C compiler to build its compiled core (Cython kernels).\n"
                "Install one (Debian/Ubuntu: `apt-get install build-essential python3-dev`; "
                "macOS: `xcode-select --install`; Windows: MSVC Build Tools) and retry.")
        super().run()


def extensions():
    import numpy
    from Cython.Build import cythonize

    cflags, lflags = _openmp_flags()
    opt = [] if sys.platform == "win32" else ["-O3", "-fno-math-errno"]
    # The kernels are built for the CPU that builds them (-march=native): a fused Adam
    # step runs 3.3x faster with AVX-512 than with the x86-64 baseline (measured: 2.1M
    # parameters, 2 threads, 1.59 -> 0.48 ms).  VAEAS_NP_ARCH=portable builds for the
    # baseline instead (wheels; clusters whose nodes have older CPUs than the login
    # node); any other value is passed as -march=VALUE (e.g. x86-64-v3).
    arch = os.environ.get("VAEAS_NP_ARCH", "native").strip()
    if sys.platform != "win32" and arch and arch != "portable":
        if _compiles("int main(void){return 0;}\n", [f"-march={arch}"]):
            opt.append(f"-march={arch}")
        elif arch == "native":
            print("vaeas_np: the compiler rejects -march=native; building for its default "
                  "target (slower kernels).", file=sys.stderr)
        else:
            raise SystemExit(f"vaeas_np: the C compiler rejects -march={arch} "
                             f"(VAEAS_NP_ARCH={arch!r}); use a target it knows, "
                             "'native', or 'portable'.")
    # noise.pyx calls NumPy's random distributions from C: NumPy ships them as a static
    # library (numpy/random/lib/libnpyrandom.a) for extensions like this one
    npyrandom_dir = os.path.join(os.path.dirname(numpy.__file__), "random", "lib")
    npyrandom = dict(library_dirs=[npyrandom_dir],
                     libraries=["npyrandom"] + ([] if sys.platform == "win32" else ["m"]))
    have_npyrandom = any(os.path.exists(os.path.join(npyrandom_dir, f))
                         for f in ("libnpyrandom.a", "npyrandom.lib"))
    exts = []
    for pyx in sorted(glob.glob(os.path.join("_ext", "*.pyx"))):
        name = os.path.splitext(os.path.basename(pyx))[0]
        if name == "noise" and not have_npyrandom:
            print("vaeas_np: NumPy's libnpyrandom is missing (a NumPy built without it); the "
                  "IWAE draws its noise in Python instead of the compiled core.",
                  file=sys.stderr)
            continue
        exts.append(Extension(
            f"vaeas_np._ext.{name}", [pyx],
            include_dirs=[numpy.get_include(), "_ext"],
            # noise.pyx must round as NumPy does (no fused multiply-add)
            extra_compile_args=opt + cflags + (["-ffp-contract=off"] if name == "noise"
                                               and sys.platform != "win32" else []),
            extra_link_args=lflags,
            **(npyrandom if name == "noise" else {}),
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            # the C headers: a change to one rebuilds the extensions (Cython tracks
            # only .pyx/.pxd/.pxi)
            depends=sorted(glob.glob(os.path.join("_ext", "*.h"))),
        ))
    return cythonize(exts, language_level=3, compiler_directives={
        "boundscheck": False, "wraparound": False, "cdivision": True,
        "initializedcheck": False, "nonecheck": False})


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
