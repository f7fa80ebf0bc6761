// The public Model: resolves what --model names (directory, preset, checkpoint), builds the
// family's codec bound to the checkpoint, checks inputs against vvae's limits, and plans runs
// (a run with shape-only tensors in its own PlanContext).
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <sstream>

#include "core/cpu.hpp"
#include "core/memory_stats.hpp"
#include "core/plan.hpp"
#include "io/config.hpp"
#include "models/family.hpp"
#include "models/posterior.hpp"
#include "ops/conv.hpp"
#include "ops/depthwise.hpp"
#include "vvae/limits.hpp"
#include "vvae/memory.hpp"
#include "vvae/model.hpp"
#include "vvae/safetensors.hpp"

namespace vvae {

namespace fs = std::filesystem;

class ModelImpl {
 public:
  // The pages one clip's run freed are there for the next clip's (core/memory_stats.hpp); first,
  // so that they go last.
  KeepPagesBetweenRuns keep_pages;
  ModelInfo info;
  ComputeOptions compute;
  std::unique_ptr<Codec> model;
  const Family* family = nullptr;
  Json args;                   // the model_args it was built from (the load's overrides applied)
  int64_t baseline_bytes = 0;  // the process's resident memory once loaded
  // Whether a run (or its plan's dry run: no) has brought each direction's weights in: the
  // weights stay resident, packed for the kernels, for the model's life.
  mutable std::atomic<bool> encoded{false}, decoded{false};

  // The tilings `tiling` makes of the loaded config, as LoadOptions::tiling would; nullopt for
  // none given (or a family that does not tile): the config's own.
  std::optional<TilingPair> tilings(const std::optional<TilingOptions>& tiling) const {
    if (!tiling) return std::nullopt;
    Json a = args;
    apply_tiling_options(a, *tiling, *family);  // refuses sizes for a family that does not tile
    if (family->tiling == nullptr) return std::nullopt;
    return family->tiling(a);
  }

