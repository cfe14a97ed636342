// Allocation of the weight code by tensor type: which code and scale group each kind of linear layer
// (q_proj, v_proj, down_proj, ...) gets, either spelled out (a recipe) or chosen under an exact budget of
// bits per weight over the model's decoder linear layers. It generalises the CFS coarse stage (which spends
// bits by block importance) to the axis that matters most for variable-N codes: the tensor type.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pbs2p {

// The default preset (chosen on the valid split, docs/FINDINGS.md §4): variable-N ternary codes allocated by
// tensor type under this many bits per weight of the decoder linear layers (at or under llama.cpp's IQ1_S
// on the reference model), up this ladder in this order of tensor types, with 3 alpha re-fit passes.
inline constexpr double kDefaultBitsBudget = 1.65;
inline constexpr const char* kDefaultLadder = "tern11@256,tern13@-1,tern13@128,tern13@64,tern13@32";
inline constexpr const char* kDefaultPriority =
    "v_proj,down_proj,fc2,o_proj,out_proj,gate_proj,up_proj,fc1,q_proj,k_proj";
inline constexpr int kDefaultAlphaPasses = 3;

// One rung of a ladder: a weight code and its scale group (columns per alpha; -1 = one per row).
struct CodeChoice {
    std::string code;
    int scale_group = 0;
    bool operator==(const CodeChoice&) const = default;
};

// "tern13@-1" -> {tern13, -1}; "nm" alone keeps the scale group of the options (0).
CodeChoice parse_code_choice(const std::string& text);
std::string to_string(const CodeChoice& choice);
// Comma-separated list of rungs, cheapest first.
std::vector<CodeChoice> parse_ladder(const std::string& text);
// Comma-separated tensor types in the order a budget raises them ("v_proj,down_proj,...").
std::vector<std::string> parse_priority(const std::string& text);
// "v_proj=tern13@-1,down_proj=tern13@-1,*=tern11@256": tensor type -> choice ("*" = every other type).
std::map<std::string, CodeChoice> parse_recipe(const std::string& text);
std::string recipe_to_string(const std::map<std::string, CodeChoice>& recipe);

// The tensor type of a layer name: its last dotted component ("model.layers.3.mlp.down_proj" -> "down_proj").
std::string tensor_type(const std::string& layer_name);

// Stored bits per weight of a tern code choice for a [rows x cols] layer: code bits / 8 + 16 / scale group.
double code_choice_bits(const CodeChoice& choice, int64_t cols);

struct LayerShape {
    std::string name;
    int64_t rows = 0, cols = 0;
};

// Every type starts on ladder[0]; then, in passes over `priority` (types not listed come last, in name
// order), each type is raised one rung when the parameter-weighted mean over all layers stays <= budget.
// Throws pbs2p::Error when even ladder[0] everywhere exceeds the budget.
std::map<std::string, CodeChoice> allocate_codes(const std::vector<LayerShape>& layers,
                                                 const std::vector<CodeChoice>& ladder,
                                                 const std::vector<std::string>& priority,
                                                 double budget_bits);

// Parameter-weighted mean bits of a recipe over the layers.
double recipe_bits(const std::vector<LayerShape>& layers, const std::map<std::string, CodeChoice>& recipe);

}  // namespace pbs2p
