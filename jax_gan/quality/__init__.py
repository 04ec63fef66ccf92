"""Sample quality: the feature classifier, the scores, and the scoring worker behind `--eval-every`.

- `classifier`: the small MNIST classifier whose features the scores compare, trained once per dataset.
- `scores`: the held-out reference and every score of a set of images (`evaluate_images`).
- `calibration`: image sets whose scores a person can predict, to read the scores by.
- `inputs`: what `python -m jax_gan.evaluate` scores: a `.npy`, or samples drawn from a run.
- `serve`: the worker process `gan_core.quality.QualityWorker` talks to.

The metrics themselves are NumPy alone, in `gan_core.metrics`; the command is `jax_gan.evaluate`.
"""
