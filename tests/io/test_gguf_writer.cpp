// GGUF writer -> reader round trips: every metadata type (scalars, arrays of strings/integers/floats,
// nested arrays), tensor infos and data of F32, F16 and pre-encoded Q8_0 blocks at 32-byte alignment;
// the writer's refusals (out-of-range integers, duplicate keys, wrong data sizes) leave no file behind;
// the reader rejects truncated tensor data.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/half.h"
#include "io/gguf_writer.h"
#include "io/safetensors_fixtures.h"
#include "test_tokenizer_util.h"

namespace pbs2p {
namespace {

namespace fs = std::filesystem;

class GgufWriterTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("pbs2p_gguf_writer_" + std::to_string(::getpid()) + "_" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::string file(const std::string& name) const { return (dir_ / name).string(); }
    fs::path dir_;
};

using testing_fixtures::expect_error_mentioning;

TEST_F(GgufWriterTest, MetadataOfEveryTypeRoundTrips) {
    const std::string path = file("meta.gguf");
    GgufWriter w(path);
    w.set_string("general.architecture", "llama");
    w.set("u8", GgufValue::of_int(GgufType::uint8, 255));
    w.set("i8", GgufValue::of_int(GgufType::int8, -128));
    w.set("u16", GgufValue::of_int(GgufType::uint16, 65535));
    w.set("i16", GgufValue::of_int(GgufType::int16, -32768));
    w.set_u32("u32", 4000000000);
    w.set("i32", GgufValue::of_int(GgufType::int32, -2000000000));
    w.set("u64", GgufValue::of_int(GgufType::uint64, int64_t{1} << 50));
    w.set("i64", GgufValue::of_int(GgufType::int64, -(int64_t{1} << 60)));
    w.set_f32("f32", 1e-5);
    w.set("f64", GgufValue::of_real(GgufType::float64, 0.1));
    w.set_bool("yes", true);
    w.set_bool("no", false);
    w.set_string("utf8", "\xE2\x96\x81h\xC3\xA9llo");
    w.set("strings", GgufValue::of_strings({"<unk>", "", "\xE2\x96\x81the"}));
    w.set("ints", GgufValue::of_ints(GgufType::int32, {1, -2, 3}));
    w.set("bytes", GgufValue::of_ints(GgufType::uint8, {0, 200}));
    w.set("reals", GgufValue::of_reals(GgufType::float32, {-10000.0, 0.5}));
    w.set("empty", GgufValue::of_strings({}));
    GgufValue nested;
    nested.type = GgufType::array;
    nested.element_type = GgufType::array;
    nested.arrays = {GgufValue::of_ints(GgufType::int16, {7}), GgufValue::of_strings({"a", "b"})};
    w.set("nested", nested);
    w.write();

    const GgufMetadata m = GgufMetadata::read(path);
    EXPECT_EQ(m.version(), 3u);
    EXPECT_EQ(m.tensor_count(), 0u);
    EXPECT_EQ(m.get_string("general.architecture"), "llama");
    EXPECT_EQ(m.get_int("general.alignment"), 32);
    EXPECT_EQ(m.at("u8").type, GgufType::uint8);
    EXPECT_EQ(m.get_int("u8"), 255);
    EXPECT_EQ(m.get_int("i8"), -128);
    EXPECT_EQ(m.get_int("u16"), 65535);
    EXPECT_EQ(m.get_int("i16"), -32768);
    EXPECT_EQ(m.get_int("u32"), 4000000000);
    EXPECT_EQ(m.get_int("i32"), -2000000000);
    EXPECT_EQ(m.get_int("u64"), int64_t{1} << 50);
    EXPECT_EQ(m.get_int("i64"), -(int64_t{1} << 60));
    EXPECT_EQ(m.at("f32").type, GgufType::float32);
    EXPECT_EQ(m.get_real("f32"), double(1e-5f));
    EXPECT_EQ(m.get_real("f64"), 0.1);
    EXPECT_TRUE(m.get_bool("yes"));
    EXPECT_FALSE(m.get_bool("no"));
    EXPECT_EQ(m.get_string("utf8"), "\xE2\x96\x81h\xC3\xA9llo");
    EXPECT_EQ(m.get_strings("strings"), (std::vector<std::string>{"<unk>", "", "\xE2\x96\x81the"}));
    EXPECT_EQ(m.get_ints("ints"), (std::vector<int64_t>{1, -2, 3}));
    EXPECT_EQ(m.at("bytes").element_type, GgufType::uint8);
    EXPECT_EQ(m.get_ints("bytes"), (std::vector<int64_t>{0, 200}));
    EXPECT_EQ(m.get_reals("reals"), (std::vector<double>{-10000.0, 0.5}));
    EXPECT_EQ(m.at("empty").array_size(), 0u);
    const GgufValue& back = m.at("nested");
    ASSERT_EQ(back.arrays.size(), 2u);
    EXPECT_EQ(back.arrays[0].integers, std::vector<int64_t>{7});
    EXPECT_EQ(back.arrays[1].strings, (std::vector<std::string>{"a", "b"}));
}

TEST_F(GgufWriterTest, TensorsRoundTripAligned) {
    const std::string path = file("tensors.gguf");
    GgufWriter w(path);
    const std::vector<float> matrix = {1.0f, -2.5f, 3.25f, 0.0f, 1e-3f, -7.0f};  // 2 x 3
    const std::vector<float> vector = {0.5f, 0.25f, 0.125f};
    std::vector<uint8_t> q8(2 * 34);  // two Q8_0 blocks: a row of 64 weights
    for (size_t i = 0; i < q8.size(); ++i) q8[i] = static_cast<uint8_t>(i * 37 + 1);
    w.add_tensor("m.f32", {2, 3}, GgmlType::f32, encode_float_tensor(GgmlType::f32, matrix.data(), 6));
    w.add_tensor("v.f16", {3}, GgmlType::f16, encode_float_tensor(GgmlType::f16, vector.data(), 3));
    w.add_tensor("q.q8_0", {1, 64}, GgmlType::q8_0, q8);
    w.add_tensor("cube.f32", {2, 1, 3}, GgmlType::f32, [&](std::vector<uint8_t>& bytes) {
        bytes = encode_float_tensor(GgmlType::f32, matrix.data(), 6);
    });
    EXPECT_EQ(w.tensor_bytes(), 24 + 6 + 68 + 24);
    const int64_t expected_size = w.file_bytes();
    w.write();
    EXPECT_EQ(int64_t(fs::file_size(path)), expected_size);

    const GgufMetadata m = GgufMetadata::read(path);
    ASSERT_EQ(m.tensors().size(), 4u);
    EXPECT_EQ(m.data_offset() % 32, 0u);
    const GgufTensorInfo& t0 = m.tensor("m.f32");
    EXPECT_EQ(t0.dims, (std::vector<int64_t>{3, 2}));  // ggml order: contiguous dimension first
    EXPECT_EQ(t0.type, 0u);
    EXPECT_EQ(t0.nbytes, 24);
    std::vector<float> back(6);
    std::vector<uint8_t> bytes = m.read_tensor_data(t0);
    std::memcpy(back.data(), bytes.data(), 24);
    EXPECT_EQ(back, matrix);

    const GgufTensorInfo& t1 = m.tensor("v.f16");
    EXPECT_EQ(t1.type, 1u);
    bytes = m.read_tensor_data(t1);
    for (int i = 0; i < 3; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes.data() + 2 * i, 2);
        EXPECT_EQ(fp16_to_f32(h), vector[i]);
    }
    const GgufTensorInfo& t2 = m.tensor("q.q8_0");
    EXPECT_EQ(t2.type, 8u);
    EXPECT_EQ(t2.dims, (std::vector<int64_t>{64, 1}));
    EXPECT_EQ(m.read_tensor_data(t2), q8);
    EXPECT_EQ(m.tensor("cube.f32").dims, (std::vector<int64_t>{3, 1, 2}));
    uint64_t previous_end = 0;
    for (const GgufTensorInfo& t : m.tensors()) {
        EXPECT_EQ(t.offset % 32, 0u) << t.name;
        EXPECT_EQ(t.offset, (previous_end + 31) / 32 * 32) << t.name;  // contiguous after padding
        previous_end = t.offset + uint64_t(t.nbytes);
    }
    EXPECT_THROW(m.tensor("absent"), Error);
}

TEST_F(GgufWriterTest, RefusalsNameTheItemAndLeaveNoFile) {
    const std::string path = file("bad.gguf");
    {
        GgufWriter w(path);
        w.set("small", GgufValue::of_int(GgufType::uint8, 300));
        expect_error_mentioning([&] { w.write(); }, {path, "'small': 300 out of range for uint8"});
    }
    {
        GgufWriter w(path);
        w.set_u32("k", 1);
        expect_error_mentioning([&] { w.set_u32("k", 2); }, {"'k' set twice"});
        expect_error_mentioning(
            [&] {
                w.add_tensor("q", {4, 40}, GgmlType::q8_0, std::vector<uint8_t>{});
            },
            {"'q'", "rows of 40 weights are not a whole number of q8_0 blocks"});
        w.add_tensor("short", {2, 2}, GgmlType::f32, std::vector<uint8_t>(12));
        expect_error_mentioning([&] { w.write(); }, {"'short' has 12 bytes of data but f32 2x2 needs 16"});
    }
    EXPECT_FALSE(fs::exists(path));
    EXPECT_TRUE(fs::is_empty(dir_)) << "temp file left behind";
}

TEST_F(GgufWriterTest, ReaderRejectsTruncatedTensorData) {
    const std::string path = file("cut.gguf");
    GgufWriter w(path);
    const std::vector<float> x(64, 1.0f);
    w.add_tensor("x", {64}, GgmlType::f32, encode_float_tensor(GgmlType::f32, x.data(), 64));
    w.write();
    fs::resize_file(path, fs::file_size(path) - 8);
    expect_error_mentioning([&] { GgufMetadata::read(path); },
                            {path, "data of tensor 'x'", "exceeds the file"});
}

TEST(GgufReader, LlamaCppVocabularyFilesHaveReadableTensorInfos) {
    const std::string path = test::assets_dir() + "/llama.cpp/models/ggml-vocab-llama-spm.gguf";
    PBS2P_REQUIRE_ASSET(path);
    const GgufMetadata m = GgufMetadata::read(path);
    EXPECT_EQ(m.tensors().size(), m.tensor_count());
    EXPECT_EQ(m.alignment(), 32u);
}

}  // namespace
}  // namespace pbs2p
