"""The header every meanfield HDF5 file carries, its check, and atomic file creation.

Run files and gap files (docs/format.md) share one header, written by :func:`stamp` and
checked by :func:`check`:

``format``, ``format_version``
    what the file is and the version of its layout;
``package_version``, ``created``
    the meanfield that wrote it, and when (UTC, ISO 8601);
``config``, ``config_sha256``
    the resolved configuration as TOML text ("" for a run built in Python) and its
    SHA-256 (a file whose text does not match is refused: edited or damaged);
``seed_init``, ``seed_data``, ``seed_noise``
    the seeds actually used; a seed that is not known (a network or data set built
    from arrays) is not written, never written as a false 0;
``python_version``, ``numpy_version``, ``scipy_version``, ``numba_version``, ``llvmlite_version``, ``h5py_version``, ``pot_version``, ``cpu`` and ``cpu_features``
    what the bit-for-bit claims depend on (``cpu`` and ``cpu_features``: LLVM's name and
    feature list of the host CPU, which select the instructions Numba emits;
    ``pot_version`` is "" without POT).

Strings go through :func:`fixed_bytes` (UTF-8, fixed length) and :func:`text` (what
h5py returns, as str).  The module parses nothing: configuration text is stored and
hashed as it comes, and only :mod:`meanfield.config` reads it.  :func:`temporary` and :func:`publish` are the
write-then-rename protocol of both formats: a file is complete under a temporary name
in its destination folder before it takes the destination's name; :func:`build_image`
and :func:`write_image` make that complete version in memory and write it with plain
file writes, so that a full disk fails cleanly before HDF5 holds any unwritable data.
"""
from __future__ import annotations

import datetime as _dt
import glob
import hashlib
import importlib.metadata
import itertools
import os
import platform
import tempfile

import numpy as np

from .. import __version__   # the package is initialised before any of its modules

SEED_KEYS = ("init", "data", "noise")
VERSION_KEYS = ("python_version", "numpy_version", "scipy_version", "numba_version",
                "llvmlite_version", "h5py_version", "pot_version", "cpu", "cpu_features")


def sha256(text: str) -> str:
    """The hex SHA-256 of ``text`` in UTF-8 (the ``config_sha256`` attribute)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def now() -> str:
    """The current UTC time as ISO 8601, to the second (``created``, ``updated``)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


_VERSIONS = None


def _installed(dist: str) -> str:
    """The installed version of a distribution, "" when it is not installed (read from
    its metadata: importing POT would import every backend it finds, JAX included)."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""


def versions() -> dict:
    """{attribute: value} for :data:`VERSION_KEYS` in this process (computed once)."""
    global _VERSIONS
    if _VERSIONS is None:
        import h5py
        import llvmlite.binding as llvm
        import numba

        _VERSIONS = {"python_version": platform.python_version(), "numpy_version": np.__version__,
                     "scipy_version": _installed("scipy"), "numba_version": numba.__version__,
                     "llvmlite_version": _installed("llvmlite"), "h5py_version": h5py.__version__,
                     "pot_version": _installed("POT"), "cpu": llvm.get_host_cpu_name(),
                     "cpu_features": llvm.get_host_cpu_features().flatten()}
    return _VERSIONS


def stamp(attrs, fmt: str, version: int, config_text: str, seeds: dict,
          created: str | None = None) -> None:
    """Write the common header into ``attrs`` (an HDF5 attribute manager).

    ``seeds``: {"init", "data", "noise"} -> int, or None for a seed that is not known.
    """
    text = config_text or ""
    attrs["format"] = fmt
    attrs["format_version"] = version
    attrs["package_version"] = __version__
    attrs["created"] = created or now()
    attrs["config"] = text
    attrs["config_sha256"] = sha256(text)
    for k in SEED_KEYS:
        if seeds.get(k) is not None:
            attrs[f"seed_{k}"] = np.uint64(seeds[k])
    attrs.update(versions())


def fixed_bytes(value, n: int) -> np.bytes_:
    """``value`` as UTF-8 bytes, cut to ``n`` bytes (a fixed-length HDF5 string)."""
    return np.bytes_(str(value).encode("utf-8")[:n])


def text(value) -> str:
    """An HDF5 string attribute as str (h5py gives bytes for fixed-length strings)."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def check(attrs, path, fmt: str, reads: tuple, error, *, kind: str) -> int:
    """Check the header of a file opened for reading; returns its format version.

    Raises ``error`` (a one-line message naming ``path``) when the file is not of format
    ``fmt`` (``kind`` names it: "run file", "gap file") or its version is not in
    ``reads``.
    """
    got = text(attrs.get("format", ""))
    if got != fmt:
        other = {"meanfield-run": "a run file: use meanfield.open_run",
                 "meanfield-gap": "a gap file: use meanfield.open_gap"}.get(got)
        raise error(f"{path}: not a meanfield {kind} (no format = '{fmt}' attribute)"
                    + (f" ({other})" if other else ""))
    ver = int(attrs.get("format_version", -1))
    if ver not in reads:
        raise error(f"{path}: {kind} format version {ver} is not supported by this meanfield "
                    f"(reads versions {', '.join(map(str, reads))}); upgrade meanfield")
    return ver


