"""Train the tutorial's GAN in PyTorch: `python -m torch_reference.train`.

The same flags and outputs as `python -m jax_gan.train`. Two data paths:
`--loader tensor` (default) trains on the shared data layer's arrays, held on
the device; `--loader seed` is the tutorial's own torchvision.datasets.MNIST +
DataLoader(shuffle=True) pipeline, over the same files.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from tqdm import tqdm

from jax_gan import cli, loop
from jax_gan.config import Config
from jax_gan.data import Dataset
from jax_gan.errors import UserError
from torch_reference import checkpoint
from torch_reference.train_step import create_train_state, generate, train_step


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def epoch_generator(config: Config, epoch: int) -> torch.Generator:
    """The shuffle of an epoch depends on (seed, epoch) alone, so a resume sees the same order."""
    return torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)


def tensor_batches(images: torch.Tensor, config: Config, epoch: int,
                   start: int) -> Iterator[torch.Tensor]:
    """Shuffled batches of an on-device tensor; the last, partial batch is kept."""
    order = torch.randperm(len(images), generator=epoch_generator(config, epoch)).to(images.device)
    for i in range(start, config.steps_per_epoch(len(images))):
        yield images[order[i * config.batch_size : (i + 1) * config.batch_size]]


def seed_loader(config: Config, dataset: Dataset, epoch: int, start: int,
                device: torch.device) -> Iterator[torch.Tensor]:
    """The tutorial's pipeline: torchvision MNIST, per-image ToTensor, DataLoader(shuffle=True)."""
    import torchvision
    from torchvision import transforms

    if dataset.name != "mnist":
        raise UserError("--loader seed reads MNIST through torchvision; it needs the MNIST "
                        f"files under {config.data_dir}/MNIST/raw (this run has {dataset.name})")
    mean, std = (0.0, 1.0) if config.seed_normalization else (0.5, 0.5)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    data = torchvision.datasets.MNIST(config.data_dir, train=True, transform=transform)
    loader = torch.utils.data.DataLoader(data, config.batch_size, shuffle=True,
                                         generator=epoch_generator(config, epoch))
    for i, (images, _) in enumerate(loader):
        if i >= start:
            yield images.to(device)


def train(config: Config, out_dir: Path, models, optimizers, dataset: Dataset, *,
          start_step: int, loader: str, device: torch.device, quiet: bool = False) -> int:
    n = len(dataset)
    per_epoch = config.steps_per_epoch(n)
    total = config.total_steps(n)
    step = start_step
    log = cli.MetricsLog(out_dir / "metrics.jsonl", resume_step=step)
    images = torch.from_numpy(dataset.images).unsqueeze(1).to(device)  # NCHW
    fixed_z = torch.from_numpy(loop.fixed_latents(config)).to(device)
    ckpt_path = out_dir / checkpoint.FILENAME
    extra = {"dataset_used": dataset.name}
    g = models[0]
    last_saved = step

    def save(at_step: int) -> None:
        checkpoint.save(ckpt_path, models, optimizers, epoch=at_step // per_epoch, step=at_step,
                        config=config, extra=extra)

    from torchvision.utils import save_image

    bar = tqdm(total=total, initial=step, unit="step", disable=quiet, dynamic_ncols=True)
    with loop.GracefulStop() as stop:
        while step < total and not stop.requested:
            epoch, offset = divmod(step, per_epoch)
            batches = (seed_loader(config, dataset, epoch, offset, device) if loader == "seed"
                       else tensor_batches(images, config, epoch, offset))
            pending = []
            for real in batches:
                if step >= total or stop.requested:
                    break
                if step % config.sample_every == 0:
                    save_image(generate(g, fixed_z),
                                                 out_dir / "samples" / f"step_{step:07d}.png",
                                                 nrow=5, normalize=True)
                z = torch.randn(real.size(0), config.latent_dim, device=device)
                pending.append(train_step(models, optimizers, real, z))
                step += 1
                bar.update(1)
                if step % config.log_every == 0 or step == total or len(pending) >= per_epoch:
                    metrics = {k: torch.stack([m[k] for m in pending]).cpu().numpy()
                               for k in pending[0]}
                    first = step - len(pending)
                    pending = []
                    bad = loop.first_nonfinite(metrics)
                    if bad is not None:
                        bar.close()
                        print(f"error: non-finite loss at step {first + bad}; stopped. The last "
                              f"good checkpoint (step {last_saved}) is kept in {ckpt_path}",
                              file=sys.stderr)
                        return loop.EXIT_NONFINITE
                    log.write(loop.metric_records(first, metrics, per_epoch, config.log_every,
                                                  total - 1))
                    bar.set_description(loop.epochs_label(step - 1, per_epoch, config.epochs))
                    bar.set_postfix(loss_g=f"{metrics['loss_g'][-1]:.4f}",
                                    loss_d=f"{metrics['loss_d'][-1]:.4f}")
            if pending:  # Stopped mid-interval: log what ran.
                metrics = {k: torch.stack([m[k] for m in pending]).cpu().numpy() for k in pending[0]}
                log.write(loop.metric_records(step - len(pending), metrics, per_epoch,
                                              config.log_every, step - 1))
            if stop.requested or loop.checkpoint_due(step, per_epoch, total, config):
                save(step)
                last_saved = step
    bar.close()
    if stop.requested:
        loop.print_resume_hint(step, "torch_reference.train", out_dir)
        return stop.exit_code

    final = generate(g, fixed_z).cpu().numpy()
    z_path = torch.from_numpy(loop.interpolation_latents(config)).to(device)
    loop.finish_run(out_dir, "torch_reference", final, generate(g, z_path).cpu().numpy())
    print(f"done: {loop.describe(cli.read_metrics(out_dir / 'metrics.jsonl'))}; "
          f"outputs in {out_dir}")
    return 0


@cli.main_guard
def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.build_parser("python -m torch_reference.train",
                              "Train the MLP GAN in PyTorch (the reference).", "runs/torch_reference")
    parser.add_argument("--loader", choices=("tensor", "seed"), default="tensor",
                        help="tensor: shared arrays on the device (fast); seed: the tutorial's "
                             "torchvision DataLoader (MNIST only)")
    args = parser.parse_args(argv)
    device = default_device()
    payload = None
    if args.resume:
        cli.require_previous_run(Path(args.out_dir))
        payload = checkpoint.load(args.out_dir, device)
        if "config" not in payload:
            raise UserError(f"{checkpoint.checkpoint_path(args.out_dir)} has no config; "
                            "cannot resume it")
    config, dataset, out_dir = cli.prepare_run(args, payload, "torch")

    models, optimizers = create_train_state(config, device)
    step = 0
    if payload is not None:
        models[0].load_state_dict(payload["model_G_state_dict"])
        models[1].load_state_dict(payload["model_D_state_dict"])
        optimizers[0].load_state_dict(payload["optimizer_G_state_dict"])
        optimizers[1].load_state_dict(payload["optimizer_D_state_dict"])
        if "torch_rng_state" in payload:
            torch.set_rng_state(payload["torch_rng_state"].cpu())
        step = int(payload.get("step", payload["epoch"] * config.steps_per_epoch(len(dataset))))
    print(f"torch_reference: {dataset.name} ({len(dataset)} images from {dataset.source}), "
          f"{config.total_steps(len(dataset))} steps, device {device}", file=sys.stderr)
    return train(config, out_dir, models, optimizers, dataset, start_step=step,
                 loader=args.loader, device=device, quiet=args.quiet)


if __name__ == "__main__":
    sys.exit(main())
