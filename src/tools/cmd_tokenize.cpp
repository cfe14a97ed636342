// `pbs2p tokenize`: text -> token ids, or ids -> text with --decode.
#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "io/tokenizer.h"
#include "io/unicode.h"
#include "tools/command.h"

namespace pbs2p::tools {
namespace {

struct TokenizeOptions {
    std::string tokenizer;
    std::string text_file;
    std::string prompt;
    bool decode = false;
    bool bos = false;
    CommonOptions common;
};

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    PBS2P_CHECK(in, "{}: cannot open", path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<int32_t> parse_ids(const std::string& text, const std::string& source) {
    std::vector<int32_t> ids;
    std::istringstream in(text);
    for (std::string word; in >> word;) {
        size_t used = 0;
        long long id = -1;
        try {
            id = std::stoll(word, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        PBS2P_CHECK(used == word.size() && id >= 0 && id <= INT32_MAX, "{}: '{}' is not a token id", source, word);
        ids.push_back(static_cast<int32_t>(id));
    }
    return ids;
}

int run(const TokenizeOptions& o) {
    apply_common_options(o.common);
    const bool from_file = !o.text_file.empty();
    const std::string input = from_file ? read_file(o.text_file) : o.prompt;
    const std::string source = from_file ? o.text_file : std::string("--prompt");
    const auto tokenizer = load_tokenizer(o.tokenizer);
    if (o.decode) {
        const std::string text = tokenizer->decode(parse_ids(input, source));
        if (o.common.json)
            fmt::print("{}\n", nlohmann::json{{"text", text}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        else
            fmt::print("{}\n", text);
        return 0;
    }
    require_utf8(input, source);
    const std::vector<int32_t> ids = tokenizer->encode(input, o.bos);
    if (o.common.json)
        fmt::print("{}\n", nlohmann::json{{"count", ids.size()}, {"ids", ids}, {"tokenizer", tokenizer->kind()}}.dump());
    else
        fmt::print("{}\n", fmt::join(ids, " "));
    return 0;
}

CommandRegistrar registrar{
    {"tokenize", "Encode text to token ids (or decode ids with --decode)", [](CLI::App& app) {
         auto o = std::make_shared<TokenizeOptions>();
         app.add_option("tokenizer", o->tokenizer,
                        "Model directory (tokenizer.model or tokenizer.json), tokenizer.model, tokenizer.json or .gguf")
             ->required();
         auto* text = app.add_option("--text", o->text_file, "Read the input from this file (UTF-8 text, or ids with --decode)")
                          ->type_name("FILE");
         auto* prompt = app.add_option("--prompt", o->prompt, "The input itself (text, or whitespace-separated ids with --decode)");
         text->excludes(prompt);
         prompt->excludes(text);
         app.add_flag("--decode", o->decode, "Read whitespace-separated token ids and print the text they decode to");
         app.add_flag("--bos", o->bos, "Prepend the BOS token when the tokenizer uses one (default: no special tokens)");
         add_common_options(app, o->common);
         app.footer(
             "Prints token ids separated by spaces; with --json: {\"count\", \"ids\", \"tokenizer\"} "
             "(or {\"text\"} with --decode).");
         return std::function<int()>([o, text, prompt] {
             PBS2P_CHECK(text->count() + prompt->count() == 1, "tokenize: give exactly one of --text FILE or --prompt TEXT");
             return run(*o);
         });
     }}};

}  // namespace
}  // namespace pbs2p::tools
