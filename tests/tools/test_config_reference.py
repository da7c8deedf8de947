"""docs/configuration.md is what tools/config_reference.py generates from today's config classes."""

import sys

from conftest import REPOSITORY

sys.path.insert(0, str(REPOSITORY / "tools"))
import config_reference  # noqa: E402


def test_the_configuration_page_is_up_to_date():
    assert config_reference.PAGE.read_text() == config_reference.reference(), (
        "docs/configuration.md is stale: run python tools/config_reference.py")


def test_every_pipeline_key_is_on_the_page():
    page = config_reference.reference()
    for key in ("engine.levels.mode", "engine.warmup", "engine.channels_last", "queue.capacity", "sink.jpeg_quality",
                "camera.pixel_format", "engine.temporal.alpha", "optim.encoder_lr_ratio", "run.max_steps_per_epoch"):
        assert f"`{key}`" in page, key
