"""One writer per run file, and recovery of a file whose writer was killed.

- :class:`WriterLock`: an exclusive ``flock`` on a hidden sidecar file
  ``.<name>.lock`` next to the run file, held by the process writing it (creating,
  replacing or resuming).  A second writer fails at once with a one-line error instead
  of truncating or corrupting a live run; readers never take it.
- :func:`clear_status_flags`: a run file written in SWMR mode (HDF5 superblock version
  2 or 3) keeps an "open for writing" flag in its superblock until closed; a killed
  writer leaves it set and HDF5 then refuses to reopen the file for writing.  Once the
  writer lock proves no writer is alive, the flag is cleared as ``h5clear -s`` does:
  byte 11 of the superblock is zeroed and the superblock's Jenkins lookup3 checksum
  recomputed.
"""
from __future__ import annotations

import fcntl
import os
import struct

_M32 = 0xFFFFFFFF
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


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _M32


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle`` (byte-wise), HDF5's metadata checksum."""
    n = len(data)
    a = b = c = (0xDEADBEEF + n + initval) & _M32
    i = 0
    while n > 12:
        a = (a + int.from_bytes(data[i:i + 4], "little")) & _M32
        b = (b + int.from_bytes(data[i + 4:i + 8], "little")) & _M32
        c = (c + int.from_bytes(data[i + 8:i + 12], "little")) & _M32
        a = (a - c) & _M32; a ^= _rot(c, 4); c = (c + b) & _M32    # noqa: E702
        b = (b - a) & _M32; b ^= _rot(a, 6); a = (a + c) & _M32    # noqa: E702
        c = (c - b) & _M32; c ^= _rot(b, 8); b = (b + a) & _M32    # noqa: E702
        a = (a - c) & _M32; a ^= _rot(c, 16); c = (c + b) & _M32   # noqa: E702
        b = (b - a) & _M32; b ^= _rot(a, 19); a = (a + c) & _M32   # noqa: E702
        c = (c - b) & _M32; c ^= _rot(b, 4); b = (b + a) & _M32    # noqa: E702
        n -= 12
        i += 12
    if n == 0:
        return c
    tail = data[i:i + n] + bytes(12 - n)
    a = (a + int.from_bytes(tail[0:4], "little")) & _M32
    b = (b + int.from_bytes(tail[4:8], "little")) & _M32
    c = (c + int.from_bytes(tail[8:12], "little")) & _M32
    c ^= b; c = (c - _rot(b, 14)) & _M32    # noqa: E702
    a ^= c; a = (a - _rot(c, 11)) & _M32    # noqa: E702
    b ^= a; b = (b - _rot(a, 25)) & _M32    # noqa: E702
    c ^= b; c = (c - _rot(b, 16)) & _M32    # noqa: E702
    a ^= c; a = (a - _rot(c, 4)) & _M32     # noqa: E702
    b ^= a; b = (b - _rot(a, 14)) & _M32    # noqa: E702
    c ^= b; c = (c - _rot(b, 24)) & _M32    # noqa: E702
    return c


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


def superblock_checksum_ok(path) -> bool:
    """Whether the stored superblock checksum equals lookup3 of its bytes."""
    sb, size = _superblock(path)
    if sb is None:
        return True
    return struct.unpack("<I", sb[size - 4:size])[0] == lookup3(sb[:size - 4])


def clear_status_flags(path) -> bool:
    """Zero the superblock's consistency flags (``h5clear -s``); call only while holding
    the :class:`WriterLock`.  Returns whether anything was cleared."""
    sb, size = _superblock(path)
    if sb is None or sb[11] == 0:
        return False
    if not superblock_checksum_ok(path):
        raise ValueError(f"{path}: the HDF5 superblock checksum does not match; not touching it")
    new = bytearray(sb)
    new[11] = 0
    new[size - 4:size] = struct.pack("<I", lookup3(bytes(new[:size - 4])))
    with open(path, "r+b") as fh:
        fh.write(new)
        fh.flush()
        os.fsync(fh.fileno())
    return True
