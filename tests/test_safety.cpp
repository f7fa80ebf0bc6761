// vvae never destroys a user's files (issue 18): frame folders, outputs that are inputs,
// symlinked subfolders, concurrent runs, non-UTF-8 paths, and runs that cannot fit in memory.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/atomic_file.hpp"
#include "io/utf8.hpp"
#include "media/file_lock.hpp"
#include "test_util.hpp"
#include "video_maker.hpp"
#include "vvae/files.hpp"
#include "vvae/memory.hpp"
#include "vvae/reconstruct.hpp"
#include "vvae/video.hpp"

namespace vvae {
namespace {

namespace fs = std::filesystem;
using test::temp_path;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Everything under `dir`: each entry's relative path, kind, and contents (files) or target
// (symlinks), not following symlinks.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string rel = fs::relative(e.path(), dir).string();
    if (e.is_symlink())
      out[rel] = "link:" + fs::read_symlink(e.path()).string();
    else if (e.is_directory())
      out[rel] = "dir";
    else
      out[rel] = "file:" + slurp(e.path().string());
  }
  return out;
}

std::string fresh_dir(const std::string& name) {
  const std::string dir = temp_path(name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// ---- paths are bytes -----------------------------------------------------------------------

TEST(Utf8, ValidAndInvalid) {
  EXPECT_TRUE(is_utf8(""));
  EXPECT_TRUE(is_utf8("clips/c1.mp4"));
  EXPECT_TRUE(is_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xa5"));
  EXPECT_FALSE(is_utf8("c\xff.mp4"));
  EXPECT_FALSE(is_utf8("\xc3"));              // truncated
  EXPECT_FALSE(is_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_utf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(is_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
}

TEST(Utf8, EscapingIsLossless) {
  EXPECT_EQ(escape_bytes("c\xff.mp4"), "c\\xff.mp4");
  EXPECT_EQ(escape_bytes("a\\b"), "a\\\\b");
  EXPECT_EQ(utf8_or_escaped("a\\b"), "a\\b");  // UTF-8 stays as it is
  EXPECT_EQ(utf8_or_escaped("a\\b\xfe"), "a\\\\b\\xfe");
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  all += "\\xff\\\\ caf\xc3\xa9";
  const std::string escaped = escape_bytes(all);
  EXPECT_TRUE(is_utf8(escaped));
  EXPECT_EQ(unescape_bytes(escaped), all);
  EXPECT_NO_THROW((void)nlohmann::json(escaped).dump());
}

// ---- temporaries and locks -----------------------------------------------------------------

TEST(Temporaries, NamedPerProcess) {
  const std::string dir = fresh_dir("temps");
  const std::string path = dir + "/out.bin";
  AtomicFile f(path);
  const std::string temp = fs::path(f.temp_path()).filename().string();
  EXPECT_EQ(f.temp_path().rfind(temporary_prefix(path), 0), 0u);
  int64_t pid = 0;
  ASSERT_TRUE(is_temporary_of(temp, "out.bin", &pid));
  EXPECT_EQ(pid, ::getpid());
  EXPECT_FALSE(is_temporary_of(temp, "out.bi"));
  EXPECT_FALSE(is_temporary_of("out.bin.tmp-userfile", "out.bin"));
  EXPECT_FALSE(is_temporary_of("out.bin.tmp-abc123", "out.bin"));  // the old, pid-less form
  EXPECT_FALSE(is_temporary_of("out.bin.tmp-12-abc12", "out.bin"));
  EXPECT_FALSE(is_temporary_of("out.bin.tmp-12-abc1234", "out.bin"));
  EXPECT_FALSE(is_temporary_of("out.bin.tmp-x2-abc123", "out.bin"));
  EXPECT_TRUE(is_temporary_of("out.bin.tmp-12-aB3dE6", "out.bin"));
}

TEST(FileLock, OneHolderAtATime) {
  const std::string path = fresh_dir("locks") + "/clip.lock";
  {
    std::optional<FileLock> a = FileLock::try_lock(path);
    ASSERT_TRUE(a.has_value());
    EXPECT_FALSE(FileLock::try_lock(path).has_value());  // another open file: refused
    FileLock moved = std::move(*a);
    a.reset();
    EXPECT_FALSE(FileLock::try_lock(path).has_value());  // still held by `moved`
  }
  EXPECT_FALSE(fs::exists(path));  // removed on release
  EXPECT_TRUE(FileLock::try_lock(path).has_value());
  EXPECT_THROW(FileLock::try_lock(temp_path("no/such/dir/x.lock")), Error);
}

// ---- outputs that are inputs ---------------------------------------------------------------

TEST(FileIdentity, SameFileThroughLinks) {
  const std::string dir = fresh_dir("ident");
  test::write_bytes(dir + "/in.bin", "input");
  test::write_bytes(dir + "/other.bin", "other");
  fs::create_symlink(dir + "/in.bin", dir + "/sym.bin");
  fs::create_hard_link(dir + "/in.bin", dir + "/hard.bin");
  InputFiles inputs;
  inputs.add(dir + "/in.bin");
  inputs.add(dir + "/missing.bin");  // ignored
  EXPECT_THROW(inputs.check_output_file(dir + "/in.bin"), Error);
  EXPECT_THROW(inputs.check_output_file(dir + "/sym.bin"), Error);
  EXPECT_THROW(inputs.check_output_file(dir + "/hard.bin"), Error);
  EXPECT_THROW(inputs.check_output_file(dir + "/./in.bin"), Error);
  EXPECT_NO_THROW(inputs.check_output_file(dir + "/other.bin"));
  EXPECT_NO_THROW(inputs.check_output_file(dir + "/missing.bin"));
  try {
    inputs.check_output_file(dir + "/hard.bin");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is the input '" + dir + "/in.bin'"), std::string::npos)
        << e.what();
  }
}

TEST(FileIdentity, InputInsideAnOutputFolder) {
  const std::string dir = fresh_dir("inside");
  fs::create_directories(dir + "/frames/deep");
  fs::create_directories(dir + "/elsewhere");
  test::write_bytes(dir + "/frames/deep/clip.mp4", "v");
  test::write_bytes(dir + "/elsewhere/x.png", "p");
  fs::create_symlink(dir + "/frames", dir + "/link");
  fs::create_hard_link(dir + "/elsewhere/x.png", dir + "/frames/frame_00000.png");
  InputFiles video;
  video.add(dir + "/frames/deep/clip.mp4");
  EXPECT_THROW(video.check_output_folder(dir + "/frames"), Error);
  EXPECT_THROW(video.check_output_folder(dir + "/link"), Error);
  EXPECT_THROW(video.check_output_folder(dir), Error);
  EXPECT_NO_THROW(video.check_output_folder(dir + "/elsewhere"));
  InputFiles image;
  image.add(dir + "/elsewhere/x.png");
  EXPECT_THROW(image.check_output_folder(dir + "/frames"), Error);  // a hard link inside
  EXPECT_NO_THROW(image.check_output_folder(dir + "/frames/deep"));
  EXPECT_NO_THROW(image.check_output_folder(dir + "/new"));  // does not exist yet
}

// ---- frame folders -------------------------------------------------------------------------

TEST(FrameFolders, NeverTouchWhatVvaeDidNotWrite) {
  const RgbFrames src = test::index_frames(3, 8, 8);
  const std::string root = fresh_dir("frames");
  // A folder holding a user's files is refused, with or without overwrite, and left as it was.
  const std::string photos = root + "/photos";
  fs::create_directories(photos + "/2024");
  test::write_bytes(photos + "/holiday.jpg", "a");
  const auto before = snapshot(root);
  EXPECT_EQ(inspect_frame_folder(photos).state, FrameFolder::State::other);
  EXPECT_THROW(write_png_sequence(photos, src), Error);
  EXPECT_THROW(write_png_sequence(photos, src, true), Error);
  EXPECT_EQ(snapshot(root), before);

  // frame_*.png files without vvae's marker are a user's too.
  const std::string theirs = root + "/theirs";
  fs::create_directories(theirs);
  test::write_bytes(theirs + "/frame_00000.png", "mine");
  EXPECT_THROW(write_png_sequence(theirs, src, true), Error);
  EXPECT_EQ(slurp(theirs + "/frame_00000.png"), "mine");

  // New and empty folders take a set; a set vvae wrote is replaced only with overwrite, and
  // then a shorter set leaves none of the old frames behind.
  const std::string fresh = root + "/fresh";
  EXPECT_EQ(inspect_frame_folder(fresh).state, FrameFolder::State::absent);
  write_png_sequence(fresh, src);
  EXPECT_EQ(inspect_frame_folder(fresh).state, FrameFolder::State::frame_set);
  EXPECT_EQ(inspect_frame_folder(fresh).frames.size(), 3u);
  const auto written = snapshot(fresh);
  EXPECT_THROW(write_png_sequence(fresh, src), Error);
  EXPECT_EQ(snapshot(fresh), written);
  write_png_sequence(fresh, test::index_frames(2, 8, 8), true);
  EXPECT_FALSE(fs::exists(fresh + "/frame_00002.png"));
  EXPECT_EQ(inspect_frame_folder(fresh).frames.size(), 2u);
  // A file added to a frame set makes it a user's folder again.
  test::write_bytes(fresh + "/notes.txt", "n");
  EXPECT_THROW(write_png_sequence(fresh, src, true), Error);
  EXPECT_EQ(slurp(fresh + "/notes.txt"), "n");
  EXPECT_TRUE(fs::exists(fresh + "/frame_00001.png"));

  const std::string empty = root + "/empty";
  fs::create_directories(empty);
  fs::create_directory_symlink(empty, root + "/link");
  write_png_sequence(root + "/link", src);  // into the folder the link names
  EXPECT_TRUE(fs::is_symlink(root + "/link"));
  EXPECT_TRUE(fs::exists(empty + "/frame_00002.png"));
  fs::create_symlink(root + "/nothing", root + "/dangling");
  EXPECT_THROW(write_png_sequence(root + "/dangling", src), Error);
  EXPECT_TRUE(fs::is_symlink(root + "/dangling"));
  test::write_bytes(root + "/file", "f");
  EXPECT_THROW(write_png_sequence(root + "/file", src), Error);
  EXPECT_EQ(slurp(root + "/file"), "f");
  // Nothing vvae made along the way is left: no staging folders, no temporaries.
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    EXPECT_EQ(name.find(".tmp-"), std::string::npos) << e.path();
    EXPECT_EQ(name.find(".vvae-tmp"), std::string::npos) << e.path();
  }
}

TEST(FrameFolders, FailuresLeaveNothing) {
  const std::string root = fresh_dir("frames_fail");
  RgbFrames huge;  // passes the count check, fails at the first frame's size
  huge.frames = 2;
  huge.height = 1;
  huge.width = int64_t{1} << 20;
  huge.data.assign(static_cast<size_t>(huge.frames * huge.height * huge.width * 3), 0);
  EXPECT_THROW(write_png_sequence(root + "/new", huge), Error);
  fs::create_directories(root + "/empty");
  EXPECT_THROW(write_png_sequence(root + "/empty", huge), Error);
  write_png_sequence(root + "/set", test::index_frames(2, 8, 8));
  const auto before = snapshot(root);
  EXPECT_THROW(write_png_sequence(root + "/set", huge, true), Error);
  EXPECT_EQ(snapshot(root), before);
  EXPECT_FALSE(fs::exists(root + "/new"));
  EXPECT_TRUE(fs::is_empty(root + "/empty"));
}

// ---- memory --------------------------------------------------------------------------------

TEST(MemoryLimits, RefusesWithTheNumbers) {
  const int64_t gib = int64_t{1} << 30;
  MemoryLimits m;
  EXPECT_EQ(memory_shortfall(100 * gib, "decoding", m), "");  // nothing known: no refusal
  m.address_space_limit = 4 * gib;
  m.address_space_used = 1 * gib;
  EXPECT_EQ(memory_shortfall(2 * gib, "decoding", m), "");
  const std::string as = memory_shortfall(3 * gib + 1, "decoding [1, 4]", m);
  EXPECT_EQ(as.rfind("decoding [1, 4] needs ~3.0 GiB", 0), 0u) << as;
  EXPECT_NE(as.find("ulimit -v"), std::string::npos) << as;
  EXPECT_NE(as.find("4.0 GiB"), std::string::npos) << as;
  EXPECT_NE(as.find("leaves 3.0 GiB"), std::string::npos) << as;
  m.address_space_limit = -1;
  m.available = 2 * gib;
  const std::string avail = memory_shortfall(5 * gib, "encoding", m);
  EXPECT_NE(avail.find("2.0 GiB available"), std::string::npos) << avail;
  EXPECT_EQ(memory_shortfall(gib, "encoding", m), "");

  const MemoryLimits now = current_memory_limits();
  EXPECT_GT(now.address_space_used, 0);
  EXPECT_NO_THROW(check_memory_fits(1 << 20, "a small run"));
  EXPECT_THROW(check_memory_fits(int64_t{1} << 62, "an impossible run"), Error);
}

// ---- reconstruct ---------------------------------------------------------------------------

struct ReconstructFixture : ::testing::Test {
  Model model = [] {
    LoadOptions load;
    load.model = test::data_path("golden/ae2d_small");
    return Model::load(load);
  }();

  std::string clip(const std::string& name) {
    const std::string path = temp_path(name);
    test::MakeVideo o;
    o.codec = "ffv1";
    test::make_video(path, test::moving_frames(3, 16, 16), o);
    return path;
  }
};

TEST_F(ReconstructFixture, SymlinkedSubfolderIsRefused) {
  const std::string root = fresh_dir("rec_symlink");
  fs::create_directories(root + "/out");
  fs::create_directories(root + "/outside");
  test::write_bytes(root + "/outside/c1_orig.mp4.tmp-userfile", "u");
  test::write_bytes(root + "/outside/c1_orig.mp4.tmp-999999999-abc123", "u2");
  fs::create_directory_symlink(root + "/outside", root + "/out/orig");
  const auto before = snapshot(root + "/outside");
  ReconstructOptions o;
  o.out_dir = root + "/out";
  EXPECT_THROW(check_output_subfolders(o.out_dir), Error);
  const auto entry = entries_from_paths({clip("c1.mkv")})[0];
  EXPECT_THROW(reconstruct_clip(model, entry, o, run_key(model.info(), o)), Error);
  EXPECT_EQ(snapshot(root + "/outside"), before);
}

TEST_F(ReconstructFixture, OutputsNeverReplaceInputs) {
  const std::string root = fresh_dir("rec_inputs");
  ReconstructOptions o;
  o.out_dir = root;
  fs::create_directories(root + "/orig");
  fs::create_directories(root + "/recn");
  // A clip that lies where its own original would be written.
  const std::string source = root + "/orig/c_orig.mkv";
  fs::rename(clip("c.mkv"), source);
  ManifestEntry self{0, source, "c"};
  fs::create_symlink(source, root + "/orig/c_orig.mp4");  // the output name reaches the input
  const auto before = snapshot(root);
  EXPECT_THROW(reconstruct_clip(model, self, o, run_key(model.info(), o)), Error);
  EXPECT_EQ(snapshot(root), before);
  // Another input of the run (a manifest row, the model) where this clip's reconstruction goes.
  const std::string other = root + "/recn/d_recn.mp4";
  fs::rename(clip("d.mkv"), other);
  o.inputs.add(other);
  const auto before_other = snapshot(root);
  EXPECT_THROW(reconstruct_clip(model, {1, clip("d.mkv"), "d"}, o, run_key(model.info(), o)),
               Error);
  EXPECT_EQ(snapshot(root), before_other);
}

TEST_F(ReconstructFixture, ClipLockKeepsRunsApart) {
  const std::string root = fresh_dir("rec_lock");
  ReconstructOptions o;
  o.out_dir = root;
  const auto entry = entries_from_paths({clip("locked.mkv")})[0];
  auto lock = FileLock::try_lock(root + "/.locked.vvae-lock");  // as another run would
  ASSERT_TRUE(lock.has_value());
  try {
    reconstruct_clip(model, entry, o, run_key(model.info(), o));
    ADD_FAILURE() << "a locked clip was written";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("another vvae run is writing clip 'locked'"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(root + "/orig"));
  lock.reset();
  const ClipResult r = reconstruct_clip(model, entry, o, run_key(model.info(), o));
  EXPECT_TRUE(r.ok);
  EXPECT_FALSE(fs::exists(root + "/.locked.vvae-lock"));
}

TEST_F(ReconstructFixture, ForeignMarkerIsLeftAlone) {
  const std::string root = fresh_dir("rec_marker");
  ReconstructOptions o;
  o.out_dir = root;
  fs::create_directories(root + "/done");
  test::write_bytes(root + "/done/m.json", "my notes");
  const auto entry = entries_from_paths({clip("m.mkv")})[0];
  EXPECT_THROW(reconstruct_clip(model, entry, o, run_key(model.info(), o)), Error);
  EXPECT_EQ(slurp(root + "/done/m.json"), "my notes");
}

TEST_F(ReconstructFixture, NonUtf8PathsKeepEveryRecord) {
  const std::string root = fresh_dir("rec_bytes");
  ReconstructOptions o;
  o.out_dir = root + "/out";
  o.model_label = "models/\xfe";
  fs::create_directories(o.out_dir);
  const std::string bad = clip("c\xff\\x.mkv"), good = clip("plain.mkv");
  auto entries = entries_from_paths({bad, good});
  const std::string key = run_key(model.info(), o);
  std::vector<ClipResult> results;
  for (const auto& e : entries) results.push_back(reconstruct_clip(model, e, o, key));
  ASSERT_TRUE(results[0].ok && results[1].ok);
  // The marker is JSON, records the path losslessly, and resumes the clip.
  const auto marker = nlohmann::json::parse(slurp(o.out_dir + "/done/c\xff\\x.json"));
  EXPECT_EQ(unescape_bytes(marker["path"].get<std::string>()), bad);
  EXPECT_EQ(unescape_bytes(marker["name"].get<std::string>()), "c\xff\\x");
  const auto done = completed_clip(entries[0], o, key);
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->outputs, results[0].outputs);
  // The summary holds both clips; the plain one is stored as it is.
  const auto summary = nlohmann::json::parse(summary_json(results, model.info(), o, "0/1", 1));
  ASSERT_EQ(summary["clips"].size(), 2u);
  EXPECT_EQ(summary["clips"][0]["escaped"], nlohmann::json::array({"path", "name", "outputs"}));
  EXPECT_EQ(summary["clips"][1]["path"], good);
  EXPECT_FALSE(summary["clips"][1].contains("escaped"));
  EXPECT_EQ(unescape_bytes(summary["model"]["model"].get<std::string>()), "models/\xfe");
  // A failed clip's error naming such a path is recorded too.
  ClipResult failed;
  failed.entry = {2, "x\xff.mp4", "x\xff"};
  failed.error = "cannot read 'x\xff.mp4'";
  results.push_back(failed);
  const auto with_failure = nlohmann::json::parse(summary_json(results, model.info(), o, "0/1", 1));
  EXPECT_EQ(unescape_bytes(with_failure["clips"][2]["error"].get<std::string>()), failed.error);
}

}  // namespace
}  // namespace vvae
