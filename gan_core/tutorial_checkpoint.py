"""The tutorial's checkpoint layout, without any framework.

The tutorial saved one `.pth` dict with five keys; its models are
`nn.Sequential`s whose Linear layers sit at indices 0, 3 and 6. The reference
writes this layout and `jax_gan.convert` reads and writes it, so both take
the names and the shape checks from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gan_core.config import Config
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
    """The config of a loaded `.pth` dict, after checking its keys, shapes and checksums.

    torch.load does not notice flipped bytes inside a tensor, so the project's
    own `.pth` files carry a SHA-256 of every tensor; the tutorial's own files
    have none, and get the key and shape checks only.
    """
    if not isinstance(payload, Mapping) or not all(k in payload for k in TUTORIAL_KEYS[1:3]):
        raise CheckpointError(f"{where} lacks the generator/discriminator state dicts")
    config = config_of(payload, where)
    for network in ("G", "D"):
        check_state_dict(payload[f"model_{network}_state_dict"], config, network, where)
    if "checksums" in payload:
        sums = tensor_checksums(payload)
        bad = [k for k, v in sums.items() if payload["checksums"].get(k) != v]
        if bad or set(sums) != set(payload["checksums"]):
            raise CheckpointError(f"{where} is corrupt: {len(bad)} tensor(s) fail their SHA-256 check"
                                  + (f", e.g. {bad[0]}" if bad else ""))
    return config


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
    config = Config.from_dict(saved) if isinstance(saved, Mapping) else Config()
    try:
        config.validate()
    except UserError as e:
        raise CheckpointError(f"{where}: its saved config is damaged ({e})") from e
    return config
