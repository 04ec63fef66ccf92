"""jax-gan: the tutorial's MLP GAN as pure, jit-compiled JAX.

    from jax_gan import Config
    from jax_gan.train import train

    train(Config(dataset="mnist-sample", epochs=5), "runs/demo")  # `python -m jax_gan.train`, as a call
"""

from gan_core.config import Config
from gan_core.data import Dataset, load_dataset
from jax_gan.models import Discriminator, Generator, init_params, make_models
from jax_gan.train_step import (
                                TrainState,
                                create_train_state,
                                generate,
                                make_optimizer,
                                train_epoch,
                                train_step,
)

__version__ = "0.1.0"

__all__ = ["Config", "Dataset", "Discriminator", "Generator", "TrainState", "create_train_state",
           "generate", "init_params", "load_dataset", "make_models", "make_optimizer",
           "train_epoch", "train_step"]
