"""The scoring worker behind `--eval-every`: `python -m jax_gan.quality.serve --dataset D --data-dir DIR`.

`gan_core.quality.QualityWorker` starts it beside a trainer of either
framework and talks to it over stdin and stdout, one JSON line each way.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from gan_core.cli import main_guard
from gan_core.config import DATASETS, Config
from gan_core.errors import UserError
from gan_core.quality import KEYS as TRAINING_KEYS
from jax_gan.quality.scores import assess, load_reference


def serve(dataset: str, data_dir: str, requests: TextIO = sys.stdin, replies: TextIO | None = None) -> int:
    """Score request after request for one dataset; the exit status.

    Loads the reference once, then answers each request line, JSON
    {"images": PATH.npy, "seed": S}, with one JSON line of `TRAINING_KEYS`
    scores (no Parzen window), or {"error": MESSAGE}; exits at end of input.
    Everything else this process prints goes to stderr, so the replies stay
    the only lines on stdout.
    """
    if replies is None:  # Replies get the real stdout; everything else printed, C libraries included, stderr.
        replies = os.fdopen(os.dup(1), "w")
        os.dup2(2, 1)
        sys.stdout = sys.stderr

    def reply(obj: dict[str, Any]) -> None:
        replies.write(json.dumps(obj) + "\n")
        replies.flush()

    try:
        reference = load_reference(dataset, data_dir)
    except UserError as e:
        reply({"error": str(e)})
        return 2
    reply({"reference_split": reference.split, "classifier_accuracy": reference.classifier.accuracy})
    folders = set()  # The trainer's temporary folders: removed here too, in case it was killed.
    for line in requests:
        try:
            request = json.loads(line)
            folders.add(Path(request["images"]).parent)
            images = np.load(request["images"], allow_pickle=False)
            if not isinstance(images, np.ndarray):  # A .npz archive, whatever its name.
                images.close()
                raise UserError(f"{request['images']} is a .npz archive, not one .npy array")
            scores, _ = assess(images, reference, seed=int(request.get("seed", 0)), parzen=False)
            reply({k: scores[k] for k in TRAINING_KEYS})
        except UserError as e:
            reply({"error": str(e)})
        except (OSError, ValueError, KeyError, TypeError) as e:
            reply({"error": f"bad request: {e}"})
    for folder in folders:
        if folder.name.startswith("jax-gan-eval-"):
            shutil.rmtree(folder, ignore_errors=True)
    return 0


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jax_gan.quality.serve", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=DATASETS, default=Config().dataset,
                   help="real digits to compare with")
    p.add_argument("--data-dir", default=Config().data_dir, metavar="DIR",
                   help="where the dataset lives and the classifier is cached")
    args = p.parse_args(argv)
    return serve(args.dataset, args.data_dir)


if __name__ == "__main__":
    sys.exit(main())
