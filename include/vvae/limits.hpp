#pragma once
// vvae's resource limits, in one place: every shape, frame count, interval, size and config value
// a user gives is checked against these before any allocation or long loop, with 64-bit overflow
// checked too, so that no input makes vvae hang or exhaust memory before it says no. The limits
// are far above anything a real clip or model needs (a 16384 x 16384 frame, 65536 frames, a
// 256 GiB clip) and low enough that the arithmetic on them cannot overflow.
//
// Errors name the limit exceeded: "the input [1, 3, 9999997, 99992, 99992] has 9999997 frames;
// vvae's limit is 65536".

#include <cstdint>
#include <string>
#include <vector>

namespace vvae::limits {

// (B, C, T, H, W) clips and latents.
inline constexpr int64_t kMaxBatch = 1024;
inline constexpr int64_t kMaxChannels = 16384;  // also every width in a model config
inline constexpr int64_t kMaxFrames = 65536;    // T; also --num-frames
inline constexpr int64_t kMaxSide = 16384;      // H, W in pixels or latents; also --size, videos
// Elements of a clip or latent a user gives: 2^36 float32 values are 256 GiB.
inline constexpr int64_t kMaxClipElements = int64_t{1} << 36;
// Elements of any tensor vvae allocates or plans (activations grow past their input): 4 TiB.
inline constexpr int64_t kMaxTensorElements = int64_t{1} << 40;

// Frame selection.
inline constexpr int64_t kMaxFrameInterval = 65536;  // --frame-interval, and with --fps-max
inline constexpr double kMinFpsMax = 1e-3;           // --fps-max

// Tiles of one tiled run (temporal tiles times spatial tiles): a 16384 x 16384 frame in 256 px
// tiles at overlap 0.25 is 7396; the run is planned tile by tile before it starts.
inline constexpr int64_t kMaxTiles = 65536;

// Model configs (model_args).
inline constexpr int64_t kMaxStages = 16;          // levels, blocks, stages of a coder
inline constexpr int64_t kMaxBlocksPerStage = 64;  // num_res_blocks, layers_per_block, depth
inline constexpr int64_t kMaxParameters = int64_t{1} << 33;  // 8.6 G parameters (32 GiB)

// Files vvae parses as a whole.
inline constexpr int64_t kMaxConfigBytes = int64_t{16} << 20;  // a model's config.json
inline constexpr int64_t kMaxJsonDepth = 64;                   // nesting of any JSON vvae reads

// a * b, or an Error naming `what` when the product overflows int64_t or either is negative.
int64_t checked_mul(int64_t a, int64_t b, const std::string& what);
// a + b, the same way.
int64_t checked_add(int64_t a, int64_t b, const std::string& what);
// The product of a shape's dimensions, failing when it exceeds `max_elements` (so it cannot
// overflow) or a dimension is negative.
int64_t checked_numel(const std::vector<int64_t>& shape, const std::string& what,
                      int64_t max_elements = kMaxTensorElements);

// Fails unless every dimension of a (B, C, T, H, W) clip or latent is within the limits above and
// its element count is too; `what` names it ("the input", "the latent", "the decoded clip").
void check_clip_limits(const std::vector<int64_t>& shape, const std::string& what);

// Fails when JSON text nests arrays and objects deeper than kMaxJsonDepth (a scan of the text
// before it is parsed: nothing recursive ever sees a deeper document); `what` names the text.
void check_json_depth(const char* begin, const char* end, const std::string& what);

// Fails unless lo <= value <= hi, naming `what` and the limit.
void check_range(int64_t value, int64_t lo, int64_t hi, const std::string& what);

}  // namespace vvae::limits
