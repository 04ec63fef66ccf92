"""How good are the samples? `python -m jax_gan.evaluate INPUT`.

Losses do not say: a GAN's loss curves look the same whether it draws ten
digit classes or two. This scores samples against real digits that the
feature classifier (`jax_gan.quality.classifier`) never trained on, with the
metrics of `gan_core.metrics`:

    python -m jax_gan.evaluate samples.npy               # (N, 28, 28) in [-1, 1]
    python -m jax_gan.evaluate runs/jax_gan --num 10000  # or a torch_reference run
    python -m jax_gan.evaluate runs/torch_reference --json quality.json

From Python: `jax_gan.quality.scores.evaluate_images`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gan_core import rundir
from gan_core.cli import add_debug_flag, main_guard
from gan_core.config import DATASETS, Config
from gan_core.errors import UserError
from jax_gan import backend
from jax_gan.quality import serve
from jax_gan.quality.inputs import read_input
from jax_gan.quality.scores import METRIC_KEYS, MIN_SAMPLES, TOO_FEW, assess, load_reference

NUM = 10_000


MEANINGS = {
    "fid": "Fréchet distance of classifier features to the real digits (0 = same distribution)",
    "precision": "share of samples inside the real digits' k-NN balls (realism; k=3)",
    "recall": "share of real digits inside the samples' k-NN balls (variety)",
    "density": "real k-NN balls holding each sample, over k (about 1 for real digits)",
    "coverage": "share of real digits with a sample in their k-NN ball",
    "class_entropy": "nats of the predicted-class histogram (2.303 = ten equal classes)",
    "classes_covered": "classes holding at least 1% of the samples",
    "confidence": "mean top class probability (how digit-like the samples look)",
    "parzen_ll": "Parzen-window log-likelihood of the real digits, nats (Goodfellow 2014)",
}


def table(scores: dict[str, Any], details: dict[str, Any]) -> str:
    lines = [f"{'metric':<16}{'value':>16}  meaning"]
    for key in METRIC_KEYS:
        if key == "parzen_se":
            continue
        value = scores[key]
        if key == "parzen_ll":
            shown = "skipped" if value is None else f"{value:.1f} ± {scores['parzen_se']:.1f}"
            meaning = MEANINGS[key] + (f", sigma {details['parzen_sigma']:.3f}" if value is not None else "")
        else:
            shown = str(value) if isinstance(value, int) else f"{value:.3f}"
            meaning = MEANINGS[key]
        lines.append(f"{key:<16}{shown:>16}  {meaning}")
    shares = " ".join(f"{c}:{100 * s:.0f}%" for c, s in enumerate(details["class_shares"]))
    lines.append(f"{'class shares':<16}  {shares}")
    return "\n".join(lines)


def check_json(out: Path) -> None:
    """Refuse a --json that cannot be written now, not after minutes of scoring."""
    if rundir.checked(out.is_dir, out):
        raise UserError(f"--json {out} is a directory; name a file")
    if not rundir.checked(out.parent.is_dir, out.parent):
        raise UserError(f"--json: directory {out.parent} does not exist")
    try:
        rundir.probe_writable(out.parent)
    except OSError as e:
        raise UserError(f"--json: cannot write in {out.parent}: {e.strerror or e}") from e


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jax_gan.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", nargs="?", help="a .npy of images (N, 28, 28) in [-1, 1], or a jax_gan or "
                                 "torch_reference run directory (or its checkpoint: RUN/best or "
                                 "RUN/best.pth is the best-FID state of a run trained with --eval-every)")
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help="real digits to compare with (default: the run's dataset; mnist for a .npy)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="where the dataset lives and the classifier is cached "
                        "(default: the run's; data for a .npy)")
    p.add_argument("--num", type=int, default=NUM,
                   help=f"samples to draw from a run, or the most to read from a .npy (default: {NUM:,})")
    p.add_argument("--seed", type=int, default=0, help="seed of the latents and of the k-NN chunks "
                                                       "(default: 0)")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the scores to this JSON file")
    p.add_argument("--no-parzen", action="store_true",
                   help="skip the Parzen window (the slowest metric on full MNIST)")
    # The scoring worker, as `python -m jax_gan.quality.serve` (what gan_core.quality starts) runs it.
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    add_debug_flag(p)
    args = p.parse_args(argv)
    if args.serve:
        return serve.serve(args.dataset or Config().dataset, args.data_dir or Config().data_dir)
    if args.input is None:
        p.error("the following arguments are required: input")
    if args.num < MIN_SAMPLES:
        raise UserError(f"--num must be at least {MIN_SAMPLES}, got {args.num}; {TOO_FEW}")
    if args.seed < 0:
        raise UserError(f"--seed must be non-negative, got {args.seed}")
    out = Path(args.json) if args.json else None
    if out is not None:
        check_json(out)
    backend.platform()
    source = read_input(Path(args.input), args.num, args.seed)
    dataset = args.dataset or source.dataset or Config().dataset
    data_dir = args.data_dir or source.data_dir or Config().data_dir
    reference = load_reference(dataset, data_dir)
    scores, details = assess(source.images, reference, seed=args.seed, parzen=not args.no_parzen)
    print(f"{scores['num_samples']:,} samples from {source.what}\n"
          f"against the {reference.split}\n"
          f"feature classifier: {100 * reference.classifier.accuracy:.2f}% accurate on those images\n")
    print(table(scores, details))
    if out is not None:
        with rundir.atomic_write(out) as f:
            f.write(json.dumps(scores, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
