#pragma once
// Video and image files through FFmpeg's libraries (libavformat, libavcodec, libswscale).
//
// Reading: whatever FFmpeg demuxes and decodes (mp4, mkv, webm, mov, avi, gif, ...) and still
// images (png, jpg, webp, bmp: one frame), as 8-bit RGB frames in presentation order. YUV is
// converted with the matrix and range the stream declares (BT.601 when it declares none, as
// FFmpeg does). An alpha channel is dropped; the reader says when a frame was not opaque.
// Decoding is strict: a read error, a packet the decoder rejects or a frame it marks corrupt is
// an Error naming the file and the frame, never a silently shorter clip.
//
// Writing: H.264 (libx264, yuv420p, BT.709 tags; MPEG-4 Part 2 when libx264 is missing) in mp4,
// mkv or mov chosen by extension, and PNG images. Every output is written under a temporary name
// and renamed into place once complete, so a failure never leaves a partial file.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vvae {

// 8-bit RGB frames, interleaved: (T, H, W, 3).
struct RgbFrames {
  int64_t frames = 0;
  int64_t height = 0;
  int64_t width = 0;
  std::vector<uint8_t> data;

  RgbFrames() = default;
  RgbFrames(int64_t t, int64_t h, int64_t w)
      : frames(t), height(h), width(w), data(static_cast<size_t>(t * h * w * 3)) {}
  int64_t frame_bytes() const { return height * width * 3; }
  uint8_t* frame(int64_t t) { return data.data() + t * frame_bytes(); }
  const uint8_t* frame(int64_t t) const { return data.data() + t * frame_bytes(); }
};

struct VideoInfo {
  std::string container;  // demuxer name ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", ...)
  std::string codec;      // decoder name ("h264", "png", ...)
  int64_t width = 0;      // frame size (frames of another size are scaled to it)
  int64_t height = 0;
  double fps = 0;           // average frame rate; 0 when unknown or a still image
  int64_t frame_count = 0;  // what the container declares; 0 when it does not say
  bool still_image = false;
  bool alpha = false;  // the pixel format carries an alpha channel
};

class VideoReader {
 public:
  // Opens and probes `path`; throws Error when it is not a video or image FFmpeg can decode.
  explicit VideoReader(const std::string& path);
  ~VideoReader();
  VideoReader(VideoReader&&) noexcept;
  VideoReader& operator=(VideoReader&&) noexcept;

  const VideoInfo& info() const;
  // Decodes the next frame into `rgb` (height * width * 3 bytes); false at the end. Sets
  // `*transparent` (when given) to whether the frame had a pixel that was not fully opaque.
  bool next(uint8_t* rgb, bool* transparent = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads every frame of a file (tests and small inputs).
RgbFrames read_all_frames(const std::string& path, VideoInfo* info = nullptr);

struct VideoWriteOptions {
  double fps = 16;
  int crf = 23;  // libx264 constant rate factor (Open-Sora's save_sample uses 23)
};

// Writes frames one at a time; the file appears at `path` on finish().
class VideoWriter {
 public:
  VideoWriter(const std::string& path, int64_t height, int64_t width,
              const VideoWriteOptions& options);
  ~VideoWriter();
  VideoWriter(const VideoWriter&) = delete;
  VideoWriter& operator=(const VideoWriter&) = delete;

  void write(const uint8_t* rgb);  // height * width * 3 bytes
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The most a VideoWriter of (height x width) frames holds while it writes: libx264's frame pool
// (its lookahead of 40 frames, B-frames and frame threads, 1.5 per core by default; each frame
// padded, with half-pel planes), which fills over the first ~50 frames and then stays: 460-640
// bytes per pixel measured at 512x512 and 256x256 on 2 cores (BENCHMARKS.md). What a streamed
// decode to a video counts beyond its plan.
int64_t video_writer_bytes(int64_t height, int64_t width);

void write_video(const std::string& path, const RgbFrames& frames,
                 const VideoWriteOptions& options = {});
void write_png(const std::string& path, const uint8_t* rgb, int64_t height, int64_t width);

// A frame set (--frames DIR): frame_00000.png, frame_00001.png, ... and the marker
// `.vvae-frames`, which lists the frames vvae wrote there and is written last.
inline constexpr const char* kFrameSetMarker = ".vvae-frames";

// What a folder holds, seen as the destination of a frame set.
struct FrameFolder {
  enum class State {
    absent,     // nothing of that name
    empty,      // an empty folder
    frame_set,  // exactly a frame set vvae wrote (its marker and frames it lists)
    other,      // anything else: files vvae did not write, or not a folder
  };
  State state = State::absent;
  std::vector<std::string> frames;  // frame_set: the frame names the marker lists
  std::string example;              // other: one entry vvae did not write
  int64_t others = 0;               // other: how many such entries
};
FrameFolder inspect_frame_folder(const std::string& dir);

// Fails (one line, before any work) unless `dir` can take a frame set: a new or empty folder,
// or, with `overwrite`, a frame set vvae wrote. A symlink to a folder is followed. Returns what
// the folder holds.
FrameFolder check_frame_folder(const std::string& dir, bool overwrite);

// Writes a frame set into `dir` (see check_frame_folder): a new folder appears whole; in an
// existing one the frames are moved in, with `overwrite` replacing an earlier frame set (its
// frames that the new set does not have are removed). Nothing else in the folder is touched;
// on failure the folder is left as it was.
void write_png_sequence(const std::string& dir, const RgbFrames& frames, bool overwrite = false);

// True for the extensions write_video accepts (.mp4, .mkv, .mov).
bool is_video_output_path(const std::string& path);
bool is_image_output_path(const std::string& path);  // .png

}  // namespace vvae
