"""Where data lives, how raw files are found, verified and downloaded.

* The **data home** is ``$VAEAS_NP_DATA`` if set, else ``~/.cache/vaeas_np``.
  Stores (``<home>/<name>.h5``) and downloaded raw files
  (``<home>/raw/<name>/``) live there.
* A user ``data_dir`` is only ever read, never written.
* Every raw file is checked against its registered SHA-256 before use (a
  gzip file whose decompressed content has the registered content checksum is
  accepted too, and Burda's ``chardata.mat``, whose SHA-256 is not published,
  is checked by its git blob id).  A mismatch is refused with
  :class:`~vaeas_np.errors.ChecksumMismatchError`; the file is never used.
* Downloads go through :mod:`pooch` (checksum-verified, written to a
  temporary name and moved into place), trying each mirror with retries and
  a timeout.
"""
from __future__ import annotations

import gzip
import hashlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..errors import CacheNotWritableError, ChecksumMismatchError, CorruptFileError, DataFileMissingError

__all__ = ["ENV_VAR", "data_home", "ensure_writable", "sha256_file", "git_blob_sha1",
           "RawFile", "verify_raw_file", "find_raw_file", "download_raw_file"]

log = logging.getLogger(__name__)

ENV_VAR = "VAEAS_NP_DATA"
DOWNLOAD_TIMEOUT = 60.0   # seconds per connection attempt
DOWNLOAD_RETRIES = 2      # attempts per mirror


def data_home() -> Path:
    """The data home: ``$VAEAS_NP_DATA`` if set and non-empty, else
    ``~/.cache/vaeas_np``.  Not created here (see :func:`ensure_writable`)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "vaeas_np"


def ensure_writable(directory) -> Path:
    """Create ``directory`` if needed and check that files can be created in it.

    Raises :class:`CacheNotWritableError` naming the directory and saying how
    to choose another one.
    """
    directory = Path(directory)
    hint = (f"make it writable, or point the environment variable {ENV_VAR} to a "
            "writable directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise CacheNotWritableError(
            f"the data directory {directory} cannot be written ({exc.strerror or exc}); {hint}") from exc
    return directory


def _hash_file(path, h) -> str:
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_file(path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return _hash_file(path, hashlib.sha256())


def git_blob_sha1(path) -> str:
    """Git blob id of a file (SHA-1 of ``b"blob <size>\\0" + content``)."""
    h = hashlib.sha1(f"blob {os.stat(path).st_size}\0".encode())
    return _hash_file(path, h)


def _gunzip_sha256(path) -> Optional[str]:
    h = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except (EOFError, OSError, Exception):  # damaged gzip: not a match
        return None
    return h.hexdigest()


@dataclass(frozen=True)
class RawFile:
    """One raw file of a data set.

    ``sha256s`` are accepted SHA-256s of the file's bytes (the first is the
    one at ``urls``); ``content_sha256`` is the SHA-256 of the decompressed
    content, so that a raw or re-gzipped copy is accepted; ``git_blob_sha1``
    is used when no SHA-256 is published.  ``names`` are the file names
    looked for (the first is the download name).
    """
    names: tuple
    sha256s: tuple = ()
    content_sha256: Optional[str] = None
    git_blob_sha1: Optional[str] = None
    urls: tuple = ()
    diagnose: Optional[Callable] = field(default=None, compare=False, repr=False)
    note: str = ""

    @property
    def name(self) -> str:
        return self.names[0]

    def checksum_text(self) -> str:
        parts = [f"sha256 {s}" for s in self.sha256s]
        if self.content_sha256 and self.content_sha256 not in self.sha256s:
            parts.append(f"sha256 of the decompressed content {self.content_sha256}")
        if self.git_blob_sha1:
            parts.append(f"git blob id {self.git_blob_sha1}")
        return " or ".join(parts) if parts else "no checksum registered"


def verify_raw_file(path, rf: RawFile) -> str:
    """Check ``path`` against ``rf``'s checksums; return its SHA-256.

    Raises :class:`ChecksumMismatchError` (with a diagnosis of what is wrong
    with the file when it can be parsed) if nothing matches.
    """
    path = Path(path)
    digest = sha256_file(path)
    if digest in rf.sha256s or (rf.content_sha256 and digest == rf.content_sha256):
        return digest
    if rf.content_sha256 and _gunzip_sha256(path) == rf.content_sha256:
        return digest
    if rf.git_blob_sha1 and git_blob_sha1(path) == rf.git_blob_sha1:
        return digest
    diagnosis = ""
    if rf.diagnose is not None:
        try:
            rf.diagnose(path)
            diagnosis = (" The file parses without error, so it is a different version "
                         "or a modified copy of the data.")
        except CorruptFileError as exc:
            diagnosis = f" Diagnosis: {exc}"
        except Exception as exc:  # pragma: no cover - defensive
            diagnosis = f" Diagnosis: it cannot be read ({type(exc).__name__}: {exc})."
    raise ChecksumMismatchError(
        f"{path} does not have the registered checksum of {rf.name} "
        f"(expected {rf.checksum_text()}; got sha256 {digest}); it is refused and was not "
        f"used. Replace it with a good copy{' from ' + rf.urls[0] if rf.urls else ''} "
        f"or delete it so that it is downloaded again.{diagnosis}")


def find_raw_file(rf: RawFile, search_dirs: Sequence) -> Optional[Path]:
    """First existing file with one of ``rf.names`` in ``search_dirs``."""
    for d in search_dirs:
        if d is None:
            continue
        for n in rf.names:
            p = Path(d) / n
            if p.is_file():
                return p
    return None


def _progressbar() -> bool:
    """Show pooch's tqdm progress bar only on an interactive terminal."""
    import sys
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def download_raw_file(rf: RawFile, dest_dir, *, timeout: float = None,
                      retries: int = None) -> Path:
    """Download ``rf`` into ``dest_dir`` from its mirrors, verifying it.

    Each mirror is tried ``retries`` times with ``timeout`` seconds per
    connection.  pooch writes to a temporary file and moves it into place
    only once complete and verified.  Returns the path, or raises
    :class:`DataFileMissingError` when every attempt failed (offline...).
    """
    import pooch

    timeout = DOWNLOAD_TIMEOUT if timeout is None else timeout
    retries = DOWNLOAD_RETRIES if retries is None else retries
    if not rf.urls:
        raise DataFileMissingError(f"{rf.name} has no public download URL")
    dest_dir = ensure_writable(dest_dir)
    known = f"sha256:{rf.sha256s[0]}" if rf.sha256s else None
    errors = []
    for url in rf.urls:
        for attempt in range(retries):
            try:
                got = Path(pooch.retrieve(
                    url, known_hash=known, fname=rf.name, path=dest_dir,
                    downloader=pooch.HTTPDownloader(timeout=timeout, progressbar=_progressbar())))
            except Exception as exc:  # network errors, HTTP errors, hash mismatch
                errors.append(f"{url}: {type(exc).__name__}: {exc}"[:300])
                log.info("download of %s failed (%s)", url, exc)
                if attempt + 1 < retries:
                    time.sleep(1.0 + attempt)
                continue
            try:
                verify_raw_file(got, rf)
            except ChecksumMismatchError as exc:
                got.unlink(missing_ok=True)
                errors.append(f"{url}: checksum mismatch")
                log.info("%s", exc)
                break
            return got
    raise DataFileMissingError(
        f"could not download {rf.name}: " + "; ".join(errors[-4:]))
