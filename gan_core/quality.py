"""Sample quality while a run trains (`--eval-every`): a scoring worker beside the trainer.

Both trainers are scored the same way, by the same program: `python -m
jax_gan.quality.serve`, started once per run in a process of its own. It
loads (or, the first time, trains) the feature classifier and embeds the
held-out digits once, then scores one set of samples per request. A process
of its own keeps the frameworks apart: the PyTorch reference imports no JAX,
and the scorer's JAX runs on the CPU, so it never takes the memory that a
trainer's GPU needs.

The worker lives in its own session, so a Ctrl-C at the terminal reaches
the trainer alone (which stops cleanly, then closes the worker; a run that
ends on an exception kills it); if the trainer is killed, the worker reads
end-of-file when it next waits for a request, and exits.

A worker that stops answering never holds the trainer: each reply has a
timeout, after which the worker is killed and the trainer gets a `UserError`
(the driver warns and trains on without scores); and while the trainer waits,
a Ctrl-C or SIGTERM still reaches its handler (a second Ctrl-C aborts at
once) and leaves the worker `STOP_GRACE` seconds to answer before it is killed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from gan_core.errors import UserError

WORKER = ("-m", "jax_gan.quality.serve")
# The metrics scored during training: jax_gan.evaluate's, less the Parzen window (its
# pixel-space distances cost more than the rest together) and the constant descriptions.
KEYS = ("fid", "precision", "recall", "density", "coverage", "class_entropy", "classes_covered",
        "confidence")
START_TIMEOUT = 3600.0  # The first reply can follow a download and training the classifier (minutes).
REPLY_TIMEOUT = 600.0  # A score: seconds for 10,000 samples on 2 cores, under a minute for 100,000.
STOP_GRACE = 5.0  # After a stop request, how long a reply may still take before the worker is killed.
POLL = 0.5  # Seconds between looks at the deadlines while waiting.


class StopRequested(UserError):
    """A SIGINT or SIGTERM came while waiting for the worker, and it did not answer in STOP_GRACE."""


def as_eval_range(images: np.ndarray, tutorial_normalization: bool) -> np.ndarray:
    """G's output on the real digits' scale in [-1, 1].

    Under `--tutorial-normalization`, G learned to imitate digits in [0, 1]
    (its black is 0), so [0, 1] is mapped onto [-1, 1] and anything darker
    than its black clipped; otherwise the images are returned as they are.
    """
    if not tutorial_normalization:
        return images
    return np.clip(np.asarray(images, np.float32) * 2 - 1, -1.0, 1.0)


class QualityWorker:
    """A running `jax_gan.quality.serve` for one dataset; `score(images)` -> metrics.

    Starting it checks the whole path (data, classifier cache) before a run
    writes anything: a problem is a `UserError` with the worker's own message.
    """

    def __init__(self, dataset: str, data_dir: str | os.PathLike, python: str = sys.executable, *,
                 timeout: float = REPLY_TIMEOUT, start_timeout: float = START_TIMEOUT):
        """Start the worker and wait (at most `start_timeout` s) until it is ready.

        A stop request while it starts (the trainer's SIGINT/SIGTERM handler ran) ends the wait:
        the worker is closed and `info` is None, and the trainer, seeing its stop, scores nothing.
        `timeout` bounds each later reply (also settable as the attribute).
        """
        self.folder = Path(tempfile.mkdtemp(prefix="jax-gan-eval-"))
        self.timeout = timeout
        self.info: dict[str, Any] | None = None
        self._buffer = b""
        self._stop_deadline = math.inf
        env = {**os.environ, "JAX_PLATFORMS": "cpu"}
        try:
            self.process = subprocess.Popen(
                [python, *WORKER, "--dataset", dataset, "--data-dir", str(data_dir)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, start_new_session=True)
        except OSError as e:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise UserError(f"cannot start the quality scorer ({python}): {e.strerror or e}") from e
        try:
            self.info = self._reply(start_timeout)  # {"reference_split", "classifier_accuracy"}
        except StopRequested:
            self.close(abort=True)
        except BaseException:
            self.close(abort=True)
            raise

    def score(self, images: np.ndarray, seed: int = 0) -> dict[str, Any]:
        """The `KEYS` metrics of `images` (N, 28, 28) in [-1, 1]."""
        if self.info is None:
            raise UserError("the quality scorer was stopped while it started")
        path = self.folder / "samples.npy"
        try:
            np.save(path, np.asarray(images, np.float32))
        except OSError as e:
            raise UserError(f"cannot write samples for the quality scorer in {self.folder}: "
                            f"{e.strerror or e}") from e
        self._send({"images": str(path), "seed": seed})
        scores = self._reply(self.timeout)
        path.unlink(missing_ok=True)
        missing = [k for k in KEYS if k not in scores]
        if missing:
            raise UserError(f"the quality scorer's reply lacks {', '.join(missing)}")
        return {k: scores[k] for k in KEYS}

    def _send(self, request: dict[str, Any]) -> None:
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):  # ValueError: closed by a timeout before.
            self._died()

    def _reply(self, timeout: float) -> dict[str, Any]:
        line = self._readline(timeout)
        if line is None:
            self._died()
        try:
            reply = json.loads(line)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            raise UserError(f"the quality scorer (python {' '.join(WORKER)}) sent {line.strip()[:80]!r}, "
                            "not a JSON object")
        if "error" in reply:
            raise UserError(f"quality scorer: {reply['error']}")
        return reply

    def _readline(self, timeout: float) -> str | None:
        """The worker's next line within `timeout` s (None at the end of its output); on time out,
        or STOP_GRACE after a stop request, the worker is killed and a `UserError` raised."""
        deadline = time.monotonic() + timeout
        fd = self.process.stdout.fileno()
        with self._stop_requests():
            while b"\n" not in self._buffer:
                now = time.monotonic()
                end = min(deadline, self._stop_deadline)
                if now >= end:
                    self._kill()
                    if self._stop_deadline <= now:
                        raise StopRequested(f"the quality scorer (python {' '.join(WORKER)}) was stopped: "
                                            f"no reply {STOP_GRACE:g} s after the stop request")
                    raise UserError(f"the quality scorer (python {' '.join(WORKER)}) gave no reply in "
                                    f"{timeout:g} s; stopped it")
                ready, _, _ = select.select([fd], [], [], min(end - now, POLL))
                if ready:
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:  # The end of its output: it exited (or closed stdout).
                        line, self._buffer = self._buffer, b""
                        return line.decode(errors="replace") or None
                    self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode(errors="replace")

    @contextlib.contextmanager
    def _stop_requests(self) -> Iterator[None]:
        """While waiting, a SIGINT or SIGTERM still goes to the handler in place (a trainer's stops
        the run, or aborts on a second Ctrl-C) and also cuts the wait to STOP_GRACE seconds."""
        if threading.current_thread() is not threading.main_thread():
            yield  # Only the main thread receives signals.
            return
        previous: dict[int, Any] = {}

        def handle(signum: int, frame: Any) -> None:
            before = previous[signum]
            if before == signal.SIG_IGN:
                return
            self._stop_deadline = min(self._stop_deadline, time.monotonic() + STOP_GRACE)
            if callable(before):
                before(signum, frame)
            else:  # SIG_DFL: end as the signal would have ended the process.
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

        try:
            for signum in (signal.SIGINT, signal.SIGTERM):
                current = signal.getsignal(signum)
                if current is not None:  # None: a handler not installed from Python; left alone.
                    previous[signum] = current
                    signal.signal(signum, handle)
            yield
        finally:
            for signum, before in previous.items():
                signal.signal(signum, before)

    def _kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def _died(self) -> None:
        code = self.process.wait()
        raise UserError(f"the quality scorer (python {' '.join(WORKER)}) exited with status {code}; "
                        "its messages are above")

    def close(self, abort: bool = False) -> None:
        """End the worker and remove its files.

        Normally the worker exits at end-of-input; with `abort` (the run is
        ending on an exception, a second Ctrl-C among them), or if it does not
        exit in time, it is killed at once.
        """
        try:
            if self.process.stdin and not self.process.stdin.closed:
                try:
                    self.process.stdin.close()
                except OSError:
                    pass
            if abort:
                self.process.kill()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        except BaseException:
            self.process.kill()
            raise
        finally:
            if self.process.stdout:
                self.process.stdout.close()
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> QualityWorker:
        return self

    def __exit__(self, kind: type | None, *exc: object) -> None:
        self.close(abort=kind is not None)
