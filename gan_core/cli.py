"""Command lines: flags derived from `Config`, and one-line errors.

Both trainers take the same flags (less the few one framework ignores) and
write the same outputs, so a run of one can be read beside a run of the other.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gan_core.config import MAX_SEED, Config, field_type, flag_name, structural_fields
from gan_core.errors import UserError

METAVARS = {int: "N", float: "X", str: "DIR"}  # The only free-form string field is --data-dir.


def config_fields(framework: str, exclude: tuple[str, ...] = ()) -> list[dataclasses.Field]:
    """The Config fields a framework's command line exposes."""
    return [f for f in dataclasses.fields(Config)
            if f.metadata["flag"] and f.metadata["only"] in (None, framework) and f.name not in exclude]


def add_config_flags(parser: argparse.ArgumentParser, framework: str, exclude: tuple[str, ...] = ()) -> None:
    """One flag per Config field; each defaults to None so a resume can tell what was given."""
    group = parser.add_argument_group("training configuration")
    for f in config_fields(framework, exclude):
        kind = field_type(f)
        help_text = f.metadata["help"]
        if f.default is not None:
            shown = f.default if kind is not bool else str(f.default).lower()
            help_text += f" (default: {shown})"
        kwargs: dict[str, Any] = {"dest": f.name, "default": None, "help": help_text}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = kind
            kwargs["metavar"] = METAVARS[kind] if f.metadata["choices"] is None else None
            kwargs["choices"] = f.metadata["choices"]
        group.add_argument(flag_name(f.name), **kwargs)


def train_parser(framework: str, prog: str, description: str,
                 default_out_dir: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    add_config_flags(p, framework)
    run = p.add_argument_group("run")
    run.add_argument("--out-dir", default=default_out_dir, metavar="DIR",
                     help=f"where the run's outputs go (default: {default_out_dir})")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true",
                      help="continue the run in --out-dir from its latest checkpoint")
    mode.add_argument("--overwrite", action="store_true",
                      help="delete a previous run's outputs in --out-dir and start afresh")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    add_debug_flag(run)
    return p


def add_debug_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument("--debug", action="store_true",
                        help="on an error, print the full traceback after the one-line message")


def given_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields the user set on the command line."""
    names = {f.name for f in dataclasses.fields(Config)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def resolve_config(overrides: dict[str, Any], saved: dict[str, Any] | None = None) -> Config:
    """Flags over the saved config of a resumed run, over the defaults; validated."""
    if saved is None:
        config = Config(**overrides)
    else:
        base = Config.from_dict(saved)
        check_resumable(base, overrides)
        config = dataclasses.replace(base, **overrides)
    config.validate()
    return config


def check_resumable(saved: Config, changes: dict[str, Any]) -> None:
    """A resume may change how long and how often, never what is being trained."""
    changed = [k for k in structural_fields() if k in changes and changes[k] != getattr(saved, k)]
    if changed:
        flags = ", ".join(flag_name(k) for k in changed)
        raise UserError(f"cannot change {flags} when resuming; start a new run in another "
                        f"--out-dir instead")


def main_guard(main: Callable[[Sequence[str] | None], int | None]) -> Callable:
    """Turn `UserError` into one line on stderr and exit status 2.

    The exception keeps its cause; `--debug` prints the whole chain.
    """

    @functools.wraps(main)
    def wrapper(argv: Sequence[str] | None = None) -> int:
        try:
            return main(argv) or 0
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            if "--debug" in (sys.argv[1:] if argv is None else argv):
                traceback.print_exception(e)
            return 2
        except KeyboardInterrupt:  # A trainer's second Ctrl-C, or the first one elsewhere.
            print("\ninterrupted: stopped at once, nothing more was saved", file=sys.stderr)
            return 128 + signal.SIGINT

    return wrapper


# --- sample and interpolate: the options both frameworks' commands share -------------------------

def sample_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Generate images from a checkpoint.")
    p.add_argument("--checkpoint", required=True,
                   help="run directory or checkpoint (RUN/best, or RUN/best.pth for the reference: the "
                        "best-FID state of a run trained with --eval-every)")
    p.add_argument("--num", type=int, default=25, help="how many images (default: 25)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent batch (default: 0)")
    p.add_argument("--out", required=True, help="output file: .png (grid) or .npy (raw array)")
    add_scale_flag(p)
    add_debug_flag(p)
    return p


def add_scale_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image-scale", type=int, default=4,
                   help="enlarge a .png this many times, nearest neighbour (default: 4)")


def check_out(path: str, num: int, scale: int = 1, seeds: dict[str, int | None] | None = None) -> Path:
    """Every option of sample/interpolate checked before any work: one line for the first bad one."""
    if num <= 0:
        raise UserError(f"--num must be positive, got {num}")
    if not 1 <= scale <= 16:
        raise UserError(f"--image-scale must be in [1, 16], got {scale}")
    for flag, seed in (seeds or {}).items():
        if seed is not None and not 0 <= seed <= MAX_SEED:
            raise UserError(f"{flag} must be in [0, {MAX_SEED}], got {seed}")
    out = Path(path)
    if out.suffix not in (".png", ".npy"):
        raise UserError(f"--out must end in .png or .npy, got {out.name}")
    try:
        if not out.parent.is_dir():
            raise UserError(f"directory {out.parent} does not exist")
    except OSError as e:
        raise UserError(f"cannot use --out {out}: {e.strerror or e}") from e
    check_memory(num, png=out.suffix == ".png", scale=scale)
    return out


def check_memory(num: int, png: bool, scale: int, image_side: int = 28, latent_dim: int = 100) -> None:
    """Refuse a --num that cannot fit in memory, before allocating any of it."""
    per_image = 4 * (latent_dim + 2 * 256 + 2 * image_side**2)  # z, activations, output and its copy.
    need = num * per_image
    if png:
        side = (math.isqrt(num - 1) + 1) * (image_side + 2) + 2
        need += side * side * (4 + 3 * scale * scale)  # The float grid, then RGB pixels, enlarged.
    free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if need > free // 2:
        raise UserError(f"--num {num} needs about {need / 2**30:.1f} GiB for {'a PNG' if png else 'its'} "
                        f"images and this machine has {free / 2**30:.1f} GiB free; ask for fewer"
                        + (" or write .npy" if png else ""))
