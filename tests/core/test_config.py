"""YAML configuration bound strictly to dataclasses."""



import pytest




def test_config_binding_rejects_scalars_for_lists_and_bools_for_numbers():
    from nirstream.core.config import apply_overrides, bind
    from nirstream.core.errors import ConfigError
    from nirstream.core.train.config import DataConfig

    with pytest.raises(ConfigError, match="'data.exclude' must be a list"):
        bind(DataConfig, apply_overrides({}, ["exclude=country_0030"]), "data")
    with pytest.raises(ConfigError, match="'data.batch_size' must be int"):
        bind(DataConfig, {"batch_size": True}, "data")
    assert bind(DataConfig, apply_overrides({}, ["exclude=[country_0030]"]), "data").exclude == ["country_0030"]


