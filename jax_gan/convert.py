"""Move weights between the PyTorch reference and jax_gan, both ways.

A torch Linear stores `weight` as (out, in) and computes x @ W.T; a Flax Dense
stores `kernel` as (in, out) and computes x @ K. So K = W.T, and the layer
names follow the torch Sequential indices: `model.3.weight` is
`params["model"]["Dense_3"]["kernel"]`. Adam's moments move the same way, so
a run can be continued in the other framework.

`python -m jax_gan.convert IN.pth OUT_DIR` imports a reference checkpoint as a
jax_gan run; `python -m jax_gan.convert RUN_DIR OUT.pth` exports one the
tutorial's notebook can load.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_core import rundir
from gan_core.cli import add_debug_flag, main_guard
from gan_core.config import Config
from gan_core.errors import CheckpointError, UserError, first_line
from gan_core.tutorial_checkpoint import LAYERS, TUTORIAL_KEYS, check_payload, param_names, tensor_checksums
from jax_gan import checkpoint
from jax_gan.checkpoint import Checkpointer
from jax_gan.train_step import TrainState

try:  # Only converting needs torch (`pip install jax-gan[torch]`); the mapping below does not.
    import torch
except ImportError:
    torch = None


def torch_to_params(state_dict: Mapping[str, Any], dtype: Any = np.float32) -> dict:
    """A G or D torch state_dict to Flax params (NumPy arrays)."""
    layers = {}
    for i in LAYERS:
        try:
            w = np.asarray(_numpy(state_dict[f"model.{i}.weight"]), dtype)
            b = np.asarray(_numpy(state_dict[f"model.{i}.bias"]), dtype)
        except KeyError as e:
            raise CheckpointError(f"state_dict lacks {e.args[0]}; not the tutorial's model") from None
        layers[f"Dense_{i}"] = {"kernel": w.T.copy(), "bias": b.copy()}
    return {"model": layers}


def params_to_torch(params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Flax params to a torch state_dict layout (NumPy arrays; wrap with torch.from_numpy)."""
    out = {}
    for i in LAYERS:
        layer = params["model"][f"Dense_{i}"]
        out[f"model.{i}.weight"] = np.asarray(layer["kernel"]).T.copy()
        out[f"model.{i}.bias"] = np.asarray(layer["bias"]).copy()
    return out


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def torch_adam_to_optax(opt_state_dict: Mapping[str, Any], params: Any,
                        dtype: Any = np.float32) -> tuple:
    """A torch Adam state_dict to optax.adam's state for `params`."""
    state = opt_state_dict.get("state", {})
    names = param_names()
    if not state:  # Adam before its first step.
        zeros = {n: np.zeros_like(v) for n, v in params_to_torch(params).items()}
        mu = nu = zeros
        count = 0
    else:
        mu = {n: _numpy(state[i]["exp_avg"]) for i, n in enumerate(names)}
        nu = {n: _numpy(state[i]["exp_avg_sq"]) for i, n in enumerate(names)}
        count = int(_numpy(state[0]["step"]))
    to_tree = lambda d: _as_jnp(torch_to_params(d, dtype))  # noqa: E731
    adam = optax.ScaleByAdamState(count=jnp.asarray(count, jnp.int32), mu=to_tree(mu), nu=to_tree(nu))
    return (adam, optax.EmptyState())


def optax_to_torch_adam(opt_state: tuple, config: Config) -> dict[str, Any]:
    """optax.adam's state to a torch Adam state_dict (tensors)."""
    adam = opt_state[0]
    count = int(adam.count)
    mu, nu = params_to_torch(adam.mu), params_to_torch(adam.nu)
    names = param_names()
    state = {}
    if count > 0:
        state = {i: {"step": torch.tensor(float(count)),
                     "exp_avg": torch.from_numpy(mu[n].astype(np.float32)),
                     "exp_avg_sq": torch.from_numpy(nu[n].astype(np.float32))}
                 for i, n in enumerate(names)}
    group = {"lr": config.lr, "betas": (config.b1, config.b2), "eps": config.eps,
             "weight_decay": 0, "amsgrad": False, "maximize": False, "foreach": None,
             "capturable": False, "differentiable": False, "fused": None,
             "decoupled_weight_decay": False, "params": list(range(len(names)))}
    return {"state": state, "param_groups": [group]}


def _as_jnp(tree: Any) -> Any:
    return jax.tree.map(jnp.asarray, tree)


def checkpoint_to_state(payload: Mapping[str, Any], config: Config, dtype: Any = np.float32):
    """A torch_reference checkpoint (the tutorial's keys) to a jax_gan TrainState.

    `dtype=np.float64` (under `jax.enable_x64`) keeps a double-precision reference exact.
    """
    params_g = _as_jnp(torch_to_params(payload["model_G_state_dict"], dtype))
    params_d = _as_jnp(torch_to_params(payload["model_D_state_dict"], dtype))
    opt_g = torch_adam_to_optax(payload.get("optimizer_G_state_dict", {}), params_g, dtype)
    opt_d = torch_adam_to_optax(payload.get("optimizer_D_state_dict", {}), params_d, dtype)
    step = int(payload.get("step", opt_g[0].count))
    key = jax.random.split(jax.random.PRNGKey(config.seed))[1]
    return TrainState(step=jnp.asarray(step, jnp.int32), params_g=params_g, params_d=params_d,
                      opt_state_g=opt_g, opt_state_d=opt_d, key=key)


