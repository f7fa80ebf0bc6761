#pragma once
// Folders vvae writes into and the temporaries it leaves there (the latent cache and
// `reconstruct --manifest` both keep outputs in folders of their own).

#include <cstdint>
#include <string>

namespace vvae {

// True when `pid` names no process on this machine (a process that left temporaries and died).
// False for this process and for pid <= 0 (unknown).
bool process_is_gone(int64_t pid);

// Creates `path` as a real folder, or accepts the real folder already there. A symlink (or a
// file) of that name is refused: it would send outputs, and the clean-up of their temporaries,
// somewhere else. `owner` names the folder it lies in, for the message ("cache folder").
void make_real_folder(const std::string& path, const std::string& owner);

}  // namespace vvae
