#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "core/half.h"
#include "io/safetensors.h"
#include "io/safetensors_fixtures.h"

namespace pbs2p {
namespace {

using namespace testing_fixtures;
using nlohmann::json;

std::vector<float> ramp(int64_t n, float scale = 0.37f) {
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[i] = (static_cast<float>(i) - n / 2.0f) * scale + 0.01f * (i % 7);
    return v;
}

// What a value reads back as after being stored in `dtype`.
float stored_value(float v, DType dtype) {
    switch (dtype) {
        case DType::f16:
            return round_to_fp16(v);
        case DType::bf16:
            return bf16_to_f32(f32_to_bf16(v));
        default:
            return v;
    }
}

uint64_t header_length(const Bytes& file) {
    uint64_t n = 0;
    std::memcpy(&n, file.data(), 8);
    return n;
}

// ------------------------------------------------------------------------------------------------
// Round trips

struct RoundTripCase {
    DType dtype;
    bool with_metadata;
};

class SafetensorsRoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(SafetensorsRoundTrip, WritesAndReadsBack) {
    const auto [dtype, with_metadata] = GetParam();
    ScratchDir dir;
    const std::string path = dir.file("model.safetensors");
    const std::vector<float> weights = ramp(5 * 7), bias = ramp(7, 1.3f), scalar = {42.5f};
    std::map<std::string, std::string> metadata;
    if (with_metadata) metadata = {{"format", "pt"}, {"note", "a \"quoted\" value"}};

    // Given out of name order: the writer sorts them.
    write_safetensors(path,
                      {tensor_from_floats("z.weight", weights.data(), {5, 7}, dtype),
                       tensor_from_floats("a.bias", bias.data(), {7}, dtype),
                       tensor_from_floats("m.scalar", scalar.data(), {}, dtype),
                       tensor_from_floats("m.empty", nullptr, {0, 3}, dtype)},
                      metadata);

    SafetensorsReader reader = SafetensorsReader::open(path);
    EXPECT_EQ(reader.names(), (std::vector<std::string>{"a.bias", "m.empty", "m.scalar", "z.weight"}));
    EXPECT_EQ(reader.metadata(), metadata);
    EXPECT_EQ(reader.tensor("z.weight").dtype, dtype);
    EXPECT_EQ(reader.tensor("z.weight").shape, (std::vector<int64_t>{5, 7}));
    EXPECT_EQ(reader.tensor("z.weight").nbytes, 35 * dtype_size(dtype));
    EXPECT_EQ(reader.tensor("m.scalar").numel(), 1);
    EXPECT_EQ(reader.tensor("m.empty").nbytes, 0);

    Matrix w = reader.load_matrix("z.weight", 5, 7);
    for (int64_t i = 0; i < w.size(); ++i)
        EXPECT_EQ(w.data[i], stored_value(weights[i], dtype)) << "index " << i;
    std::vector<float> b = reader.load_vector("a.bias", 7);
    for (int64_t i = 0; i < 7; ++i) EXPECT_EQ(b[i], stored_value(bias[i], dtype)) << "index " << i;
    EXPECT_EQ(reader.load_matrix("m.empty", 0, 3).size(), 0);

