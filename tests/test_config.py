"""One declaration per config field: flags, help, validation and the resume rules come from it."""

import dataclasses
import re

import pytest

from gan_core import cli
from gan_core.config import Config, flag_name, structural_fields
from gan_core.errors import UserError


def _help(framework):
    parser = cli.train_parser(framework, "prog", "description", "runs/x")
    return parser.format_help()


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_help_shows_each_default_once_and_correctly(framework):
    text = " ".join(_help(framework).split("training configuration:")[1].split())  # Unwrapped.
    for flag, default in [("--batch-size", "64"), ("--lr", "0.0002"), ("--epochs", "200"),
                          ("--seed", "0"), ("--dataset", "mnist"), ("--sample-every", "400")]:
        entry = re.search(re.escape(flag) + r" \S+ (.*?)(?= --[a-z]|$)", text).group(1)
        assert entry.count("(default:") == 1, (flag, entry)
        assert f"(default: {default})" in entry, (flag, entry)
    assert "(default: None)" not in text


def test_every_field_is_a_flag_of_the_frameworks_that_read_it():
    jax_help, torch_help = _help("jax"), _help("torch")
    for f in dataclasses.fields(Config):
        flag = flag_name(f.name)
        if not f.metadata["flag"]:
            assert flag not in jax_help and flag not in torch_help
            continue
        only = f.metadata["only"]
        assert (flag in jax_help) == (only in (None, "jax")), flag
        assert (flag in torch_help) == (only in (None, "torch")), flag


def test_flags_parse_to_config_values():
    parser = cli.train_parser("jax", "prog", "description", "runs/x")
    args = parser.parse_args(["--lr", "0.001", "--no-download", "--tutorial-normalization",
                              "--dropout-masks", "threefry", "--max-steps", "7"])
    config = cli.resolve_config(cli.given_overrides(args))
    assert (config.lr, config.download, config.tutorial_normalization) == (0.001, False, True)
    assert (config.dropout_masks, config.max_steps, config.batch_size) == ("threefry", 7, 64)


def test_structural_fields_come_from_the_declarations():
    assert set(structural_fields()) == {
        "latent_dim", "hidden_dim", "image_size", "dropout_rate", "leaky_slope", "init",
        "dropout_masks", "batch_size", "dataset", "tutorial_normalization", "seed"}


@pytest.mark.parametrize("changes, message", [
    ({"seed": -1}, "--seed must be in [0, 4_294_967_295], got -1"),
    ({"seed": 2**32}, "--seed must be in [0, 4_294_967_295]"),
    ({"lr": float("nan")}, "--lr must be finite"),
    ({"lr": 0.0}, "--lr must be positive"),
    ({"dropout_rate": 1.0}, "--dropout-rate must be in [0, 0.99]"),
    ({"dataset": "cifar"}, "--dataset must be one of mnist, fashion-mnist, mnist-sample"),
    ({"batch_size": 2.5}, "--batch-size must be an integer"),
])
def test_validation_comes_from_the_declared_ranges(changes, message):
    config = dataclasses.replace(Config(), **changes)
    with pytest.raises(UserError, match=re.escape(message)):
        config.validate()


def test_configs_saved_before_the_rename_still_load():
    assert Config.from_dict({"seed_normalization": True}).tutorial_normalization is True


def test_a_resume_may_not_change_what_is_trained():
    with pytest.raises(UserError, match="cannot change --batch-size, --seed"):
        cli.resolve_config({"seed": 1, "batch_size": 32, "epochs": 3}, Config().to_dict())
    assert cli.resolve_config({"epochs": 3, "lr": 1e-3}, Config().to_dict()).epochs == 3
