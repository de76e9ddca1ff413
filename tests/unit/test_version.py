import re

import tinker


def test_version_is_semver() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", tinker.__version__)
