// Video files in and out: reading every container the issue names (frames checked numerically),
// frame selection and geometry through load_clip, writing and re-reading, alpha, bad files,
// and the reconstruct step with its done markers.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "media/file_lock.hpp"
#include "media/geometry.hpp"
#include "media/visuals.hpp"
#include "test_util.hpp"
#include "video_maker.hpp"
#include "vvae/clip.hpp"
#include "vvae/metrics.hpp"
#include "vvae/reconstruct.hpp"
#include "vvae/video.hpp"

namespace vvae {
namespace {

namespace fs = std::filesystem;
using test::index_frames;
using test::make_video;
using test::MakeVideo;
using test::moving_frames;
using test::temp_path;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

double clip_psnr(const RgbFrames& a, const RgbFrames& b) {
  return clip_metrics(a, b).mean_psnr;
}

std::string make(const std::string& name, const RgbFrames& frames, const std::string& codec,
                 double fps = 24, bool still = false) {
  const std::string path = temp_path(name);
  MakeVideo o;
  o.codec = codec;
  o.fps = fps;
  o.still = still;
  make_video(path, frames, o);
  return path;
}

// Leaves no temporaries beside `path`.
bool no_temporaries(const std::string& path) {
  const fs::path p(path);
  const std::string prefix = p.filename().string() + ".tmp-";
  for (const auto& f : fs::directory_iterator(p.parent_path()))
    if (f.path().filename().string().rfind(prefix, 0) == 0) return false;
  return true;
}

// Every container and codec of the issue, decoded and compared with what was encoded.
TEST(VideoRead, ContainersAndCodecs) {
  struct Case {
    const char* name;
    const char* codec;
    double min_psnr;  // vs the source frames; 100 = lossless
    const char* container;
  };
  const Case cases[] = {
      {"r.mkv", "ffv1", 100, "matroska"},   {"r.mp4", "libx264", 38, "mp4"},
      {"r.webm", "libvpx-vp9", 33, "webm"}, {"r.mov", "libx264", 38, "mov"},
      {"r.avi", "mjpeg", 30, "avi"},        {"r.gif", "gif", 20, "gif"},
  };
  const RgbFrames src = moving_frames(8, 32, 48);
  for (const Case& c : cases) {
    const std::string path = make(c.name, src, c.codec, 12);
    VideoInfo info;
    const RgbFrames got = read_all_frames(path, &info);
    ASSERT_EQ(got.frames, 8) << c.name;
    ASSERT_EQ(got.height, 32) << c.name;
    ASSERT_EQ(got.width, 48) << c.name;
    EXPECT_NE(info.container.find(c.container), std::string::npos) << info.container;
    EXPECT_FALSE(info.still_image) << c.name;
    EXPECT_NEAR(info.fps, 12, std::string(c.codec) == "gif" ? 1.0 : 1e-6) << c.name;
    EXPECT_GE(clip_psnr(src, got), c.min_psnr) << c.name;
  }
  // Lossless: the exact bytes.
  const RgbFrames idx = index_frames(5, 20, 30);
  EXPECT_EQ(read_all_frames(make("idx.mkv", idx, "ffv1")).data, idx.data);
}

TEST(VideoRead, StillImages) {
  const RgbFrames img = index_frames(1, 20, 30);
  VideoInfo info;
  RgbFrames got = read_all_frames(make("s.png", img, "png", 24, true), &info);
  EXPECT_TRUE(info.still_image);
  EXPECT_EQ(info.fps, 0);
  EXPECT_EQ(got.data, img.data);
  got = read_all_frames(make("s.jpg", moving_frames(1, 32, 48), "mjpeg", 24, true), &info);
  EXPECT_TRUE(info.still_image);
  EXPECT_EQ(got.frames, 1);
  EXPECT_GE(clip_psnr(moving_frames(1, 32, 48), got), 30);

  // Alpha: the RGB values survive, the reader says the frame was see-through, load_clip warns.
  const std::string rgba = temp_path("alpha.png");
  MakeVideo o;
  o.codec = "png";
  o.still = true;
  o.alpha = true;
  make_video(rgba, img, o);
  VideoReader reader(rgba);
  EXPECT_TRUE(reader.info().alpha);
  std::vector<uint8_t> rgb(20 * 30 * 3);
  bool transparent = false;
  ASSERT_TRUE(reader.next(rgb.data(), &transparent));
  EXPECT_TRUE(transparent);
  EXPECT_EQ(rgb, img.data);
  EXPECT_FALSE(reader.next(rgb.data()));
  const Clip clip = load_clip(rgba, {}, {1, false, 2});
  ASSERT_EQ(clip.warnings.size(), 1u);
  EXPECT_NE(clip.warnings[0].find("alpha"), std::string::npos);
  EXPECT_EQ(clip.frames(), 1);
  // An opaque alpha channel is dropped without a warning.
  o.alpha_value = 255;
  make_video(rgba, img, o);
  EXPECT_TRUE(load_clip(rgba, {}, {1, false, 2}).warnings.empty());
}

// R = 4 t + 1 tells which source frame a clip frame is.
int64_t source_frame(const Clip& clip, int64_t t) {
  const float v = clip.x.data()[t * clip.height() * clip.width()];  // channel 0, pixel (0, 0)
  const double byte = (static_cast<double>(v) * 0.5 + 0.5) * 255;
  return std::lround((byte - 1) / 4);
}

TEST(VideoClip, FrameSelection) {
  const std::string path = make("sel.mkv", index_frames(20, 16, 16), "ffv1", 24);
  ClipOptions o;
  Clip c = load_clip(path, o, {1, false, 8});
  ASSERT_EQ(c.frames(), 20);
  EXPECT_DOUBLE_EQ(c.fps, 24);
  EXPECT_EQ(c.source_frames, 20);
  for (int64_t t = 0; t < 20; ++t) EXPECT_EQ(source_frame(c, t), t);

  // 4 frames at interval 2: Open-Sora's linspace(0, 7, 4) = 0, 2, 4, 7.
  o.frames.num_frames = 4;
  o.frames.frame_interval = 2;
  c = load_clip(path, o, {1, false, 8});
  ASSERT_EQ(c.frames(), 4);
  const int64_t expect[4] = {0, 2, 4, 7};
  for (int64_t t = 0; t < 4; ++t) EXPECT_EQ(source_frame(c, t), expect[t]);
  EXPECT_EQ(c.indices, (std::vector<int64_t>{0, 2, 4, 7}));
  EXPECT_DOUBLE_EQ(c.fps, 12);

  // --fps-max 10 on 24 fps: interval ceil(2.4) = 3, every 3rd frame, 8 fps.
  o = {};
  o.frames.fps_max = 10;
  c = load_clip(path, o, {1, false, 8});
  EXPECT_EQ(c.indices, (std::vector<int64_t>{0, 3, 6, 9, 12, 15, 18}));
  EXPECT_DOUBLE_EQ(c.fps, 8);

  // A causal family (1 + 4k): 20 frames -> 17, and the note says so.
  o = {};
  c = load_clip(path, o, {4, true, 8});
  EXPECT_EQ(c.frames(), 17);
  std::string notes;
  for (const auto& n : c.notes) notes += n;
  EXPECT_NE(notes.find("trimmed 3"), std::string::npos) << notes;
  // A count the rule allows but the model refuses (as the DC-AE refuses 4): the next one down.
  const ShapeRules picky(4, false, 8, [](const Shape& x) { return x[2] == 1 || x[2] >= 8; });
  o = {};
  o.frames.num_frames = 7;
  c = load_clip(path, o, picky);
  EXPECT_EQ(c.frames(), 1);
  notes.clear();
  for (const auto& n : c.notes) notes += n;
  EXPECT_NE(notes.find("the model refuses 4"), std::string::npos) << notes;
  o.frames.num_frames = 11;
  EXPECT_EQ(load_clip(path, o, picky).frames(), 8);
  // A non-causal family with time ratio 4 and more frames asked than there are.
  o.frames.num_frames = 30;
  c = load_clip(path, o, {4, false, 8});
  EXPECT_EQ(c.frames(), 20);
  EXPECT_EQ(source_frame(c, 19), 19);
}

TEST(VideoClip, Geometry) {
  // 33x47 with spatial ratio 8: the middle 32x40 (rows 0..31, columns 3..42), no resampling.
  const std::string odd = make("odd.mkv", index_frames(3, 33, 47), "ffv1");
  Clip c = load_clip(odd, {}, {1, false, 8});
  ASSERT_EQ(c.height(), 32);
  ASSERT_EQ(c.width(), 40);
  const RgbFrames back = tensor_to_rgb(c.x);
  EXPECT_EQ(back.frame(1)[0], 5);                      // R = 4 * 1 + 1
  EXPECT_EQ(back.frame(0)[(5 * 40 + 7) * 3 + 1], 10);  // G = 2 * row
  EXPECT_EQ(back.frame(0)[(5 * 40 + 7) * 3 + 2], 20);  // B = 2 * (7 + 3)
  EXPECT_FALSE(c.notes.empty());

  // --resolution 256 on a 36x64 (16:9) clip: the 16:9 bucket 192x336, upscaled by bilinear.
  const RgbFrames src = moving_frames(2, 36, 64);
  const std::string wide = make("wide.mkv", src, "ffv1");
  ClipOptions o;
  o.resolution = "256";
  c = load_clip(wide, o, {1, false, 8});
  EXPECT_EQ(c.bucket, "16:9");
  ASSERT_EQ(c.height(), 192);
  ASSERT_EQ(c.width(), 336);
  const ResizeCrop g = resize_crop_geometry(36, 64, 192, 336);
  std::vector<float> ref(static_cast<size_t>(3 * 192 * 336));
  resize_crop_frame(src.frame(1), 36, 64, g, ref.data(), 192 * 336);
  for (int64_t ch = 0; ch < 3; ++ch)
    for (int64_t i = 0; i < 192 * 336; i += 97)
      ASSERT_EQ(c.x.data()[(ch * 2 + 1) * 192 * 336 + i], ref[ch * 192 * 336 + i]);

  // --size must fit the spatial ratio.
  o = {};
  o.height = 24;
  o.width = 30;
  EXPECT_THROW(load_clip(wide, o, {1, false, 8}), Error);
  o.width = 32;
  c = load_clip(wide, o, {1, false, 8});
  EXPECT_EQ(c.height(), 24);
  EXPECT_EQ(c.width(), 32);
}

TEST(VideoWrite, Mp4RoundTrip) {
  const RgbFrames src = moving_frames(10, 48, 64);
  const std::string path = temp_path("w.mp4");
  write_video(path, src, {12.5, 18});
  EXPECT_TRUE(no_temporaries(path));
  VideoInfo info;
  const RgbFrames got = read_all_frames(path, &info);
  ASSERT_EQ(got.frames, 10);
  EXPECT_NEAR(info.fps, 12.5, 1e-6);
  EXPECT_EQ(info.codec, "h264");
  const ClipMetrics m = clip_metrics(src, got);
  EXPECT_GE(m.mean_psnr, 38) << "H.264 at crf 18";
  for (double p : m.psnr) EXPECT_GE(p, 33);

  // Odd sizes are written 4:4:4 and come back at their size.
  const RgbFrames odd = moving_frames(3, 33, 47);
  write_video(temp_path("odd.mp4"), odd, {16, 18});
  const RgbFrames odd_back = read_all_frames(temp_path("odd.mp4"));
  ASSERT_EQ(odd_back.height, 33);
  ASSERT_EQ(odd_back.width, 47);
  EXPECT_GE(clip_psnr(odd, odd_back), 38);
}

TEST(VideoWrite, PngAndSequences) {
  const RgbFrames src = index_frames(3, 17, 23);
  write_png(temp_path("one.png"), src.frame(2), 17, 23);
  RgbFrames got = read_all_frames(temp_path("one.png"));
  ASSERT_EQ(got.frames, 1);
  EXPECT_TRUE(std::equal(got.data.begin(), got.data.end(), src.frame(2)));

  const std::string dir = temp_path("seq");
  write_png_sequence(dir, src);
  EXPECT_THROW(write_png_sequence(dir, src), Error);  // an earlier frame set: needs overwrite
  write_png_sequence(dir, src, /*overwrite=*/true);
  int files = 0;
  for (const auto& f : fs::directory_iterator(dir)) {
    (void)f;
    ++files;
  }
  EXPECT_EQ(files, 4);  // three frames and the marker
  EXPECT_TRUE(fs::exists(dir + "/" + kFrameSetMarker));
  got = read_all_frames(dir + "/frame_00001.png");
  EXPECT_TRUE(std::equal(got.data.begin(), got.data.end(), src.frame(1)));
  EXPECT_TRUE(no_temporaries(dir));
}

TEST(VideoWrite, NeverHalfWritten) {
  const RgbFrames src = moving_frames(2, 16, 16);
  EXPECT_THROW(write_video(temp_path("no/such/dir/x.mp4"), src), Error);
  EXPECT_THROW(write_png(temp_path("no/such/dir/x.png"), src.frame(0), 16, 16), Error);
  EXPECT_THROW(write_video(temp_path("x.avi"), src), Error);  // not a video output extension
  const std::string path = temp_path("abandoned.mp4");
  {
    VideoWriter w(path, 16, 16, {});
    w.write(src.frame(0));
  }  // destroyed without finish()
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(no_temporaries(path));
  EXPECT_THROW(write_video(temp_path("empty.mp4"), RgbFrames(0, 16, 16)), Error);
}

TEST(VideoRead, BadFiles) {
  const RgbFrames src = moving_frames(24, 32, 48);
  auto expect_error = [](const std::string& path, const std::string& words) {
    try {
      read_all_frames(path);
      ADD_FAILURE() << path << " read without an error";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      EXPECT_NE(msg.find(words), std::string::npos) << words << " not in: " << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  };
  const std::string mp4 = make("b.mp4", src, "libx264");  // moov at the end
  const std::string data = slurp(mp4);
  test::write_bytes(temp_path("trunc.mp4"), data.substr(0, data.size() * 6 / 10));
  expect_error(temp_path("trunc.mp4"), "FFmpeg can open");
  write_video(temp_path("fast.mp4"), src, {24, 23});  // moov first: truncation hits the frames
  const std::string fast = slurp(temp_path("fast.mp4"));
  test::write_bytes(temp_path("trunc_fast.mp4"), fast.substr(0, fast.size() * 6 / 10));
  expect_error(temp_path("trunc_fast.mp4"), "after frame");
  std::string corrupt = data;
  for (size_t i = corrupt.size() / 2; i < corrupt.size() / 2 + 200; ++i)
    corrupt[i] = static_cast<char>(i * 7);
  test::write_bytes(temp_path("corrupt.mp4"), corrupt);
  expect_error(temp_path("corrupt.mp4"), "corrupt");
  const std::string mkv = slurp(make("b.mkv", src, "ffv1"));
  test::write_bytes(temp_path("trunc.mkv"), mkv.substr(0, mkv.size() * 6 / 10));
  expect_error(temp_path("trunc.mkv"), "truncated");
  make("zero.mp4", RgbFrames(0, 32, 48), "libx264");
  expect_error(temp_path("zero.mp4"), "no video stream");
  make("zero.mkv", RgbFrames(0, 32, 48), "ffv1");
  expect_error(temp_path("zero.mkv"), "ends before any video data");
  // An AVI whose codec tag nobody knows.
  std::string avi = slurp(make("b.avi", src, "mjpeg"));
  for (size_t p = avi.find("MJPG"); p != std::string::npos; p = avi.find("MJPG"))
    avi.replace(p, 4, "ZZZZ");
  test::write_bytes(temp_path("unknown.avi"), avi);
  expect_error(temp_path("unknown.avi"), "not supported");
  test::write_bytes(temp_path("text.mp4"), "this is not a video, just some words");
  expect_error(temp_path("text.mp4"), "FFmpeg can open");
  test::write_bytes(temp_path("empty.mp4"), "");
  expect_error(temp_path("empty.mp4"), "empty");
  expect_error(temp_path("missing.mp4"), "no such file");
}

TEST(Visuals, SideBySideAndPlot) {
  const RgbFrames a = moving_frames(2, 20, 30);
  RgbFrames b = a;
  for (auto& v : b.data) v = static_cast<uint8_t>(std::min(255, v + 64));
  const RgbFrames s = side_by_side(a, a);
  ASSERT_EQ(s.width, 90);
  // Panels 1 and 2 are the frames; the heat map of identical frames is the ramp's black.
  EXPECT_TRUE(std::equal(a.frame(1), a.frame(1) + 30 * 3, s.frame(1)));
  EXPECT_EQ(s.frame(0)[(5 * 90 + 75) * 3 + 0], 0);
  const RgbFrames hot = side_by_side(a, b);
  EXPECT_GT(hot.frame(0)[(15 * 90 + 75) * 3 + 0], 200);  // error >= 64 levels: bright
  const RgbFrames plot = psnr_plot({30.5, 31, 29.25, 33});
  EXPECT_EQ(plot.height, 360);
  EXPECT_EQ(plot.width, 640);
  EXPECT_EQ(psnr_plot({}).frames, 1);
}

// ---- reconstruct ---------------------------------------------------------------------------

nlohmann::json read_json(const std::string& path) {
  return nlohmann::json::parse(slurp(path));
}

TEST(Reconstruct, ClipOutputsMetricsAndMarkers) {
  LoadOptions load;
  load.model = test::data_path("golden/ae2d_small");
  const Model model = Model::load(load);
  const std::string clip_path = make("rc.mkv", moving_frames(5, 16, 24), "ffv1", 10);
  ReconstructOptions o;
  o.out_dir = temp_path("rec");
  o.compare = true;
  o.latents = true;
  fs::create_directories(o.out_dir);
  const auto entries = entries_from_paths({clip_path});
  const std::string key = run_key(model.info(), o);
  const ClipResult r = reconstruct_clip(model, entries[0], o, key);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.frames, 5);
  EXPECT_EQ(r.height, 16);
  EXPECT_DOUBLE_EQ(r.fps, 10);
  for (const char* f : {"orig/rc_orig.mp4", "recn/rc_recn.mp4", "compare/rc_compare.mp4",
                        "compare/rc_psnr.png", "latents/rc.latent.safetensors", "done/rc.json"})
    EXPECT_TRUE(fs::exists(o.out_dir + "/" + f)) << f;

  // The metrics are those of the 8-bit frames before video encoding.
  const Clip clip = load_clip(clip_path, {}, shape_rules(model.info()));
  const Tensor rec = model.decode(model.encode(clip.x).z);
  const ClipMetrics m = clip_metrics(tensor_to_rgb(clip.x), tensor_to_rgb(rec));
  EXPECT_NEAR(r.psnr, m.mean_psnr, 1e-9);
  EXPECT_NEAR(r.ssim, m.mean_ssim, 1e-9);
  // The written original is the clip within codec tolerance (H.264 at crf 23).
  EXPECT_GE(clip_psnr(tensor_to_rgb(clip.x), read_all_frames(o.out_dir + "/orig/rc_orig.mp4")), 32);
  // The latent file carries z and the clip's metadata.
  const SafetensorsFile lat = SafetensorsFile::open(o.out_dir + "/latents/rc.latent.safetensors");
  EXPECT_TRUE(lat.contains("z") && lat.contains("mean") && lat.contains("logvar"));
  EXPECT_EQ(lat.metadata().at("fps"), "10");
  EXPECT_EQ(lat.metadata().at("frames"), "5");
  EXPECT_EQ(lat.metadata().at("source"), clip_path);

  // Resume: complete with this key; not with another key, nor once an output changed.
  auto done = completed_clip(entries[0], o, key);
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(done->resumed);
  EXPECT_DOUBLE_EQ(done->psnr, r.psnr);
  EXPECT_EQ(done->outputs, r.outputs);
  EXPECT_FALSE(completed_clip(entries[0], o, key + "x").has_value());
  // The lock file of a run killed after its marker goes; a lock a run holds stays.
  const std::string lock_file = o.out_dir + "/.rc.vvae-lock";
  test::write_bytes(lock_file, "");
  ASSERT_TRUE(completed_clip(entries[0], o, key).has_value());
  EXPECT_FALSE(fs::exists(lock_file));
  {
    const FileLock held = FileLock::lock(lock_file);
    ASSERT_TRUE(completed_clip(entries[0], o, key).has_value());
    EXPECT_TRUE(fs::exists(lock_file));
  }
  std::ofstream(o.out_dir + "/recn/rc_recn.mp4", std::ios::app) << "junk";
  EXPECT_FALSE(completed_clip(entries[0], o, key).has_value());
  fs::remove(o.out_dir + "/done/rc.json");
  EXPECT_FALSE(completed_clip(entries[0], o, key).has_value());

  // Stale temporaries of this clip (of a process that is gone) go; other clips', a live
  // process's and files vvae did not name stay.
  const std::string live = std::to_string(::getppid());
  for (const char* f : {"rc_orig.mp4.tmp-999999999-abc123", "other_orig.mp4.tmp-999999999-abc123",
                        "rc_orig.mp4.tmp-userfile", "rc_orig.mp4.tmp-abc123"})
    test::write_bytes(o.out_dir + "/orig/" + f, "x");
  test::write_bytes(o.out_dir + "/orig/rc_orig.mp4.tmp-" + live + "-abc123", "x");
  remove_stale_temporaries(entries[0], o);
  EXPECT_FALSE(fs::exists(o.out_dir + "/orig/rc_orig.mp4.tmp-999999999-abc123"));
  EXPECT_TRUE(fs::exists(o.out_dir + "/orig/other_orig.mp4.tmp-999999999-abc123"));
  EXPECT_TRUE(fs::exists(o.out_dir + "/orig/rc_orig.mp4.tmp-userfile"));
  EXPECT_TRUE(fs::exists(o.out_dir + "/orig/rc_orig.mp4.tmp-abc123"));
  EXPECT_TRUE(fs::exists(o.out_dir + "/orig/rc_orig.mp4.tmp-" + live + "-abc123"));

  // The summary: per clip, totals, latent stats (stats.py over this one clip).
  ClipResult failed;
  failed.entry = {1, "bad.mp4", "bad"};
  failed.error = "cannot read 'bad.mp4': no such file";
  const auto summary =
      nlohmann::json::parse(summary_json({r, failed}, model.info(), o, "0/1", 1.5));
  ASSERT_EQ(summary["clips"].size(), 2u);
  EXPECT_EQ(summary["clips"][0]["status"], "ok");
  EXPECT_EQ(summary["clips"][1]["status"], "failed");
  EXPECT_EQ(summary["totals"]["ok"], 1);
  EXPECT_EQ(summary["totals"]["failed"], 1);
  EXPECT_EQ(summary["vvae_version"], version());
  const Tensor z = model.encode(clip.x).z;
  const LatentMoments lm = latent_moments(z.data(), z.numel());
  EXPECT_NEAR(summary["latent"]["mean"].get<double>(), lm.mean, 1e-9);
  EXPECT_NEAR(summary["latent"]["std"].get<double>(), std::sqrt(lm.mean_sq - lm.mean * lm.mean),
              1e-6);
  (void)read_json;
}

TEST(Reconstruct, SingleFrameClipsArePng) {
  LoadOptions load;
  load.model = test::data_path("golden/ae2d_small");
  const Model model = Model::load(load);
  ReconstructOptions o;
  o.out_dir = temp_path("rec1");
  fs::create_directories(o.out_dir);
  const std::string img = make("pic.png", moving_frames(1, 16, 16), "png", 24, true);
  const ClipResult r =
      reconstruct_clip(model, entries_from_paths({img})[0], o, run_key(model.info(), o));
  EXPECT_EQ(r.outputs[0], "orig/pic_orig.png");
  EXPECT_EQ(r.outputs[1], "recn/pic_recn.png");
  EXPECT_EQ(read_all_frames(o.out_dir + "/orig/pic_orig.png").data, moving_frames(1, 16, 16).data);
}

}  // namespace
}  // namespace vvae
