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
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from gan_core.errors import UserError

WORKER = ("-m", "jax_gan.quality.serve")
# The metrics scored during training: jax_gan.evaluate's, less the Parzen window (its
# pixel-space distances cost more than the rest together) and the constant descriptions.
KEYS = ("fid", "precision", "recall", "density", "coverage", "class_entropy", "classes_covered",
        "confidence")


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

    def __init__(self, dataset: str, data_dir: str | os.PathLike, python: str = sys.executable):
        self.folder = Path(tempfile.mkdtemp(prefix="jax-gan-eval-"))
        env = {**os.environ, "JAX_PLATFORMS": "cpu"}
        try:
            self.process = subprocess.Popen(
                [python, *WORKER, "--dataset", dataset, "--data-dir", str(data_dir)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                start_new_session=True)
        except OSError as e:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise UserError(f"cannot start the quality scorer ({python}): {e.strerror or e}") from e
        try:
            self.info = self._reply()  # {"reference_split", "classifier_accuracy"}
        except BaseException:
            self.close(abort=True)
            raise

    def score(self, images: np.ndarray, seed: int = 0) -> dict[str, Any]:
        """The `KEYS` metrics of `images` (N, 28, 28) in [-1, 1]."""
        path = self.folder / "samples.npy"
        try:
            np.save(path, np.asarray(images, np.float32))
        except OSError as e:
            raise UserError(f"cannot write samples for the quality scorer in {self.folder}: "
                            f"{e.strerror or e}") from e
        self._send({"images": str(path), "seed": seed})
        scores = self._reply()
        path.unlink(missing_ok=True)
        missing = [k for k in KEYS if k not in scores]
        if missing:
            raise UserError(f"the quality scorer's reply lacks {', '.join(missing)}")
        return {k: scores[k] for k in KEYS}

    def _send(self, request: dict[str, Any]) -> None:
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            self._died()

    def _reply(self) -> dict[str, Any]:
        line = self.process.stdout.readline()
        if not line:
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
