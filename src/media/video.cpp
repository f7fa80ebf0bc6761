#include "vvae/video.hpp"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "io/atomic_file.hpp"
#include "vvae/error.hpp"
#include "vvae/limits.hpp"

namespace vvae {

namespace fs = std::filesystem;

namespace {

std::string av_error(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, buf, sizeof buf);
  return buf;
}

// FFmpeg's own log lines would break the one-error-line rule; vvae reports through return codes.
void quiet_ffmpeg() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_level(AV_LOG_QUIET); });
}

bool format_has_alpha(int format) {
  const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(format));
  return d != nullptr && (d->flags & AV_PIX_FMT_FLAG_ALPHA) != 0;
}

bool is_yuvj(int format) {
  return format == AV_PIX_FMT_YUVJ420P || format == AV_PIX_FMT_YUVJ422P ||
         format == AV_PIX_FMT_YUVJ444P || format == AV_PIX_FMT_YUVJ440P ||
         format == AV_PIX_FMT_YUVJ411P;
}

int sws_colorspace(AVColorSpace space) {
  switch (space) {
    case AVCOL_SPC_BT709:
      return SWS_CS_ITU709;
    case AVCOL_SPC_FCC:
      return SWS_CS_FCC;
    case AVCOL_SPC_SMPTE240M:
      return SWS_CS_SMPTE240M;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL:
      return SWS_CS_BT2020;
    default:
      return SWS_CS_DEFAULT;  // BT.601
  }
}

constexpr int kSwsFlags = SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_FULL_CHR_H_INP;

std::string lower_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Reading

struct VideoReader::Impl {
  std::string path;
  AVFormatContext* format = nullptr;
  AVCodecContext* decoder = nullptr;
  AVPacket* packet = nullptr;
  AVFrame* frame = nullptr;
  SwsContext* sws = nullptr;
  int stream = -1;
  bool flushing = false;
  bool finished = false;
  int64_t decoded = 0;
  int64_t first_ts = AV_NOPTS_VALUE, last_ts = AV_NOPTS_VALUE;
  std::vector<uint8_t> rgba;
  VideoInfo info;

  ~Impl() {
    sws_freeContext(sws);
    av_frame_free(&frame);
    av_packet_free(&packet);
    avcodec_free_context(&decoder);
    avformat_close_input(&format);
  }

  [[noreturn]] void fail_read(const std::string& what) const {
    fail("cannot read '", path, "': ", what);
  }

