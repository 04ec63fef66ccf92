"""The tutorial's Generator and Discriminator, sizes as arguments."""

from __future__ import annotations

import torch
from torch import nn

from gan_core.config import Config


class Generator(nn.Module):
    """z (N, latent_dim) -> images (N, 1, H, W) in [-1, 1] (NCHW, torch's layout)."""

    def __init__(self, latent_dim: int = 100, hidden_dim: int = 256, image_size: int = 28,
                 dropout_rate: float = 0.1):
        super().__init__()
        self.image_shape = (1, image_size, image_size)
        self.model = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout_rate),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout_rate),
            nn.Linear(hidden_dim, image_size * image_size),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z).view(z.size(0), *self.image_shape)


class Discriminator(nn.Module):
    """images (N, 1, H, W) -> probability of being real (N, 1), through a Sigmoid."""

    def __init__(self, image_size: int = 28, hidden_dim: int = 256, leaky_slope: float = 0.01,
                 dropout_rate: float = 0.1):
        super().__init__()
        self.model = nn.Sequential(
            nn.Linear(image_size * image_size, hidden_dim),
            nn.LeakyReLU(leaky_slope),
            nn.Dropout(dropout_rate),
            nn.Linear(hidden_dim, hidden_dim),
            nn.LeakyReLU(leaky_slope),
            nn.Dropout(dropout_rate),
            nn.Linear(hidden_dim, 1),
            nn.Sigmoid(),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images.view(images.size(0), -1))


def make_models(config: Config, device: torch.device | str = "cpu") -> tuple[Generator, Discriminator]:
    g = Generator(config.latent_dim, config.hidden_dim, config.image_size, config.dropout_rate)
    d = Discriminator(config.image_size, config.hidden_dim, config.leaky_slope, config.dropout_rate)
    return g.to(device), d.to(device)
