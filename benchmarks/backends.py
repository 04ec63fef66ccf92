"""The training setups the harness times, one per backend.

Each `make_<backend>(config, images, device)` returns `run(steps)`, which does
`steps` full train steps (G update then D update, Adam) at `config.batch_size`
and returns only when the device has finished them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gan_core.config import Config

Runner = Callable[[int], None]


# --- PyTorch ---------------------------------------------------------------------------------

def _torch_sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def make_torch_eager(config: Config, images: np.ndarray, device: str,
                     compile_mode: str | None = None) -> Runner:
    """The reference's step on data already on the device (the fast tensor path)."""
    import torch

    from torch_reference.train_step import create_train_state, train_step

    dev = torch.device(device)
    state = create_train_state(config, dev)
    step = train_step
    if compile_mode is not None:
        # Compile the whole step: forward, backward and both Adam updates.
        step = torch.compile(train_step, mode=compile_mode)
    data = torch.from_numpy(images).unsqueeze(1).to(dev)
    batch = config.batch_size
    full = len(data) // batch
    generator = torch.Generator(device="cpu").manual_seed(0)
    order = torch.randperm(len(data), generator=generator).to(dev)
    position = 0

    def run(steps: int) -> None:
        nonlocal position
        for _ in range(steps):
            if compile_mode == "reduce-overhead":
                # One step calls several CUDA graphs (the step has graph breaks at
                # backward()): say where a training iteration begins.
                torch.compiler.cudagraph_mark_step_begin()
            idx = order[(position % full) * batch : (position % full + 1) * batch]
            z = torch.randn(batch, config.latent_dim, device=dev)
            step(state, data[idx], config, z)
            position += 1
        _torch_sync(dev)

    return run


def make_torch_compile(config: Config, images: np.ndarray, device: str) -> Runner:
    """torch-eager with the whole step under torch.compile."""
    return make_torch_eager(config, images, device, compile_mode="default")


def make_torch_compile_cudagraphs(config: Config, images: np.ndarray, device: str) -> Runner:
    """torch-compile with CUDA graphs ("reduce-overhead"), which cut per-kernel launch cost."""
    return make_torch_eager(config, images, device, compile_mode="reduce-overhead")


class _PerImageDataset:
    """The tutorial's per-image path over in-memory digits: uint8 -> PIL -> ToTensor -> Normalize."""

    def __init__(self, images_uint8: np.ndarray):
        from torchvision import transforms

        self.images = images_uint8
        self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(0.5, 0.5)])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i], mode="L")), 0


def make_torch_tutorial(config: Config, images: np.ndarray, device: str) -> Runner:
    """The tutorial's pipeline: DataLoader(shuffle=True) over per-image PIL conversion."""
    import torch

    from torch_reference.train_step import create_train_state, train_step

    dev = torch.device(device)
    state = create_train_state(config, dev)
    pixels = np.round((images + 1) * 127.5).astype(np.uint8)  # Back to the files' bytes.
    loader = torch.utils.data.DataLoader(_PerImageDataset(pixels), config.batch_size, shuffle=True,
                                         drop_last=True)
    batches = iter(loader)

    def run(steps: int) -> None:
        nonlocal batches
        for _ in range(steps):
            try:
                real, _ = next(batches)
            except StopIteration:
                batches = iter(loader)
                real, _ = next(batches)
            real = real.to(dev)
            z = torch.randn(real.size(0), config.latent_dim, device=dev)
            train_step(state, real, config, z)
        _torch_sync(dev)

    return run


# --- JAX ---------------------------------------------------------------------------------------

def make_jax_jit(config: Config, images: np.ndarray, device: str) -> Runner:
    """One jitted train step per batch, dispatched from a Python loop."""
    import functools

    import jax

    from jax_gan.train_step import create_train_state, epoch_permutation, train_step

    @functools.partial(jax.jit, donate_argnums=0)
    def step(state, data, order, i):
        idx = jax.lax.dynamic_slice_in_dim(order, i * config.batch_size, config.batch_size)
        return train_step(state, data[idx], config)

    state = create_train_state(config)
    data = jax.device_put(images)
    order = epoch_permutation(state, 0, len(images))
    full = len(images) // config.batch_size
    position = 0

    def run(steps: int) -> None:
        nonlocal state, position
        for _ in range(steps):
            state, _ = step(state, data, order, position % full)
            position += 1
        jax.block_until_ready(state)

    return run


def make_jax_scan(config: Config, images: np.ndarray, device: str) -> Runner:
    """Full batches of an epoch under one lax.scan, as `python -m jax_gan.train` runs them.

    Each call draws the epoch's permutation, which training pays once per
    epoch: so `run.epoch_steps` asks the harness to time whole epochs, not a
    slice that would carry all of it.
    """
    import jax

    from jax_gan.train_step import create_train_state, train_epoch

    state = create_train_state(config)
    data = jax.device_put(images)
    full = len(images) // config.batch_size

    def run(steps: int) -> None:
        nonlocal state
        if steps > full:
            raise ValueError(f"jax-scan times at most one epoch ({full} full batches)")
        state, metrics = train_epoch(state, data, None, config=config, start=0, stop=steps)[:2]
        jax.block_until_ready((state, metrics))

    run.epoch_steps = full
    return run


def make_jax_scan_threefry(config: Config, images: np.ndarray, device: str) -> Runner:
    """jax-scan with flax's own threefry dropout masks (`--dropout-masks threefry`)."""
    import dataclasses

    return make_jax_scan(dataclasses.replace(config, dropout_masks="threefry"), images, device)


def make_jax_sweep(config: Config, images: np.ndarray, device: str, population: int = 8):
    """`population` runs (seeds 0..N-1) as one program, as `python -m jax_gan.sweep` trains them.

    One `run(steps)` advances every member by `steps`: member steps are `steps * population`.
    Like jax-scan, no sample grids are taken inside the timed epochs.
    """
    import jax

    from jax_gan import sweep

    members = sweep.plan(config, list(range(population)), [config.lr], [config.b1])
    member_sharding, replicated = sweep.mesh_sharding()
    slots = sweep.slots_for(population, jax.device_count())
    state = sweep.initial_population(members, slots, member_sharding, swept=()).state
    data = sweep.global_array(images, replicated)
    full = len(images) // config.batch_size

    def run(steps: int) -> None:
        nonlocal state
        if steps > full:
            raise ValueError(f"jax-sweep times at most one epoch ({full} full batches)")
        state, metrics = sweep.population_epoch(state, None, data, config=config, start=0, stop=steps)[:2]
        jax.block_until_ready((state, metrics))

    run.epoch_steps = full
    return run


def backend_population(name: str) -> tuple[str, int]:
    """"jax-sweep@64" -> ("jax-sweep", 64); other backends train one run: population 1."""
    base, _, population = name.partition("@")
    return base, int(population) if population else 1


BACKENDS = {
    "torch-tutorial": make_torch_tutorial,
    "torch-eager": make_torch_eager,
    "torch-compile": make_torch_compile,
    "torch-compile-cudagraphs": make_torch_compile_cudagraphs,
    "jax-jit": make_jax_jit,
    "jax-scan": make_jax_scan,
    "jax-scan-threefry": make_jax_scan_threefry,
    "jax-sweep": make_jax_sweep,  # Named with its population: jax-sweep@64.
}
CPU_BACKENDS = ("torch-tutorial", "torch-eager", "torch-compile", "jax-jit", "jax-scan", "jax-scan-threefry")
GPU_BACKENDS = CPU_BACKENDS[:3] + ("torch-compile-cudagraphs",) + CPU_BACKENDS[3:]

