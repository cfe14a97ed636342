// Packed model file and layouts interchange file: round trips and one-line errors on bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "packed/packed_file.h"
#include "packed/random_layout.h"

namespace pbs2p {
namespace {

namespace fs = std::filesystem;

class PackedFileTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("pbs2p_packed_file_" + std::to_string(::getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir_);
        layouts_["model.layers.0.mlp.up_proj"] = random_layout(40, 136, 5, 8, 136, 1);
        layouts_["model.layers.0.self_attn.q_proj"] = random_layout(7, 24, 2, 4, 8, 2);
        std::map<std::string, PackedLayer> layers;
        for (const auto& [name, l] : layouts_) layers[name] = encode_layer(l, name);
        const float norm[4] = {1, 2, 3, 4};
        path_ = (dir_ / "model.packed.safetensors").string();
        write_packed_file(path_, layers, {tensor_from_floats("model.norm.weight", norm, {4}, DType::f32)},
                          {{"note", "test"}});
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::vector<char> read_bytes() const {
        std::ifstream in(path_, std::ios::binary);
        return {std::istreambuf_iterator<char>(in), {}};
    }
    void write_bytes(const std::vector<char>& bytes) const {
        std::ofstream out(path_, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    // Rewrites the file with the same tensors and edited metadata.
    void rewrite_metadata(const std::function<void(std::map<std::string, std::string>&)>& edit) const {
        std::vector<TensorToWrite> tensors;
        std::map<std::string, std::string> meta;
        {
            const SafetensorsReader r = SafetensorsReader::open(path_);
            meta = r.metadata();
            for (const std::string& name : r.names()) {
                const TensorInfo& t = r.tensor(name);
                tensors.push_back({name, t.dtype, t.shape, std::vector<uint8_t>(t.data, t.data + t.nbytes)});
            }
        }
        edit(meta);
        write_safetensors(path_, tensors, meta);
    }
    void expect_error(const std::string& needle) const {
        try {
            PackedFile::open(path_);
            FAIL() << "no error, expected one containing '" << needle << "'";
        } catch (const Error& e) {
            const std::string msg = e.what();
            EXPECT_NE(msg.find(needle), std::string::npos) << msg;
            EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
        }
    }

    fs::path dir_;
    std::string path_;
    std::map<std::string, BinaryLayout> layouts_;
};

TEST_F(PackedFileTest, RoundTripsLayersAndOtherTensors) {
    const PackedFile f = PackedFile::open(path_);
    ASSERT_EQ(f.layer_names().size(), 2u);
    for (const auto& [name, l] : layouts_) {
        const BinaryLayout back = decode_layer(f.load_layer(name), name);
        EXPECT_EQ(back.keep, l.keep) << name;
        EXPECT_EQ(back.sign, l.sign) << name;
        EXPECT_EQ(back.alpha, l.alpha) << name;
        EXPECT_EQ(back.mu, l.mu) << name;
        EXPECT_EQ(back.n_keep, l.n_keep);
        EXPECT_EQ(back.m_group, l.m_group);
    }
    EXPECT_EQ(f.other_tensor_names(), std::vector<std::string>{"model.norm.weight"});
    EXPECT_EQ(f.tensors().load_vector("model.norm.weight", 4)[3], 4.0f);
    EXPECT_EQ(f.metadata().at("note"), "test");
}

TEST_F(PackedFileTest, ChecksumMismatchNamesTheTensor) {
    std::vector<char> bytes = read_bytes();
    bytes[bytes.size() - 3] ^= 0x10;  // last tensor in name order: model.norm.weight
    write_bytes(bytes);
    expect_error("checksum mismatch in tensor 'model.norm.weight'");
}

TEST_F(PackedFileTest, TruncatedFileIsRejected) {
    std::vector<char> bytes = read_bytes();
    bytes.resize(bytes.size() - 10);
    write_bytes(bytes);
    EXPECT_THROW(PackedFile::open(path_), Error);
    bytes.resize(5);
    write_bytes(bytes);
    EXPECT_THROW(PackedFile::open(path_), Error);
}

TEST_F(PackedFileTest, VersionMismatchIsRejected) {
    rewrite_metadata([](auto& meta) { meta["format_version"] = "3"; });
    expect_error("version '3' is not supported");
}

TEST_F(PackedFileTest, FileWithoutTablesIsVersionOne) {
    const PackedFile f = PackedFile::open(path_);
    EXPECT_EQ(f.format_version(), 1);
    EXPECT_TRUE(f.table_names().empty());
    EXPECT_EQ(f.metadata().count("tables"), 0u);
}

// A file with a q8 embedding, a q4 head and an f32 table (stored as a plain tensor).
class PackedFileTablesTest : public PackedFileTest {
  protected:
    void write_with_tables() {
        std::map<std::string, PackedLayer> layers;
        for (const auto& [name, l] : layouts_) layers[name] = encode_layer(l, name);
        embedding_ = Matrix(9, 40);
        head_ = Matrix(9, 40);
        for (int64_t i = 0; i < embedding_.size(); ++i) {
            embedding_.data[i] = std::sin(0.37f * i);
            head_.data[i] = std::cos(0.11f * i);
        }
        std::map<std::string, WeightTable> tables;
        tables["model.embed_tokens.weight"] = encode_table(embedding_.ptr(), 9, 40, TableType::q8, "e");
        tables["lm_head.weight"] = encode_table(head_.ptr(), 9, 40, TableType::q4, "h");
        tables["extra.weight"] = encode_table(head_.ptr(), 9, 40, TableType::f32, "x");
        write_packed_file(path_, layers, {}, {}, tables);
    }
    Matrix embedding_, head_;
};

TEST_F(PackedFileTablesTest, TablesRoundTripAsVersionTwo) {
    write_with_tables();
    const PackedFile f = PackedFile::open(path_);
    EXPECT_EQ(f.format_version(), 2);
    ASSERT_EQ(f.table_names(), (std::vector<std::string>{"lm_head.weight", "model.embed_tokens.weight"}));
    EXPECT_EQ(f.table_desc("lm_head.weight").type, TableType::q4);
    const WeightTable e = f.load_table("model.embed_tokens.weight");
    EXPECT_EQ(e.data, encode_table(embedding_.ptr(), 9, 40, TableType::q8, "e").data);
    // The f32 table is an ordinary tensor, and tables are not "other" tensors.
    EXPECT_EQ(f.other_tensor_names(), std::vector<std::string>{"extra.weight"});
    EXPECT_EQ(f.tensors().tensor("extra.weight").dtype, DType::f32);
}

TEST_F(PackedFileTablesTest, BadTableDescriptorsAreRejected) {
    write_with_tables();
    rewrite_metadata([](auto& meta) {
        auto d = nlohmann::json::parse(meta["tables"]);
        d["lm_head.weight"]["cols"] = 64;  // still 2 blocks per row: the row count decides
        d["lm_head.weight"]["rows"] = 10;
        meta["tables"] = d.dump();
    });
    expect_error("tensor 'lm_head.weight' holds");
    write_with_tables();
    rewrite_metadata([](auto& meta) {
        auto d = nlohmann::json::parse(meta["tables"]);
        d["lm_head.weight"]["type"] = "q5";
        meta["tables"] = d.dump();
    });
    expect_error("table 'lm_head.weight'");
    write_with_tables();
    rewrite_metadata([](auto& meta) { meta["format_version"] = "1"; });
    expect_error("'tables' needs format version 2");
}

TEST_F(PackedFileTest, WrongFormatIsRejected) {
    rewrite_metadata([](auto& meta) { meta.erase("format"); });
    expect_error("not a pbs2p-packed file");
}

TEST_F(PackedFileTest, InconsistentDescriptorIsRejected) {
    rewrite_metadata([](auto& meta) {
        auto d = nlohmann::json::parse(meta["packed_layers"]);
        d["model.layers.0.mlp.up_proj"]["rows"] = 41;
        meta["packed_layers"] = d.dump();
    });
    expect_error("tensor 'model.layers.0.mlp.up_proj.codes' holds");
    rewrite_metadata([](auto& meta) {
        auto d = nlohmann::json::parse(meta["packed_layers"]);
        d["model.layers.0.mlp.up_proj"]["rows"] = 40;
        d["model.layers.0.mlp.up_proj"]["code_bits"] = 12;
        meta["packed_layers"] = d.dump();
    });
    expect_error("code width 12 bits");
    rewrite_metadata([](auto& meta) { meta["packed_layers"] = "{not json"; });
    expect_error("'packed_layers' is not valid JSON");
}

TEST_F(PackedFileTest, InvalidCodeIsRejectedOnLoad) {
    // Valid checksums, but a code that names no pattern: set the first 11-bit code of up_proj to all ones.
    rewrite_metadata([](auto&) {});
    std::map<std::string, PackedLayer> layers;
    for (const auto& [name, l] : layouts_) layers[name] = encode_layer(l, name);
    PackedLayer& up = layers["model.layers.0.mlp.up_proj"];
    up.codes[0] = 0xff;
    up.codes[1] |= 0x07;
    EXPECT_THROW(write_packed_file(path_, layers), Error);  // the writer validates too
}

TEST_F(PackedFileTest, LayoutsInterchangeRoundTrips) {
    const std::string path = (dir_ / kLayoutsFileName).string();
    write_layouts(path, layouts_);
    const auto back = read_layouts(path);
    ASSERT_EQ(back.size(), layouts_.size());
    for (const auto& [name, l] : layouts_) {
        const BinaryLayout& b = back.at(name);
        EXPECT_EQ(b.rows, l.rows);
        EXPECT_EQ(b.cols, l.cols);
        EXPECT_EQ(b.n_keep, l.n_keep);
        EXPECT_EQ(b.m_group, l.m_group);
        EXPECT_EQ(b.scale_group, l.scale_group);
        EXPECT_EQ(b.keep, l.keep);
        EXPECT_EQ(b.sign, l.sign);
        EXPECT_EQ(b.alpha, l.alpha);
        EXPECT_EQ(b.mu, l.mu);
    }
    EXPECT_THROW(PackedFile::open(path), Error);  // a layouts file is not a packed file
}

}  // namespace
}  // namespace pbs2p
