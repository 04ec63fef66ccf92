"""The framework-free half of jax-gan: config, data, pictures and the training run.

Both `jax_gan` and `torch_reference` build on it, and it imports neither JAX
nor PyTorch, so the reference never loads JAX and the port never needs torch.
"""
