#include "video_maker.hpp"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace vvae::test {

namespace {

void check(int r, const std::string& what) {
  if (r < 0) {
    char buf[AV_ERROR_MAX_STRING_SIZE] = {};
    av_strerror(r, buf, sizeof buf);
    throw std::runtime_error("make_video: " + what + ": " + buf);
  }
}

AVPixelFormat default_format(const AVCodec* c, bool alpha) {
  const std::string n = c->name;
  if (n == "ffv1") return alpha ? AV_PIX_FMT_RGB32 : AV_PIX_FMT_0RGB32;
  if (n == "png") return alpha ? AV_PIX_FMT_RGBA : AV_PIX_FMT_RGB24;
  if (n == "mjpeg") return AV_PIX_FMT_YUVJ420P;
  if (n == "gif") return AV_PIX_FMT_RGB8;
  if (n == "libvpx-vp9" || n == "libvpx") return alpha ? AV_PIX_FMT_YUVA420P : AV_PIX_FMT_YUV420P;
  return AV_PIX_FMT_YUV420P;
}

}  // namespace

void make_video(const std::string& path, const RgbFrames& frames, const MakeVideo& o) {
  av_log_set_level(getenv("MV_DEBUG") ? AV_LOG_DEBUG : AV_LOG_QUIET);
  const AVCodec* codec = avcodec_find_encoder_by_name(o.codec.c_str());
  if (codec == nullptr) throw std::runtime_error("make_video: no encoder " + o.codec);
  AVCodecContext* enc = avcodec_alloc_context3(codec);
  const AVPixelFormat fmt =
      o.pix_fmt.empty() ? default_format(codec, o.alpha) : av_get_pix_fmt(o.pix_fmt.c_str());
  enc->width = static_cast<int>(frames.width);
  enc->height = static_cast<int>(frames.height);
  enc->pix_fmt = fmt;
  const AVRational rate = av_d2q(o.fps, 100000);
  enc->time_base = av_inv_q(rate);
  enc->framerate = rate;
  enc->gop_size = 12;
  if (o.codec == "mjpeg") enc->color_range = AVCOL_RANGE_JPEG;
  if (o.codec == "libvpx-vp9") av_opt_set(enc->priv_data, "deadline", "realtime", 0);
  if (o.codec == "libx264") av_opt_set(enc->priv_data, "crf", "18", 0);
  if (o.codec == "libvpx-vp9") av_opt_set(enc->priv_data, "crf", "20", 0);
  if (o.codec == "mjpeg")
    enc->flags |= AV_CODEC_FLAG_QSCALE, enc->global_quality = FF_QP2LAMBDA * 3;

  AVFormatContext* mux = nullptr;
  if (!o.still) {
    check(avformat_alloc_output_context2(
              &mux, nullptr, o.format.empty() ? nullptr : o.format.c_str(), path.c_str()),
          "muxer for " + path);
    if (mux->oformat->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  }
  check(avcodec_open2(enc, codec, nullptr), "open encoder " + o.codec);
  AVStream* st = nullptr;
  if (mux != nullptr) {
    st = avformat_new_stream(mux, nullptr);
    avcodec_parameters_from_context(st->codecpar, enc);
    st->time_base = enc->time_base;
    st->avg_frame_rate = rate;
    check(avio_open(&mux->pb, path.c_str(), AVIO_FLAG_WRITE), "open " + path);
    check(avformat_write_header(mux, nullptr), "header");
  }
  FILE* still = o.still ? std::fopen(path.c_str(), "wb") : nullptr;
  AVFrame* frame = av_frame_alloc();
  frame->format = fmt;
  frame->width = enc->width;
  frame->height = enc->height;
  check(av_frame_get_buffer(frame, 0), "frame");
  const AVPixelFormat src_fmt = o.alpha ? AV_PIX_FMT_RGBA : AV_PIX_FMT_RGB24;
  SwsContext* sws = sws_getContext(enc->width, enc->height, src_fmt, enc->width, enc->height, fmt,
                                   SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr,
                                   nullptr, nullptr);
  AVPacket* pkt = av_packet_alloc();
  std::vector<uint8_t> rgba(static_cast<size_t>(frames.height * frames.width * 4));
  auto drain = [&] {
    while (avcodec_receive_packet(enc, pkt) == 0) {
      if (mux != nullptr) {
        av_packet_rescale_ts(pkt, enc->time_base, st->time_base);
        pkt->stream_index = st->index;
        check(av_interleaved_write_frame(mux, pkt), "write");
      } else {
        std::fwrite(pkt->data, 1, static_cast<size_t>(pkt->size), still);
        av_packet_unref(pkt);
      }
    }
  };
  for (int64_t t = 0; t < frames.frames; ++t) {
    check(av_frame_make_writable(frame), "writable");
    const uint8_t* src = frames.frame(t);
    int stride = static_cast<int>(frames.width * 3);
    if (o.alpha) {
      for (int64_t i = 0; i < frames.height * frames.width; ++i) {
        for (int c = 0; c < 3; ++c) rgba[i * 4 + c] = src[i * 3 + c];
        rgba[i * 4 + 3] = o.alpha_value;
      }
      src = rgba.data();
      stride = static_cast<int>(frames.width * 4);
    }
    const uint8_t* planes[4] = {src, nullptr, nullptr, nullptr};
    const int strides[4] = {stride, 0, 0, 0};
    sws_scale(sws, planes, strides, 0, enc->height, frame->data, frame->linesize);
    frame->pts = t;
    check(avcodec_send_frame(enc, frame), "encode");
    drain();
    if (o.still) break;
  }
  if (frames.frames > 0 || !o.still) {
    avcodec_send_frame(enc, nullptr);
    drain();
  }
  if (mux != nullptr) {
    check(av_write_trailer(mux), "trailer");
    avio_closep(&mux->pb);
    avformat_free_context(mux);
  }
  if (still != nullptr) std::fclose(still);
  av_packet_free(&pkt);
  sws_freeContext(sws);
  av_frame_free(&frame);
  avcodec_free_context(&enc);
}

RgbFrames index_frames(int64_t t, int64_t h, int64_t w) {
  RgbFrames f(t, h, w);
  for (int64_t k = 0; k < t; ++k)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        uint8_t* p = f.frame(k) + (y * w + x) * 3;
        p[0] = static_cast<uint8_t>((4 * k + 1) % 256);
        p[1] = static_cast<uint8_t>((2 * y) % 256);
        p[2] = static_cast<uint8_t>((2 * x) % 256);
      }
  return f;
}

