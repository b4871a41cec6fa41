"""Output files that appear whole or not at all.

Every file nmc writes (binaries, IR text and its side ``.npz``, run results) goes through here.
A write goes to a temporary file in the target's own directory, is flushed to the disk (fsync)
and is then renamed over the target. A rename within one file system is atomic, so a reader sees
the previous file or the new one, never a mix, and a failure on the way (disk full, a read-only
file system, an exception, Ctrl-C) leaves the previous file exactly as it was.

Where Linux offers ``O_TMPFILE`` the temporary file has no name until it is complete, so even a
process killed with SIGKILL in the middle of a write leaves nothing behind. Elsewhere it is a
hidden ``.NAME.XXXXXXXX.tmp`` beside the target, removed on every failure Python sees.

:func:`check_output` is the pre-flight a command runs before any work, so that a bad output path
is reported at once instead of after a long compile or run.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Sequence

from .errors import OutputError

# The mode a plain open() would give a new file; read once (os.umask can only be read by setting it).
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK

# Whether unnamed temporary files may be tried: O_TMPFILE exists and /proc can link them into place.
_TMPFILE = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")

# The system calls a write goes through, named here so that tests can make them fail as a full
# disk or a read-only file system would (tests/test_atomic_writes.py).
_open = os.open
_fsync = os.fsync
_replace = os.replace


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _target(path: str | os.PathLike[str]) -> Path:
    """Where the bytes go: through a symbolic link to the file it names, so the link survives."""
    return Path(os.path.realpath(path))


class _Pending:
    """One output being written: an open temporary file in the target's directory."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.shown = str(path)  # the path as the user wrote it, for messages
        self.target = _target(path)
        self.name: Path | None = None  # the temporary file's name; None while it has none (O_TMPFILE)
        directory = self.target.parent
        try:
            self.fd = self._open_unnamed(directory) if _TMPFILE else -1
            if self.fd < 0:
                self.name = directory / f".{self.target.name}.{secrets.token_hex(4)}.tmp"
                self.fd = _open(self.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
        except OSError as exc:
            raise OutputError(f"cannot write here: {_reason(exc)}", location=self.shown) from None
        self.file: IO[bytes] = os.fdopen(self.fd, "wb")

    @staticmethod
    def _open_unnamed(directory: Path) -> int:
        """An unnamed file in ``directory``, or -1 where its file system has none."""
        try:
            return _open(directory, os.O_TMPFILE | os.O_WRONLY, _FILE_MODE)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                return -1
            raise

    def finish(self) -> None:
        """Flush the contents to the disk; a full disk shows here at the latest."""
        self.file.flush()
        _fsync(self.file.fileno())

    def commit(self) -> None:
        """Put the finished file in place of the target."""
        if self.name is None:
            # Give the unnamed file a (hidden) name, then rename it over the target: link() cannot
            # replace an existing file. Only this instant can leave a stray name behind.
            self.name = self.target.parent / f".{self.target.name}.{secrets.token_hex(4)}.tmp"
            _link_unnamed(self.file.fileno(), self.name)
        _replace(self.name, self.target)
        self.name = None
        self.file.close()

    def discard(self) -> None:
        """Drop the temporary file; the target is untouched."""
        try:
            self.file.close()
        except OSError:
            pass  # a failed flush of data that is being thrown away
        if self.name is not None:
            try:
                os.unlink(self.name)
            except OSError:
                pass
            self.name = None


def _link_unnamed(fd: int, name: Path) -> None:
    """Give the O_TMPFILE file ``fd`` the name ``name``. linkat() must follow /proc's link to the
    open file (a plain link() would try to link the /proc entry itself); Python asks for that
    only when a directory descriptor is given."""
    proc = os.open("/proc/self/fd", os.O_RDONLY)
    try:
        os.link(str(fd), name, src_dir_fd=proc, follow_symlinks=True)
    finally:
        os.close(proc)


def _sync_directory(directory: Path) -> None:
    """Make the rename itself durable. Best effort: some file systems cannot sync a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_files(paths: Sequence[str | os.PathLike[str]]) -> Iterator[list[IO[bytes]]]:
    """Write several files that belong together (IR text and its arrays) as one: yields a binary
    file object per path; when the block ends normally all are flushed, then all renamed into
    place. If anything fails before the renames, no target is touched.

    Failures to write become :class:`OutputError` naming the file."""
    pending: list[_Pending] = []
    try:
        for p in paths:
            pending.append(_Pending(p))
        current = pending[0] if pending else None
        try:
            yield [p.file for p in pending]
            for current in pending:
                current.finish()
            for current in pending:
                current.commit()
        except OSError as exc:
            where = current.shown if current is not None else "<output>"
            raise OutputError(f"cannot write: {_reason(exc)}; the previous file, if any, is unchanged",
                              location=where) from None
    finally:
        for p in pending:
            p.discard()
    for d in {p.target.parent for p in pending}:
        _sync_directory(d)


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Write one file atomically: ``with atomic_write(p) as f: f.write(...)``."""
    with atomic_files([path]) as (f,):
        yield f


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` by ``data``, atomically."""
    with atomic_write(path) as f:
        f.write(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Replace ``path`` by ``text`` (UTF-8), atomically."""
    write_bytes(path, text.encode("utf-8"))


def save_npz(path: str | os.PathLike[str], arrays: dict[str, Any]) -> None:
    """``np.savez`` to exactly ``path`` (no ``.npz`` is appended), atomically."""
    import numpy as np

    with atomic_write(path) as f:
        np.savez(f, **arrays)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return _target(a) == _target(b)


def check_output(path: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str] | None] = (),
                 what: str = "output") -> Path:
    """Refuse, before any work, an output that cannot be written: an empty name, a directory, a
    missing directory, something other than a regular file, a read-only file, one of the
    ``inputs``, or a place where no file can be created. Returns the path."""
    shown = str(path)
    if not shown:
        raise OutputError(f"no file name given for the {what}")
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"the {what} is a directory; name a file", location=shown)
    parent = _target(p).parent
    if not parent.exists():
        raise OutputError(f"cannot write the {what}: directory '{p.parent}' does not exist", location=shown)
    if not parent.is_dir():
        raise OutputError(f"cannot write the {what}: '{p.parent}' is not a directory", location=shown)
    for inp in inputs:
        if inp is not None and _same_file(p, Path(inp)):
            raise OutputError(f"the {what} is also an input ('{inp}'); writing it would destroy that input",
                              location=shown)
    if p.exists():
        mode = os.stat(p).st_mode
        if not stat.S_ISREG(mode):
            raise OutputError(f"the {what} exists and is not a regular file", location=shown)
        if not os.access(p, os.W_OK):
            read_only_fs = bool(os.statvfs(p).f_flag & os.ST_RDONLY)
            raise OutputError(f"the {what} is on a read-only file system" if read_only_fs
                              else f"the {what} exists and is read-only", location=shown)
    # The real test: create (and drop) a temporary file where the output will be written.
    _Pending(p).discard()
    return p
