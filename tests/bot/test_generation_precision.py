"""GENERATION_PRECISION reaches the bot's generators; the setting and `rnnbot sample --precision` agree."""

import typing

import pytest

from models.choices import GENERATION_PRECISIONS
from models.quantized import int8_supported


def test_the_setting_and_the_cli_offer_the_same_precisions(monkeypatch):
    from bot.settings import Settings
    from cli.train_commands import GENERATION_PRECISIONS as cli_choices

    field = Settings.model_fields["generation_precision"]
    assert typing.get_args(field.annotation) == GENERATION_PRECISIONS == cli_choices
    assert field.default == "auto"
    monkeypatch.setenv("GENERATION_PRECISION", "int8")
    assert Settings(_env_file=None).generation_precision == "int8"
    monkeypatch.setenv("GENERATION_PRECISION", "int4")
    with pytest.raises(ValueError, match="generation_precision"):
        Settings(_env_file=None)


@pytest.mark.skipif(not int8_supported(), reason="this torch build has no fbgemm int8 kernels")
def test_model_store_builds_generators_at_the_configured_precision(trained_run):
    from bot.worker import ModelStore

    assert ModelStore({"tiny": str(trained_run)}, "tiny", "int8").get("tiny")._step.uses_int8(64)
    assert not ModelStore({"tiny": str(trained_run)}, "tiny", "fp32").get("tiny")._step.uses_int8(1)
