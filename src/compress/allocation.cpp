#include "compress/allocation.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "compress/pattern_codebook.h"
#include "core/error.h"

namespace pbs2p {

namespace {

std::vector<std::string> split(const std::string& text, char sep) {
    std::vector<std::string> out;
    std::string item;
    std::istringstream in(text);
    while (std::getline(in, item, sep))
        if (!item.empty()) out.push_back(item);
    return out;
}

const CodeChoice& choice_for(const std::map<std::string, CodeChoice>& recipe, const std::string& type) {
    auto it = recipe.find(type);
    if (it == recipe.end()) it = recipe.find("*");
    PBS2P_CHECK(it != recipe.end(), "allocation: no code for tensor type '{}' and no '*' entry", type);
    return it->second;
}

}  // namespace

CodeChoice parse_code_choice(const std::string& text) {
    CodeChoice c;
    const auto at = text.find('@');
    c.code = text.substr(0, at);
    if (at != std::string::npos) {
        try {
            size_t used = 0;
            c.scale_group = std::stoi(text.substr(at + 1), &used);
            PBS2P_CHECK(used == text.size() - at - 1, "bad scale group");
        } catch (const std::exception&) {
            fail("allocation: '{}': expected CODE@SCALE_GROUP, e.g. tern13@-1 or tern11@256", text);
        }
    }
    if (c.code != "nm") pattern_codebook(c.code);  // throws for an unknown code
    return c;
}

std::string to_string(const CodeChoice& c) {
    return c.code + "@" + std::to_string(c.scale_group);
}

std::vector<CodeChoice> parse_ladder(const std::string& text) {
    std::vector<CodeChoice> out;
    for (const std::string& item : split(text, ',')) out.push_back(parse_code_choice(item));
    PBS2P_CHECK(!out.empty(), "allocation: empty ladder '{}'", text);
    return out;
}

std::vector<std::string> parse_priority(const std::string& text) {
    return split(text, ',');
}

std::map<std::string, CodeChoice> parse_recipe(const std::string& text) {
    std::map<std::string, CodeChoice> out;
    for (const std::string& item : split(text, ',')) {
        const auto eq = item.find('=');
        PBS2P_CHECK(eq != std::string::npos && eq > 0,
                    "allocation: recipe entry '{}': expected TYPE=CODE@SCALE_GROUP, e.g. v_proj=tern13@-1",
                    item);
        PBS2P_CHECK(out.emplace(item.substr(0, eq), parse_code_choice(item.substr(eq + 1))).second,
                    "allocation: tensor type '{}' appears twice in the recipe", item.substr(0, eq));
    }
    PBS2P_CHECK(!out.empty(), "allocation: empty recipe '{}'", text);
    return out;
}

std::string recipe_to_string(const std::map<std::string, CodeChoice>& recipe) {
    std::string out;
    for (const auto& [type, c] : recipe) out += (out.empty() ? "" : ",") + type + "=" + to_string(c);
    return out;
}

std::string tensor_type(const std::string& layer_name) {
    const auto dot = layer_name.rfind('.');
    return dot == std::string::npos ? layer_name : layer_name.substr(dot + 1);
}

double code_choice_bits(const CodeChoice& c, int64_t cols) {
    PBS2P_CHECK(c.code != "nm", "allocation: budgets are counted for the tern codes only, got '{}'", c.code);
    const int64_t sg = c.scale_group < 0 || c.scale_group > cols ? cols : c.scale_group;  // as the compressor
    PBS2P_CHECK(sg > 0 && cols % sg == 0, "allocation: scale group {} does not divide a width of {}", sg,
                cols);
    return pattern_codebook(c.code).code_bits / 8.0 + 16.0 / static_cast<double>(sg);
}

double recipe_bits(const std::vector<LayerShape>& layers, const std::map<std::string, CodeChoice>& recipe) {
    double bits = 0.0, weights = 0.0;
    for (const LayerShape& l : layers) {
        const double n = static_cast<double>(l.rows) * static_cast<double>(l.cols);
        bits += n * code_choice_bits(choice_for(recipe, tensor_type(l.name)), l.cols);
        weights += n;
    }
    return weights > 0 ? bits / weights : 0.0;
}

std::map<std::string, CodeChoice> allocate_codes(const std::vector<LayerShape>& layers,
                                                 const std::vector<CodeChoice>& ladder,
                                                 const std::vector<std::string>& priority,
                                                 double budget_bits) {
    PBS2P_CHECK(!ladder.empty(), "allocation: empty ladder");
    std::set<std::string> types;
    for (const LayerShape& l : layers) types.insert(tensor_type(l.name));
    std::vector<std::string> order;
    for (const std::string& t : priority)
        if (types.count(t)) order.push_back(t);
    for (const std::string& t : types)
        if (std::find(order.begin(), order.end(), t) == order.end()) order.push_back(t);

    std::map<std::string, size_t> rung;
    std::map<std::string, CodeChoice> recipe;
    for (const std::string& t : order) {
        rung[t] = 0;
        recipe[t] = ladder[0];
    }
    const double base = recipe_bits(layers, recipe);
    PBS2P_CHECK(base <= budget_bits + 1e-12,
                "allocation: the cheapest rung {} already needs {:.4f} bits, over the budget {}",
                to_string(ladder[0]), base, budget_bits);
    for (bool raised = true; raised;) {
        raised = false;
        for (const std::string& t : order) {
            if (rung[t] + 1 >= ladder.size()) continue;
            std::map<std::string, CodeChoice> trial = recipe;
            trial[t] = ladder[rung[t] + 1];
            if (recipe_bits(layers, trial) <= budget_bits + 1e-12) {
                recipe = std::move(trial);
                ++rung[t];
                raised = true;
            }
        }
    }
    return recipe;
}

}  // namespace pbs2p