  void open() {
    quiet_ffmpeg();
    std::error_code ec;
    if (!fs::exists(path, ec)) fail_read("no such file");
    if (fs::is_directory(path, ec)) fail_read("it is a folder");
    if (fs::file_size(path, ec) == 0) fail_read("the file is empty");
    int r = avformat_open_input(&format, path.c_str(), nullptr, nullptr);
    if (r == AVERROR_EOF) fail_read("it ends before any video data (an empty or truncated file)");
    if (r < 0) fail_read("not a video or image FFmpeg can open (" + av_error(r) + ")");
    r = avformat_find_stream_info(format, nullptr);
    if (r < 0) fail_read("cannot find its streams (" + av_error(r) + ")");
    stream = av_find_best_stream(format, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
    if (stream < 0) {
      for (unsigned i = 0; i < format->nb_streams; ++i)
        if (format->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO)
          fail_read("its video stream is empty (no frames)");
      fail_read("it has no video stream with frames");
    }
    AVStream* st = format->streams[stream];
    const AVCodecParameters* par = st->codecpar;
    const AVCodec* codec = avcodec_find_decoder(par->codec_id);
    if (codec == nullptr) {
      const char* name = avcodec_get_name(par->codec_id);
      char tag[AV_FOURCC_MAX_STRING_SIZE] = {};
      av_fourcc_make_string(tag, par->codec_tag);
      fail_read(std::string("its video codec is not supported (") +
                (par->codec_id == AV_CODEC_ID_NONE ? std::string("unknown, tag ") + tag : name) +
                ")");
    }
    decoder = avcodec_alloc_context3(codec);
    packet = av_packet_alloc();
    frame = av_frame_alloc();
    if (decoder == nullptr || packet == nullptr || frame == nullptr) fail_read("out of memory");
    r = avcodec_parameters_to_context(decoder, par);
    if (r < 0) fail_read("bad codec parameters (" + av_error(r) + ")");
    decoder->thread_count = 0;
    // Check the CRCs formats carry; stricter modes (AV_EF_EXPLODE) reject common web clips
    // that start mid-GOP.
    decoder->err_recognition = AV_EF_CRCCHECK;
    r = avcodec_open2(decoder, codec, nullptr);
    if (r < 0)
      fail_read(std::string("cannot open the ") + codec->name + " decoder (" + av_error(r) + ")");
    if (par->width <= 0 || par->height <= 0) fail_read("its video stream has no frame size");
    if (par->width > limits::kMaxSide || par->height > limits::kMaxSide)
      fail_read(cat("its frames are ", par->height, "x", par->width, "; vvae's limit is ",
                    limits::kMaxSide, " pixels a side"));

    info.container = format->iformat->name;
    info.codec = codec->name;
    info.width = par->width;
    info.height = par->height;
    const std::string demuxer = info.container;
    info.still_image = demuxer == "image2" ||
                       (demuxer.size() > 5 && demuxer.compare(demuxer.size() - 5, 5, "_pipe") == 0);
    AVRational rate = st->avg_frame_rate;
    if (rate.num <= 0 || rate.den <= 0) rate = st->r_frame_rate;
    if (!info.still_image && rate.num > 0 && rate.den > 0) info.fps = av_q2d(rate);
    info.frame_count = info.still_image ? 1 : std::max<int64_t>(0, st->nb_frames);
    info.alpha = format_has_alpha(par->format);
  }

  // The next decoded frame in `frame`; false at the end of the stream.
  bool receive() {
    if (finished) return false;
    while (true) {
      int r = avcodec_receive_frame(decoder, frame);
      if (r == 0) {
        if ((frame->flags & AV_FRAME_FLAG_CORRUPT) != 0 || frame->decode_error_flags != 0)
          fail_read("corrupt data in frame " + std::to_string(decoded));
        return true;
      }
      if (r == AVERROR_EOF) {
        finished = true;
        check_complete();
        return false;
      }
      if (r != AVERROR(EAGAIN))
        fail_read("corrupt data after frame " + std::to_string(decoded) + " (" + av_error(r) + ")");
      if (flushing) {
        finished = true;
        return false;
      }
      r = av_read_frame(format, packet);
      if (r == AVERROR_EOF) {
        flushing = true;
        avcodec_send_packet(decoder, nullptr);
        continue;
      }
      if (r < 0)
        fail_read("truncated or corrupt after frame " + std::to_string(decoded) + " (" +
                  av_error(r) + ")");
      if (packet->stream_index != stream) {
        av_packet_unref(packet);
        continue;
      }
      if ((packet->flags & AV_PKT_FLAG_CORRUPT) != 0) {
        av_packet_unref(packet);
        fail_read("corrupt packet after frame " + std::to_string(decoded));
      }
      r = avcodec_send_packet(decoder, packet);
      av_packet_unref(packet);
      if (r < 0 && r != AVERROR(EAGAIN))
        fail_read("corrupt data after frame " + std::to_string(decoded) + " (" + av_error(r) + ")");
    }
  }

  // At the end of the stream: the frames must cover the duration the container declares (a
  // truncated Matroska or WebM file otherwise just ends early).
  void check_complete() const {
    if (info.still_image || decoded == 0 || !(info.fps > 0) || first_ts == AV_NOPTS_VALUE) return;
    const AVStream* st = format->streams[stream];
    double declared = 0;
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0)
      declared = static_cast<double>(st->duration) * av_q2d(st->time_base);
    else if (format->duration != AV_NOPTS_VALUE && format->duration > 0)
      declared = static_cast<double>(format->duration) / AV_TIME_BASE;
    const double covered =
        static_cast<double>(last_ts - first_ts) * av_q2d(st->time_base) + 1.0 / info.fps;
    if (declared > 0 && covered < 0.9 * declared - 1.0 / info.fps) {
      char buf[96];
      std::snprintf(buf, sizeof buf,
                    "truncated: its frames end at %.2f s of the %.2f s it declares", covered,
                    declared);
      fail_read(buf);
    }
  }

