"""pbs2p.compress(): the files and report of `pbs2p compress`, progress, options, errors, resuming."""

import json

import pytest

import pbs2p
from conftest import CALIB_TEXT, TEST_TEXT, cli_error, cli_json, read_text, run_cli

CALIBRATION = dict(calib=str(CALIB_TEXT), calib_windows=4, calib_seq=64)
CLI_CALIBRATION = ["--calib", CALIB_TEXT, "--calib-windows", 4, "--calib-seq", 64]
OUTPUTS = ("model.safetensors", "model.packed.safetensors")


def without_timings(report):
    """report.json less what differs between two runs of the same job (times, memory)."""
    report = json.loads(json.dumps(report))
    for key in ("wall_seconds", "peak_rss_bytes", "compress_seconds", "phase_seconds", "block_seconds",
                "block_memory"):
        report.pop(key)
    for rank in report["rank_usage"]:
        rank.pop("peak_rss_bytes")
        rank.pop("compute_cpu_seconds")
    for layer in report["layers"]:
        layer["stats"].pop("seconds")
    return report


def test_compress_writes_what_the_cli_writes(tiny_model, tmp_path):
    calls = []
    report = pbs2p.compress(str(tiny_model), str(tmp_path / "py"), method="pbs2p", nm="4:8",
                            progress=lambda done, total, status: calls.append((done, total, status)),
                            **CALIBRATION)
    cli = run_cli("compress", tiny_model, "--method", "pbs2p", "--nm", "4:8", *CLI_CALIBRATION, "-o", tmp_path / "cli")
    assert cli.returncode == 0, cli.stderr

    for name in OUTPUTS:
        assert (tmp_path / "py" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    assert report == json.loads((tmp_path / "py" / "report.json").read_text())
    assert without_timings(report) == without_timings(json.loads((tmp_path / "cli" / "report.json").read_text()))
    assert report["packed"] and report["nominal_bits"] < 1.0
    assert not (tmp_path / "py" / ".checkpoint").exists()

    # One call per compressed layer, in order, with the CLI progress bar's status text.
    layers = report["layers"]
    assert [c[0] for c in calls] == list(range(1, len(layers) + 1))
    assert all(c[1] == len(layers) for c in calls)
    assert calls[0][2].startswith(f"block 0 {layers[0]['name'].rsplit('.', 1)[1]} err ")


def test_packed_output_runs_with_the_cli_perplexity(tiny_model, tmp_path):
    pbs2p.compress(str(tiny_model), str(tmp_path / "out"), progress=lambda *args: None, **CALIBRATION)
    packed = tmp_path / "out" / "model.packed.safetensors"
    model = pbs2p.load(str(packed), kernel="reference")
    assert model.packed
    text = tmp_path / "text.txt"
    text.write_text(read_text(TEST_TEXT)[:4000])
    cli = cli_json("eval", packed, "--kernel", "reference", "--text", text, "--ctx", 32, "--max-windows", 4)
    assert model.perplexity(read_text(text), ctx=32, max_windows=4) == cli["perplexity"]["ppl"]


def test_options_by_name_reach_the_report(tiny_model, tmp_path):
    report = pbs2p.compress(str(tiny_model), str(tmp_path / "out"), method="sparsegpt", nm="2:4", percdamp=0.05,
                            block_size=32, progress=lambda *args: None, **CALIBRATION)
    assert report["options"]["percdamp"] == 0.05
    assert report["options"]["block_size"] == 32
    assert (report["options"]["n_keep"], report["options"]["m_group"]) == (2, 4)
    assert not report["packed"] and not (tmp_path / "out" / "model.packed.safetensors").exists()


def test_a_failing_progress_callback_stops_the_run_and_a_rerun_resumes(tiny_model, tmp_path):
    whole = pbs2p.compress(str(tiny_model), str(tmp_path / "whole"), progress=lambda *args: None, **CALIBRATION)

    class Stop(Exception):
        pass

    def stop_in_second_block(done, total, status):
        if status.startswith("block 1"):
            raise Stop(status)

    with pytest.raises(Stop):
        pbs2p.compress(str(tiny_model), str(tmp_path / "resumed"), progress=stop_in_second_block, **CALIBRATION)
    assert (tmp_path / "resumed" / ".checkpoint").is_dir()
    resumed = pbs2p.compress(str(tiny_model), str(tmp_path / "resumed"), progress=lambda *args: None, **CALIBRATION)
    assert resumed["resumed_blocks"] == 1
    for name in OUTPUTS:
        assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    assert [layer["stats"]["rel_error"] for layer in resumed["layers"]] == [
        layer["stats"]["rel_error"] for layer in whole["layers"]]


def test_bad_options(tiny_model, tmp_path):
    out = str(tmp_path / "out")
    with pytest.raises(TypeError, match="unknown option 'spbo_stepz'"):
        pbs2p.compress(str(tiny_model), out, spbo_stepz=2, **CALIBRATION)
    with pytest.raises(TypeError, match="option 'spbo_steps' expects an int, got str"):
        pbs2p.compress(str(tiny_model), out, spbo_steps="2", **CALIBRATION)
    with pytest.raises(TypeError, match="option 'n_keep'.*nm="):
        pbs2p.compress(str(tiny_model), out, n_keep=3, **CALIBRATION)
    with pytest.raises(TypeError):
        pbs2p.compress(str(tiny_model), out)  # calib is required
    # Errors of the library carry the CLI's message.
    with pytest.raises(pbs2p.Error) as error:
        pbs2p.compress(str(tiny_model), out, nm="4x8", **CALIBRATION)
    assert str(error.value) == cli_error("compress", tiny_model, "--nm", "4x8", *CLI_CALIBRATION, "-o", out)
    with pytest.raises(pbs2p.Error) as error:
        pbs2p.compress(str(tiny_model), out, method="pbs2p", backbone="no-such-backbone", **CALIBRATION)
    assert str(error.value) == cli_error("compress", tiny_model, "--backbone", "no-such-backbone", *CLI_CALIBRATION,
                                         "-o", out)
    assert "backbone" in str(error.value)


def test_bits_budget_matches_the_cli_budget(tiny_model, tmp_path):
    """bits_budget is the CLI's --bits-budget (same recipe, same bytes). The tiny
    model's rows are 32-64 wide, so one scale per row costs 0.25-0.5 bits: 1.65 bits is out of reach."""
    report = pbs2p.compress(str(tiny_model), str(tmp_path / "py"), bits_budget=2.0, alpha_passes=3,
                            progress=lambda *args: None, **CALIBRATION)
    cli = run_cli("compress", tiny_model, "--bits-budget", 2.0, "--alpha-passes", 3, *CLI_CALIBRATION,
                  "-o", tmp_path / "cli")
    assert cli.returncode == 0, cli.stderr
    for name in OUTPUTS:
        assert (tmp_path / "py" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    assert report["options"]["alpha_passes"] == 3
    assert report["options"]["recipe"] != ""
    assert report["packed_bits_per_weight"] <= 2.0

    # A recipe spelled out gives exactly that recipe.
    recipe = report["options"]["recipe"]
    again = pbs2p.compress(str(tiny_model), str(tmp_path / "recipe"), recipe=recipe, alpha_passes=3,
                           progress=lambda *args: None, **CALIBRATION)
    assert again["options"]["recipe"] == recipe
    assert (tmp_path / "recipe" / "model.packed.safetensors").read_bytes() == \
        (tmp_path / "py" / "model.packed.safetensors").read_bytes()
