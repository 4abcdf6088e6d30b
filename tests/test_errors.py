"""User errors name settings by the library's names; a job resolves them to config keys."""

import pytest

from retinaflow.errors import DatasetError, SettingError, ref
from retinaflow.scripting import config_keys

from .configs import REAL


def test_a_setting_is_named_by_the_library_until_a_job_resolves_it():
    err = DatasetError(f"{ref('urls.boxes')} and {ref('local_root')} are both unset")
    assert err.settings == ["urls.boxes", "local_root"]
    assert str(err) == "setting urls.boxes and setting local_root are both unset"
    err.named(config_keys(REAL, "calibration.fetch"))
    assert str(err) == (
        "config key calibration.fetch.urls.boxes and config key calibration.fetch.local_root "
        "are both unset"
    )


def test_config_keys_prefers_explicit_keys_then_the_first_section_holding_the_name():
    resolve = config_keys(REAL, "compile.tuning", "compile", max_rel="export.parity_max_rel")
    assert resolve("max_rel") == "export.parity_max_rel"
    assert resolve("trials_per_task") == "compile.tuning.trials_per_task"
    assert resolve("seed") == "compile.tuning.seed"  # the first section that has it
    assert resolve("fp16_accumulate") == "compile.fp16_accumulate"
    assert resolve("urls.boxes") is None  # in no section given: left as the library's name
    assert config_keys(REAL, "dataset")("urls.boxes") == "dataset.urls.boxes"
    assert config_keys(REAL, "dataset")("urls") == "dataset.urls"
    assert config_keys(REAL, "dataset")("urls.nothing") is None


def test_setting_error_carries_what_value_and_what_would_be_right():
    with pytest.raises(ValueError) as raised:  # a ValueError too, for callers outside the DAG
        raise SettingError("method", "minmax", "one of max, kl, percentile")
    err = raised.value
    assert (err.setting, err.value, err.expected) == (
        "method",
        "minmax",
        "one of max, kl, percentile",
    )
    assert str(err) == "setting method is 'minmax': one of max, kl, percentile"
    err.named(config_keys(REAL, "quantize"))
    assert str(err) == "config key quantize.method is 'minmax': one of max, kl, percentile"
