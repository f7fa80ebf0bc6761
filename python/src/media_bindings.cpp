// Videos and clips: reading, writing, Open-Sora's frame selection, reconstruction and metrics.
#include "binding_util.hpp"

namespace vvae_python {
namespace {

using namespace nb::literals;

nb::dict video_info_dict(const vvae::VideoInfo& v) {
  nb::dict d;
  d["container"] = v.container;
  d["codec"] = v.codec;
  d["width"] = v.width;
  d["height"] = v.height;
  d["fps"] = v.fps;
  d["frame_count"] = v.frame_count;
  d["still_image"] = v.still_image;
  d["alpha"] = v.alpha;
  return d;
}

nb::dict clip_dict(const vvae::Clip& c) {
  nb::dict d;
  d["source"] = c.source;
  d["video"] = video_info_dict(c.video);
  d["source_frames"] = c.source_frames;
  d["indices"] = c.indices;
  d["interval"] = c.interval;
  d["fps"] = c.fps;
  nb::dict g;
  g["scaled_height"] = c.geometry.scaled_height;
  g["scaled_width"] = c.geometry.scaled_width;
  g["top"] = c.geometry.top;
  g["left"] = c.geometry.left;
  g["height"] = c.geometry.height;
  g["width"] = c.geometry.width;
  d["resize_crop"] = g;
  d["bucket"] = c.bucket;
  d["notes"] = c.notes;
  d["warnings"] = c.warnings;
  return d;
}

nb::dict clip_result_dict(const vvae::ClipResult& r) {
  nb::dict d;
  d["path"] = r.entry.path;
  d["name"] = r.entry.name;
  d["ok"] = r.ok;
  d["resumed"] = r.resumed;
  d["error"] = r.error;
  d["frames"] = r.frames;
  d["height"] = r.height;
  d["width"] = r.width;
  d["fps"] = r.fps;
  d["psnr"] = r.psnr;
  d["ssim"] = r.ssim;
  d["seconds"] = r.seconds;
  d["psnr_frames"] = r.psnr_frames;
  d["ssim_frames"] = r.ssim_frames;
  d["latent_mean"] = r.moments.mean;
  d["latent_mean_sq"] = r.moments.mean_sq;
  d["latent_shape"] = shape_tuple(r.latent_shape);
  d["outputs"] = r.outputs;
  d["notes"] = r.notes;
  d["warnings"] = r.warnings;
  return d;
}

}  // namespace

void bind_media(nb::module_& m) {
  // --- media ---------------------------------------------------------------------------------
  m.def(
      "load_clip",
      [](const std::string& path, const vvae::Model* model, int64_t num_frames,
         int64_t frame_interval, double fps_max, const std::string& resolution, int64_t height,
         int64_t width, const std::string& framework) {
        const Framework f = parse_framework(framework);
        const vvae::ClipOptions o =
            clip_options(num_frames, frame_interval, fps_max, resolution, height, width);
        const vvae::Clip clip = [&] {
          nb::gil_scoped_release release;
          const vvae::ShapeRules rules =
              model != nullptr ? vvae::shape_rules(*model) : vvae::ShapeRules();
          return vvae::load_clip(path, o, rules);
        }();
        return nb::make_tuple(to_python(clip.x, f), clip_dict(clip));
      },
      "path"_a, "model"_a.none() = nb::none(), "num_frames"_a = 0, "frame_interval"_a = 1,
      "fps_max"_a = 0.0, "resolution"_a = "", "height"_a = 0, "width"_a = 0,
      "framework"_a = "numpy");

  m.def(
      "write_video",
      [](const std::string& path, nb::handle x, double fps, int crf, int64_t batch) {
        const Input in = view_input(x, "x");
        if (in.tensor.dim(1) != 3)
          throw nb::value_error("x must have 3 (RGB) channels to be written as frames");
        if (batch < 0 || batch >= in.tensor.dim(0))
          throw nb::value_error("batch is out of range for x");
        const bool image = vvae::is_image_output_path(path);
        if (!image && !vvae::is_video_output_path(path))
          throw nb::value_error(("cannot tell the format of '" + path +
                                 "': write .mp4, .mkv or .mov videos, or a .png image")
                                    .c_str());
        if (image && in.tensor.dim(2) != 1)
          throw nb::value_error(
              ("a .png holds one frame; x has " + std::to_string(in.tensor.dim(2))).c_str());
        nb::gil_scoped_release release;
        const vvae::RgbFrames rgb = vvae::tensor_to_rgb(in.tensor, batch);
        if (image) {
          vvae::write_png(path, rgb.frame(0), rgb.height, rgb.width);
        } else {
          vvae::VideoWriteOptions w;
          w.fps = fps;
          w.crf = crf;
          vvae::write_video(path, rgb, w);
        }
      },
      "path"_a, "x"_a, "fps"_a = 16.0, "crf"_a = 23, "batch"_a = 0);

  m.def(
      "clip_metrics",
      [](nb::handle a, nb::handle b) {
        const Input x = view_input(a, "a"), y = view_input(b, "b");
        if (x.tensor.shape() != y.tensor.shape()) throw nb::value_error("a and b differ in shape");
        if (x.tensor.dim(1) != 3) throw nb::value_error("a and b must be RGB (3 channels)");
        nb::list out;
        for (int64_t i = 0; i < x.tensor.dim(0); ++i) {
          const vvae::ClipMetrics c = [&] {
            nb::gil_scoped_release release;
            return vvae::clip_metrics(vvae::tensor_to_rgb(x.tensor, i),
                                      vvae::tensor_to_rgb(y.tensor, i));
          }();
          nb::dict d;
          d["psnr"] = c.mean_psnr;
          d["ssim"] = c.mean_ssim;
          d["psnr_frames"] = c.psnr;
          d["ssim_frames"] = c.ssim;
          out.append(d);
        }
        return out;
      },
      "a"_a, "b"_a,
      "PSNR and SSIM per clip of a batch, on the 8-bit frames Open-Sora's save_sample makes.");

  m.def(
      "write_latent_file",
      [](const std::string& path, const vvae::Model* model, nb::handle z, nb::handle mean,
         nb::handle logvar, const std::map<std::string, std::string>& metadata,
         std::optional<std::vector<int64_t>> input_shape, bool sampled, uint64_t seed) {
        vvae::EncodeResult r;
        r.z = view_input(z, "z").tensor;
        if (!mean.is_none()) r.mean = view_input(mean, "mean").tensor;
        if (!logvar.is_none()) r.logvar = view_input(logvar, "logvar").tensor;
        if (r.mean.defined() != r.logvar.defined())
          throw nb::value_error("give both mean and logvar, or neither");
        vvae::Metadata meta;
        if (model != nullptr) {
          vvae::EncodeOptions e;
          e.sample = sampled;
          e.seed = seed;
          meta = input_shape ? vvae::latent_metadata(model->info(), shape_of(*input_shape), e)
                             : vvae::model_metadata(model->info());
        }
        for (const auto& [k, v] : metadata) meta[k] = v;
        nb::gil_scoped_release release;
        vvae::write_latent_file(path, r, meta);
      },
      "path"_a, "model"_a.none() = nb::none(), "z"_a, "mean"_a = nb::none(),
      "logvar"_a = nb::none(), "metadata"_a = std::map<std::string, std::string>{},
      "input_shape"_a = nb::none(), "sampled"_a = false, "seed"_a = 0);

  m.def(
      "read_latent_file",
      [](const std::string& path, const std::string& name, const std::string& framework) {
        const Framework f = parse_framework(framework);
        const vvae::LatentFile file = [&] {
          nb::gil_scoped_release release;
          return vvae::read_latent_file(path, name);
        }();
        nb::dict d;
        d["z"] = to_python(file.z, f);
        d["mean"] = to_python(file.mean, f);
        d["logvar"] = to_python(file.logvar, f);
        d["metadata"] = file.metadata;
        return d;
      },
      "path"_a, "name"_a = "", "framework"_a = "numpy");

  m.def(
      "reconstruct_clip",
      [](const vvae::Model& model, const std::string& path, const std::string& out_dir,
         int64_t num_frames, int64_t frame_interval, double fps_max, const std::string& resolution,
         int64_t height, int64_t width, bool sample, uint64_t seed, double fps, int crf,
         bool compare, bool latents, const std::string& model_label,
         const std::vector<std::string>& inputs) {
        vvae::ReconstructOptions o;
        o.out_dir = out_dir;
        o.clip = clip_options(num_frames, frame_interval, fps_max, resolution, height, width);
        o.encode = encode_options(sample, seed);
        o.fps = fps;
        o.crf = crf;
        o.compare = compare;
        o.latents = latents;
        o.model_label = model_label;
        // No output may replace what the run reads: the clip and the model's files.
        o.inputs.add(path);
        for (const auto& input : inputs) o.inputs.add(input);
        const vvae::ClipResult r = [&] {
          nb::gil_scoped_release release;
          vvae::set_num_threads(g_threads.load());
          std::vector<vvae::ManifestEntry> entries = vvae::entries_from_paths({path});
          vvae::assign_names(entries);
          vvae::check_output_subfolders(out_dir);
          const std::string key = vvae::run_key(model.info(), o);
          // A clip an earlier run completed with the same key is not redone (as the CLI).
          if (auto done = vvae::completed_clip(entries.front(), o, key)) return *done;
          return vvae::reconstruct_clip(model, entries.front(), o, key);
        }();
        return clip_result_dict(r);
      },
      "model"_a, "path"_a, "out_dir"_a, "num_frames"_a = 0, "frame_interval"_a = 1,
      "fps_max"_a = 0.0, "resolution"_a = "", "height"_a = 0, "width"_a = 0, "sample"_a = false,
      "seed"_a = 0, "fps"_a = 0.0, "crf"_a = 23, "compare"_a = false, "latents"_a = false,
      "model_label"_a = "", "inputs"_a = std::vector<std::string>{});
}

}  // namespace vvae_python
