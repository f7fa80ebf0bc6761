#pragma once
// Keeping users' files safe: which files a run reads, so that no output replaces one of them
// (compared by identity: device and inode, through symlinks and hard links, never by name), and
// writing a file whole or not at all.

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

namespace vvae {

struct FileId {
  uint64_t device = 0;
  uint64_t inode = 0;
  bool operator==(const FileId&) const = default;
};

// The identity of what `path` names (symlinks followed); nullopt when it does not exist.
std::optional<FileId> file_id(const std::string& path);

// The files a run reads: its input, the model's files, a manifest and the clips it lists.
class InputFiles {
 public:
  // Records `path` (a file or a model folder's file); a path that does not exist is ignored.
  void add(const std::string& path);
  bool empty() const { return files_.empty(); }

  // The input `output` is (the same file under any name), or nullptr.
  const std::string* find(const std::string& output) const;
  // Fails when writing `output` would replace an input.
  void check_output_file(const std::string& output) const;
  // Fails when an input lies inside the folder `dir` (at any depth, through symlinks) or is one
  // of its files under another name (a hard link): vvae may replace files there.
  void check_output_folder(const std::string& dir) const;

 private:
  struct Hash {
    size_t operator()(const FileId& id) const {
      return std::hash<uint64_t>()(id.inode * 0x9E3779B97F4A7C15ull ^ id.device);
    }
  };
  std::unordered_map<FileId, std::string, Hash> files_;  // identity -> the path it was given as
};

// Removes the temporaries (`path.tmp-PID-XXXXXX`, regular files) that an interrupted vvae
// process, one that is gone, left beside `path`. Call it where no other run can be writing
// `path` (a lock held, or a file only one run writes).
void remove_stale_temporaries_of(const std::string& path);

// Writes `text` to `path` under a temporary name (`path.tmp-PID-XXXXXX`) and renames it into
// place once complete, so a failure never leaves a partial file.
void write_text_file(const std::string& path, const std::string& text);

}  // namespace vvae
