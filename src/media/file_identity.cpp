#include "vvae/files.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include <filesystem>

#include "io/atomic_file.hpp"
#include "media/folders.hpp"
#include "vvae/error.hpp"

namespace vvae {

namespace fs = std::filesystem;

std::optional<FileId> file_id(const std::string& path) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileId{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

void InputFiles::add(const std::string& path) {
  if (const std::optional<FileId> id = file_id(path)) files_.emplace(*id, path);
}

const std::string* InputFiles::find(const std::string& output) const {
  const std::optional<FileId> id = file_id(output);
  if (!id) return nullptr;
  const auto it = files_.find(*id);
  return it == files_.end() ? nullptr : &it->second;
}

void InputFiles::check_output_file(const std::string& output) const {
  if (const std::string* input = find(output)) {
    if (fs::path(*input).lexically_normal() == fs::path(output).lexically_normal())
      fail("output '", output, "' is an input of this run: write to another path");
    fail("output '", output, "' is the input '", *input,
         "' (the same file under another name): write to another path");
  }
}

void InputFiles::check_output_folder(const std::string& dir) const {
  const std::optional<FileId> dir_id = file_id(dir);
  if (!dir_id || files_.empty()) return;
  // An input below the folder: one of its parents (symlinks resolved) is the folder.
  for (const auto& [id, path] : files_) {
    std::error_code ec;
    fs::path p = fs::canonical(path, ec);
    if (ec) continue;
    for (p = p.parent_path(); !p.empty(); p = p.parent_path()) {
      if (file_id(p.string()) == dir_id)
        fail("cannot write into folder '", dir, "': it holds the input '", path,
             "': write to another folder");
      if (p == p.root_path()) break;
    }
  }
  // A file of the folder that is an input under another name (a hard link).
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(dir, ec)) {
    const std::string name = f.path().string();
    if (const std::string* input = find(name))
      fail("cannot write into folder '", dir, "': '", name, "' is the input '", *input,
           "': write to another folder");
  }
}

bool process_is_gone(int64_t pid) {
  return pid > 0 && pid != ::getpid() && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

void make_real_folder(const std::string& path, const std::string& owner) {
  if (::mkdir(path.c_str(), 0777) == 0) return;
  const int err = errno;
  struct stat st {};
  if (err == EEXIST && ::lstat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return;
    if (S_ISLNK(st.st_mode))
      fail("'", path, "' is a symbolic link: vvae writes only into real folders inside the ", owner,
           " (remove the link, or write to another ", owner, ")");
    fail("'", path, "' is a file, not a folder: remove it, or write to another ", owner);
  }
  fail("cannot create folder '", path, "': ", std::strerror(err));
}

void remove_stale_temporaries_of(const std::string& path) {
  const fs::path p(path);
  const fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  // Only in a real folder: through a symlink the clean-up would reach somewhere else.
  struct stat folder {};
  if (::lstat(dir.c_str(), &folder) != 0 || !S_ISDIR(folder.st_mode)) return;
  const std::string name = p.filename().string();
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(dir, ec)) {
    int64_t pid = 0;
    struct stat st {};
    if (is_temporary_of(f.path().filename().string(), name, &pid) && process_is_gone(pid) &&
        ::lstat(f.path().c_str(), &st) == 0 && S_ISREG(st.st_mode))
      ::unlink(f.path().c_str());
  }
}

void write_text_file(const std::string& path, const std::string& text) {
  AtomicFile out(path);
  out.write(text.data(), text.size());
  out.commit();
}

}  // namespace vvae
