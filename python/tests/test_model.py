"""pbs2p.load() and the Model: the same numbers as `pbs2p eval`, `generate` and `tokenize`."""

import numpy as np
import pytest

import pbs2p
from conftest import REF_LLAMA, TEST_TEXT, cli_error, cli_json, read_text


@pytest.fixture(scope="module")
def ref_llama():
    return pbs2p.load(str(REF_LLAMA))


@pytest.fixture(scope="module")
def test_text():
    return read_text(TEST_TEXT)


@pytest.mark.parametrize("protocol,ctx", [("gptq", 128), ("llamacpp", 128), ("gptq", 64)])
def test_perplexity_equals_cli(ref_llama, test_text, protocol, ctx):
    cli = cli_json("eval", REF_LLAMA, "--text", TEST_TEXT, "--ctx", ctx, "--max-windows", 3, "--protocol", protocol)
    ppl = ref_llama.perplexity(test_text, ctx=ctx, protocol=protocol, max_windows=3)
    assert cli["perplexity"]["windows"] == 3
    assert ppl == cli["perplexity"]["ppl"]


def test_config_properties(ref_llama):
    assert ref_llama.architecture == "LlamaForCausalLM"
    assert (ref_llama.hidden_size, ref_llama.num_layers, ref_llama.vocab_size) == (256, 4, 4096)
    assert ref_llama.config["num_kv_heads"] == 2
    assert ref_llama.max_position_embeddings == 512
    assert not ref_llama.packed


def test_tokenize_equals_cli(ref_llama):
    prompt = "It is a truth universally acknowledged"
    ids = ref_llama.tokenize(prompt)  # BOS first, as eval and generate feed the model
    assert ids[0] == ref_llama.config["bos_token_id"]
    assert ids[1:] == ref_llama.tokenize(prompt, add_bos=False)
    assert ids[1:] == cli_json("tokenize", REF_LLAMA, "--prompt", prompt)["ids"]
    assert ref_llama.decode(ids) == prompt


def test_logits_shape_and_greedy_generation_agree_with_cli(ref_llama):
    prompt = "The old house"
    cli = cli_json("generate", REF_LLAMA, "--prompt", prompt, "--max-tokens", 8)
    ids = ref_llama.tokenize(prompt)
    generated = cli["tokens"]
    logits = ref_llama.logits(ids + generated)
    assert logits.dtype == np.float32
    assert logits.shape == (len(ids) + len(generated), 4096)
    # Greedy decoding picks the argmax of the logits at every step (teacher-forced here in one pass).
    assert list(np.argmax(logits[len(ids) - 1 : -1], axis=1)) == generated
    assert ref_llama.generate(prompt, max_tokens=8) == cli["text"]


def test_logits_give_the_cli_perplexity_of_one_window(ref_llama, test_text):
    ctx = 128
    cli = cli_json("eval", REF_LLAMA, "--text", TEST_TEXT, "--ctx", ctx, "--max-windows", 1)
    window = ref_llama.tokenize(test_text)[:ctx]
    logits = ref_llama.logits(window).astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    nll = -log_softmax[np.arange(ctx - 1), window[1:]]
    assert np.exp(nll.mean()) == pytest.approx(cli["perplexity"]["ppl"], rel=1e-6)


def test_sampling_is_deterministic_for_a_seed_and_equals_cli(ref_llama):
    prompt = "She said"
    settings = dict(max_tokens=24, temperature=0.9, top_k=40)
    first = ref_llama.generate(prompt, seed=7, **settings)
    assert ref_llama.generate(prompt, seed=7, **settings) == first
    assert ref_llama.generate(prompt, seed=8, **settings) != first
    cli = cli_json("generate", REF_LLAMA, "--prompt", prompt, "--max-tokens", 24, "--temperature", 0.9,
                   "--top-k", 40, "--seed", 7)
    assert first == cli["text"]


def test_errors_carry_the_cli_message(tmp_path, test_text, ref_llama):
    missing = tmp_path / "no-such-model"
    with pytest.raises(pbs2p.Error) as error:
        pbs2p.load(str(missing))
    assert isinstance(error.value, RuntimeError)
    assert str(error.value) == cli_error("eval", missing, "--text", TEST_TEXT)
    with pytest.raises(pbs2p.Error, match="'perplexity-of-nothing'.*gptq.*llamacpp"):
        ref_llama.perplexity(test_text, protocol="perplexity-of-nothing")
    with pytest.raises(pbs2p.Error, match="text too short"):
        ref_llama.perplexity("A few words.", ctx=128)
    with pytest.raises(pbs2p.Error, match="token id 5000 outside the vocabulary"):
        ref_llama.logits([1, 5000])
