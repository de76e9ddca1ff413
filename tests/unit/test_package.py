import subprocess
import sys

import pytest

import tinker


def test_errors_are_exported_at_top_level() -> None:
    assert tinker.TinkerError is tinker.errors.TinkerError
    assert tinker.RequestFailedError.__module__ == "tinker.errors"


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        _ = tinker.NoSuchThing


def test_import_is_light() -> None:
    code = (
        "import sys, tinker; heavy = {'numpy', 'requests', 'urllib3', 'cattrs', 'torch',"
        " 'transformers', 'tokenizers', 'safetensors'}; print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_clients_load_without_numpy() -> None:
    code = (
        "import sys, tinker; tinker.ServiceClient; tinker.SamplingClient; tinker.RestClient;"
        " print('numpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
