"""Which processes of a multi-process run are alive: a watchdog beside each one.

Each process of a multi-process sweep starts a `PeerWatch`: a small process
of its own that, every second, touches this process's heartbeat file in the
run's shared folder and looks at the others'. A peer whose file stops
changing for `timeout` seconds is taken for dead: the watchdog prints one
line and ends the process it watches over, which would otherwise wait in its
next collective until XLA's coordination service aborts it, minutes later,
with a C++ stack trace. A process of its own, because a process blocked in a
collective runs none of its Python threads; only the files' changes are
compared, on the local clock, so the machines' clocks need not agree.

`python -m gan_core.peers FOLDER PROCESS COUNT PID TIMEOUT` is the watchdog.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def heartbeat(folder: Path, process: int) -> Path:
    return folder / f".heartbeat.process{process}"


class PeerWatch:
    """The watchdog of this process (`me` of `count`), for as long as the run has collectives."""

    def __init__(self, folder: Path, me: int, count: int, timeout: float = 30.0) -> None:
        self.folder, self.me = folder, me
        self.child = subprocess.Popen(
            [sys.executable, "-m", "gan_core.peers", str(folder), str(me), str(count), str(os.getpid()),
             str(timeout)], stdin=subprocess.DEVNULL, start_new_session=True)

    def stop(self, finished: bool) -> None:
        """`finished`: after the last collective, so that the others stop watching this process
        (one that ends on an error just falls silent, and the others stop too)."""
        self.child.terminate()
        self.child.wait()
        if finished:
            with contextlib.suppress(OSError):
                heartbeat(self.folder, self.me).write_text("done\n")


def watch(folder: Path, me: int, count: int, parent: int, timeout: float, every: float = 1.0) -> int:
    started = time.time()
    seen: dict[int, tuple[float | None, float]] = {}  # process -> (mtime, local time it changed)
    while True:
        if os.getppid() != parent:
            return 0  # The process watched over is gone (even as a zombie): its heartbeat stops too.
        with contextlib.suppress(OSError):
            heartbeat(folder, me).write_text(f"{time.time()}\n")
        now = time.monotonic()
        for process in range(count):
            if process == me:
                continue
            path = heartbeat(folder, process)
            try:
                mtime = path.stat().st_mtime
                if mtime >= started - 1 and path.read_text().startswith("done"):
                    continue  # Finished in this run (not an earlier run's "done").
            except OSError:
                mtime = None
            last = seen.get(process)
            if last is None or last[0] != mtime:
                seen[process] = (mtime, now)
            elif now - last[1] > timeout:
                print(f"\nerror: process {process} of this run stopped responding ({timeout:.0f} s without "
                      f"a sign of life); process {me} stops too. Resume from the last checkpoint with "
                      "--resume, on every process", file=sys.stderr, flush=True)
                os.kill(parent, signal.SIGKILL)  # It may be inside a collective that never returns.
                return 1
        time.sleep(every)


if __name__ == "__main__":
    folder_, me_, count_, parent_, timeout_ = sys.argv[1:6]
    sys.exit(watch(Path(folder_), int(me_), int(count_), int(parent_), float(timeout_)))
