"""Writes are atomic (nmc/atomic.py): a full disk, a read-only place, a failed rename, an
exception or a killed process leave the previous file exactly as it was and no partial file.

Failures are injected where the helper calls the system (``_open``, ``_fsync``, ``_replace``);
a full disk is the real thing, /dev/full, which fails every write with ENOSPC. Where the test
may make a private mount namespace, a tiny tmpfs gives a really full and a really read-only
file system to the whole command line as well.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from nmc import atomic
from nmc.errors import OutputError

OLD = b"the previous contents\n"
TEMP_MODES = ["unnamed", "named"]  # O_TMPFILE, and the hidden named file used where it is missing


@pytest.fixture(params=TEMP_MODES)
def temp_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "unnamed" and not atomic._TMPFILE:
        pytest.skip("this system has no O_TMPFILE")
    monkeypatch.setattr(atomic, "_TMPFILE", request.param == "unnamed")
    return request.param


def _listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def _old_file(tmp_path: Path, name: str = "out.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(OLD)
    return path


def _full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Temporary files open on /dev/full: every write to them fails with ENOSPC."""
    monkeypatch.setattr(atomic, "_open", lambda path, flags, mode=0o777: os.open("/dev/full", os.O_WRONLY))


def _fail(err: int):
    def call(*args, **kwargs):
        raise OSError(err, os.strerror(err))
    return call


# -- the helper ----------------------------------------------------------------------------------------
def test_a_write_replaces_the_whole_file_and_leaves_nothing_else(tmp_path: Path, temp_mode: str) -> None:
    path = _old_file(tmp_path)
    atomic.write_bytes(path, b"new" * 1000)
    assert path.read_bytes() == b"new" * 1000
    assert _listing(tmp_path) == ["out.bin"]
    assert oct(path.stat().st_mode & 0o777) == oct(atomic._FILE_MODE)  # as a plain open() would make it


def test_a_write_through_a_symbolic_link_replaces_the_file_it_names(tmp_path: Path, temp_mode: str) -> None:
    real = _old_file(tmp_path, "real.bin")
    (tmp_path / "link.bin").symlink_to(real)
    atomic.write_bytes(tmp_path / "link.bin", b"new")
    assert (tmp_path / "link.bin").is_symlink() and real.read_bytes() == b"new"