  void convert(uint8_t* rgb, bool* transparent) {
    const int64_t ts = frame->best_effort_timestamp;
    if (ts != AV_NOPTS_VALUE) {
      if (first_ts == AV_NOPTS_VALUE) first_ts = ts;
      last_ts = std::max(last_ts == AV_NOPTS_VALUE ? ts : last_ts, ts);
    }
    const bool alpha = format_has_alpha(frame->format);
    const AVPixelFormat dst = alpha ? AV_PIX_FMT_RGBA : AV_PIX_FMT_RGB24;
    sws = sws_getCachedContext(sws, frame->width, frame->height,
                               static_cast<AVPixelFormat>(frame->format),
                               static_cast<int>(info.width), static_cast<int>(info.height), dst,
                               kSwsFlags, nullptr, nullptr, nullptr);
    if (sws == nullptr)
      fail_read(std::string("cannot convert pixel format ") +
                av_get_pix_fmt_name(static_cast<AVPixelFormat>(frame->format)) + " to RGB");
    const int src_range = frame->color_range == AVCOL_RANGE_JPEG || is_yuvj(frame->format) ? 1 : 0;
    sws_setColorspaceDetails(sws, sws_getCoefficients(sws_colorspace(frame->colorspace)), src_range,
                             sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    const int64_t pixels = info.width * info.height;
    uint8_t* dst_data[4] = {alpha ? nullptr : rgb, nullptr, nullptr, nullptr};
    int dst_stride[4] = {static_cast<int>(info.width * (alpha ? 4 : 3)), 0, 0, 0};
    if (alpha) {
      rgba.resize(static_cast<size_t>(pixels * 4));
      dst_data[0] = rgba.data();
    }
    sws_scale(sws, frame->data, frame->linesize, 0, frame->height, dst_data, dst_stride);
    bool see_through = false;
    if (alpha) {
      for (int64_t i = 0; i < pixels; ++i) {
        rgb[3 * i] = rgba[4 * i];
        rgb[3 * i + 1] = rgba[4 * i + 1];
        rgb[3 * i + 2] = rgba[4 * i + 2];
        see_through |= rgba[4 * i + 3] != 255;
      }
    }
    if (transparent != nullptr) *transparent = see_through;
  }
};

VideoReader::VideoReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->open();
}
VideoReader::~VideoReader() = default;
VideoReader::VideoReader(VideoReader&&) noexcept = default;
VideoReader& VideoReader::operator=(VideoReader&&) noexcept = default;

const VideoInfo& VideoReader::info() const {
  return impl_->info;
}
bool VideoReader::next(uint8_t* rgb, bool* transparent) {
  if (impl_->info.still_image && impl_->decoded >= 1) return false;
  if (!impl_->receive()) {
    if (impl_->decoded == 0) impl_->fail_read("its video stream has no frames");
    return false;
  }
  impl_->convert(rgb, transparent);
  av_frame_unref(impl_->frame);
  ++impl_->decoded;
  return true;
}

