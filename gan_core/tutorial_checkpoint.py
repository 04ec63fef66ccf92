"""The tutorial's checkpoint layout, without any framework.

The tutorial saved one `.pth` dict with five keys; its models are
`nn.Sequential`s whose Linear layers sit at indices 0, 3 and 6. The reference
writes this layout and `jax_gan.convert` reads and writes it, so both take
the names and the shape checks from here.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gan_core.config import MAX_STEP, Config
from gan_core.digest import array_sha256
from gan_core.errors import CheckpointError, UserError

TUTORIAL_KEYS = ("epoch", "model_G_state_dict", "model_D_state_dict",
                 "optimizer_G_state_dict", "optimizer_D_state_dict")
FILENAME = "checkpoint.pth"
LAYERS = (0, 3, 6)  # The Linear layers of the tutorial's nn.Sequential.


def checkpoint_path(path: str | Path) -> Path:
    """Accept a run directory or the .pth file itself."""
    path = Path(path)
    return path / FILENAME if path.is_dir() else path


def param_names() -> list[str]:
    """torch's parameter order, which also indexes an optimizer's state_dict."""
    return [f"model.{i}.{kind}" for i in LAYERS for kind in ("weight", "bias")]


def layer_shapes(config: Config, network: str) -> dict[str, tuple[int, ...]]:
    """The torch shapes (out, in) of every parameter of "G" or "D" under `config`."""
    h = config.hidden_dim
    sizes = ([config.latent_dim, h, h, config.image_dim] if network == "G"
             else [config.image_dim, h, h, 1])
    shapes = {}
    for layer, (fan_in, fan_out) in zip(LAYERS, zip(sizes, sizes[1:], strict=False), strict=True):
        shapes[f"model.{layer}.weight"] = (fan_out, fan_in)
        shapes[f"model.{layer}.bias"] = (fan_out,)
    return shapes


def check_state_dict(state_dict: Any, config: Config, network: str, where: str) -> None:
    """Refuse a state_dict that is not the tutorial's `network` under `config`."""
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(f"{where}: model_{network}_state_dict is not a state dict")
    expected = layer_shapes(config, network)
    missing = [k for k in expected if k not in state_dict]
    extra = [k for k in state_dict if k not in expected]
    if missing or extra:
        what = f"lacks {missing[0]}" if missing else f"has an unexpected {extra[0]}"
        raise CheckpointError(f"{where}: the {network} state dict {what}; not the tutorial's model")
    for name, shape in expected.items():
        got = tuple(getattr(state_dict[name], "shape", ()))
        if got != shape:
            raise CheckpointError(f"{where}: {network} parameter {name} has shape {got}, but its "
                                  f"config needs {shape}; not a checkpoint of this model")


def check_payload(payload: Any, where: str) -> Config:
    """The config of a loaded `.pth` dict, after checking everything in it that is read.

    Its keys and shapes against its config, the optimizer dicts' layout (when
    present: the tutorial's own files have them, a G-only file need not), the
    checksums, and then the values: every weight and Adam moment finite, every
    counter (`step`, `epoch`, Adam's step) a whole number a run can count to.
    torch.load does not notice flipped bytes inside a tensor, so the project's
    own `.pth` files carry a SHA-256 of every tensor; the tutorial's own files
    have none, and get the other checks only.
    """
    if not isinstance(payload, Mapping) or not all(k in payload for k in TUTORIAL_KEYS[1:3]):
        raise CheckpointError(f"{where} lacks the generator/discriminator state dicts")
    config = config_of(payload, where)
    for network in ("G", "D"):
        check_state_dict(payload[f"model_{network}_state_dict"], config, network, where)
        if f"optimizer_{network}_state_dict" in payload:
            check_optimizer(payload[f"optimizer_{network}_state_dict"], config, network, where)
    if "checksums" in payload:
        saved = payload["checksums"]
        sums = tensor_checksums(payload)
        bad = [k for k, v in sums.items() if not isinstance(saved, Mapping) or saved.get(k) != v]
        if bad or set(sums) != set(saved):
            raise CheckpointError(f"{where} is corrupt: {len(bad)} tensor(s) fail their SHA-256 check"
                                  + (f", e.g. {bad[0]}" if bad else ""))
    check_values(payload, where)
    return config


