"""The same dropout masks in both frameworks, for the dropout-on parity checks.

The JAX step draws its masks as production does (hash masks) and
`jax_gan.dropout.mask_tape` records them; the reference then replays them
through `MaskedDropout`, a test-only stand-in for `torch.nn.Dropout` swapped
into its models for the duration of a `torch_masks` block. Nothing here
changes either framework's code.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence

import flax.linen as nn
import jax
import numpy as np
import torch

from gan_core.config import Config
from jax_gan.dropout import mask_tape
from jax_gan.models import Generator
from jax_gan.train_step import TrainState, train_step


class MaskQueue:
    """Masks waiting for the reference's dropout layers, taken in call order."""

    def __init__(self, masks: Sequence[np.ndarray | torch.Tensor]):
        self.masks = [torch.from_numpy(np.array(m, bool)) for m in masks]
        self.used = 0

    def take(self, shape: torch.Size) -> torch.Tensor:
        if self.used == len(self.masks):
            raise AssertionError(f"the reference's dropout call {self.used + 1} found no mask left "
                                 f"(the JAX step made {len(self.masks)} dropout calls)")
        mask = self.masks[self.used]
        if tuple(mask.shape) != tuple(shape):
            raise AssertionError(f"the reference's dropout call {self.used + 1} has activations "
                                 f"{tuple(shape)}; the JAX step's mask is {tuple(mask.shape)}")
        self.used += 1
        return mask


class MaskedDropout(torch.nn.Module):
    """`torch.nn.Dropout` with its Bernoulli draw replaced by the next mask of a queue.

    Same arithmetic as torch's own (input * (mask / (1 - p))) and the same
    eval-mode identity; `check_masked_dropout_is_torch_dropout` holds it to that.
    """

    def __init__(self, p: float, queue: MaskQueue):
        super().__init__()
        self.p, self.queue = p, queue

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        return x * (self.queue.take(x.shape).to(x.dtype) / (1 - self.p))


@contextlib.contextmanager
def torch_masks(modules: Sequence[torch.nn.Module], masks: Sequence) -> Iterator[MaskQueue]:
    """Within the block, every `nn.Dropout` in `modules` applies the given masks in call order.

    Fails on leaving if any mask was not used: the reference made fewer dropout
    calls than the JAX step did.
    """
    queue = MaskQueue(masks)
    swapped = []
    for module in modules:
        for parent in module.modules():
            for name, child in parent.named_children():
                if isinstance(child, torch.nn.Dropout):
                    swapped.append((parent, name, child))
                    setattr(parent, name, MaskedDropout(child.p, queue))
    try:
        yield queue
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)
    if queue.used != len(queue.masks):
        raise AssertionError(f"the reference made {queue.used} dropout calls; the JAX step "
                             f"made {len(queue.masks)}")


def torch_order(masks: Sequence, batch: int) -> list[np.ndarray]:
    """The JAX step's masks in the order the reference's dropout layers ask for them.

    Dropout layers come in pairs (one network call). The JAX D step runs D once
    on [real; fake] (a pair of 2N-row masks); the reference runs D(real) then
    D(fake), so such a pair becomes its first halves, then its second halves.
    """
    masks = [np.asarray(m) for m in masks]
    if len(masks) % 2:
        raise AssertionError(f"the JAX step made {len(masks)} dropout calls, not pairs of two")
    out = []
    for first, second in zip(masks[::2], masks[1::2], strict=True):
        if len(first) == 2 * batch and len(second) == 2 * batch:
            out += [first[:batch], second[:batch], first[batch:], second[batch:]]
        else:
            out += [first, second]
    return out


def _capture_z(zs: list):
    def interceptor(next_fun, args, kwargs, context):
        if isinstance(context.module, Generator) and context.method_name == "__call__":
            zs.append(args[0])
        return next_fun(*args, **kwargs)

    return interceptor


@functools.partial(jax.jit, static_argnames=("config",))
def recording_step(state: TrainState, real: jax.Array, config: Config,
                   z: jax.Array | None = None) -> tuple[TrainState, dict, list, list]:
    """The production step, dropout on, that also returns the masks it drew and G's input z.

    Returns (state, metrics, masks in call order, [z of every G call]).
    """
    zs: list = []
    with mask_tape() as tape, nn.intercept_methods(_capture_z(zs)):
        state, metrics = train_step(state, real, config, z=z)
    return state, metrics, tape.masks, zs


@functools.partial(jax.jit, static_argnames=("config",))
def replaying_step(state: TrainState, real: jax.Array, z: jax.Array, masks: list,
                   config: Config) -> tuple[TrainState, dict]:
    """The production step with every dropout mask injected instead of drawn."""
    with mask_tape(masks) as tape:
        out = train_step(state, real, config, z=z)
    if not tape.done():
        raise AssertionError(f"the step made {len(tape.masks)} dropout calls; {len(masks)} masks given")
    return out