def test_disk_full_while_writing_leaves_the_previous_file(tmp_path: Path, temp_mode: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    path = _old_file(tmp_path)
    _full_disk(monkeypatch)
    with pytest.raises(OutputError) as info:
        atomic.write_bytes(path, b"x" * 100_000)
    assert str(info.value) == (f"{path}: error: cannot write: No space left on device; the previous file, "
                               "if any, is unchanged")
    assert path.read_bytes() == OLD and _listing(tmp_path) == ["out.bin"]


def test_disk_full_when_flushing_to_the_disk(tmp_path: Path, temp_mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _old_file(tmp_path)
    monkeypatch.setattr(atomic, "_fsync", _fail(errno.ENOSPC))
    with pytest.raises(OutputError, match="No space left on device"):
        atomic.save_npz(path, {"a": np.arange(10)})
    assert path.read_bytes() == OLD and _listing(tmp_path) == ["out.bin"]


def test_a_read_only_place_is_one_error_and_changes_nothing(tmp_path: Path, temp_mode: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = _old_file(tmp_path)
    monkeypatch.setattr(atomic, "_open", _fail(errno.EROFS))
    with pytest.raises(OutputError) as info:
        atomic.write_text(path, "new")
    assert str(info.value) == f"{path}: error: cannot write here: Read-only file system"
    with pytest.raises(OutputError, match="Read-only file system"):
        atomic.check_output(path)
    assert path.read_bytes() == OLD and _listing(tmp_path) == ["out.bin"]


def test_a_failed_rename_drops_the_finished_temporary_file(tmp_path: Path, temp_mode: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path = _old_file(tmp_path)
    monkeypatch.setattr(atomic, "_replace", _fail(errno.EIO))
    with pytest.raises(OutputError, match="Input/output error"):
        atomic.write_bytes(path, b"new")
    assert path.read_bytes() == OLD and _listing(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("exc", [ValueError("the serialiser failed"), KeyboardInterrupt()])
def test_an_exception_while_writing_propagates_and_changes_nothing(tmp_path: Path, temp_mode: str,
                                                                   exc: BaseException) -> None:
    path = _old_file(tmp_path)
    with pytest.raises(type(exc)):
        with atomic.atomic_write(path) as f:
            f.write(b"half of it")
            raise exc
    assert path.read_bytes() == OLD and _listing(tmp_path) == ["out.bin"]


def test_files_written_together_appear_together_or_not_at_all(tmp_path: Path, temp_mode: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    text, side = _old_file(tmp_path, "net.nmcir"), _old_file(tmp_path, "net.nmcir.npz")
    calls = []

    def fsync_fails_second(fd: int) -> None:  # the first file is complete, the second is not
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        os.fsync(fd)

    monkeypatch.setattr(atomic, "_fsync", fsync_fails_second)
    with pytest.raises(OutputError, match=r"net\.nmcir: error: cannot write: No space left"):
        with atomic.atomic_files([side, text]) as (a, b):
            a.write(b"new arrays")
            b.write(b"new text")
    assert text.read_bytes() == OLD and side.read_bytes() == OLD
    assert _listing(tmp_path) == ["net.nmcir", "net.nmcir.npz"]


# -- through the command line ----------------------------------------------------------------------------
def test_compile_onto_a_full_disk_keeps_the_previous_binary(cli, small_src: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "small.nmcb"
    assert cli("compile", small_src, "-o", out)[0] == 0
    good = out.read_bytes()
    before = _listing(tmp_path)
    real_open = atomic._open
    # Let the pre-flight create its probe file, then fill the disk for the real write.
    opened = []

    def open_then_full(path, flags, mode=0o777):
        opened.append(path)
        return real_open(path, flags, mode) if len(opened) == 1 else os.open("/dev/full", os.O_WRONLY)

    monkeypatch.setattr(atomic, "_open", open_then_full)
    code, _, err = cli("compile", small_src, "-o", out)
    assert code == 1
    assert err.splitlines()[-1] == f"{out}: error: cannot write: No space left on device; the previous file, if any, " \
                                   "is unchanged"
    assert [ln for ln in err.splitlines() if ": error: " in ln] == [err.splitlines()[-1]]
    assert out.read_bytes() == good and _listing(tmp_path) == before


def test_a_result_that_cannot_be_renamed_keeps_the_previous_result(cli, small_src: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "s.nmcb"
    assert cli("compile", small_src, "-o", binary)[0] == 0
    result = _old_file(tmp_path, "r.npz")
    before = _listing(tmp_path)
    monkeypatch.setattr(atomic, "_replace", _fail(errno.EROFS))
    code, _, err = cli("run", binary, "--steps", "20", "--out", result)
    assert code == 1 and err.strip() == f"{result}: error: cannot write: Read-only file system; the previous " \
                                        "file, if any, is unchanged"
    assert result.read_bytes() == OLD and _listing(tmp_path) == before


def test_ir_and_its_arrays_fail_together(cli, small_src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ir = tmp_path / "small.nmcir"
    assert cli("compile", small_src, "--emit", "ir", "--pass-pipeline", "verify", "-o", ir)[0] == 0
    side = tmp_path / "small.nmcir.npz"
    old_text, old_side = ir.read_bytes(), side.read_bytes()
    before = _listing(tmp_path)
    monkeypatch.setattr(atomic, "_replace", _fail(errno.ENOSPC))
    code, _, err = cli("compile", small_src, "--emit", "ir", "-o", ir)  # a different IR: after all passes
    assert code == 1 and "cannot write: No space left on device" in err
    assert ir.read_bytes() == old_text and side.read_bytes() == old_side and _listing(tmp_path) == before


def test_results_go_to_exactly_the_file_named(cli, small_src: Path, tmp_path: Path) -> None:
    binary = tmp_path / "s.nmcb"
    assert cli("compile", small_src, "-o", binary)[0] == 0
    code, _, err = cli("run", binary, "--steps", "5", "--out", tmp_path / "result")
    assert code == 0 and f"nmc: wrote {tmp_path / 'result'}" in err
    assert (tmp_path / "result").is_file() and not (tmp_path / "result.npz").exists()
    assert int(np.load(tmp_path / "result")["timesteps"]) == 5


# -- killed while writing ------------------------------------------------------------------------------
WRITER = textwrap.dedent("""
    import sys, time
    from nmc import atomic
    atomic._TMPFILE = atomic._TMPFILE and sys.argv[2] == "unnamed"
    with atomic.atomic_write(sys.argv[1]) as f:
        f.write(b"new" * 1_000_000)
        f.flush()
        print("writing", flush=True)
        time.sleep(60)
""")


def _signals(mode: str) -> list[signal.Signals]:
    # A killed process cleans nothing up: only an unnamed temporary file is gone by itself.
    return [signal.SIGKILL, signal.SIGTERM, signal.SIGINT] if mode == "unnamed" else [signal.SIGINT]


@pytest.mark.parametrize("mode", TEMP_MODES)
def test_a_process_killed_while_writing_leaves_the_previous_file(tmp_path: Path, mode: str) -> None:
    if mode == "unnamed" and not atomic._TMPFILE:
        pytest.skip("this system has no O_TMPFILE")
    for sig in _signals(mode):
        path = _old_file(tmp_path)
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(path), mode], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        try:
            assert p.stdout.readline().strip() == "writing"
            # Three megabytes are on their way to the disk, under no name or a hidden one.
            p.send_signal(sig)
            p.wait(timeout=30)
        finally:
            p.kill()
            p.wait()
        assert p.returncode != 0, sig
        assert path.read_bytes() == OLD, sig
        assert _listing(tmp_path) == ["out.bin"], sig


def test_a_run_killed_before_its_result_is_written_keeps_the_previous_result(small_src: Path, tmp_path: Path) -> None:
    from nmc.binary import encode_binary
    from nmc.driver import compile_file
    binary = tmp_path / "s.nmcb"
    binary.write_bytes(encode_binary(compile_file(small_src)))
    result = _old_file(tmp_path, "r.npz")
    before = _listing(tmp_path)
    p = subprocess.Popen([sys.executable, "-m", "nmc", "run", str(binary), "--steps", "5000000", "--out", str(result),
                          "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3)
        assert p.poll() is None, p.stderr.read()  # still running
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
    finally:
        p.kill()
        p.wait()
    assert result.read_bytes() == OLD and _listing(tmp_path) == before


# -- a really full and a really read-only file system ------------------------------------------------------
FULL_AND_READ_ONLY = textwrap.dedent("""
    set -u
    mount -t tmpfs -o size=64k tmpfs "$FS" || exit 77
    printf 'previous binary' > "$FS/out.nmcb"
    head -c 57344 /dev/zero > "$FS/filler" 2>/dev/null  # leave less room than the binary needs
    "$PY" -m nmc compile "$SRC" -o "$FS/out.nmcb"; echo "full: exit $?"
    echo "full: $(cat "$FS/out.nmcb")"; echo "full: $(ls -A "$FS" | tr '\\n' ' ')"
    rm "$FS/filler"
    mount -o remount,ro "$FS"
    "$PY" -m nmc compile "$SRC" -o "$FS/out.nmcb"; echo "ro: exit $?"
    echo "ro: $(cat "$FS/out.nmcb")"; echo "ro: $(ls -A "$FS" | tr '\\n' ' ')"
""")


def test_a_tiny_file_system_full_then_read_only(small_src: Path, tmp_path: Path) -> None:
    """The whole command line against a real 64 KiB tmpfs, in a private mount namespace (so
    nothing is mounted for anyone else); skipped where the test may not make one."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1)")
    fs = tmp_path / "fs"
    fs.mkdir()
    env = dict(os.environ, FS=str(fs), SRC=str(small_src), PY=sys.executable,
               PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.run(["unshare", "--mount", "sh", "-c", FULL_AND_READ_ONLY], capture_output=True, text=True,
                       env=env, timeout=120)
    if p.returncode == 77 or "unshare failed" in p.stderr or "Operation not permitted" in p.stderr:
        pytest.skip("may not mount a tmpfs in a private mount namespace here")
    out = p.stdout.splitlines()
    errors = [ln for ln in p.stderr.splitlines() if ": error: " in ln]
    assert out == ["full: exit 1", "full: previous binary", "full: filler out.nmcb ",
                   "ro: exit 1", "ro: previous binary", "ro: out.nmcb "], (p.stdout, p.stderr)
    assert errors == [f"{fs}/out.nmcb: error: cannot write: No space left on device; the previous file, if any, "
                      "is unchanged", f"{fs}/out.nmcb: error: the output is on a read-only file system"], p.stderr
    assert "Traceback" not in p.stderr
