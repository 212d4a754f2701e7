"""TESSERA_* environment variables: a value tessera does not know is an error naming
the accepted ones (TESSERA_FUSION=NONE used to fuse silently with the default mode)."""
import os
import subprocess
import sys

import pytest

from tessera._config import env_choice, env_number
from tessera.errors import ConfigError, TesseraError

pytestmark = pytest.mark.cpu_only("reads environment variables; no tensors")


def test_env_choice_takes_known_values_and_names_the_accepted_ones(monkeypatch):
    monkeypatch.delenv("TESSERA_FUSION", raising=False)
    assert env_choice("TESSERA_FUSION", "default", ("none", "default")) == "default"
    monkeypatch.setenv("TESSERA_FUSION", "none")
    assert env_choice("TESSERA_FUSION", "default", ("none", "default")) == "none"
    for typo in ("NONE", "off", " none"):
        monkeypatch.setenv("TESSERA_FUSION", typo)
        with pytest.raises(ConfigError, match=r"TESSERA_FUSION='.*' is not understood; accepted: none, default"):
            env_choice("TESSERA_FUSION", "default", ("none", "default"))
    assert issubclass(ConfigError, TesseraError) and issubclass(ConfigError, ValueError)


def test_env_number(monkeypatch):
    monkeypatch.setenv("TESSERA_CPU_POOL_MB", "64.5")
    assert env_number("TESSERA_CPU_POOL_MB", 512.0, float) == 64.5
    for bad in ("lots", "-1"):
        monkeypatch.setenv("TESSERA_CPU_POOL_MB", bad)
        with pytest.raises(ConfigError, match=r"TESSERA_CPU_POOL_MB='.*' is not understood; accepted: a number >= 0"):
            env_number("TESSERA_CPU_POOL_MB", 512.0, float)


@pytest.mark.parametrize("var, value, accepted", [
    ("TESSERA_FUSION", "NONE", "none, default, aggressive"),
    ("TESSERA_DEBUG", "verbose", "0, 1, 2, 3, 4, 5"),
    ("TESSERA_CUDA_SIM", "yes", "0, 1, cuda, hip"),
])
def test_import_refuses_an_unknown_value(var, value, accepted):
    env = dict(os.environ, **{var: value})
    code = "import tessera; tessera.default_device(); tessera.ones(2) * 2"
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    assert f"ConfigError: {var}={value!r} is not understood; accepted: {accepted}" in p.stderr
