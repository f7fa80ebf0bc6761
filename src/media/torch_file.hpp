#pragma once
// torch.save's file format, written natively, for trainers that read latents with torch.load
// (Open-Sora's cached-latent dataset): a zip archive, stored (uncompressed), holding
//   archive/data.pkl     the pickle (protocol 2) of one tensor: torch._utils._rebuild_tensor_v2
//                        over a persistent-id ("storage", torch.FloatStorage, "0", "cpu", numel)
//   archive/byteorder    "little"
//   archive/data/0       the float32 values, 64-byte aligned in the file as torch aligns them
//   archive/version      "3" (the format version torch writes and still reads)
// plus records of our own, which torch.load ignores (vvae keeps the latent's metadata there).
// Only what torch.load (weights_only or not) needs is written: the pickle uses no memo and no
// classes beyond the tensor rebuild, the storage type and OrderedDict, so it passes
// torch's weights-only unpickler.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vvae/tensor.hpp"

namespace vvae {

// The pickle of a contiguous float32 tensor of `shape` whose storage is record data/0.
std::string torch_tensor_pickle(const Shape& shape);

// Writes `tensor` as torch.save(tensor) would, with `extra` records (name -> bytes, names
// relative to the archive folder, e.g. "vvae/metadata.json"); atomically (temporary + rename).
void write_torch_file(const std::string& path, const Tensor& tensor,
                      const std::map<std::string, std::string>& extra = {});

// The records of a zip archive torch.save (or write_torch_file) made, by name relative to the
// archive folder, with their data; nullopt when the file is not such a complete archive (bad
// end record, central directory, local headers, sizes or a record past the end of the file).
// Reads the records named in `wanted` only (every record's presence and size is still checked);
// sizes of the others are in `sizes`.
struct TorchArchive {
  std::map<std::string, std::string> records;  // the wanted records' bytes
  std::map<std::string, uint64_t> sizes;       // every record's size
  std::map<std::string, uint64_t> offsets;     // where every record's data starts in the file
};
std::optional<TorchArchive> read_torch_archive(const std::string& path,
                                               const std::vector<std::string>& wanted);

// CRC-32 (ISO-HDLC, as zip uses), continuing from `crc` (0 to start).
uint32_t crc32(const void* data, size_t bytes, uint32_t crc = 0);

}  // namespace vvae