RgbFrames read_all_frames(const std::string& path, VideoInfo* info) {
  VideoReader reader(path);
  if (info != nullptr) *info = reader.info();
  RgbFrames out(0, reader.info().height, reader.info().width);
  std::vector<uint8_t> frame(static_cast<size_t>(out.frame_bytes()));
  while (reader.next(frame.data())) {
    out.data.insert(out.data.end(), frame.begin(), frame.end());
    ++out.frames;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writing

namespace {

const AVCodec* video_encoder() {
  const AVCodec* c = avcodec_find_encoder_by_name("libx264");
  if (c == nullptr) c = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
  return c;
}

void check_frame_size(const std::string& path, int64_t height, int64_t width) {
  if (height < 1 || width < 1 || height > limits::kMaxSide || width > limits::kMaxSide)
    fail("cannot write '", path, "': frame size ", height, "x", width, " is out of range");
}

}  // namespace

bool is_video_output_path(const std::string& path) {
  const std::string ext = lower_extension(path);
  return ext == ".mp4" || ext == ".mkv" || ext == ".mov";
}

bool is_image_output_path(const std::string& path) {
  return lower_extension(path) == ".png";
}

struct VideoWriter::Impl {
  std::string path;
  std::unique_ptr<AtomicPath> temp;
  AVFormatContext* format = nullptr;
  AVCodecContext* encoder = nullptr;
  AVStream* stream = nullptr;
  AVFrame* frame = nullptr;
  AVPacket* packet = nullptr;
  SwsContext* sws = nullptr;
  int64_t height = 0, width = 0, written = 0;
  bool finished = false;

  ~Impl() {
    sws_freeContext(sws);
    av_packet_free(&packet);
    av_frame_free(&frame);
    avcodec_free_context(&encoder);
    if (format != nullptr) {
      avio_closep(&format->pb);
      avformat_free_context(format);
    }
  }

  [[noreturn]] void fail_write(const std::string& what) const {
    fail("cannot write '", path, "': ", what);
  }

  void open(const VideoWriteOptions& o) {
    quiet_ffmpeg();
    check_frame_size(path, height, width);
    if (!is_video_output_path(path)) fail_write("video files must end in .mp4, .mkv or .mov");
    if (!(o.fps > 0) || !std::isfinite(o.fps))
      fail_write("bad frame rate " + std::to_string(o.fps));
    const AVOutputFormat* of = av_guess_format(nullptr, path.c_str(), nullptr);
    if (of == nullptr) fail_write("no muxer for this extension");
    const AVCodec* codec = video_encoder();
    if (codec == nullptr) fail_write("FFmpeg has neither libx264 nor an MPEG-4 encoder");
    temp = std::make_unique<AtomicPath>(path);
    int r = avformat_alloc_output_context2(&format, of, nullptr, temp->temp_path().c_str());
    if (r < 0 || format == nullptr) fail_write("cannot set up the muxer (" + av_error(r) + ")");
    encoder = avcodec_alloc_context3(codec);
    frame = av_frame_alloc();
    packet = av_packet_alloc();
    if (encoder == nullptr || frame == nullptr || packet == nullptr) fail_write("out of memory");

    const AVRational rate = av_d2q(o.fps, 100000);
    const bool even = height % 2 == 0 && width % 2 == 0;
    const bool x264 = std::strcmp(codec->name, "libx264") == 0;
    encoder->width = static_cast<int>(width);
    encoder->height = static_cast<int>(height);
    // 4:2:0 needs even sizes; odd sizes are written 4:4:4 (H.264 High 4:4:4).
    encoder->pix_fmt = even || !x264 ? AV_PIX_FMT_YUV420P : AV_PIX_FMT_YUV444P;
    if (!even && !x264) fail_write("odd frame sizes need libx264");
    encoder->time_base = av_inv_q(rate);
    encoder->framerate = rate;
    encoder->color_range = AVCOL_RANGE_MPEG;
    encoder->colorspace = AVCOL_SPC_BT709;
    encoder->color_primaries = AVCOL_PRI_BT709;
    encoder->color_trc = AVCOL_TRC_BT709;
    encoder->thread_count = 0;
    if ((of->flags & AVFMT_GLOBALHEADER) != 0) encoder->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    AVDictionary* codec_options = nullptr;
    if (x264) {
      av_dict_set(&codec_options, "crf", std::to_string(o.crf).c_str(), 0);
      av_dict_set(&codec_options, "preset", "medium", 0);
    } else {
      encoder->flags |= AV_CODEC_FLAG_QSCALE;
      encoder->global_quality = FF_QP2LAMBDA * 2;
    }
    r = avcodec_open2(encoder, codec, &codec_options);
    av_dict_free(&codec_options);
    if (r < 0)
      fail_write(std::string("cannot open the ") + codec->name + " encoder (" + av_error(r) + ")");
    stream = avformat_new_stream(format, nullptr);
    if (stream == nullptr) fail_write("cannot add a stream");
    avcodec_parameters_from_context(stream->codecpar, encoder);
    stream->time_base = encoder->time_base;
    stream->avg_frame_rate = rate;
    r = avio_open(&format->pb, temp->temp_path().c_str(), AVIO_FLAG_WRITE);
    if (r < 0) fail_write(av_error(r));
    AVDictionary* mux_options = nullptr;
    if (std::strcmp(of->name, "mp4") == 0 || std::strcmp(of->name, "mov") == 0)
      av_dict_set(&mux_options, "movflags", "+faststart", 0);
    r = avformat_write_header(format, &mux_options);
    av_dict_free(&mux_options);
    if (r < 0) fail_write("cannot write the header (" + av_error(r) + ")");

    frame->format = encoder->pix_fmt;
    frame->width = encoder->width;
    frame->height = encoder->height;
    frame->color_range = AVCOL_RANGE_MPEG;
    frame->colorspace = AVCOL_SPC_BT709;
    r = av_frame_get_buffer(frame, 0);
    if (r < 0) fail_write("out of memory");
    sws = sws_getContext(encoder->width, encoder->height, AV_PIX_FMT_RGB24, encoder->width,
                         encoder->height, encoder->pix_fmt, kSwsFlags, nullptr, nullptr, nullptr);
    if (sws == nullptr) fail_write("cannot set up the RGB to YUV conversion");
    sws_setColorspaceDetails(sws, sws_getCoefficients(SWS_CS_DEFAULT), 1,
                             sws_getCoefficients(SWS_CS_ITU709), 0, 0, 1 << 16, 1 << 16);
  }

  void drain() {
    while (true) {
      int r = avcodec_receive_packet(encoder, packet);
      if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return;
      if (r < 0) fail_write("encoding failed (" + av_error(r) + ")");
      av_packet_rescale_ts(packet, encoder->time_base, stream->time_base);
      packet->stream_index = stream->index;
      r = av_interleaved_write_frame(format, packet);
      if (r < 0) fail_write(av_error(r));
    }
  }

  void write(const uint8_t* rgb) {
    int r = av_frame_make_writable(frame);
    if (r < 0) fail_write("out of memory");
    const uint8_t* src[4] = {rgb, nullptr, nullptr, nullptr};
    const int src_stride[4] = {static_cast<int>(width * 3), 0, 0, 0};
    sws_scale(sws, src, src_stride, 0, static_cast<int>(height), frame->data, frame->linesize);
    frame->pts = written++;
    r = avcodec_send_frame(encoder, frame);
    if (r < 0) fail_write("encoding failed (" + av_error(r) + ")");
    drain();
  }

  void finish() {
    if (written == 0) fail_write("no frames to write");
    int r = avcodec_send_frame(encoder, nullptr);
    if (r < 0) fail_write("encoding failed (" + av_error(r) + ")");
    drain();
    r = av_write_trailer(format);
    if (r < 0) fail_write("cannot finish the file (" + av_error(r) + ")");
    r = avio_closep(&format->pb);
    if (r < 0) fail_write(av_error(r));
    temp->commit();
    finished = true;
  }
};

VideoWriter::VideoWriter(const std::string& path, int64_t height, int64_t width,
                         const VideoWriteOptions& options)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->height = height;
  impl_->width = width;
  impl_->open(options);
}

VideoWriter::~VideoWriter() = default;

void VideoWriter::write(const uint8_t* rgb) {
  impl_->write(rgb);
}
void VideoWriter::finish() {
  impl_->finish();
}

int64_t video_writer_bytes(int64_t height, int64_t width) {
  constexpr int64_t kBytesPerPixel = 800;            // above the 460-640 measured
  constexpr int64_t kFixedBytes = int64_t{8} << 20;  // the codec and muxer themselves
  return kFixedBytes + kBytesPerPixel * height * width;
}

void write_video(const std::string& path, const RgbFrames& frames,
                 const VideoWriteOptions& options) {
  if (frames.frames < 1) fail("cannot write '", path, "': no frames");
  VideoWriter writer(path, frames.height, frames.width, options);
  for (int64_t t = 0; t < frames.frames; ++t) writer.write(frames.frame(t));
  writer.finish();
}

void write_png(const std::string& path, const uint8_t* rgb, int64_t height, int64_t width) {
  quiet_ffmpeg();
  check_frame_size(path, height, width);
  const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_PNG);
  if (codec == nullptr) fail("cannot write '", path, "': FFmpeg has no PNG encoder");
  struct Holder {
    AVCodecContext* c = nullptr;
    AVFrame* f = nullptr;
    AVPacket* p = nullptr;
    ~Holder() {
      av_packet_free(&p);
      av_frame_free(&f);
      avcodec_free_context(&c);
    }
  } h;
  h.c = avcodec_alloc_context3(codec);
  h.f = av_frame_alloc();
  h.p = av_packet_alloc();
  if (h.c == nullptr || h.f == nullptr || h.p == nullptr) fail("out of memory");
  h.c->width = static_cast<int>(width);
  h.c->height = static_cast<int>(height);
  h.c->pix_fmt = AV_PIX_FMT_RGB24;
  h.c->time_base = {1, 1};
  int r = avcodec_open2(h.c, codec, nullptr);
  if (r < 0) fail("cannot write '", path, "': PNG encoder (", av_error(r), ")");
  h.f->format = AV_PIX_FMT_RGB24;
  h.f->width = h.c->width;
  h.f->height = h.c->height;
  if (av_frame_get_buffer(h.f, 0) < 0) fail("out of memory");
  for (int64_t y = 0; y < height; ++y)
    std::memcpy(h.f->data[0] + y * h.f->linesize[0], rgb + y * width * 3,
                static_cast<size_t>(width * 3));
  h.f->pts = 0;
  r = avcodec_send_frame(h.c, h.f);
  if (r >= 0) r = avcodec_send_frame(h.c, nullptr);
  if (r >= 0) r = avcodec_receive_packet(h.c, h.p);
  if (r < 0) fail("cannot write '", path, "': PNG encoding failed (", av_error(r), ")");
  AtomicFile out(path);
  out.write(h.p->data, static_cast<size_t>(h.p->size));
  out.commit();
}

