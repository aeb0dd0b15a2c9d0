"""One writer per run file, and what the HDF5 superblock says about a file.

- :class:`WriterLock`: an exclusive lock on a hidden sidecar file ``.<name>.lock`` next
  to the run file, held by the process writing it (creating, replacing or resuming).  A
  second writer fails at once with a one-line error instead of truncating or corrupting
  a live run; readers never take it.  POSIX (Linux, macOS): ``flock`` on the whole file.
  Windows: ``msvcrt.locking`` of one byte at offset ``LOCK_BYTE`` (Windows locks are
  mandatory byte ranges: the writer's pid at offset 0 stays readable), and the file is
  closed before it is removed (Windows cannot remove an open file).  The Windows branch
  is exercised on Linux with a stand-in for ``msvcrt`` (tests/test_faults.py); it has not
  run on Windows.
- :func:`status_flags`: a file written in SWMR mode (superblock version 2 or 3) keeps an
  "open for writing" flag until it is closed; set on a closed file, its writer died.
- :func:`superblock_eof`: the end-of-file address the superblock records; a shorter
  file was truncated.
"""
from __future__ import annotations

import os

try:
    import fcntl
    msvcrt = None
except ImportError:   # Windows
    fcntl = None
    try:
        import msvcrt
    except ImportError:
        msvcrt = None

LOCK_BYTE = 1 << 20   # Windows: the locked byte (past the pid, which readers read)

_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class LockedError(OSError):
    """The run file is being written by another process."""


def lock_path(path) -> str:
    """The writer lock's sidecar file of ``path``: ``.<name>.lock`` in the same folder."""
    path = os.path.abspath(os.fspath(path))
    return os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".lock")


def _try_lock(fd, shared: bool = False) -> bool:
    """Take the lock of the open lock file ``fd`` without waiting; False if held."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    if msvcrt is None:
        raise OSError("writing run and gap files needs file locks (flock or msvcrt), which "
                      "this platform does not have; reading works")
    os.lseek(fd, LOCK_BYTE, os.SEEK_SET)
    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def _unlock(fd) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    elif msvcrt is not None:
        os.lseek(fd, LOCK_BYTE, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


class WriterLock:
    """Exclusive writer lock of ``path`` (see the module docstring)."""

    def __init__(self, path):
        path = os.path.abspath(os.fspath(path))
        self.path = path
        self.lock_path = lock_path(path)
        self.fd = None

    def acquire(self) -> "WriterLock":
        if fcntl is None and msvcrt is None:
            raise OSError(f"{self.path}: writing run and gap files needs file locks (flock "
                          "or msvcrt), which this platform does not have; reading works")
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
            if not _try_lock(fd):
                try:
                    os.lseek(fd, 0, os.SEEK_SET)
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
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, str(os.getpid()).encode("ascii"))
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        if fcntl is not None:   # POSIX: remove, then let the lock go (no window for a stale file)
            try:
                os.unlink(self.lock_path)
            except FileNotFoundError:
                pass
            os.close(self.fd)
        else:                   # Windows: an open file cannot be removed; unlock, close, remove
            try:
                _unlock(self.fd)
            finally:
                os.close(self.fd)
            try:
                os.unlink(self.lock_path)
            except OSError:     # gone, or opened by a process about to lock it: it stays
                pass
        self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def writer_alive(path) -> bool:
    """Whether a process holds the writer lock of ``path`` now (never creates the lock
    file; a reader's probe; False where there are no file locks)."""
    if fcntl is None and msvcrt is None:
        return False
    try:   # msvcrt.locking needs a writable descriptor; flock does not
        fd = os.open(lock_path(path), (os.O_RDONLY if fcntl is not None else os.O_RDWR)
                     | getattr(os, "O_BINARY", 0))
    except OSError:
        return False
    try:
        if not _try_lock(fd, shared=True):
            return True
        if fcntl is None:
            _unlock(fd)
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
