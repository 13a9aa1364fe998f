// safetensors_builder.h — builds safetensors images in memory for tests,
// valid or broken on purpose.
//
// Written from the format description (8-byte little-endian header length,
// JSON header, data), independent of the reader: the header is assembled as
// text, so a test can also hand over any JSON it likes. Typical use:
//
//   SafetensorsBuilder b;
//   b.AddF32("w", {2, 3}, {1, 2, 3, 4, 5, 6}).Metadata("format", "pt");
//   std::vector<uint8_t> img = b.Build();
//   std::vector<uint8_t> bad = SafetensorsBuilder::Image(R"({"w": 3})", {});
#ifndef HEARTH_TESTS_UNIT_SAFETENSORS_BUILDER_H_
#define HEARTH_TESTS_UNIT_SAFETENSORS_BUILDER_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace hearth::testing {

class SafetensorsBuilder {
 public:
  // A tensor whose bytes follow the previous tensor's.
  SafetensorsBuilder& Add(const std::string& name, const std::string& dtype,
                          const std::vector<uint64_t>& shape, const std::vector<uint8_t>& bytes) {
    const uint64_t begin = data_.size();
    data_.insert(data_.end(), bytes.begin(), bytes.end());
    entries_.push_back({name, dtype, shape, begin, data_.size()});
    return *this;
  }
  SafetensorsBuilder& AddF32(const std::string& name, const std::vector<uint64_t>& shape,
                             const std::vector<float>& values) {
    std::vector<uint8_t> bytes(values.size() * 4);
    for (size_t i = 0; i < values.size(); ++i) {
      uint32_t bits;
      std::memcpy(&bits, &values[i], 4);
      for (int k = 0; k < 4; ++k) bytes[4 * i + k] = static_cast<uint8_t>(bits >> (8 * k));
    }
    return Add(name, "F32", shape, bytes);
  }
  // F32 tensor filled with 0.01 * (i + 1) + `bias`.
  SafetensorsBuilder& AddF32Pattern(const std::string& name, const std::vector<uint64_t>& shape,
                                    float bias = 0) {
    uint64_t n = 1;
    for (uint64_t d : shape) n *= d;
    std::vector<float> v(n);
    for (uint64_t i = 0; i < n; ++i) v[i] = 0.01f * static_cast<float>(i + 1) + bias;
    return AddF32(name, shape, v);
  }
  SafetensorsBuilder& Metadata(const std::string& key, const std::string& value) {
    metadata_.emplace_back(key, value);
    return *this;
  }
  // Spaces after the JSON (writers pad the header to a multiple of 8).
  SafetensorsBuilder& HeaderPadding(size_t n) {
    padding_ = n;
    return *this;
  }

  std::string Header() const {
    std::string h = "{";
    bool first = true;
    if (!metadata_.empty()) {
      h += "\"__metadata__\":{";
      for (size_t i = 0; i < metadata_.size(); ++i) {
        if (i > 0) h += ",";
        h += Quote(metadata_[i].first) + ":" + Quote(metadata_[i].second);
      }
      h += "}";
      first = false;
    }
    for (const Entry& e : entries_) {
      if (!first) h += ",";
      first = false;
      h += Quote(e.name) + ":{\"dtype\":" + Quote(e.dtype) + ",\"shape\":[";
      for (size_t i = 0; i < e.shape.size(); ++i) {
        if (i > 0) h += ",";
        h += std::to_string(e.shape[i]);
      }
      h += "],\"data_offsets\":[" + std::to_string(e.begin) + "," + std::to_string(e.end) + "]}";
    }
    h += "}";
    h.append(padding_, ' ');
    return h;
  }
  std::vector<uint8_t> Build() const { return Image(Header(), data_); }
  const std::vector<uint8_t>& data() const { return data_; }

  // Length field + `header` + `data`, as given.
  static std::vector<uint8_t> Image(const std::string& header, const std::vector<uint8_t>& data) {
    // Sized once: GCC 12 misreads insert() after an 8-byte vector (-Warray-bounds).
    std::vector<uint8_t> out(8 + header.size() + data.size());
    for (int k = 0; k < 8; ++k) out[k] = static_cast<uint8_t>(uint64_t{header.size()} >> (8 * k));
    std::copy(header.begin(), header.end(), out.begin() + 8);
    std::copy(data.begin(), data.end(), out.begin() + 8 + static_cast<ptrdiff_t>(header.size()));
    return out;
  }
  static std::string Quote(const std::string& s) {
    std::string q = "\"";
    for (char c : s) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        q += '\\';
        q += c;
      } else if (u < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", u);
        q += buf;
      } else {
        q += c;
      }
    }
    return q + "\"";
  }
  static bool WriteFile(const std::string& path, const std::vector<uint8_t>& bytes) {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return false;
    const bool ok = bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
    return std::fclose(f) == 0 && ok;
  }

 private:
  struct Entry {
    std::string name, dtype;
    std::vector<uint64_t> shape;
    uint64_t begin, end;
  };
  std::vector<Entry> entries_;
  std::vector<std::pair<std::string, std::string>> metadata_;
  std::vector<uint8_t> data_;
  size_t padding_ = 0;
};

}  // namespace hearth::testing

#endif  // HEARTH_TESTS_UNIT_SAFETENSORS_BUILDER_H_
