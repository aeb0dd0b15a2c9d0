"""One writer per run file, and what the HDF5 superblock says about a file.

- :class:`WriterLock`: an exclusive ``flock`` on a hidden sidecar file
  ``.<name>.lock`` next to the run file, held by the process writing it (creating,
  replacing or resuming).  A second writer fails at once with a one-line error instead
  of truncating or corrupting a live run; readers never take it.
- :func:`status_flags`: a file written in SWMR mode (superblock version 2 or 3) keeps an
  "open for writing" flag until it is closed; set on a closed file, its writer died.
- :func:`superblock_eof`: the end-of-file address the superblock records; a shorter
  file was truncated.
"""
from __future__ import annotations

import os

try:
    import fcntl
except ImportError:   # Windows: files are read; writing needs flock (POSIX)
    fcntl = None

_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class LockedError(OSError):
    """The run file is being written by another process."""


class WriterLock:
    """Exclusive writer lock of ``path`` (see the module docstring)."""

    def __init__(self, path):
        path = os.path.abspath(os.fspath(path))
        self.path = path
        self.lock_path = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".lock")
        self.fd = None

    def acquire(self) -> "WriterLock":
        if fcntl is None:
            raise OSError(f"{self.path}: writing run and gap files needs POSIX file locks "
                          "(flock), which this platform does not have; reading works")
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                try:
                    pid = os.read(fd, 32).decode("ascii", "replace").strip()
                finally:
                    os.close(fd)
                raise LockedError(f"{self.path} is being written by another process"
                                  + (f" (pid {pid})" if pid else "")) from None
            # the lock file may have been removed and re-created while we waited
            try:
                same = os.fstat(fd).st_ino == os.stat(self.lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode("ascii"))
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            try:
                os.unlink(self.lock_path)
            except FileNotFoundError:
                pass
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def writer_alive(path) -> bool:
    """Whether a process holds the writer lock of ``path`` now (never creates the lock
    file; a reader's probe; False where there are no POSIX file locks)."""
    if fcntl is None:
        return False
    path = os.path.abspath(os.fspath(path))
    lock_path = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


def _superblock(path):
    """(bytes, length) of a version 2/3 superblock at offset 0, or (None, 0)."""
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:8] != _SIGNATURE or head[8] not in (2, 3):
            return None, 0
        size = 12 + 4 * head[9] + 4
        fh.seek(0)
        return fh.read(size), size


def status_flags(path) -> int:
    """The superblock's file-consistency flags (0 for older superblocks)."""
    sb, _ = _superblock(path)
    return 0 if sb is None else sb[11]


def superblock_eof(path) -> int | None:
    """The end-of-file address an HDF5 superblock at offset 0 records (None if the file
    has no superblock there): a file shorter than this has been truncated."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if len(head) < 16 or head[:8] != _SIGNATURE:
        return None
    version = head[8]
    if version in (2, 3):
        size_o = head[9]
        at = 12 + 2 * size_o
    elif version in (0, 1):
        size_o = head[13]
        at = 24 + (4 if version == 1 else 0) + 2 * size_o
    else:
        return None
    if size_o not in (4, 8) or len(head) < at + size_o:
        return None
    return int.from_bytes(head[at:at + size_o], "little")