namespace {

bool is_frame_name(const std::string& name) {
  // frame_ + at least five digits + .png
  const std::string head = "frame_", tail = ".png";
  if (name.size() < head.size() + 5 + tail.size()) return false;
  if (name.compare(0, head.size(), head) != 0) return false;
  if (name.compare(name.size() - tail.size(), tail.size(), tail) != 0) return false;
  for (size_t i = head.size(); i < name.size() - tail.size(); ++i)
    if (name[i] < '0' || name[i] > '9') return false;
  return true;
}

std::string frame_name(int64_t t) {
  char name[32];
  std::snprintf(name, sizeof name, "frame_%05lld.png", static_cast<long long>(t));
  return name;
}

// The frame names a marker lists, or nullopt when it is not a marker vvae wrote.
std::optional<std::vector<std::string>> read_frame_marker(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (64 << 20))
    return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
  if (!j.is_object() || !j.contains("vvae_frames") || !j["vvae_frames"].is_array())
    return std::nullopt;
  std::vector<std::string> names;
  for (const auto& n : j["vvae_frames"]) {
    if (!n.is_string() || !is_frame_name(n.get<std::string>())) return std::nullopt;
    names.push_back(n.get<std::string>());
  }
  return names;
}

}  // namespace

FrameFolder inspect_frame_folder(const std::string& dir) {
  FrameFolder f;
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return f;  // absent
  f.state = FrameFolder::State::other;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    f.example = dir;
    f.others = 1;
    return f;
  }
  std::vector<std::string> entries;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    entries.push_back(e.path().filename().string());
  if (ec) fail("cannot read folder '", dir, "': ", ec.message());
  if (entries.empty()) {
    f.state = FrameFolder::State::empty;
    return f;
  }
  const auto listed = read_frame_marker((fs::path(dir) / kFrameSetMarker).string());
  std::sort(entries.begin(), entries.end());
  for (const std::string& name : entries) {
    if (name == kFrameSetMarker && listed) continue;
    struct stat e {};
    const bool ours = listed && std::find(listed->begin(), listed->end(), name) != listed->end() &&
                      ::lstat((fs::path(dir) / name).c_str(), &e) == 0 && S_ISREG(e.st_mode);
    if (ours) continue;
    if (f.others++ == 0) f.example = name;
  }
  if (f.others == 0) {
    f.state = FrameFolder::State::frame_set;
    f.frames = *listed;
  }
  return f;
}

