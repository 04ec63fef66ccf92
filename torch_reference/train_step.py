"""The tutorial's training step, and an epoch of them: G update, then D update on the same fakes.

Mirrors jax_gan/train_step.py name for name; here the state is mutable
modules and optimizers, as PyTorch has it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import torch
from torch.nn import functional as F

from gan_core.config import Config
from gan_core.epoch import EpochResult
from gan_core.errors import UserError, first_line
from torch_reference.models import Discriminator, Generator, make_models


@dataclasses.dataclass
class TrainState:
    step: int  # Train steps done.
    g: Generator
    d: Discriminator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer


def make_optimizer(module: torch.nn.Module, config: Config) -> torch.optim.Optimizer:
    return torch.optim.Adam(module.parameters(), lr=config.lr, betas=(config.b1, config.b2),
                            eps=config.eps)


def create_train_state(config: Config, device: torch.device | str = "cpu",
                       seed: int | None = None) -> TrainState:
    torch.manual_seed(config.seed if seed is None else seed)
    g, d = make_models(config, device)
    return TrainState(0, g, d, make_optimizer(g, config), make_optimizer(d, config))


def generator_loss(generator: Callable, discriminator: Callable,
                   z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """G's loss: D should call G(z) real. Returns (loss, fake)."""
    fake = generator(z)
    p_fake = discriminator(fake)
    return F.binary_cross_entropy(p_fake, torch.ones_like(p_fake)), fake


def discriminator_loss(discriminator: Callable, real: torch.Tensor,
                       fake: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """D's loss: real called real and fake called fake, averaged. Returns (loss, (real, fake) outputs)."""
    p_real = discriminator(real)
    p_fake = discriminator(fake)
    loss = (F.binary_cross_entropy(p_real, torch.ones_like(p_real))
            + F.binary_cross_entropy(p_fake, torch.zeros_like(p_fake))) / 2
    return loss, (p_real, p_fake)


def train_step(state: TrainState, real: torch.Tensor, config: Config, z: torch.Tensor | None = None,
               dropout: bool = True) -> tuple[TrainState, dict[str, torch.Tensor]]:
    """The tutorial's inner loop body; returns the state and detached metrics (no host sync)."""
    g, d = state.g, state.d
    g.train(dropout)
    d.train(dropout)
    if z is None:
        z = torch.randn(real.size(0), config.latent_dim, device=real.device, dtype=real.dtype)

    # G step.
    state.opt_g.zero_grad()
    loss_g, fake = generator_loss(g, d, z)
    loss_g.backward()
    state.opt_g.step()

    # D step on the same fakes, detached so no gradient reaches G.
    state.opt_d.zero_grad()
    loss_d, (p_real, p_fake) = discriminator_loss(d, real, fake.detach())
    loss_d.backward()
    state.opt_d.step()
    state.step += 1

    with torch.no_grad():
        return state, {
            "loss_g": loss_g.detach(),
            "loss_d": loss_d.detach(),
            "d_real": p_real.mean(),
            "d_fake": p_fake.mean(),
            "d_acc": ((p_real > 0.5).float().mean() + (p_fake < 0.5).float().mean()) / 2,
        }


@torch.no_grad()
def generate(g: Generator, z: torch.Tensor) -> torch.Tensor:
    """G(z) with dropout off: (N, 1, H, W) in [-1, 1]."""
    was_training = g.training
    g.eval()
    try:
        return g(z)
    finally:
        g.train(was_training)


def epoch_generator(config: Config, epoch: int) -> torch.Generator:
    """The shuffle of an epoch depends on (seed, epoch) alone, so a resume sees the same order."""
    return torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)


def tensor_batches(images: torch.Tensor, config: Config, epoch: int, start: int,
                   stop: int) -> Iterator[torch.Tensor]:
    """Shuffled batches `start..stop` of an on-device tensor; the last, partial batch is kept."""
    order = torch.randperm(len(images), generator=epoch_generator(config, epoch)).to(images.device)
    for i in range(start, stop):
        yield images[order[i * config.batch_size : (i + 1) * config.batch_size]]


def tutorial_dataset(config: Config) -> torch.utils.data.Dataset:
    """The tutorial's dataset: torchvision's MNIST over the same files, per-image ToTensor + Normalize."""
    import torchvision
    from torchvision import transforms

    mean, std = (0.0, 1.0) if config.tutorial_normalization else (0.5, 0.5)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    try:
        return torchvision.datasets.MNIST(config.data_dir, train=True, transform=transform)
    except (RuntimeError, OSError, ValueError) as e:
        raise UserError(f"--loader tutorial: torchvision cannot read MNIST in {config.data_dir}: "
                        f"{first_line(e)}") from e


def tutorial_batches(config: Config, epoch: int, start: int, stop: int,
                     device: torch.device) -> Iterator[torch.Tensor]:
    """The tutorial's pipeline: DataLoader(shuffle=True) over `tutorial_dataset`."""
    loader = torch.utils.data.DataLoader(tutorial_dataset(config), config.batch_size, shuffle=True,
                                         generator=epoch_generator(config, epoch))
    for i, (images, _) in enumerate(loader):
        if i >= stop:
            return
        if i >= start:
            yield images.to(device)


def train_epoch(state: TrainState, images: torch.Tensor, fixed_z: torch.Tensor | None, config: Config,
                start: int = 0, stop: int | None = None) -> EpochResult:
    """Steps `start..stop` of the epoch that `state.step` is in (jax_gan's `train_epoch`, eagerly).

    `images` (N, 1, H, W) on the device; `config.loader == "tutorial"` reads
    the same MNIST files through torchvision instead. When `fixed_z` is given,
    G(fixed_z) is recorded at every step divisible by `config.sample_every`,
    before that step's update. Metrics stay on the device until the end.
    """
    per_epoch = config.steps_per_epoch(len(images))
    stop = per_epoch if stop is None else stop
    epoch = state.step // per_epoch
    if config.loader == "tutorial":
        batches = tutorial_batches(config, epoch, start, stop, images.device)
    else:
        batches = tensor_batches(images, config, epoch, start, stop)
    metrics, samples = [], []
    for real in batches:
        if fixed_z is not None and state.step % config.sample_every == 0:
            samples.append(generate(state.g, fixed_z))
        try:
            state, m = train_step(state, real, config)
        except RuntimeError as e:
            # BCELoss refuses NaN probabilities (D's output after weights blew up in
            # the step before): report the step as non-finite, as JAX does.
            if "between 0 and 1" not in str(e):
                raise
            nan = torch.full((), float("nan"), device=real.device)
            metrics.append({k: nan for k in ("loss_g", "loss_d", "d_real", "d_fake", "d_acc")})
            break
        metrics.append(m)
    stacked = {k: torch.stack([m[k] for m in metrics]).cpu() for k in metrics[0]}
    grid_shape = (0, 0 if fixed_z is None else len(fixed_z), 1, config.image_size, config.image_size)
    grids = torch.stack(samples) if samples else torch.zeros(grid_shape)
    finite = all(bool(torch.isfinite(p).all()) for m in (state.g, state.d) for p in m.parameters())
    return EpochResult(state, stacked, grids, len(samples), finite)

