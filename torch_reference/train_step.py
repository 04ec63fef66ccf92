"""One training step of the tutorial: G update, then D update on the same fakes."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from jax_gan.config import Config
from torch_reference.models import Discriminator, Generator, make_models

Models = tuple[Generator, Discriminator]
Optimizers = tuple[torch.optim.Optimizer, torch.optim.Optimizer]


def make_optimizers(models: Models, config: Config) -> Optimizers:
    g, d = models
    kwargs = {"lr": config.lr, "betas": (config.b1, config.b2), "eps": config.eps}
    return torch.optim.Adam(g.parameters(), **kwargs), torch.optim.Adam(d.parameters(), **kwargs)


def create_train_state(config: Config, device: torch.device | str = "cpu",
                       seed: int | None = None) -> tuple[Models, Optimizers]:
    torch.manual_seed(config.seed if seed is None else seed)
    models = make_models(config, device)
    return models, make_optimizers(models, config)


def train_step(models: Models, optimizers: Optimizers, real: torch.Tensor, z: torch.Tensor,
               dropout: bool = True) -> dict[str, torch.Tensor]:
    """The tutorial's inner loop body; returns detached metrics (no host sync)."""
    g, d = models
    opt_g, opt_d = optimizers
    g.train(dropout)
    d.train(dropout)
    n = real.size(0)
    ones = torch.ones(n, 1, device=real.device, dtype=real.dtype)
    zeros = torch.zeros(n, 1, device=real.device, dtype=real.dtype)

    # G step: make D call the fakes real.
    opt_g.zero_grad()
    fake = g(z)
    loss_g = F.binary_cross_entropy(d(fake), ones)
    loss_g.backward()
    opt_g.step()

    # D step: real vs the same fakes, detached so no gradient reaches G.
    opt_d.zero_grad()
    p_real = d(real)
    p_fake = d(fake.detach())
    loss_d = (F.binary_cross_entropy(p_real, ones) + F.binary_cross_entropy(p_fake, zeros)) / 2
    loss_d.backward()
    opt_d.step()

    with torch.no_grad():
        return {
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