FrameFolder check_frame_folder(const std::string& dir, bool overwrite) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) == 0 && ::stat(dir.c_str(), &st) != 0)
    fail("cannot write frames to '", dir, "': it is a symbolic link to nothing");
  const FrameFolder f = inspect_frame_folder(dir);
  switch (f.state) {
    case FrameFolder::State::absent:
    case FrameFolder::State::empty:
      return f;
    case FrameFolder::State::frame_set:
      if (overwrite) return f;
      fail("cannot write frames to '", dir, "': it holds ", f.frames.size(),
           " frames an earlier vvae run wrote (--overwrite replaces them)");
    case FrameFolder::State::other:
      if (f.example == dir) fail("cannot write frames to '", dir, "': it is a file");
      fail("cannot write frames to '", dir, "': the folder holds '", f.example, "'",
           f.others > 1 ? cat(" and ", f.others - 1, " more") : std::string(),
           " that vvae did not write (--frames takes a new or empty folder, or one holding "
           "frames vvae wrote, with --overwrite)");
  }
  return f;
}

void write_png_sequence(const std::string& dir, const RgbFrames& frames, bool overwrite) {
  if (frames.frames < 1) fail("cannot write '", dir, "': no frames");
  const FrameFolder before = check_frame_folder(dir, overwrite);
  AtomicDirectory out(dir);
  nlohmann::json names = nlohmann::json::array();
  for (int64_t t = 0; t < frames.frames; ++t) {
    const std::string name = frame_name(t);
    write_png(out.file(name), frames.frame(t), frames.height, frames.width);
    names.push_back(name);
  }
  const std::string marker = nlohmann::json{{"vvae_frames", names}}.dump() + "\n";
  AtomicFile m(out.file(kFrameSetMarker));
  m.write(marker.data(), marker.size());
  m.commit();
  std::vector<std::string> replaceable = before.frames;
  replaceable.push_back(kFrameSetMarker);
  if (before.state != FrameFolder::State::frame_set) replaceable.clear();
  out.commit(replaceable, before.frames);
}

}  // namespace vvae
