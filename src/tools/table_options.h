// --embedding-type / --head-type (types of the token embedding and LM head in a packed file), shared by
// `pbs2p compress` and `pbs2p pack`, and the whole-file accounting of a packed file as JSON and text.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "packed/packed_model_dir.h"

namespace pbs2p::tools {

struct TableTypeOptions {
    std::string embedding = table_type_name(TableTypes{}.embedding);
    std::string head = table_type_name(TableTypes{}.head);
    TableTypes types() const;  // throws pbs2p::Error on a bad name
};
void add_table_type_options(CLI::App& app, TableTypeOptions& options);

// {"layers", "packed_weights", "packed_bytes", "bits_per_weight", "tables": [...], "other_tensors",
//  "other_bytes", "parameters", "file_bytes", "bits_per_parameter"}
nlohmann::json pack_summary_json(const PackSummary& s);
// One line: linear-layer bits/weight beside the whole-file bits/parameter and the table types.
std::string pack_summary_line(const PackSummary& s);

}  // namespace pbs2p::tools