def config_text(attrs, path, error) -> str:
    """The stored configuration text, checked against ``config_sha256`` (``error`` when
    it does not match: the file was edited or damaged)."""
    got = text(attrs.get("config", ""))
    if sha256(got) != text(attrs.get("config_sha256", "")):
        raise error(f"{path}: the stored configuration does not match its checksum (edited or "
                    "damaged); refusing to use it")
    return got


def read_seeds(attrs) -> dict:
    """{"init", "data", "noise"} -> int, or None where the file records no seed."""
    return {k: (int(attrs[f"seed_{k}"]) if f"seed_{k}" in attrs else None) for k in SEED_KEYS}


# ----------------------------------------------------------------------------------
# labels: dimension scales and attributes that netCDF readers (xarray with h5netcdf)
# understand, written when a file is built
# ----------------------------------------------------------------------------------
NETCDF_DIMENSION = "This is a netCDF dimension but not a netCDF variable."


def label(ds, long_name: str, units: str = "1"):
    """Give dataset ``ds`` its ``long_name`` and ``units`` attributes; returns ``ds``."""
    ds.attrs["long_name"] = long_name
    ds.attrs["units"] = units
    return ds


def dimension(group, name: str, size: int):
    """A dimension ``name`` of length ``size`` in ``group`` without coordinate values:
    an HDF5 dimension scale that allocates no storage, named the netCDF-4 way so that
    netCDF readers show a dimension, not a variable."""
    ds = group.create_dataset(name, shape=(size,), dtype="f4")
    ds.make_scale(f"{NETCDF_DIMENSION}{size:10d}")
    return ds


def coordinate(ds):
    """Make dataset ``ds`` (1-D) the coordinate variable of a dimension of its own name."""
    ds.make_scale(ds.name.rsplit("/", 1)[-1])
    return ds


def attach(ds, *scales) -> None:
    """Name ``ds``'s dimensions, in order, by the dimension scales ``scales``."""
    if len(scales) != ds.ndim:
        raise ValueError(f"{ds.name}: {ds.ndim} dimensions, {len(scales)} scales")
    for axis, sc in enumerate(scales):
        ds.dims[axis].attach_scale(sc)


# ----------------------------------------------------------------------------------
# write, then rename
# ----------------------------------------------------------------------------------
def _debris(path) -> list:
    folder = os.path.dirname(os.path.abspath(path))
    return glob.glob(os.path.join(glob.escape(folder),
                                  "." + glob.escape(os.path.basename(path)) + ".*.tmp"))


def remove_debris(path) -> None:
    """Remove the temporary files of ``path`` that killed writers left behind (call it
    holding ``path``'s writer lock: a live writer's temporary file is then not there)."""
    for stale in _debris(path):
        try:
            os.unlink(stale)
        except FileNotFoundError:
            pass


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temporary(path) -> str:
    """A new empty temporary file next to ``path`` (``.<name>.<random>.tmp``), with the
    permissions any new file gets here (0666 less the umask: colleagues on a shared file
    system read it where the umask allows; ``mkstemp`` alone gives 0600)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=folder)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o666 & ~_umask())
    finally:
        os.close(fd)
    return tmp


def publish(tmp, path, *, overwrite: bool = True, fsync: bool = False) -> None:
    """Give the complete file ``tmp`` the name ``path``: atomically replacing a file
    there (``overwrite``), or never replacing one (FileExistsError)."""
    if fsync:
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
    if overwrite:
        os.replace(tmp, path)
    else:
        os.link(tmp, path)   # atomic, and never replaces an existing file
        os.unlink(tmp)


_IMAGES = itertools.count()


def build_image(build, **kwargs) -> bytes:
    """The bytes of an HDF5 file that ``build(f)`` fills, built in memory (HDF5's core
    driver, nothing on disk); ``kwargs`` go to ``h5py.File`` (``libver``)."""
    import h5py

    name = f"meanfield-image-{os.getpid()}-{next(_IMAGES)}"
    with h5py.File(name, "w", driver="core", backing_store=False, **kwargs) as f:
        build(f)
        f.flush()
        return f.id.get_file_image()


def write_image(tmp, image: bytes) -> None:
    """Write a file image into the temporary file ``tmp`` and fsync it, with plain file
    writes: a full disk or a file-size limit is an OSError (ENOSPC, EFBIG, EDQUOT),
    raised here and nowhere later, and no HDF5 handle is left holding unwritten data
    (the failure mode that crashed the interpreter when HDF5 wrote the file itself)."""
    with open(tmp, "wb") as fh:
        fh.write(image)
        fh.flush()
        os.fsync(fh.fileno())


def discard(tmp) -> None:
    """Remove a temporary file that will not be published (if it is still there)."""
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