def check_optimizer(optimizer: Any, config: Config, network: str, where: str) -> None:
    """Refuse an optimizer dict that is not torch Adam's for the tutorial's `network` under `config`.

    Adam before its first step has an empty `state`; after it, one entry per
    parameter, in torch's parameter order, holding `step`, `exp_avg` and
    `exp_avg_sq` of that parameter's shape.
    """
    key = f"optimizer_{network}_state_dict"
    if not isinstance(optimizer, Mapping):
        raise CheckpointError(f"{where}: {key} is not an optimizer state dict")
    for part in ("state", "param_groups"):
        if part not in optimizer:
            raise CheckpointError(f"{where}: {key} lacks '{part}'; not a torch optimizer state dict")
    names, shapes = param_names(), layer_shapes(config, network)
    groups = optimizer["param_groups"]
    listed = ([i for g in groups for i in g["params"]] if isinstance(groups, (list, tuple)) and all(
        isinstance(g, Mapping) and isinstance(g.get("params"), (list, tuple)) for g in groups) else None)
    if listed != list(range(len(names))):
        got = "no list of groups" if listed is None else f"{len(listed)} parameter(s)"
        raise CheckpointError(f"{where}: {key} 'param_groups' holds {got}, but the tutorial's {network} "
                              f"has {len(names)}, listed as 0-{len(names) - 1}")
    state = optimizer["state"]
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{where}: {key} 'state' is not a dict of Adam moments")
    if state and set(state) != set(range(len(names))):
        raise CheckpointError(f"{where}: {key} 'state' holds moments of {len(state)} parameter(s), but "
                              f"the tutorial's {network} has {len(names)}, keyed 0-{len(names) - 1}")
    for index, name in enumerate(names if state else ()):
        moments = state[index]
        if not isinstance(moments, Mapping) or not all(m in moments for m in ADAM_ENTRIES):
            lacks = ("is not a dict" if not isinstance(moments, Mapping)
                     else f"lacks '{next(m for m in ADAM_ENTRIES if m not in moments)}'")
            raise CheckpointError(f"{where}: {key} 'state' entry {index} ({name}) {lacks}; not Adam's "
                                  f"state ({', '.join(ADAM_ENTRIES)})")
        for moment in ADAM_ENTRIES[1:]:
            got = tuple(getattr(moments[moment], "shape", ()))
            if got != shapes[name]:
                raise CheckpointError(f"{where}: {key} {moment} of {name} has shape {got}, but the "
                                      f"parameter has {shapes[name]}")


ADAM_ENTRIES = ("step", "exp_avg", "exp_avg_sq")  # torch Adam's state of one parameter.


