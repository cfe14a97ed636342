#!/usr/bin/env bash
# Rebuilds zeroshot_known_answers.jsonl: for each context, the gold choice is models/ref-llama's greedy
# continuation (4 tokens, decoded) and the 3 distractors are 4 random vocabulary tokens each, decoded
# (fixed seed). Run from the repository root after building: tests/eval/data/make_zeroshot_known_answers.sh
set -euo pipefail
model=models/ref-llama
bin=build/pbs2p
out=tests/eval/data/zeroshot_known_answers.jsonl
contexts=(
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a"
    "The President of the United States shall, from time to time, give to the Congress information of the state of the"
    "She was the youngest of the two daughters of a most affectionate, indulgent father; and had, in consequence of her"
    "Fellow citizens of the Senate and of the House of Representatives: I am happy to"
    "Elinor, this eldest daughter, whose advice was so effectual, possessed a strength of understanding, and"
    "The house was large and handsome, and the grounds were laid out with"
)
RANDOM=20261201
: >"$out"
for k in "${!contexts[@]}"; do
    ctx=${contexts[$k]}
    gold=$($bin generate "$model" -p "$ctx" -n 4 --json -t 1 2>/dev/null |
        /usr/bin/python3 -c 'import json,sys; print(json.dumps(" " + json.load(sys.stdin)["text"].strip()))')
    choices=("$gold")
    for d in 1 2 3; do
        ids="$((RANDOM % 3700 + 300)) $((RANDOM % 3700 + 300)) $((RANDOM % 3700 + 300)) $((RANDOM % 3700 + 300))"
        choices+=("$($bin tokenize "$model" --decode --prompt "$ids" --json |
            /usr/bin/python3 -c 'import json,sys; print(json.dumps(" " + json.load(sys.stdin)["text"].strip()))')")
    done
    g=$((k % 4))  # gold position cycles through 0..3
    ordered=("${choices[@]:1:$g}" "${choices[0]}" "${choices[@]:$((g + 1))}")
    list=$(IFS=,; echo "${ordered[*]}")
    printf '{"id": "known-%d", "context": %s, "choices": [%s], "gold": %d}\n' "$k" \
        "$(/usr/bin/python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$ctx")" "$list" "$g" >>"$out"
done
cat "$out"