    // Layout: data area 8-byte aligned, tensors contiguous in name order, nothing else in the directory.
    const Bytes file = read_bytes(path);
    const uint64_t n = header_length(file);
    EXPECT_EQ((8 + n) % 8, 0u);
    json header = json::parse(file.begin() + 8, file.begin() + 8 + static_cast<int64_t>(n));
    EXPECT_EQ(header.contains("__metadata__"), with_metadata);
    EXPECT_EQ(header["a.bias"]["data_offsets"][0], 0);
    EXPECT_EQ(header["z.weight"]["data_offsets"][1], file.size() - 8 - n);
    EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

INSTANTIATE_TEST_SUITE_P(AllFloatTypes, SafetensorsRoundTrip,
                         ::testing::Values(RoundTripCase{DType::f32, false}, RoundTripCase{DType::f32, true},
                                           RoundTripCase{DType::f16, false}, RoundTripCase{DType::f16, true},
                                           RoundTripCase{DType::bf16, false},
                                           RoundTripCase{DType::bf16, true}),
                         [](const auto& info) {
                             return std::string(dtype_name(info.param.dtype)) +
                                    (info.param.with_metadata ? "_metadata" : "_no_metadata");
                         });

TEST(Safetensors, RawIntegerTensorsRoundTrip) {
    ScratchDir dir;
    const std::string path = dir.file("packed.safetensors");
    TensorToWrite bits{"layer.bits", DType::u8, {3}, {0x01, 0xfe, 0x80}};
    TensorToWrite idx{"layer.index", DType::i32, {2}, f32_bytes({0.0f, 0.0f})};
    const int32_t values[2] = {-7, 123456789};
    std::memcpy(idx.bytes.data(), values, 8);
    write_safetensors(path, {bits, idx});

    SafetensorsReader reader = SafetensorsReader::open(path);
    const TensorInfo& b = reader.tensor("layer.bits");
    EXPECT_EQ(b.dtype, DType::u8);
    EXPECT_EQ(Bytes(b.data, b.data + b.nbytes), bits.bytes);
    const TensorInfo& i = reader.tensor("layer.index");
    EXPECT_EQ(i.dtype, DType::i32);
    EXPECT_EQ(Bytes(i.data, i.data + i.nbytes), idx.bytes);
    expect_error_mentioning([&] { reader.load_vector("layer.bits", 3); }, {path, "'layer.bits'", "U8"});
}

TEST(Safetensors, ConversionRoundsToNearestEven) {
    auto code16 = [](const TensorToWrite& t) {
        uint16_t c;
        std::memcpy(&c, t.bytes.data(), 2);
        return c;
    };
    // bf16 has 1/128 ulp at 1.0, fp16 1/1024.
    const float one = 1.0f, bf16_tie = 1.0f + 1.0f / 256.0f, bf16_above = 1.0f + 3.0f / 512.0f;
    const float bf16_tie_up = 1.0f + 3.0f / 256.0f;
    const float f16_tie = 1.0f + 1.0f / 2048.0f;
    EXPECT_EQ(code16(tensor_from_floats("x", &one, {1}, DType::f16)), 0x3c00);
    EXPECT_EQ(code16(tensor_from_floats("x", &one, {1}, DType::bf16)), 0x3f80);
    EXPECT_EQ(code16(tensor_from_floats("x", &bf16_tie, {1}, DType::bf16)), 0x3f80);     // tie -> even
    EXPECT_EQ(code16(tensor_from_floats("x", &bf16_above, {1}, DType::bf16)), 0x3f81);   // 0.75 ulp -> up
    EXPECT_EQ(code16(tensor_from_floats("x", &bf16_tie_up, {1}, DType::bf16)), 0x3f82);  // 1.5 ulp -> even
    EXPECT_EQ(code16(tensor_from_floats("x", &f16_tie, {1}, DType::f16)), 0x3c00);
    expect_error_mentioning([&] { tensor_from_floats("t", &one, {1}, DType::u8); }, {"'t'", "U8"});
}

TEST(Safetensors, OverwritesAtomicallyAndRejectsBadInput) {
    ScratchDir dir;
    const std::string path = dir.file("out.safetensors");
    const std::vector<float> v = {1, 2, 3, 4};
    write_safetensors(path, {tensor_from_floats("w", v.data(), {4}, DType::f32)});
    write_safetensors(path, {tensor_from_floats("w", v.data(), {2, 2}, DType::f32)});
    EXPECT_EQ(SafetensorsReader::open(path).tensor("w").shape, (std::vector<int64_t>{2, 2}));

    auto t = tensor_from_floats("w", v.data(), {4}, DType::f32);
    expect_error_mentioning([&] { write_safetensors(path, {t, t}); }, {path, "'w'", "twice"});
    TensorToWrite short_bytes = t;
    short_bytes.bytes.pop_back();
    expect_error_mentioning([&] { write_safetensors(path, {short_bytes}); }, {path, "'w'", "bytes"});
    TensorToWrite reserved = t;
    reserved.name = "__metadata__";
    expect_error_mentioning([&] { write_safetensors(path, {reserved}); }, {path, "__metadata__"});
    expect_error_mentioning([&] { write_safetensors(dir.file("no/such/dir/x.safetensors"), {t}); },
                            {"x.safetensors"});
    // The earlier file is untouched and no temporary file is left behind.
    EXPECT_EQ(SafetensorsReader::open(path).tensor("w").shape, (std::vector<int64_t>{2, 2}));
    EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

// Tensors written in any order through SafetensorsFileWriter give the bytes write_safetensors gives; a
// file missing a tensor is never published.
TEST(Safetensors, FileWriterTakesTensorsInAnyOrder) {
    ScratchDir dir;
    const std::vector<float> x = ramp(12), y = ramp(5, -2.0f);
    const TensorToWrite a = tensor_from_floats("a", x.data(), {3, 4}, DType::bf16);
    const TensorToWrite b = tensor_from_floats("b.weight", y.data(), {5}, DType::f32);
    const TensorToWrite c = tensor_from_floats("c", x.data(), {12}, DType::f16);
    const std::map<std::string, std::string> meta = {{"format", "pt"}};
    write_safetensors(dir.file("whole.safetensors"), {a, b, c}, meta);
    const std::vector<TensorSpec> specs = {
        {"c", DType::f16, {12}}, {"a", DType::bf16, {3, 4}}, {"b.weight", DType::f32, {5}}};
    {
        SafetensorsFileWriter w(dir.file("parts.safetensors"), specs, meta);
        EXPECT_TRUE(w.has("b.weight") && !w.has("b"));
        w.write(c);
        w.write(a);
        EXPECT_FALSE(w.complete());
        w.write(b);
        EXPECT_TRUE(w.complete());
        w.commit();
    }
    EXPECT_EQ(read_bytes(dir.file("parts.safetensors")), read_bytes(dir.file("whole.safetensors")));

    const std::string partial = dir.file("partial.safetensors");
    {
        SafetensorsFileWriter w(partial, specs, meta);
        w.write(a);
        expect_error_mentioning([&] { w.write(a); }, {partial, "'a'", "twice"});
        TensorToWrite unknown = b;
        unknown.name = "zz";
        expect_error_mentioning([&] { w.write(unknown); }, {partial, "'zz'", "not in"});
        expect_error_mentioning([&] { w.write(tensor_from_floats("c", x.data(), {12}, DType::f32)); },
                                {partial, "'c'", "F32"});
        expect_error_mentioning([&] { w.commit(); }, {partial, "never written"});
    }
    EXPECT_FALSE(fs::exists(partial));
    EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 2);
}

// tensor_to_floats reads what tensor_from_floats stored; a reader's pages handed back read again.
TEST(Safetensors, FloatsBackAndDroppedPages) {
    ScratchDir dir;
    const std::vector<float> v = ramp(4096, 0.013f);
    for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
        const std::vector<float> back = tensor_to_floats(tensor_from_floats("t", v.data(), {64, 64}, dtype));
        for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(back[i], stored_value(v[i], dtype)) << i;
    }
    write_safetensors(dir.file("m.safetensors"), {tensor_from_floats("t", v.data(), {64, 64}, DType::bf16)});
    const SafetensorsReader reader = SafetensorsReader::open(dir.file("m.safetensors"));
    const Matrix before = reader.load_matrix("t", 64, 64);
    reader.drop_cached_pages();
    const Matrix after = reader.load_matrix("t", 64, 64);
    EXPECT_EQ(before.data, after.data);
}

// ------------------------------------------------------------------------------------------------
// Sharded checkpoints

// Two shards plus an index; shard 1 carries metadata.
void write_sharded(const ScratchDir& dir, const json& weight_map) {
    const std::vector<float> a = ramp(6), b = ramp(4, 2.0f), c = ramp(3, -1.0f);
    write_safetensors(dir.file("model-00001-of-00002.safetensors"),
                      {tensor_from_floats("embed", a.data(), {2, 3}, DType::bf16),
                       tensor_from_floats("norm", c.data(), {3}, DType::f32)},
                      {{"format", "pt"}});
    write_safetensors(dir.file("model-00002-of-00002.safetensors"),
                      {tensor_from_floats("head", b.data(), {2, 2}, DType::f16)});
    json index = {{"metadata", {{"total_size", 100}}}, {"weight_map", weight_map}};
    const std::string text = index.dump();
    write_bytes(dir.file("model.safetensors.index.json"), Bytes(text.begin(), text.end()));
}

const json kGoodWeightMap = {{"embed", "model-00001-of-00002.safetensors"},
                             {"norm", "model-00001-of-00002.safetensors"},
                             {"head", "model-00002-of-00002.safetensors"}};

TEST(Safetensors, ShardedCheckpointThroughIndexOrDirectory) {
    ScratchDir dir;
    write_sharded(dir, kGoodWeightMap);
    for (const std::string& path : {dir.file("model.safetensors.index.json"), dir.path().string()}) {
        SafetensorsReader reader = SafetensorsReader::open(path);
        EXPECT_EQ(reader.names(), (std::vector<std::string>{"embed", "head", "norm"}));
        EXPECT_EQ(reader.metadata().at("format"), "pt");
        EXPECT_NE(reader.tensor("head").file.find("model-00002-of-00002"), std::string::npos);
        const std::vector<float> b = ramp(4, 2.0f);
        Matrix head = reader.load_matrix("head", 2, 2);
        for (int i = 0; i < 4; ++i) EXPECT_EQ(head.data[i], round_to_fp16(b[i]));
        EXPECT_EQ(reader.load_vector("norm", 3), ramp(3, -1.0f));
        expect_error_mentioning([&] { reader.tensor("absent"); }, {path, "'absent'"});
    }
}

TEST(Safetensors, DirectoryWithSingleFile) {
    ScratchDir dir;
    const float v[2] = {1.5f, -2.0f};
    write_safetensors(dir.file("model.safetensors"), {tensor_from_floats("w", v, {2}, DType::f32)});
    EXPECT_EQ(SafetensorsReader::open(dir.path().string()).load_vector("w", 2),
              (std::vector<float>{1.5f, -2.0f}));
}

TEST(Safetensors, ShardedIndexErrorsNameTheIndexAndTheItem) {
    {
        ScratchDir dir;
        json map = kGoodWeightMap;
        map["lm_extra"] = "model-00003-of-00002.safetensors";
        write_sharded(dir, map);
        expect_error_mentioning(
            [&] { SafetensorsReader::open(dir.path().string()); },
            {"model.safetensors.index.json", "model-00003-of-00002.safetensors", "lm_extra"},
            "missing shard");
    }
    {
        ScratchDir dir;
        json map = kGoodWeightMap;
        map["ghost"] = "model-00002-of-00002.safetensors";
        write_sharded(dir, map);
        expect_error_mentioning(
            [&] { SafetensorsReader::open(dir.file("model.safetensors.index.json")); },
            {"model.safetensors.index.json", "'ghost'", "model-00002-of-00002.safetensors"},
            "tensor missing from shard");
    }
    {
        ScratchDir dir;
        write_sharded(dir, json::array({1, 2}));
        expect_error_mentioning([&] { SafetensorsReader::open(dir.path().string()); },
                                {"model.safetensors.index.json", "weight_map"}, "weight_map not an object");
    }
    {
        ScratchDir dir;
        write_bytes(dir.file("model.safetensors.index.json"), Bytes{'{', 'x'});
        expect_error_mentioning([&] { SafetensorsReader::open(dir.path().string()); },
                                {"model.safetensors.index.json", "not valid JSON"}, "index not JSON");
    }
    {
        ScratchDir dir;
        expect_error_mentioning([&] { SafetensorsReader::open(dir.path().string()); },
                                {dir.path().string(), "model.safetensors"}, "empty directory");
        expect_error_mentioning([&] { SafetensorsReader::open(dir.file("none.safetensors")); },
                                {"none.safetensors"}, "no such file");
    }
}

// ------------------------------------------------------------------------------------------------
// Corrupt single files: every case is a file named after the case; the error names it and the item.

struct BadFile {
    std::string name;
    std::function<Bytes()> make;
    std::vector<std::string> items;  // besides the file name
};

Bytes with_w(const json& w_entry, const Bytes& data) {
    return safetensors_with_header(json{{"w", w_entry}}, data);
}

std::vector<BadFile> bad_files() {
    const Bytes data16(16, 0);
    return {
        {"too_short",
         [] {
             return Bytes{1, 2, 3, 4, 5};
         },
         {"8-byte"}},
        {"empty", [] { return Bytes{}; }, {"8-byte"}},
        {"header_past_end", [] { return raw_safetensors("{}", {}, 1000); }, {"header length 1000"}},
        {"header_absurd", [] { return raw_safetensors("{}", {}, uint64_t{1} << 40); }, {"absurd"}},
        {"header_not_json", [] { return raw_safetensors("{\"w\": [1, ", {}); }, {"not valid JSON"}},
        {"header_not_utf8", [] { return raw_safetensors("{\"\xff\": 1}", {}); }, {"not valid JSON"}},
        {"header_not_object", [] { return raw_safetensors("[1, 2]", {}); }, {"not a JSON object"}},
        {"entry_not_object",
         [] {
             return safetensors_with_header(json{{"w", 3}}, {});
         },
         {"'w'"}},
        {"missing_dtype",
         [=] {
             return safetensors_with_header(json{{"w", {{"shape", {4}}, {"data_offsets", {0, 16}}}}}, data16);
         },
         {"'w'", "'dtype'"}},
        {"missing_shape",
         [=] {
             return safetensors_with_header(json{{"w", {{"dtype", "F32"}, {"data_offsets", {0, 16}}}}},
                                            data16);
         },
         {"'w'", "'shape'"}},
        {"missing_offsets",
         [=] {
             return safetensors_with_header(json{{"w", {{"dtype", "F32"}, {"shape", {4}}}}}, data16);
         },
         {"'w'", "'data_offsets'"}},
        {"dtype_f64",
         [=] { return with_w(entry("F64", {2}, 0, 16), data16); },
         {"unsupported dtype 'F64'", "'w'", "supported: F32, F16, BF16"}},
        {"dtype_not_string",
         [=] {
             return with_w({{"dtype", 5}, {"shape", {4}}, {"data_offsets", {0, 16}}}, data16);
         },
         {"'w'", "dtype"}},
        {"shape_negative",
         [=] {
             return with_w({{"dtype", "F32"}, {"shape", {-4}}, {"data_offsets", {0, 16}}}, data16);
         },
         {"'w'", "shape"}},
        {"shape_float",
         [=] {
             return with_w({{"dtype", "F32"}, {"shape", {4.5}}, {"data_offsets", {0, 16}}}, data16);
         },
         {"'w'", "shape"}},
        {"shape_huge",
         [=] {
             return with_w(entry("F32", {int64_t{1} << 40, int64_t{1} << 40}, 0, 16), data16);
         },
         {"'w'", "too large"}},
        {"offsets_three",
         [=] {
             return with_w({{"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {0, 8, 16}}}, data16);
         },
         {"'w'", "data_offsets"}},
        {"offsets_out_of_bounds",
         [=] { return with_w(entry("F32", {8}, 0, 32), data16); },
         {"'w'", "out of bounds"}},
        {"offsets_begin_after_end",
         [=] { return with_w(entry("F32", {0}, 12, 8), data16); },
         {"'w'", "begin > end"}},
        {"size_mismatch",
         [=] { return with_w(entry("BF16", {3}, 0, 8), data16); },
         {"'w'", "BF16", "needs 6"}},
        {"overlap",
         [=] {
             return safetensors_with_header(
                 json{{"a", entry("F32", {2}, 0, 8)}, {"b", entry("F32", {2}, 4, 12)}}, data16);
         },
         {"'a'", "'b'", "overlap"}},
        {"metadata_not_string",
         [=] {
             return safetensors_with_header(
                 json{{"__metadata__", {{"k", 1}}}, {"w", entry("F32", {4}, 0, 16)}}, data16);
         },
         {"__metadata__", "'k'"}},
    };
}

TEST(Safetensors, CorruptFilesThrowErrorsNamingFileAndItem) {
    ScratchDir dir;
    for (const BadFile& bad : bad_files()) {
        const std::string path = dir.file(bad.name + ".safetensors");
        write_bytes(path, bad.make());
        std::vector<std::string> items = bad.items;
        items.push_back(bad.name + ".safetensors");
        expect_error_mentioning([&] { SafetensorsReader::open(path); }, items, bad.name);
    }
}

TEST(Safetensors, ValidOddLayoutsAreAccepted) {
    // Unaligned data area, gaps between tensors, out-of-order offsets, empty tensors sharing an offset.
    ScratchDir dir;
    const std::string path = dir.file("odd.safetensors");
    Bytes data(20, 0);
    const float x[2] = {2.0f, -4.0f};
    std::memcpy(data.data() + 10, x, 8);
    const uint16_t h[2] = {0x3c00, 0xc000};  // fp16 1.0, -2.0
    std::memcpy(data.data() + 2, h, 4);
    json header = {{"x", entry("F32", {2}, 10, 18)},
                   {"h", entry("F16", {2}, 2, 6)},
                   {"e1", entry("F32", {0}, 10, 10)},
                   {"e2", entry("BF16", {0, 5}, 10, 10)}};
    write_bytes(path, raw_safetensors(header.dump() + " ", data));  // header length odd-sized
    SafetensorsReader reader = SafetensorsReader::open(path);
    EXPECT_EQ(reader.load_vector("x", 2), (std::vector<float>{2.0f, -4.0f}));
    EXPECT_EQ(reader.load_vector("h", 2), (std::vector<float>{1.0f, -2.0f}));
    EXPECT_TRUE(reader.metadata().empty());
}

// ------------------------------------------------------------------------------------------------
// Loading: shape checks and non-finite values

TEST(Safetensors, LoadChecksShapeAndFiniteness) {
    ScratchDir dir;
    const std::string path = dir.file("values.safetensors");
    std::vector<float> good = ramp(6), with_nan = ramp(8), with_inf = ramp(4);
    with_nan[5] = std::numeric_limits<float>::quiet_NaN();
    with_inf[2] = std::numeric_limits<float>::infinity();
    write_safetensors(path, {tensor_from_floats("good", good.data(), {2, 3}, DType::f32),
                             tensor_from_floats("nan32", with_nan.data(), {2, 4}, DType::f32),
                             tensor_from_floats("inf16", with_inf.data(), {4}, DType::f16),
                             tensor_from_floats("nanbf", with_nan.data(), {8}, DType::bf16)});
    SafetensorsReader reader = SafetensorsReader::open(path);
    EXPECT_EQ(reader.load_matrix("good", 2, 3).data[4], good[4]);
    expect_error_mentioning([&] { reader.load_matrix("good", 3, 2); }, {path, "'good'", "[2, 3]", "[3, 2]"});
    expect_error_mentioning([&] { reader.load_vector("good", 6); }, {path, "'good'", "[6]"});
    expect_error_mentioning([&] { reader.load_matrix("nan32", 2, 4); }, {path, "'nan32'", "index 5"});
    expect_error_mentioning([&] { reader.load_vector("inf16", 4); }, {path, "'inf16'", "index 2"});
    expect_error_mentioning([&] { reader.load_vector("nanbf", 8); }, {path, "'nanbf'", "index 5"});
    expect_error_mentioning([&] { reader.load_vector("absent", 8); }, {path, "'absent'"});
}

// ------------------------------------------------------------------------------------------------
// Mutations of a valid file: opening and loading either succeed or throw pbs2p::Error.

void open_and_load_everything(const std::string& path) {
    SafetensorsReader reader = SafetensorsReader::open(path);
    for (const std::string& name : reader.names()) {
        const TensorInfo& info = reader.tensor(name);
        if (info.shape.size() == 2)
            reader.load_matrix(name, info.shape[0], info.shape[1]);
        else if (info.shape.size() == 1)
            reader.load_vector(name, info.shape[0]);
    }
}

TEST(Safetensors, MutatedFilesNeverCrash) {
    ScratchDir dir;
    const std::string valid = dir.file("valid.safetensors");
    const std::vector<float> v = ramp(12);
    write_safetensors(valid,
                      {tensor_from_floats("a", v.data(), {3, 4}, DType::f32),
                       tensor_from_floats("b", v.data(), {12}, DType::f16),
                       tensor_from_floats("c", v.data(), {2, 6}, DType::bf16)},
                      {{"format", "pt"}});
    ASSERT_NO_THROW(open_and_load_everything(valid));
    const Bytes original = read_bytes(valid);
    const size_t header_end = 8 + header_length(original);

    std::mt19937 rng(1234);
    int opened = 0, rejected = 0;
    const std::string path = dir.file("mutated.safetensors");
    for (int m = 0; m < 300; ++m) {
        Bytes bytes = original;
        switch (m % 4) {
            case 0:  // truncate anywhere
                bytes.resize(rng() % bytes.size());
                break;
            case 1:  // flip bits in the header length or the header text
                bytes[rng() % header_end] ^= static_cast<uint8_t>(1u << (rng() % 8));
                break;
            case 2:  // overwrite a header byte with a JSON-significant character
                bytes[8 + rng() % (header_end - 8)] =
                    static_cast<uint8_t>("{}[],:\"0123456789-e. "[rng() % 21]);
                break;
            default:  // several random byte changes anywhere
                for (int k = 0; k < 4; ++k) bytes[rng() % bytes.size()] = static_cast<uint8_t>(rng());
                break;
        }
        write_bytes(path, bytes);
        try {
            open_and_load_everything(path);
            ++opened;
        } catch (const Error&) {
            ++rejected;
        } catch (const std::exception& e) {
            ADD_FAILURE() << "mutation " << m << " threw a non-pbs2p exception: " << e.what();
        }
    }
    EXPECT_GT(opened, 0);
    EXPECT_GT(rejected, 0);
}

// ------------------------------------------------------------------------------------------------
// A file written by the independent numpy writer (tools/reference/safetensors_np.py).

TEST(Safetensors, ReadsFileWrittenByPythonWriter) {
    const std::string path = std::string(PBS2P_SOURCE_DIR) + "/tests/io/data/python_written.safetensors";
    SafetensorsReader reader = SafetensorsReader::open(path);
    EXPECT_EQ(reader.names(), (std::vector<std::string>{"alpha", "beta", "delta", "gamma"}));
    EXPECT_EQ(reader.metadata(),
              (std::map<std::string, std::string>{{"format", "pt"}, {"writer", "safetensors_np"}}));

    Matrix alpha = reader.load_matrix("alpha", 2, 3);
    EXPECT_EQ(std::vector<float>(alpha.data.begin(), alpha.data.end()),
              (std::vector<float>{1.0f, -2.5f, 0.125f, 3.0e-3f, 1024.0f, -0.0f}));
    EXPECT_TRUE(std::signbit(alpha(1, 2)));
    EXPECT_EQ(reader.tensor("beta").dtype, DType::f16);
    EXPECT_EQ(reader.load_vector("beta", 4), (std::vector<float>{0.5f, -1.5f, 65504.0f, 6.103515625e-05f}));
    EXPECT_EQ(reader.tensor("gamma").dtype, DType::bf16);
    Matrix gamma = reader.load_matrix("gamma", 2, 2);
    EXPECT_EQ(std::vector<float>(gamma.data.begin(), gamma.data.end()),
              (std::vector<float>{1.0f, -3.0f, 0.15625f, 256.0f}));
    const TensorInfo& delta = reader.tensor("delta");
    ASSERT_EQ(delta.dtype, DType::i32);
    ASSERT_EQ(delta.nbytes, 12);
    int32_t ints[3];
    std::memcpy(ints, delta.data, 12);
    EXPECT_EQ(ints[0], 7);
    EXPECT_EQ(ints[1], -8);
    EXPECT_EQ(ints[2], 2147483647);
}

}  // namespace
}  // namespace pbs2p
