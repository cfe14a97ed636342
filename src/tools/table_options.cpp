#include "tools/table_options.h"

#include <fmt/format.h>

namespace pbs2p::tools {

TableTypes TableTypeOptions::types() const {
    return {parse_table_type(embedding), parse_table_type(head)};
}

void add_table_type_options(CLI::App& app, TableTypeOptions& options) {
    const auto names = CLI::IsMember({"f32", "f16", "q8", "q4"});
    app.add_option("--embedding-type", options.embedding,
                   "Token embedding in the packed file: f32 | f16 | q8 (8.5 bits) | q4 (5 bits)")
        ->capture_default_str()
        ->check(names);
    app.add_option("--head-type", options.head,
                   "LM head in the packed file: f32 | f16 | q8 | q4 (a tied embedding takes the more precise "
                   "of the two)")
        ->capture_default_str()
        ->check(names);
}

nlohmann::json pack_summary_json(const PackSummary& s) {
    nlohmann::json tables = nlohmann::json::array();
    for (const TableSummary& t : s.tables)
        tables.push_back(
            {{"name", t.name}, {"type", table_type_name(t.type)}, {"params", t.params}, {"bytes", t.bytes}});
    return {{"layers", s.layers},
            {"packed_weights", s.packed_weights},
            {"packed_bytes", s.packed_bytes},
            {"bits_per_weight", s.bits_per_weight()},
            {"tables", tables},
            {"other_tensors", s.other_tensors},
            {"other_params", s.other_params},
            {"other_bytes", s.other_bytes},
            {"parameters", s.parameters()},
            {"file_bytes", s.file_bytes},
            {"bits_per_parameter", s.bits_per_parameter()}};
}

std::string pack_summary_line(const PackSummary& s) {
    std::string tables;
    for (const TableSummary& t : s.tables)
        tables += fmt::format("{}{} {} ({:.2f} MiB)", tables.empty() ? "" : ", ", t.name,
                              table_type_name(t.type), static_cast<double>(t.bytes) / (1 << 20));
    return fmt::format(
        "{} packed layers at {:.4f} bits/weight; whole file {:.2f} MiB = {:.4f} bits/parameter over {} "
        "parameters; tables: {}",
        s.layers, s.bits_per_weight(), static_cast<double>(s.file_bytes) / (1 << 20), s.bits_per_parameter(),
        s.parameters(), tables.empty() ? "none" : tables);
}

}  // namespace pbs2p::tools
