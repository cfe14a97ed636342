"""Shared pieces of the Python module's tests: the repository's paths, the CLI, a tiny test model."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = os.environ.get("PBS2P_BINARY", str(ROOT / "build" / "pbs2p"))
REF_LLAMA = ROOT / "models" / "ref-llama"
TEST_TEXT = ROOT / "data" / "test.txt"
CALIB_TEXT = ROOT / "data" / "calib.txt"


def run_cli(*args):
    """Runs `pbs2p args...` and returns the finished process (stdout and stderr as text)."""
    return subprocess.run([BINARY, *map(str, args)], capture_output=True, text=True, check=False)


def cli_json(*args):
    """Runs `pbs2p args... --json`, which must succeed, and returns its parsed output."""
    run = run_cli(*args, "--json")
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def cli_error(*args):
    """The one-line message of a failing CLI run, without the 'pbs2p: error: ' prefix."""
    run = run_cli(*args)
    assert run.returncode == 1, run.stderr
    line = run.stderr.strip().splitlines()[-1]
    prefix = "pbs2p: error: "
    assert line.startswith(prefix), run.stderr
    return line[len(prefix):]


def read_text(path):
    """A text file's exact contents (no newline translation), as the CLI reads it."""
    return Path(path).read_bytes().decode("utf-8")


@pytest.fixture
def tiny_model(tmp_path):
    """A copy of the 2-block golden LLaMA test model with the 96-piece test tokenizer."""
    model = tmp_path / "tiny"
    model.mkdir()
    golden = ROOT / "tests" / "model" / "golden" / "llama_gqa"
    for name in ("config.json", "model.safetensors"):
        shutil.copy(golden / name, model / name)
    shutil.copy(ROOT / "tests" / "tools" / "fixtures" / "tiny_tokenizer.model", model / "tokenizer.model")
    return model
