#include "media/torch_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <vector>

#include "io/atomic_file.hpp"
#include "vvae/error.hpp"

namespace vvae {

static_assert(std::endian::native == std::endian::little, "torch files are written little-endian");

namespace {

constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndRecord = 0x06054b50;
constexpr size_t kLocalHeaderBytes = 30;
constexpr size_t kCentralHeaderBytes = 46;
constexpr size_t kEndRecordBytes = 22;
// torch aligns every record's data to 64 bytes (kFieldAlignment in caffe2's inline_container)
// with an extra field "FB" of padding; doing the same keeps torch.load(mmap=True) working.
constexpr uint64_t kAlignment = 64;
constexpr const char* kArchive = "archive/";
// 1980-01-01 00:00 in DOS form: a fixed date keeps the bytes reproducible.
constexpr uint16_t kDosDate = (1 << 5) | 1;
constexpr uint16_t kZipVersion = 20;

void put16(std::string& s, uint16_t v) {
  s += static_cast<char>(v & 0xff);
  s += static_cast<char>(v >> 8);
}

void put32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
}

uint16_t get16(const unsigned char* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

uint32_t get32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

// Pickle protocol 2 opcodes used below.
constexpr char kProto = '\x80', kGlobal = 'c', kMark = '(', kTuple = 't', kEmptyTuple = ')',
               kBinPersId = 'Q', kReduce = 'R', kNewFalse = '\x89', kStop = '.', kBinUnicode = 'X',
               kBinInt1 = 'K', kBinInt2 = 'M', kBinInt = 'J', kLong1 = '\x8a';

void pickle_int(std::string& p, int64_t v) {
  if (v >= 0 && v < 256) {
    p += kBinInt1;
    p += static_cast<char>(v);
  } else if (v >= 0 && v < 65536) {
    p += kBinInt2;
    put16(p, static_cast<uint16_t>(v));
  } else if (v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max()) {
    p += kBinInt;
    put32(p, static_cast<uint32_t>(static_cast<int32_t>(v)));
  } else {
    // LONG1: the shortest little-endian two's complement form.
    std::string bytes;
    uint64_t u = static_cast<uint64_t>(v);
    for (int i = 0; i < 8; ++i) {
      bytes += static_cast<char>(u & 0xff);
      const bool sign = (static_cast<unsigned char>(bytes.back()) & 0x80) != 0;
      const int64_t rest = v >> (8 * (i + 1));
      if ((rest == 0 && !sign) || (rest == -1 && sign)) break;
      u >>= 8;
    }
    p += kLong1;
    p += static_cast<char>(bytes.size());
    p += bytes;
  }
}

void pickle_text(std::string& p, const std::string& s) {
  p += kBinUnicode;
  put32(p, static_cast<uint32_t>(s.size()));
  p += s;
}

void pickle_global(std::string& p, const char* module, const char* name) {
  p += kGlobal;
  p += module;
  p += '\n';
  p += name;
  p += '\n';
}

void pickle_tuple(std::string& p, const std::vector<int64_t>& values) {
  if (values.empty()) {
    p += kEmptyTuple;
    return;
  }
  p += kMark;
  for (int64_t v : values) pickle_int(p, v);
  p += kTuple;
}

// A local header with its "FB" padding field, for a record starting at `offset`.
std::string local_header(const std::string& name, uint64_t offset, uint32_t crc, uint32_t size) {
  const uint64_t start = offset + kLocalHeaderBytes + name.size() + 4;
  const uint64_t padding = (kAlignment - start % kAlignment) % kAlignment;
  std::string h;
  put32(h, kLocalHeader);
  put16(h, kZipVersion);
  put16(h, 0);  // flags: sizes in the header, no data descriptor
  put16(h, 0);  // stored
  put16(h, 0);
  put16(h, kDosDate);
  put32(h, crc);
  put32(h, size);
  put32(h, size);
  put16(h, static_cast<uint16_t>(name.size()));
  put16(h, static_cast<uint16_t>(4 + padding));
  h += name;
  h += "FB";
  put16(h, static_cast<uint16_t>(padding));
  h.append(padding, 'Z');
  return h;
}

struct Written {
  std::string name;
  uint64_t offset = 0;
  uint32_t crc = 0;
  uint32_t size = 0;
};

class ZipWriter {
 public:
  explicit ZipWriter(const std::string& path) : out_(path), path_(path) {}

  void add(const std::string& name, const void* data, uint64_t bytes) {
    // Leave room for the records after this one and the central directory.
    constexpr uint64_t kMaxOffset = std::numeric_limits<uint32_t>::max() - (uint64_t{1} << 20);
    if (offset_ + bytes + 512 > kMaxOffset)
      fail("cannot write '", path_, "': ", offset_ + bytes,
           " bytes need the zip64 format, which vvae does not write (4 GiB at most)");
    const std::string full = kArchive + name;
    Written w{full, offset_, crc32(data, bytes), static_cast<uint32_t>(bytes)};
    const std::string header = local_header(full, offset_, w.crc, w.size);
    write(header.data(), header.size());
    write(data, bytes);
    written_.push_back(w);
  }

  void add(const std::string& name, const std::string& bytes) {
    add(name, bytes.data(), bytes.size());
  }

  void commit() {
    std::string dir;
    for (const Written& w : written_) {
      put32(dir, kCentralHeader);
      put16(dir, kZipVersion);  // made by
      put16(dir, kZipVersion);  // needed
      put16(dir, 0);
      put16(dir, 0);
      put16(dir, 0);
      put16(dir, kDosDate);
      put32(dir, w.crc);
      put32(dir, w.size);
      put32(dir, w.size);
      put16(dir, static_cast<uint16_t>(w.name.size()));
      put16(dir, 0);  // extra
      put16(dir, 0);  // comment
      put16(dir, 0);  // disk
      put16(dir, 0);  // internal attributes
      put32(dir, 0);  // external attributes
      put32(dir, static_cast<uint32_t>(w.offset));
      dir += w.name;
    }
    std::string end;
    put32(end, kEndRecord);
    put16(end, 0);
    put16(end, 0);
    put16(end, static_cast<uint16_t>(written_.size()));
    put16(end, static_cast<uint16_t>(written_.size()));
    put32(end, static_cast<uint32_t>(dir.size()));
    put32(end, static_cast<uint32_t>(offset_));
    put16(end, 0);
    write(dir.data(), dir.size());
    write(end.data(), end.size());
    out_.commit();
  }

 private:
  void write(const void* data, uint64_t bytes) {
    out_.write(data, bytes);
    offset_ += bytes;
  }

  AtomicFile out_;
  std::string path_;
  uint64_t offset_ = 0;
  std::vector<Written> written_;
};

// pread all of [offset, offset + bytes) or fail.
bool read_at(int fd, uint64_t offset, uint64_t bytes, void* out) {
  auto* p = static_cast<char*>(out);
  while (bytes > 0) {
    const ssize_t n = ::pread(fd, p, bytes, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    offset += static_cast<uint64_t>(n);
    bytes -= static_cast<uint64_t>(n);
  }
  return true;
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

uint32_t crc32(const void* data, size_t bytes, uint32_t crc) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < bytes; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

std::string torch_tensor_pickle(const Shape& shape) {
  std::vector<int64_t> strides(shape.size());
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= shape[i];
  }
  std::string p;
  p += kProto;
  p += '\x02';
  pickle_global(p, "torch._utils", "_rebuild_tensor_v2");
  p += kMark;
  // The storage, by persistent id: ('storage', torch.FloatStorage, key, location, numel).
  p += kMark;
  pickle_text(p, "storage");
  pickle_global(p, "torch", "FloatStorage");
  pickle_text(p, "0");
  pickle_text(p, "cpu");
  pickle_int(p, numel(shape));
  p += kTuple;
  p += kBinPersId;
  pickle_int(p, 0);  // storage offset
  pickle_tuple(p, shape);
  pickle_tuple(p, strides);
  p += kNewFalse;  // requires_grad
  pickle_global(p, "collections", "OrderedDict");
  p += kEmptyTuple;
  p += kReduce;  // backward hooks: OrderedDict()
  p += kTuple;
  p += kReduce;
  p += kStop;
  return p;
}

void write_torch_file(const std::string& path, const Tensor& tensor,
                      const std::map<std::string, std::string>& extra) {
  if (!tensor.has_data()) fail("cannot write '", path, "': the tensor has no data");
  for (const auto& [name, bytes] : extra)
    if (name.empty() || name == "data.pkl" || name == "byteorder" || name == "version" ||
        name.rfind("data/", 0) == 0 || name.size() > 200)
      fail("internal: torch file record name '", name, "'");
  ZipWriter zip(path);
  zip.add("data.pkl", torch_tensor_pickle(tensor.shape()));
  zip.add("byteorder", std::string("little"));
  zip.add("data/0", tensor.data(), static_cast<uint64_t>(tensor.bytes()));
  zip.add("version", std::string("3\n"));
  for (const auto& [name, bytes] : extra) zip.add(name, bytes);
  zip.commit();
}

std::optional<TorchArchive> read_torch_archive(const std::string& path,
                                               const std::vector<std::string>& wanted) {
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (f.fd < 0 || ::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  const auto size = static_cast<uint64_t>(st.st_size);
  // The end record is the last 22 bytes: vvae writes no archive comment.
  unsigned char end[kEndRecordBytes];
  if (size < kEndRecordBytes || !read_at(f.fd, size - kEndRecordBytes, kEndRecordBytes, end) ||
      get32(end) != kEndRecord || get16(end + 20) != 0)
    return std::nullopt;
  const uint16_t count = get16(end + 10);
  const uint64_t dir_size = get32(end + 12), dir_offset = get32(end + 16);
  if (dir_offset + dir_size != size - kEndRecordBytes || dir_size > (uint64_t{64} << 20))
    return std::nullopt;
  std::vector<unsigned char> dir(dir_size);
  if (!read_at(f.fd, dir_offset, dir_size, dir.data())) return std::nullopt;
  TorchArchive archive;
  size_t at = 0;
  for (uint16_t i = 0; i < count; ++i) {
    if (at + kCentralHeaderBytes > dir.size() || get32(&dir[at]) != kCentralHeader)
      return std::nullopt;
    const unsigned char* c = &dir[at];
    const uint16_t method = get16(c + 10);
    const uint32_t compressed = get32(c + 20), bytes = get32(c + 24);
    const size_t name_len = get16(c + 28), extra_len = get16(c + 30), comment_len = get16(c + 32);
    const uint64_t local = get32(c + 42);
    if (method != 0 || compressed != bytes ||
        at + kCentralHeaderBytes + name_len + extra_len + comment_len > dir.size())
      return std::nullopt;
    const std::string full(reinterpret_cast<const char*>(c + kCentralHeaderBytes), name_len);
    at += kCentralHeaderBytes + name_len + extra_len + comment_len;
    const size_t slash = full.find('/');
    if (slash == std::string::npos) return std::nullopt;
    const std::string name = full.substr(slash + 1);
    unsigned char lh[kLocalHeaderBytes];
    if (local + kLocalHeaderBytes > dir_offset || !read_at(f.fd, local, kLocalHeaderBytes, lh) ||
        get32(lh) != kLocalHeader || get16(lh + 26) != name_len)
      return std::nullopt;
    const uint64_t data = local + kLocalHeaderBytes + name_len + get16(lh + 28);
    if (data + bytes > dir_offset) return std::nullopt;
    std::string local_name(name_len, '\0');
    if (!read_at(f.fd, local + kLocalHeaderBytes, name_len, local_name.data()) ||
        local_name != full)
      return std::nullopt;
    archive.sizes[name] = bytes;
    archive.offsets[name] = data;
    for (const std::string& w : wanted) {
      if (w != name) continue;
      std::string content(bytes, '\0');
      if (!read_at(f.fd, data, bytes, content.data()) ||
          crc32(content.data(), bytes) != get32(c + 16))
        return std::nullopt;
      archive.records[name] = std::move(content);
    }
  }
  if (at != dir.size()) return std::nullopt;
  return archive;
}

}  // namespace vvae