def check_values(payload: Mapping[str, Any], where: str) -> None:
    """Refuse what a run cannot continue from: a weight or Adam moment that is not finite, a negative
    second moment (Adam divides by its square root), a counter that is not a whole number in
    [0, MAX_STEP], Adam steps that differ between parameters (optax keeps one count), or a
    `dataset_used` that is not a name. Call after the layout checks."""
    for network in ("G", "D"):
        for name, value in payload[f"model_{network}_state_dict"].items():
            _finite(value, f"model_{network}_state_dict {name}", where)
        state = payload.get(f"optimizer_{network}_state_dict", {}).get("state", {})
        key = f"optimizer_{network}_state_dict"
        names = param_names()  # The state's keys, checked to be 0..5 by check_optimizer.
        steps = {_counter(moments["step"], f"{key} Adam step of {names[i]}", where, tensor=True)
                 for i, moments in state.items()}
        if len(steps) > 1:
            raise CheckpointError(f"{where}: {key} Adam step differs between parameters ({min(steps)} to "
                                  f"{max(steps)}); one optimizer counts one step")
        for i, moments in state.items():
            _finite(moments["exp_avg"], f"{key} exp_avg of {names[i]}", where)
            if (_finite(moments["exp_avg_sq"], f"{key} exp_avg_sq of {names[i]}", where) < 0).any():
                raise CheckpointError(f"{where}: {key} exp_avg_sq of {names[i]} holds negative values; "
                                      "a second moment never is")
    for counter in ("step", "epoch"):
        if counter in payload:
            _counter(payload[counter], counter, where)
    if not isinstance(payload.get("dataset_used"), (str, type(None))):
        raise CheckpointError(f"{where}: its dataset_used is a {type(payload['dataset_used']).__name__}, "
                              "not a dataset's name")


def _numbers(value: Any, what: str, where: str) -> np.ndarray:
    """`value` (a tensor, array or number) as a NumPy array of real numbers."""
    try:
        array = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
    except (TypeError, RuntimeError, ValueError) as e:  # bfloat16, sparse, ...
        raise CheckpointError(f"{where}: {what} cannot be read as numbers ({e})") from e
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.floating)
                                   or np.issubdtype(array.dtype, np.integer)):
        raise CheckpointError(f"{where}: {what} holds {array.dtype}, not real numbers")
    return array


def _finite(value: Any, what: str, where: str) -> np.ndarray:
    array = _numbers(value, what, where)
    bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise CheckpointError(f"{where}: {what} holds {bad} value(s) that are not finite (NaN or "
                              "infinite); these weights are damaged or diverged and cannot be used")
    return array


def _counter(value: Any, what: str, where: str, tensor: bool = False) -> int:
    """A whole number in [0, MAX_STEP]: an int, or (`tensor`) a number or 0-d tensor holding one,
    as torch Adam's `step` is."""
    number = value
    if tensor and hasattr(value, "shape") and not isinstance(value, numbers.Number):
        array = _numbers(value, what, where)
        number = array.item() if array.shape == () else value
    whole = (isinstance(number, numbers.Integral) or (tensor and isinstance(number, numbers.Real)
             and math.isfinite(number) and float(number).is_integer()))
    if isinstance(number, bool) or not whole or not 0 <= number <= MAX_STEP:
        shown = (repr(number)[:40] if isinstance(number, (numbers.Number, str))
                 else f"a {type(value).__name__} of shape {tuple(getattr(value, 'shape', ()))}")
        raise CheckpointError(f"{where}: its {what} is {shown}; expected a whole number in [0, {MAX_STEP}]")
    return int(number)


def tensor_checksums(payload: Mapping[str, Any]) -> dict[str, str]:
    """SHA-256 of every model and Adam tensor of a `.pth` dict, by its path."""
    sums = {}
    for network in ("G", "D"):
        for name, value in payload[f"model_{network}_state_dict"].items():
            sums[f"model_{network}/{name}"] = array_sha256(value)
        state = payload.get(f"optimizer_{network}_state_dict", {}).get("state", {})
        for index, moments in state.items():
            for name, value in moments.items():
                sums[f"optimizer_{network}/{index}/{name}"] = array_sha256(value)
    return sums


def config_of(payload: Mapping[str, Any], where: str = "checkpoint") -> Config:
    """The run's config; the tutorial's own checkpoints have none, so its defaults."""
    saved = payload.get("config")
    if saved is not None and not isinstance(saved, Mapping):
        raise CheckpointError(f"{where}: its saved config is a {type(saved).__name__}, not a dict")
    config = Config.from_dict(saved) if isinstance(saved, Mapping) else Config()
    try:
        config.validate()
    except UserError as e:
        raise CheckpointError(f"{where}: its saved config is damaged ({e})") from e
    return config
