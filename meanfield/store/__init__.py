"""HDF5 storage (docs/format.md).

- :mod:`.fileformat` — the header every meanfield file carries (format, version,
  configuration text and hash, seeds, versions), its check, and write-then-rename;
- :mod:`.runfile` — the run file: its writer :class:`H5Recorder` and reader :class:`Run`.

The gap file's reader and writer are :mod:`meanfield.discretization.gapfile`.  Nothing
here parses a configuration: :func:`meanfield.open_run` (in :mod:`meanfield.runs`) opens
a run file and attaches its parsed configuration.
"""
from .._h5lock import LockedError
from ..record import MemoryRecorder, Recorder, velocity_norms
from .runfile import (FORMAT, FORMAT_VERSION, READS_VERSIONS, H5Recorder, Rows, Run,
                      RunFileError, RunWriteError, checkpoint_state, read_architecture,
                      read_checkpoint, write_architecture, write_checkpoint)

__all__ = ["FORMAT", "FORMAT_VERSION", "READS_VERSIONS", "H5Recorder", "LockedError",
           "MemoryRecorder", "Recorder", "Rows", "Run", "RunFileError", "RunWriteError",
           "checkpoint_state", "read_architecture", "read_checkpoint", "velocity_norms",
           "write_architecture", "write_checkpoint"]
