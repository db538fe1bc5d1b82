import pytest

import blackout_tutorial
from blackout_tutorial import presets


def test_version_is_exposed():
    version = blackout_tutorial.__version__
    assert isinstance(version, str) and version.count(".") == 2


def test_profile_from_environment():
    assert presets.current_profile({"BLACKOUT_PROFILE": "smoke"}) == "smoke"
    assert presets.current_profile({"BLACKOUT_PROFILE": " Laptop "}) == "laptop"


def test_default_profile_is_laptop_on_any_hardware():
    # REVIEW D.6: a GPU must not start a paper-scale run unless asked for.
    assert presets.current_profile({}) == "laptop"


def test_unknown_profile_names_the_variable():
    with pytest.raises(ValueError, match="BLACKOUT_PROFILE"):
        presets.current_profile({"BLACKOUT_PROFILE": "huge"})


def test_describe_names_profile_and_device():
    line = presets.describe()
    assert "profile" in line and "device" in line and blackout_tutorial.__version__ in line


def test_unknown_submodule_is_an_attribute_error():
    with pytest.raises(AttributeError):
        blackout_tutorial.not_a_module
    with pytest.raises(AttributeError):
        blackout_tutorial.profiles
