// Layout written (see gguf.cpp for the format): header and key/values, tensor infos in the order added,
// zero padding to 32 bytes, then each tensor's data padded to 32 bytes, offsets in the same order
// (llama.cpp requires every offset to equal the padded size of the tensors before it).
#include "io/gguf_writer.h"

#include <fmt/ranges.h>

#include <bit>
#include <cstring>
#include <limits>
#include <memory>

#include "core/error.h"
#include "core/half.h"
#include "core/atomic_file.h"

static_assert(std::endian::native == std::endian::little, "GGUF writer assumes a little-endian host");

namespace pbs2p {
namespace {

constexpr uint32_t gguf_version = 3;

uint64_t pad_to_alignment(uint64_t n) {
    return (n + gguf_alignment - 1) / gguf_alignment * gguf_alignment;
}

// Inclusive range of an integer GGUF type.
std::pair<int64_t, int64_t> integer_range(GgufType type) {
    switch (type) {
        case GgufType::uint8:
            return {0, std::numeric_limits<uint8_t>::max()};
        case GgufType::int8:
            return {std::numeric_limits<int8_t>::min(), std::numeric_limits<int8_t>::max()};
        case GgufType::uint16:
            return {0, std::numeric_limits<uint16_t>::max()};
        case GgufType::int16:
            return {std::numeric_limits<int16_t>::min(), std::numeric_limits<int16_t>::max()};
        case GgufType::uint32:
            return {0, std::numeric_limits<uint32_t>::max()};
        case GgufType::int32:
            return {std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()};
        case GgufType::boolean:
            return {0, 1};
        case GgufType::uint64:
            return {0, std::numeric_limits<int64_t>::max()};
        default:
            return {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()};
    }
}

// Appends little-endian encodings to a byte string.
class Encoder {
  public:
    Encoder(const std::string& path, std::string& out) : path_(path), out_(out) {}

    template <typename T>
    void scalar(T value) {
        out_.append(reinterpret_cast<const char*>(&value), sizeof(T));
    }
    void string(const std::string& s) {
        scalar<uint64_t>(s.size());
        out_.append(s);
    }
    void value(const std::string& key, const GgufValue& v, bool with_type) {
        if (with_type) scalar<uint32_t>(static_cast<uint32_t>(v.type));
        if (v.type == GgufType::array) return array(key, v);
        if (v.type == GgufType::string) return string(v.text);
        if (v.type == GgufType::float32) return scalar<float>(static_cast<float>(v.real));
        if (v.type == GgufType::float64) return scalar<double>(v.real);
        integer(key, v.type, v.integer);
    }

  private:
    void integer(const std::string& key, GgufType type, int64_t x) {
        const auto [lo, hi] = integer_range(type);
        PBS2P_CHECK(x >= lo && x <= hi, "{}: GGUF metadata '{}': {} out of range for {}", path_, key, x,
                    gguf_type_name(type));
        switch (type) {
            case GgufType::uint8:
            case GgufType::boolean:
                return scalar<uint8_t>(static_cast<uint8_t>(x));
            case GgufType::int8:
                return scalar<int8_t>(static_cast<int8_t>(x));
            case GgufType::uint16:
                return scalar<uint16_t>(static_cast<uint16_t>(x));
            case GgufType::int16:
                return scalar<int16_t>(static_cast<int16_t>(x));
            case GgufType::uint32:
                return scalar<uint32_t>(static_cast<uint32_t>(x));
            case GgufType::int32:
                return scalar<int32_t>(static_cast<int32_t>(x));
            case GgufType::uint64:
                return scalar<uint64_t>(static_cast<uint64_t>(x));
            case GgufType::int64:
                return scalar<int64_t>(x);
            default:
                fail("{}: GGUF metadata '{}': {} is not an integer type", path_, key, gguf_type_name(type));
        }
    }
    void array(const std::string& key, const GgufValue& v) {
        const GgufType e = v.element_type;
        const size_t filled = !v.strings.empty() + !v.integers.empty() + !v.reals.empty() + !v.arrays.empty();
        const bool matches = e == GgufType::string ? v.integers.empty() && v.reals.empty() && v.arrays.empty()
                             : e == GgufType::array
                                 ? v.strings.empty() && v.integers.empty() && v.reals.empty()
                             : e == GgufType::float32 || e == GgufType::float64
                                 ? v.strings.empty() && v.integers.empty() && v.arrays.empty()
                                 : v.strings.empty() && v.reals.empty() && v.arrays.empty();
        PBS2P_CHECK(filled <= 1 && matches,
                    "{}: GGUF metadata '{}': array elements do not match element type {}", path_, key,
                    gguf_type_name(e));
        scalar<uint32_t>(static_cast<uint32_t>(e));
        scalar<uint64_t>(v.array_size());
        for (const std::string& s : v.strings) string(s);
        for (int64_t x : v.integers) integer(key, e, x);
        for (double x : v.reals)
            e == GgufType::float32 ? scalar<float>(static_cast<float>(x)) : scalar<double>(x);
        for (const GgufValue& inner : v.arrays) {
            PBS2P_CHECK(inner.type == GgufType::array,
                        "{}: GGUF metadata '{}': nested element is not an array", path_, key);
            array(key, inner);
        }
    }

