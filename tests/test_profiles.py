import pytest
import torch

import blackout_tutorial
from blackout_tutorial import profiles


def test_version_is_exposed():
    assert isinstance(blackout_tutorial.__version__, str) and blackout_tutorial.__version__.count(".") == 2


def test_profile_from_environment():
    assert profiles.current_profile({"BLACKOUT_PROFILE": "smoke"}) == "smoke"
    assert profiles.current_profile({"BLACKOUT_PROFILE": " Laptop "}) == "laptop"


def test_default_profile_depends_on_cuda():
    expected = "full" if torch.cuda.is_available() else "laptop"
    assert profiles.current_profile({}) == expected


def test_unknown_profile_names_the_variable():
    with pytest.raises(ValueError, match="BLACKOUT_PROFILE"):
        profiles.current_profile({"BLACKOUT_PROFILE": "huge"})


def test_unknown_submodule_is_an_attribute_error():
    with pytest.raises(AttributeError):
        blackout_tutorial.not_a_module
