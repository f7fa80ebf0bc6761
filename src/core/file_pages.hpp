#pragma once
// Pages of memory-mapped files that vvae no longer needs can be handed back to the kernel.
// Convolution weights are read once, packed into oneDNN's layout, and never read again: keeping
// the checkpoint's pages resident would hold every weight twice.

#include <cstdint>

namespace vvae {

void register_file_mapping(const void* begin, int64_t bytes);
void unregister_file_mapping(const void* begin);

// Drops the resident pages lying wholly inside [data, data + bytes) when that range belongs to a
// registered file mapping (the data is re-read from the file if touched again); a no-op for any
// other memory.
void release_file_pages(const void* data, int64_t bytes);

}  // namespace vvae
