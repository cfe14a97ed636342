"""pbs2p.compress_layer() on NumPy arrays: the invariants of each method's output and structured form."""

import numpy as np
import pytest

import pbs2p

ROWS, COLS, TOKENS = 24, 128, 512


@pytest.fixture(scope="module")
def layer():
    """A random weight W [out, in] and its proxy Hessian H = 2 X Xᵀ / T from correlated inputs X [in, T]."""
    rng = np.random.default_rng(3)
    W = rng.standard_normal((ROWS, COLS)).astype(np.float32)
    mixing = rng.standard_normal((COLS, COLS)) / np.sqrt(COLS) + np.eye(COLS)
    X = mixing @ rng.standard_normal((COLS, TOKENS))
    H = 2.0 * X @ X.T / TOKENS
    return W, H


def test_pbs2p_4_8_structured_form(layer):
    W, H = layer
    result = pbs2p.compress_layer(W, H, method="pbs2p", nm="4:8")
    weight, layout, stats = result["weight"], result["layout"], result["stats"]
    assert weight.dtype == np.float32 and weight.shape == W.shape
    keep = layout["keep"]
    assert keep.dtype == np.bool_ and keep.shape == W.shape
    # Exactly 4 kept of every aligned group of 8 input columns, in every row.
    assert (keep.reshape(ROWS, COLS // 8, 8).sum(axis=2) == 4).all()
    assert (weight[~keep] == 0).all()
    # The dequantized weight is mu ± alpha of the structured form, bit for bit.
    group = np.arange(COLS) // layout["scale_group"]
    alpha, mu = layout["alpha"][:, group], layout["mu"][:, group]
    assert layout["alpha"].shape == (ROWS, COLS // layout["scale_group"])
    expected = np.where(keep, mu + np.where(layout["sign"], alpha, -alpha), np.float32(0))
    assert np.array_equal(weight, expected)
    assert stats["method"] == "pbs2p" and (stats["n_keep"], stats["m_group"]) == (4, 8)
    assert (stats["rows"], stats["cols"]) == (ROWS, COLS)
    assert stats["pruned"] == int(np.count_nonzero((weight == 0) & (W != 0)))
    assert 0 < stats["rel_error"] < 1
    assert stats["nominal_bits"] < 1 < stats["storage_bits"]


def test_options_by_name(layer):
    W, H = layer
    fine = pbs2p.compress_layer(W, H, nm="6:8", scale_group=32, backbone="arb")
    assert fine["layout"]["scale_group"] == 32
    assert (fine["layout"]["keep"].reshape(ROWS, COLS // 8, 8).sum(axis=2) == 6).all()
    assert fine["stats"]["rel_error"] < pbs2p.compress_layer(W, H, nm="2:8")["stats"]["rel_error"]
    uncompensated = pbs2p.compress_layer(W, H, measure_uncompensated=True)["stats"]
    assert uncompensated["rel_error_uncompensated"] >= 0


def test_gptq_output_lies_on_its_grid(layer):
    W, H = layer
    result = pbs2p.compress_layer(W, H, method="gptq", bits=2)
    weight = result["weight"]
    assert result["layout"] is None
    for row in weight:
        # One min-max grid per row: at most 2^bits levels, equally spaced.
        levels = np.unique(row)
        assert 2 <= len(levels) <= 4
        steps = np.diff(levels) / np.diff(levels).min()
        assert np.allclose(steps, np.round(steps), atol=1e-3)
    assert 0 < result["stats"]["rel_error"] < pbs2p.compress_layer(W, H, method="rtn", bits=2)["stats"]["rel_error"]


def test_sparsegpt_keeps_n_of_every_m(layer):
    W, H = layer
    weight = pbs2p.compress_layer(W, H, method="sparsegpt", nm="2:4")["weight"]
    assert (np.count_nonzero(weight.reshape(ROWS, COLS // 4, 4), axis=2) == 2).all()


def test_bad_input(layer):
    W, H = layer
    with pytest.raises(TypeError, match="unknown option 'coarse_stage'"):  # a model-level option
        pbs2p.compress_layer(W, H, coarse_stage=False)
    with pytest.raises(TypeError, match="option 'spbo' expects a bool, got int"):
        pbs2p.compress_layer(W, H, spbo=1)
    with pytest.raises(TypeError, match="option 'm_group'.*nm="):
        pbs2p.compress_layer(W, H, m_group=4)
    with pytest.raises(ValueError, match=r"H must be \[in, in\] = \[128, 128\]"):
        pbs2p.compress_layer(W, H[:64, :64])
    with pytest.raises(ValueError, match="W must be 2-D"):
        pbs2p.compress_layer(W[0], H)
    with pytest.raises(pbs2p.Error, match="no-such-method"):
        pbs2p.compress_layer(W, H, method="no-such-method")
    with pytest.raises(pbs2p.Error, match="--nm '4x8'"):
        pbs2p.compress_layer(W, H, nm="4x8")
    assert "coarse_stage" in pbs2p.option_names() and "coarse_stage" not in pbs2p.option_names(layer_only=True)