  // The weights a run of one direction reads (those both read, and the direction's own), those
  // of the other direction that are resident (once it has run), and whether this direction's
  // come in as its layers first run (its first run).
  struct PlannedWeights {
    int64_t read = 0, other_resident = 0;
    bool first_run = false;
  };
  PlannedWeights planned_weights(bool encoder) const {
    const int64_t own = own_weight_bytes(encoder), other = own_weight_bytes(!encoder);
    const int64_t shared = info.parameter_count * int64_t{sizeof(float)} - own - other;
    return {shared + own, ran(!encoder) ? other : 0, !ran(encoder)};
  }
  // Bytes of the weights only one direction reads, and whether it has run.
  int64_t own_weight_bytes(bool encoder) const {
    return (encoder ? info.encoder_parameter_count : info.decoder_parameter_count) *
           int64_t{sizeof(float)};
  }
  bool ran(bool encoder) const { return encoder ? encoded.load() : decoded.load(); }
};

namespace {

struct Source {
  ModelConfig config;
  std::string preset;   // name when the config is a preset's
  std::string weights;  // checkpoint path, empty without weights
};

bool is_safetensors_path(const std::string& path) {
  return fs::path(path).extension() == ".safetensors";
}

std::string known_presets() {
  std::string out;
  for (const auto& name : preset_names()) out += (out.empty() ? "" : ", ") + name;
  return out;
}

Source from_preset(const Preset& p, const std::string& weights) {
  Source s;
  s.config.family = p.family;
  s.config.args = p.args;
  s.config.source = "preset " + p.name;
  s.preset = p.name;
  s.weights = weights;
  return s;
}

const Preset& preset_or_fail(const std::string& name) {
  const Preset* p = find_preset(name);
  if (p == nullptr) fail("unknown preset '", name, "' (known: ", known_presets(), ")");
  return *p;
}

// How many of a preset's parameters a checkpoint lacks or holds with another shape.
size_t mismatches(const Preset& preset, const SafetensorsFile& file,
                  const std::vector<std::string>& names) {
  const Family& family = find_family(preset.family);
  const auto renames = family.checkpoint_renames ? family.checkpoint_renames(names)
                                                 : std::map<std::string, std::string>{};
  WeightStore store = WeightStore::shapes_only();
  family.build(preset.args, store);
  size_t bad = 0;
  for (const auto& p : store.requested()) {
    auto it = renames.find(p.name);
    const SafetensorsEntry* e = file.find(it == renames.end() ? p.name : it->second);
    if (e == nullptr || numel(e->shape) != numel(p.shape)) ++bad;
  }
  return bad;
}

// The preset whose every parameter the checkpoint holds with the right shape.
const Preset& recognise(const SafetensorsFile& file) {
  const std::vector<std::string> names = file.names();
  const Preset* best = nullptr;
  size_t best_bad = 0;
  for (const Preset& p : presets()) {
    const size_t bad = mismatches(p, file, names);
    if (bad == 0) return p;
    if (best == nullptr || bad < best_bad) best = &p, best_bad = bad;
  }
  std::ostringstream msg;
  msg << "cannot recognise checkpoint '" << file.path() << "' (" << names.size()
      << " tensors) as a known preset";
  if (best != nullptr)
    msg << "; closest is " << best->name << " with " << best_bad
        << " tensors missing or mis-shaped";
  msg << ". Pass --preset NAME (" << known_presets() << ") or --config FILE";
  throw Error(msg.str());
}

// A model directory's checkpoint: vvae's weights.safetensors, else a diffusers folder's
// diffusion_pytorch_model.safetensors (the first name when neither exists, for the message).
std::string directory_weights(const std::string& dir) {
  const fs::path ours = fs::path(dir) / "weights.safetensors";
  const fs::path diffusers = fs::path(dir) / "diffusion_pytorch_model.safetensors";
  return (!fs::exists(ours) && fs::exists(diffusers) ? diffusers : ours).string();
}

ModelConfig read_config(const std::string& path) {
  return model_config_from_json(read_config_json(path), path);
}

Source resolve(const LoadOptions& o) {
  if (!o.config.empty()) {
    Source s;
    s.config = read_config(o.config);
    s.weights = o.weights;
    if (s.weights.empty() && !o.model.empty())
      s.weights = fs::is_directory(o.model) ? directory_weights(o.model) : o.model;
    return s;
  }
  if (!o.model.empty() && fs::is_directory(o.model)) {
    const fs::path config = fs::path(o.model) / "config.json";
    if (!fs::exists(config)) fail("model directory '", o.model, "' has no config.json");
    Source s;
    s.config = read_config(config.string());
    s.weights = o.weights.empty() ? directory_weights(o.model) : o.weights;
    return s;
  }
  if (o.model.empty() || find_preset(o.model) != nullptr) {
    const std::string name = o.model.empty() ? o.preset : o.model;
    if (name.empty()) fail("no model given: pass --model DIR|PRESET|FILE.safetensors");
    if (o.weights.empty() && !o.without_weights)
      fail("preset '", name, "' needs its weights: pass --weights FILE.safetensors");
    return from_preset(preset_or_fail(name), o.weights);
  }
  if (fs::is_regular_file(o.model)) {
    if (!o.preset.empty()) return from_preset(preset_or_fail(o.preset), o.model);
    Source s = from_preset(recognise(SafetensorsFile::open(o.model)), o.model);
    return s;
  }
  if (is_safetensors_path(o.model)) fail("checkpoint '", o.model, "' does not exist");
  fail("--model '", o.model, "' is neither a model directory, a preset (", known_presets(),
       ") nor a .safetensors checkpoint");
}

// LoadOptions::model_args over the config's: each value is JSON text.
void apply_model_args(Json& args, const std::map<std::string, std::string>& overrides) {
  for (const auto& [key, text] : overrides) {
    Json value = Json::parse(text, nullptr, false);
    if (value.is_discarded())
      fail("model_args setting ", key, "=", text,
           " is not a JSON value (e.g. true, 256, \"name\")");
    args[key] = std::move(value);
  }
}

}  // namespace

Model Model::load(const LoadOptions& options) {
  check_compute_mode(options.compute);
  Source source = resolve(options);
  const Family& family = find_family(source.config.family);
  if (options.tiling.any()) apply_tiling_options(source.config.args, options.tiling, family);
  apply_model_args(source.config.args, options.model_args);

  auto impl = std::make_unique<ModelImpl>();
  impl->compute = options.compute;
  ModelInfo& info = impl->info;
  info.family = family.name;
  info.preset = source.preset;
  info.config_json = source.config.args.dump();

  const bool with_weights = !options.without_weights;
  if (with_weights && source.weights.empty())
    fail("no weights given for ", source.config.source, ": pass --weights FILE.safetensors");
  {
    // The checkpoint stays mapped only while tensors borrow it (float32 ones): a checkpoint
    // converted on load (F16, BF16) is unmapped here, before the baseline is measured.
    std::shared_ptr<const SafetensorsFile> file;
    if (with_weights)
      file = std::make_shared<SafetensorsFile>(SafetensorsFile::open(source.weights));
    WeightStore store =
        !file ? WeightStore::shapes_only()
        : family.checkpoint_renames
            ? WeightStore::from_checkpoint(file, family.checkpoint_renames(file->names()))
            : WeightStore::from_checkpoint(file);
    impl->model = family.build(source.config.args, store);
    impl->family = &family;
    impl->args = source.config.args;
    impl->model->describe(info);
    info.warnings = store.finish(options.strict || family.strict_loading,
                                 source.preset.empty() ? family.name : source.preset);
    info.parameters = store.requested();
  }
  for (const auto& p : info.parameters) {
    const int64_t n = numel(p.shape);
    info.parameter_count += n;
    if (p.name.rfind("encoder.", 0) == 0 || p.name.rfind("quant_conv.", 0) == 0)
      info.encoder_parameter_count += n;
    else if (p.name.rfind("decoder.", 0) == 0 || p.name.rfind("post_quant_conv.", 0) == 0)
      info.decoder_parameter_count += n;
  }
  return_kept_pages();  // what loading freed is not the model's
  impl->baseline_bytes = resident_bytes();
  return Model(std::move(impl));
}

Model::Model(std::unique_ptr<ModelImpl> impl) : impl_(std::move(impl)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

const ModelInfo& Model::info() const {
  return impl_->info;
}

namespace {

// Refuses, before any work, a shape beyond vvae's limits (so that no shape makes planning or a
// run hang or exhaust memory before saying no), then one the model does not take; returns the
// output shape.
Shape checked_output(const Codec& m, const Shape& input, bool encode,
                     const TilingSpec* tiling = nullptr) {
  limits::check_clip_limits(input, encode ? "the input" : "the latent");
  const Shape output = encode ? m.encoded_shape(input, tiling) : m.decoded_shape(input, tiling);
  limits::check_clip_limits(output, encode ? "the latent of the input" : "the decoded clip");
  return output;
}

// NaN or infinity in an input spreads through every convolution into a clip of garbage.
void check_finite(const Tensor& t, const char* what) {
  const int64_t bad = count_non_finite(t);
  if (bad > 0)
    fail(what, " ", to_string(t.shape()), " holds ", bad, " NaN or infinite value",
         bad == 1 ? "" : "s", " (of ", t.numel(), "); vvae codes finite values only");
}

Shape with_frames(Shape s, int64_t frames) {
  s.at(2) = frames;
  return s;
}

// The first `frames` frames of a finished part, on to `write` (copied when the part holds more:
// a temporal tile's tail that only blends into the next tile).
FrameSink finished_frames(const FrameWriter& write) {
  return [&write](const Tensor& part, int64_t frames) {
    if (frames <= 0) return;
    if (frames == part.dim(2)) return write(part);
    Tensor head = Tensor::empty(with_frames(part.shape(), frames));
    paste_frames(part, frames, head, 0);
    write(head);
  };
}

// A streamed run's frames in a plan: the window a reader keeps (up to a tile's frames) beside
// the tile it hands on, as shape-only tensors the plan counts.
FrameReader planned_reader(const Shape& input, std::optional<Tensor>& window) {
  return [&input, &window](int64_t begin, int64_t end) {
    window.reset();
    window = Tensor::empty(with_frames(input, end - begin));
    return Tensor::empty(with_frames(input, end - begin));
  };
}

}  // namespace

Shape Model::encoded_shape(const Shape& input) const {
  return checked_output(*impl_->model, input, true);
}

Shape Model::decoded_shape(const Shape& latent) const {
  return checked_output(*impl_->model, latent, false);
}

EncodeResult Model::encode(const Tensor& x, const EncodeOptions& options) const {
  const std::optional<TilingPair> tilings = impl_->tilings(options.tiling);
  const TilingSpec* tiling = tilings ? &tilings->encode : nullptr;
  checked_output(*impl_->model, x.shape(), true, tiling);
  check_finite(x, "the input");
  const ComputeScope mode(impl_->compute);
  const LargeBlockReuse reuse;
  impl_->encoded = true;
  return impl_->model->encode(x, options, tiling);
}

Tensor Model::decode(const Tensor& z, const DecodeOptions& options) const {
  const std::optional<TilingPair> tilings = impl_->tilings(options.tiling);
  const TilingSpec* tiling = tilings ? &tilings->decode : nullptr;
  checked_output(*impl_->model, z.shape(), false, tiling);
  check_finite(z, "the latent");
  const ComputeScope mode(impl_->compute);
  const LargeBlockReuse reuse;
  impl_->decoded = true;
  return impl_->model->decode(z, options, tiling);
}

EncodeResult Model::encode_streamed(const Shape& input, const FrameReader& read,
                                    const EncodeOptions& options) const {
  if (!read) fail("encode_streamed needs a frame reader");
  const std::optional<TilingPair> tilings = impl_->tilings(options.tiling);
  const TilingSpec* tiling = tilings ? &tilings->encode : nullptr;
  checked_output(*impl_->model, input, true, tiling);
  const ComputeScope mode(impl_->compute);
  const LargeBlockReuse reuse;
  impl_->encoded = true;
  return impl_->model->encode_streamed(
      input,
      [&](int64_t begin, int64_t end) {
        Tensor part = read(begin, end);
        if (!part.has_data())
          fail("the frame reader gave no data for frames [", begin, ", ", end, ")");
        if (part.shape() != with_frames(input, end - begin))
          fail("the frame reader gave ", to_string(part.shape()), " for frames [", begin, ", ", end,
               ") of ", to_string(input), ", not ", to_string(with_frames(input, end - begin)));
        check_finite(part, "the input");
        return part;
      },
      options, tiling);
}

void Model::decode_streamed(const Tensor& z, const FrameWriter& write,
                            const DecodeOptions& options) const {
  if (!write) fail("decode_streamed needs a frame writer");
  const std::optional<TilingPair> tilings = impl_->tilings(options.tiling);
  const TilingSpec* tiling = tilings ? &tilings->decode : nullptr;
  checked_output(*impl_->model, z.shape(), false, tiling);
  check_finite(z, "the latent");
  const ComputeScope mode(impl_->compute);
  const LargeBlockReuse reuse;
  impl_->decoded = true;
  impl_->model->decode_streamed(z, finished_frames(write), options, tiling);
}

Tensor sample_posterior(const Tensor& mean, const Tensor& logvar, uint64_t seed) {
  if (!mean.has_data() || !logvar.has_data() || mean.rank() != 5 || mean.shape() != logvar.shape())
    fail("sample_posterior needs a mean and a logvar of the same (B, C, T, H, W) shape, got ",
         to_string(mean.shape()), " and ", to_string(logvar.shape()));
  limits::check_clip_limits(mean.shape(), "the posterior");
  // DiagonalGaussian keeps its own copies; the moments are [mean | logvar] per sample.
  const int64_t batch = mean.dim(0), block = mean.numel() / batch;
  Shape moments_shape = mean.shape();
  moments_shape[1] *= 2;
  Tensor moments = Tensor::empty(moments_shape);
  for (int64_t b = 0; b < batch; ++b) {
    std::copy_n(mean.data() + b * block, block, moments.data() + 2 * b * block);
    std::copy_n(logvar.data() + b * block, block, moments.data() + (2 * b + 1) * block);
  }
  return DiagonalGaussian::from_moments(moments).sample(seed);
}

namespace {

template <typename Run>
RunPlan plan_run(const ModelImpl::PlannedWeights& weights, const ComputeOptions& compute,
                 const Shape& input, Shape output, std::vector<std::string> notes, Run run) {
  RunPlan plan;
  plan.input = input;
  plan.output = std::move(output);
  plan.notes = std::move(notes);
  PlanContext context;
  if (weights.first_run) context.count_weights_as_used();
  {
    const PlanScope scope(context);
    const ComputeScope mode(compute);
    run(input);
  }
  plan.peak_activation_bytes = context.peak_bytes();
  plan.largest_activation_bytes = context.largest_tensor_bytes();
  plan.scratch_bytes = context.scratchpad_bytes();
  plan.conv_flops = context.conv_flops();
  plan.executed_conv_flops = context.executed_conv_flops();
  plan.weight_bytes = weights.read + weights.other_resident;
  // Convolution weights live once, packed in the kernels' layouts (the checkpoint's pages are
  // returned after packing); the other parameters are read in place. Only the weights a run
  // reads come into memory: the direction's, and the other's once that has run. In a first run
  // the convolutions' weights come in layer by layer (an encoder's early, wide activations
  // peak before its deep layers' weights are read); the rest are counted from the start.
  if (weights.first_run) {
    const int64_t rest = std::max<int64_t>(0, weights.read - context.weights_used_bytes());
    plan.estimated_peak_bytes =
        context.peak_with_weights_bytes() + rest + weights.other_resident + plan.scratch_bytes;
  } else {
    plan.estimated_peak_bytes = plan.weight_bytes + plan.peak_activation_bytes + plan.scratch_bytes;
  }
  return plan;
}

}  // namespace

RunPlan Model::plan_encode(const Shape& input, const std::optional<TilingOptions>& t,
                           ClipIo io) const {
  const Codec& m = *impl_->model;
  const std::optional<TilingPair> tilings = impl_->tilings(t);
  const TilingSpec* tiling = tilings ? &tilings->encode : nullptr;
  Shape output = checked_output(m, input, true, tiling);  // before the notes: it checks limits
  RunPlan plan = plan_run(impl_->planned_weights(true), impl_->compute, input, std::move(output),
                          m.encode_notes(input, tiling), [&](const Shape& x) {
                            if (io == ClipIo::kWhole) {
                              m.encode(Tensor::empty(x), {}, tiling);
                              return;
                            }
                            std::optional<Tensor> window;
                            m.encode_streamed(x, planned_reader(x, window), {}, tiling);
                          });
  plan.tiles = m.encode_tiles(input, tiling);
  return plan;
}

RunPlan Model::plan_decode(const Shape& input, const std::optional<TilingOptions>& t,
                           ClipIo io) const {
  const Codec& m = *impl_->model;
  const std::optional<TilingPair> tilings = impl_->tilings(t);
  const TilingSpec* tiling = tilings ? &tilings->decode : nullptr;
  Shape output = checked_output(m, input, false, tiling);
  RunPlan plan =
      plan_run(impl_->planned_weights(false), impl_->compute, input, std::move(output),
               m.decode_notes(input, tiling), [&](const Shape& z) {
                 if (io == ClipIo::kWhole) {
                   m.decode(Tensor::empty(z), {}, tiling);
                   return;
                 }
                 // The writer's part lives until the next one is finished.
                 std::optional<Tensor> handed_on;
                 const FrameWriter keep_last = [&](const Tensor& part) {
                   handed_on.reset();
                   handed_on = part;
                 };
                 m.decode_streamed(Tensor::empty(z), finished_frames(keep_last), {}, tiling);
               });
  plan.tiles = m.decode_tiles(input, tiling);
  return plan;
}

int64_t Model::baseline_bytes() const {
  return impl_->baseline_bytes;
}

int64_t Model::weights_not_yet_resident(bool encoder) const {
  return impl_->ran(encoder) ? 0 : impl_->own_weight_bytes(encoder);
}

namespace {

// "spatial tiles of 128 px, temporal tiles of 16 frames"; nullopt: the config's own.
std::string describe_tiling_options(const std::optional<TilingOptions>& t) {
  if (!t) return "the configured tiling";
  std::string spatial = t->tile_size ? cat("spatial tiles of ", *t->tile_size, " px")
                                     : std::string("no spatial tiles");
  std::string temporal = t->tile_frames ? cat("temporal tiles of ", *t->tile_frames, " frames")
                                        : std::string("no temporal tiles");
  if (!t->tile_size && !t->tile_frames) return "untiled";
  return spatial + ", " + temporal;
}

// What a cap may choose from: spatial tiles (pixels) of eighths of the clip's side and of the
// config's tile size and its halvings, times temporal tiles of eighths of the clip's frames and
// of the config's tile length and its halvings, each with "none"; multiples of the model's
// ratios. A family without temporal tiles (the 2D AE, which codes frame by frame: the smallest
// frame batch already) has spatial candidates only. Those that do not line up for the shape
// are skipped by the caller.
std::vector<TilingOptions> tiling_candidates(const TilingSpec& configured, const ModelInfo& info,
                                             int64_t side, int64_t frames, bool temporal_tiles) {
  const auto ladder = [](int64_t extent, int64_t config_size, int64_t ratio) {
    std::vector<int64_t> sizes;
    const auto add = [&](int64_t v) {
      v = v / ratio * ratio;
      if (v >= 2 * ratio && v < extent && std::find(sizes.begin(), sizes.end(), v) == sizes.end())
        sizes.push_back(v);
    };
    for (int64_t k = 1; k < 8; ++k) add(extent * k / 8);
    if (config_size > 0)
      for (const int64_t v : {2 * config_size, config_size, config_size * 3 / 4, config_size / 2,
                              config_size * 3 / 8, config_size / 4, config_size / 8})
        add(v);
    return sizes;
  };
  std::vector<std::optional<int64_t>> sizes = {std::nullopt}, lengths = {std::nullopt};
  for (const int64_t v : ladder(side, configured.tile, info.spatial_ratio)) sizes.push_back(v);
  if (temporal_tiles)
    for (const int64_t v : ladder(frames, configured.tile_frames, info.time_ratio))
      lengths.push_back(v);
  std::vector<TilingOptions> out;
  for (const auto& size : sizes)
    for (const auto& length : lengths) {
      TilingOptions t;
      t.tile_size = size;
      t.no_spatial = !size;
      t.tile_frames = length;
      t.no_temporal = !length;
      out.push_back(t);
    }
  return out;
}

struct Candidate {
  std::optional<TilingOptions> tiling;
  int64_t tiles = 1;
  bool planned = false;  // plan and need are set (candidates are planned only as needed)
  RunPlan plan;
  int64_t need = 0;  // resident bytes: the plan's peak, the process at load, the runtime's share
};

// The family's tilings a cap may choose from for this shape, fewest tiles first (unplanned).
template <typename TilesWith>
std::vector<Candidate> tiled_candidates(const ModelImpl& impl, int64_t side, int64_t frames,
                                        TilesWith tiles_with) {
  std::vector<Candidate> candidates;
  const Family& family = *impl.family;
  if (family.tiling == nullptr) return candidates;
  for (const TilingOptions& t :
       tiling_candidates(impl.model->spec().encode_tiling, impl.info, side, frames,
                         !family.tiling_keys->tile_frames.empty())) {
    try {
      Candidate c;
      c.tiling = t;
      c.tiles = tiles_with(t);
      candidates.push_back(std::move(c));
    } catch (const Error&) {
      // this tiling does not line up for this shape
    }
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) { return a.tiles < b.tiles; });
  return candidates;
}

// What the process holds now beyond its resident memory once loaded and the weights a plan counts
// as already in: what earlier runs left (LIBXSMM's registry, locked at the first product; library
// code pages; allocator pools: 18 MiB after a small HunyuanVideo clip). A 17-frame clip coded after
// another peaked 16 MiB above its first run, over a cap its estimate fitted (AVX2, 2 threads).
// Counted beside the first-run allowance, which covers part of the same: a later estimate errs
// high. Before any run it is none: the allowance covers what is open then (a clip's reader), as
// it did when measured.
int64_t held_beyond_plans(const ModelImpl& impl, bool encoder) {
  if (!impl.ran(true) && !impl.ran(false)) return 0;
  const ModelImpl::PlannedWeights w = impl.planned_weights(encoder);
  const int64_t weights_in = w.other_resident + (w.first_run ? 0 : w.read);
  return std::max<int64_t>(0, resident_bytes() - impl.baseline_bytes - weights_in);
}

// The plan for `input` that fits `cap`: the config's, else the fitting candidate with the fewest
// tiles (the least peak among equals). Tile counts are cheap, plans are dry runs: candidates are
// planned in order of their tile count until one fits.
template <typename PlanWith, typename TilesWith>
FittedPlan fit_plan(const ModelImpl& impl, bool encoder, const Shape& input, int64_t cap,
                    const char* what, int64_t side, int64_t frames, PlanWith plan_with,
                    TilesWith tiles_with) {
  if (cap <= 0) fail("--max-memory must be positive, got ", cap, " bytes");
  keep_pages_for_memory_caps();  // the run's peak is then the one its plan counts
  return_kept_pages();
  const int64_t held = held_beyond_plans(impl, encoder);
  const auto plan = [&](Candidate& c) {
    c.plan = plan_with(c.tiling);
    c.need = c.plan.estimated_peak_bytes + impl.baseline_bytes + held + runtime_allowance_bytes();
    c.planned = true;
  };
  Candidate own;
  plan(own);  // an invalid input fails here, as a run would
  own.tiles = own.plan.tiles;
  const std::string head = cat("--max-memory ", format_memory(cap), ": ");
  const auto tiles_text = [](int64_t n) { return cat(n, n == 1 ? " tile" : " tiles"); };
  if (own.need <= cap)
    return {own.plan, std::nullopt,
            cat(head, "the configured plan fits (~", format_memory(own.need), ", ",
                tiles_text(own.tiles), ")")};
  const Family& family = *impl.family;
  std::vector<Candidate> candidates = tiled_candidates(impl, side, frames, tiles_with);
  // The smallest tiles need the least: when even they do not fit, nothing does (and the other
  // candidates need no plan).
  Candidate least = own;
  for (auto c = candidates.rbegin(); c != candidates.rend() && c->tiles == candidates.back().tiles;
       ++c) {
    plan(*c);
    if (c->need < least.need) least = *c;
  }
  if (least.need > cap)
    fail(what, " ", to_string(input), " needs ~", format_memory(least.need),
         " of memory at the least (", describe_tiling_options(least.tiling), ", ",
         tiles_text(least.tiles),
         family.tiling == nullptr ? cat("; the ", family.name, " family has no tiles")
                                  : std::string(),
         "), above --max-memory ", format_memory(cap), ": raise the cap to at least ",
         format_memory(least.need), ", or code a smaller clip");
  std::optional<Candidate> best;
  for (Candidate& c : candidates) {
    if (best && c.tiles > best->tiles) break;
    if (!c.planned) plan(c);
    if (c.need <= cap && (!best || c.need < best->need)) best = c;
  }
  if (!best) best = least;  // (cannot happen: least fits)
  return {best->plan, best->tiling,
          cat(head, "the configured plan needs ~", format_memory(own.need), "; running with ",
              describe_tiling_options(best->tiling), " (", tiles_text(best->tiles), ", ~",
              format_memory(best->need), ")",
              family.upstream_tiles ? std::string()
                                    : cat("; vvae's own tiles (upstream's ", family.name,
                                          " does not tile: its numbers are the untiled ones)"))};
}

}  // namespace

FittedPlan Model::fit_encode(const Shape& input, int64_t max_memory, ClipIo io) const {
  const Codec& m = *impl_->model;
  encoded_shape(input);  // a shape it does not take is refused before its sides are read
  return fit_plan(
      *impl_, true, input, max_memory, "encoding", std::max(input.at(3), input.at(4)), input.at(2),
      [&](const std::optional<TilingOptions>& t) { return plan_encode(input, t, io); },
      [&](const TilingOptions& t) { return m.encode_tiles(input, &impl_->tilings(t)->encode); });
}

FittedPlan Model::fit_decode(const Shape& input, int64_t max_memory, ClipIo io) const {
  // Tiles are chosen in pixels and frames (as --tile-size, --tile-frames), of the decoded clip.
  const Codec& m = *impl_->model;
  const Shape out = decoded_shape(input);
  return fit_plan(
      *impl_, false, input, max_memory, "decoding", std::max(out[3], out[4]), out[2],
      [&](const std::optional<TilingOptions>& t) { return plan_decode(input, t, io); },
      [&](const TilingOptions& t) { return m.decode_tiles(input, &impl_->tilings(t)->decode); });
}

std::string version() {
  return VVAE_VERSION;
}

std::vector<std::string> kernel_report(const ComputeOptions& compute) {
  std::vector<std::string> lines = cpu_report();
  for (auto& line : conv_kernel_report(compute)) lines.push_back(std::move(line));
  lines.push_back("depthwise 3-D convolutions (DC-AE): " + depthwise_kernel_name());
  lines.push_back(std::string("norms, activations, attention: vvae loops at ") +
                  isa_name(cpu_isa()));
  return lines;
}

}  // namespace vvae
