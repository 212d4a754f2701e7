"""Fixtures for graph tests: `mlir_check(text)` parses a dump with mlir-opt
(skipped, with the reason, where mlir-opt is not installed)."""
import shutil
import subprocess

import pytest

MLIR_OPT = shutil.which("mlir-opt-15") or shutil.which("mlir-opt")


def parse_mlir(text):
    if MLIR_OPT is None:
        pytest.skip("mlir-opt(-15) not installed: cannot check that the dumps parse")
    p = subprocess.run([MLIR_OPT, "--allow-unregistered-dialect", "-"], input=text,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"mlir-opt rejected the dump:\n{p.stderr}\n--- dump ---\n{text}"
    return p.stdout


@pytest.fixture
def mlir_check():
    return parse_mlir