    const std::string& path_;
    std::string& out_;
};

}  // namespace

std::vector<uint8_t> encode_float_tensor(GgmlType type, const float* values, int64_t n) {
    PBS2P_CHECK(type == GgmlType::f32 || type == GgmlType::f16,
                "cannot encode floats as {} (f32 or f16 only)", ggml_type_info(type).name);
    std::vector<uint8_t> bytes(static_cast<size_t>(n) * (type == GgmlType::f32 ? 4 : 2));
    if (type == GgmlType::f32) {
        std::memcpy(bytes.data(), values, bytes.size());
        return bytes;
    }
    for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_fp16(values[i]);
        std::memcpy(bytes.data() + 2 * i, &h, 2);
    }
    return bytes;
}

GgufWriter::GgufWriter(std::string path) : path_(std::move(path)) {}

void GgufWriter::set(const std::string& key, GgufValue value) {
    PBS2P_CHECK(!key.empty(), "{}: empty GGUF metadata key", path_);
    for (const auto& [k, v] : values_)
        PBS2P_CHECK(k != key, "{}: GGUF metadata key '{}' set twice", path_, key);
    if (key == "general.alignment")
        PBS2P_CHECK(!value.is_array() && value.integer == gguf_alignment, "{}: general.alignment must be {}",
                    path_, gguf_alignment);
    values_.emplace_back(key, std::move(value));
}

void GgufWriter::add_tensor(std::string name, std::vector<int64_t> shape, GgmlType type,
                            std::vector<uint8_t> bytes) {
    auto data = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
    add_tensor(std::move(name), std::move(shape), type, [data](std::vector<uint8_t>& out) { out = *data; });
}

void GgufWriter::add_tensor(std::string name, std::vector<int64_t> shape, GgmlType type,
                            GgufTensorProducer produce) {
    PBS2P_CHECK(!name.empty(), "{}: empty GGUF tensor name", path_);
    for (const Tensor& t : tensors_)
        PBS2P_CHECK(t.name != name, "{}: GGUF tensor '{}' added twice", path_, name);
    PBS2P_CHECK(!shape.empty() && shape.size() <= 4,
                "{}: GGUF tensor '{}' has {} dimensions (1 to 4 allowed)", path_, name, shape.size());
    int64_t rows = 1;
    for (int64_t d : shape) {
        PBS2P_CHECK(d > 0, "{}: GGUF tensor '{}' has a dimension of {}", path_, name, d);
        rows *= d;
    }
    rows /= shape.back();
    const GgmlTypeInfo& info = ggml_type_info(type);
    PBS2P_CHECK(shape.back() % info.block_weights == 0,
                "{}: GGUF tensor '{}': rows of {} weights are not a whole number of {} blocks of {}", path_,
                name, shape.back(), info.name, info.block_weights);
    const int64_t nbytes = rows * ggml_row_bytes(type, shape.back());
    Tensor t{std::move(name), std::move(shape), type, nbytes, data_end_, std::move(produce)};
    data_end_ = pad_to_alignment(data_end_ + static_cast<uint64_t>(t.nbytes));
    tensors_.push_back(std::move(t));
}

int64_t GgufWriter::tensor_bytes() const {
    int64_t n = 0;
    for (const Tensor& t : tensors_) n += t.nbytes;
    return n;
}

int64_t GgufWriter::file_bytes() const {
    return static_cast<int64_t>(header().size() + data_end_);
}

std::string GgufWriter::header() const {
    std::string out;
    Encoder enc(path_, out);
    out.append("GGUF", 4);
    enc.scalar<uint32_t>(gguf_version);
    enc.scalar<uint64_t>(tensors_.size());
    bool has_alignment = false;
    for (const auto& [k, v] : values_) has_alignment |= k == "general.alignment";
    enc.scalar<uint64_t>(values_.size() + !has_alignment);
    for (const auto& [key, value] : values_) {
        enc.string(key);
        enc.value(key, value, true);
    }
    if (!has_alignment) {
        enc.string("general.alignment");
        enc.value("general.alignment", GgufValue::of_int(GgufType::uint32, gguf_alignment), true);
    }
    for (const Tensor& t : tensors_) {
        enc.string(t.name);
        enc.scalar<uint32_t>(static_cast<uint32_t>(t.shape.size()));
        for (auto d = t.shape.rbegin(); d != t.shape.rend(); ++d)
            enc.scalar<uint64_t>(static_cast<uint64_t>(*d));
        enc.scalar<uint32_t>(static_cast<uint32_t>(t.type));
        enc.scalar<uint64_t>(t.offset);
    }
    out.append(pad_to_alignment(out.size()) - out.size(), '\0');
    return out;
}

void GgufWriter::write() {
    const std::string head = header();
    AtomicFileWriter file(path_);
    file.write(head.data(), head.size());
    std::vector<uint8_t> bytes;
    for (const Tensor& t : tensors_) {
        bytes.clear();
        t.produce(bytes);
        PBS2P_CHECK(static_cast<int64_t>(bytes.size()) == t.nbytes,
                    "{}: GGUF tensor '{}' has {} bytes of data but {} {} needs {}", path_, t.name,
                    bytes.size(), ggml_type_info(t.type).name, fmt::join(t.shape, "x"), t.nbytes);
        file.write(bytes.data(), bytes.size());
        const std::vector<uint8_t> zeros(pad_to_alignment(bytes.size()) - bytes.size(), 0);
        file.write(zeros.data(), zeros.size());
    }
    file.commit();
}

}  // namespace pbs2p
