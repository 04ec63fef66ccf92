"""The tutorial's PyTorch GAN, made runnable and importable: the reference jax_gan is checked against."""