def state_to_checkpoint(state: Any, config: Config, epoch: int) -> dict[str, Any]:
    """A jax_gan TrainState to the tutorial's checkpoint dict (torch tensors)."""
    tensors = lambda p: {k: torch.from_numpy(v.astype(np.float32))  # noqa: E731
                         for k, v in params_to_torch(p).items()}
    return {
        "epoch": epoch,
        "model_G_state_dict": tensors(state.params_g),
        "model_D_state_dict": tensors(state.params_d),
        "optimizer_G_state_dict": optax_to_torch_adam(state.opt_state_g, config),
        "optimizer_D_state_dict": optax_to_torch_adam(state.opt_state_d, config),
        "step": int(state.step),
        "config": config.to_dict(),
    }


def read_pth(src: Path) -> tuple[dict[str, Any], Config]:
    """A tutorial-layout `.pth` and its config, checked against each other and for usable values
    (`gan_core.tutorial_checkpoint.check_payload`)."""
    try:
        payload = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch.load fails in many ways on a bad file.
        raise CheckpointError(f"{src} is not a readable PyTorch checkpoint: {first_line(e)}") from e
    return payload, check_payload(payload, str(src))


def import_torch_checkpoint(src: Path, out_dir: Path) -> int:
    """Write `src` as a new jax_gan run in `out_dir`; every check is made before anything is created,
    and a run that fails to write (a full disk) is removed again."""
    payload, config = read_pth(src)
    missing = [k for k in TUTORIAL_KEYS if k not in payload]
    if missing:  # A run continues from them: the optimizers' state and the epoch count.
        raise CheckpointError(f"{src} lacks '{missing[0]}', one of the tutorial's keys "
                              f"({', '.join(TUTORIAL_KEYS)}); it cannot be imported as a run")
    state = checkpoint_to_state(payload, config)
    meta = {"config": config.to_dict(), "epoch": int(payload["epoch"]),
            "dataset_used": payload.get("dataset_used"), "framework": "jax", "converted_from": str(src)}
    created = not rundir.checked(out_dir.exists, out_dir)
    out_dir, lock = rundir.prepare_out_dir(out_dir, resume=False, overwrite=False)
    try:
        rundir.save_config(out_dir, config, {"converted_from": str(src)})
        checkpointer = Checkpointer(out_dir / "checkpoints", keep=config.keep_checkpoints)
        try:
            checkpointer.save(state, meta)
        finally:
            checkpointer.close()
    except BaseException:
        with contextlib.suppress(OSError):  # Nothing half-imported is left; a user's own files stay.
            rundir.remove_run_outputs(out_dir)
            (out_dir / rundir.MARKER).unlink()
        lock.release()
        with contextlib.suppress(OSError):
            (out_dir / rundir.LOCK).unlink()
            if created:
                out_dir.rmdir()
        raise
    lock.release()
    return int(state.step)


def export_torch_checkpoint(src: Path, dest: Path, overwrite: bool = False) -> int:
    if rundir.checked(dest.exists, dest) and not overwrite:
        raise UserError(f"{dest} already exists; pass --overwrite to replace it")
    if not rundir.checked(dest.parent.is_dir, dest.parent):
        raise UserError(f"directory {dest.parent} does not exist")
    state, config, meta = checkpoint.load(src)
    payload = state_to_checkpoint(state, config, int(meta.get("epoch", 0)))
    payload["dataset_used"] = meta.get("dataset_used")
    payload["checksums"] = tensor_checksums(payload)
    check_payload(payload, str(src))  # What an import would refuse (NaN weights) is not written either.
    buffer = io.BytesIO()  # Serialized first: a full disk is then an OSError naming the file.
    torch.save(payload, buffer)
    with rundir.atomic_write(dest, "wb") as f:  # Never a truncated .pth at `dest`.
        f.write(buffer.getbuffer())
    return int(state.step)


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jax_gan.convert", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", help="a .pth from torch_reference.train, or a jax_gan run directory")
    p.add_argument("dest", help="a new jax_gan run directory, or a .pth file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing .pth file")
    add_debug_flag(p)
    args = p.parse_args(argv)
    if torch is None:
        raise UserError("converting checkpoints needs PyTorch: pip install 'jax-gan[torch]'")
    src, dest = Path(args.src), Path(args.dest)
    if not rundir.checked(src.exists, src):
        raise UserError(f"{src} does not exist")
    if src.is_file():
        step = import_torch_checkpoint(src, dest)
        print(f"imported {src} (step {step}) as a jax_gan run in {dest}")
    else:
        if dest.suffix != ".pth":
            raise UserError(f"exporting a jax_gan run writes a .pth file; got {dest}")
        step = export_torch_checkpoint(src, dest, overwrite=args.overwrite)
        print(f"exported {src} (step {step}) to {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