RgbFrames moving_frames(int64_t t, int64_t h, int64_t w) {
  RgbFrames f(t, h, w);
  for (int64_t k = 0; k < t; ++k) {
    const double cx = 0.3 * static_cast<double>(w) + 1.5 * static_cast<double>(k);
    const double cy = 0.4 * static_cast<double>(h) + 1.0 * static_cast<double>(k);
    const double r = 0.22 * static_cast<double>(std::min(h, w));
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        const double X = static_cast<double>(x), Y = static_cast<double>(y),
                     K = static_cast<double>(k);
        const double d = std::hypot(X - cx, Y - cy);
        const double disc = 1.0 / (1.0 + std::exp((d - r) * 0.8));
        const double g[3] = {0.5 + 0.4 * std::sin((X + 2 * K) / 9.0),
                             0.5 + 0.4 * std::cos((Y - K) / 11.0),
                             0.5 + 0.4 * std::sin((X + Y) / 15.0 + K / 4.0)};
        const double disc_color[3] = {0.95, 0.3, 0.55};
        uint8_t* p = f.frame(k) + (y * w + x) * 3;
        for (int c = 0; c < 3; ++c)
          p[c] =
              static_cast<uint8_t>(std::lround(255.0 * (g[c] * (1 - disc) + disc_color[c] * disc)));
      }
  }
  return f;
}

}  // namespace vvae::test
