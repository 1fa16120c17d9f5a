// Host-side launch entry points of the ir_cuda kernels.
//
// Plain structs of pointers, strides and sizes: ops.cpp (torch glue, built by
// the host compiler) fills them from tensors it has already checked, and the
// .cu files launch on the given stream. No torch type crosses this boundary.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace ir_cuda {

enum class DTypeId : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

// Row-wise RMS norm family (rms_norm, fused_add_rms_norm and their static
// fp8 variants). Rows are `rows` x `hidden`, each operand with its own row
// stride (elements); the last dimension is contiguous.
struct NormArgs {
  DTypeId dtype;
  int64_t rows;
  int hidden;
  int variance_size;  // elements entering the mean (== hidden by default)
  float epsilon;
  const void* x;
  int64_t x_stride;
  const void* residual;  // fused add: the residual input, else nullptr
  int64_t residual_stride;
  void* residual_out;  // fused add: receives x + residual (may alias residual)
  int64_t residual_out_stride;
  void* out;  // x.dtype, or fp8 bytes when `scale` is set (may alias x)
  int64_t out_stride;
  const void* weight;  // [hidden] of dtype, or nullptr
  const float* scale;  // fp8 output: one-element device scale, else nullptr
};
void launch_norm(const NormArgs& a, cudaStream_t stream);

// Gated activations: out[r, :d] = act(x[r, :d]) * x[r, d:2d].
enum class Activation : int { kSilu = 0, kGelu = 1, kGeluTanh = 2 };
struct ActArgs {
  DTypeId dtype;
  Activation act;
  int64_t rows;
  int d;
  const void* x;
  int64_t x_stride;
  void* out;
  int64_t out_stride;
};
void launch_act_and_mul(const ActArgs& a, cudaStream_t stream);

// Rotary embedding of query and (optionally) key, in place or out of place.
struct RotaryArgs {
  DTypeId dtype;        // query/key
  DTypeId cache_dtype;  // cos_sin_cache: dtype or float32
  bool positions_int64;
  bool is_neox;
  int64_t tokens;
  int head_size;
  int rotary_dim;
  const void* positions;
  void* query;
  int64_t query_stride;       // elements between tokens
  int64_t query_head_stride;  // elements between heads of a token
  int query_heads;
  void* key;  // or nullptr
  int64_t key_stride;
  int64_t key_head_stride;
  int key_heads;
  const void* cos_sin_cache;  // [max_position, rotary_dim], contiguous
  // Out of place (the functional op): results go here, with the features
  // past rotary_dim copied from query/key. nullptr (a zero-initialised
  // struct): in place on query/key.
  void* query_out;
  int64_t query_out_stride;
  int64_t query_out_head_stride;
  void* key_out;
  int64_t key_out_stride;
  int64_t key_out_head_stride;
};
void launch_rotary(const RotaryArgs& a, cudaStream_t stream);

// fp8 quantisation (float8_e4m3fn bytes out, contiguous rows: row r starts
// at out + r * hidden).
struct QuantArgs {
  DTypeId dtype;
  int64_t rows;
  int hidden;
  const void* x;
  int64_t x_stride;
  uint8_t* out;
  float* scales;          // dynamic: [rows]; group: [rows, hidden / group_size]
  const float* scale;     // static: the one-element scale
  const float* scale_ub;  // dynamic: optional upper bound on amax
  int group_size;         // group quant only
};
void launch_static_fp8_quant(const QuantArgs& a, cudaStream_t stream);
void launch_dynamic_per_token_fp8_quant(const QuantArgs& a, cudaStream_t stream);
void launch_per_token_group_fp8_quant(const QuantArgs& a, cudaStream_t stream);

// Group quant: lanes per group (a power of two <= 32) for this group size and
// element width, and the 16-byte chunks each lane keeps; 0 lanes = the group
// size is not supported (not a multiple of 16 bytes, or too large).
constexpr int kGroupQuantMaxChunksPerLane = 4;
int group_quant_lanes(int group_size, int elem_bytes, int* chunks_per_lane);

// Tuning knob for benchmarks: target 16-byte chunks per thread in the
// norm kernels (0 restores the automatic choice). The launch config depends
// on the hidden size, dtype and op variant only, never on the number of rows.
void set_norm_chunks_per_thread(int chunks);
int norm_chunks_per_thread();

}  // namespace ir_cuda

// ------------------------------------------------------------------ experiment knobs
//
// Integer launch knobs for benchmarks (scripts/gpu/cuda_exp.py): 0 is always
// the automatic choice. Each starts from the environment variable
// IR_CUDA_KNOB_<NAME> (upper case, read once, at the first launch), and can
// be changed in a running process through the C functions below (ctypes on
// the loaded library: no torch schema, no rebuild). Launchers read them when
// they pick a launch configuration, so a CUDA graph keeps the configuration
// it was captured with. No knob changes a result: the lean norm kernel sums
// in a canonical order that no launch shape changes (norm.cu), which is why
// its automatic shape may follow the row count; the former norm kernel and
// the looped one take a shape from the hidden size only; the quant launch
// rules that follow the row count only change how a max is taken (exact in
// any order); the norm weight timing and the fp8 division forms change no
// result bit (every form gives IEEE division's fp8 bytes).
//   fp8_div      1: IEEE division per element (__fdiv_rn); 2: reciprocal + 2
//                corrections; 3: reciprocal product with an exact near-step
//                check (the session-4 default); 4: one correction, two where
//                one is not proven exact for the scale (common.cuh); auto: 4,
//                except group quant: 2 (measured faster there)
//   norm_cpt     target 16-byte chunks per thread in the norms (1, 2, 4, 8); same
//                variable as set_norm_chunks_per_thread; auto: 2 a thread, up to 512
//                threads a row, below 2 rows per SM, else 2 (4 for the fp8 form without
//                residual and for rows over 512 chunks)
//   norm_rows    rows per block in the norms (1..32); auto: 1
//   ew_mode      1: the former one-block-per-row loop for act_and_mul / static quant
//   ew_cpt       chunks per thread in act_and_mul / static quant (1, 2, 4);
//                auto for the lean activation kernel: one (session 7; 2: two)
//   ew_threads   threads per block in act_and_mul / static quant (32..1024), and
//                the most threads per block of the lean rotary kernel; auto: the
//                lean activation kernel 128; lean static quant 256 with one piece
//                a thread, 128 with two; lean rotary 128 below one token per SM,
//                else 256; the former element-wise kernels 256 (static quant:
//                128, or 256 with 4 chunks a thread from 64K chunks per SM), or
//                32 for problems under 64 chunks per SM
//   dq_cpt       target chunks per thread of dynamic per-token quant (2, 4, 8);
//                auto: 2 for fewer rows than SMs, else 4 (4: the former rule)
//   gq_cpl       most chunks per lane in group quant (1, 2, 4; at most
//                kGroupQuantMaxChunksPerLane); auto: 1 up to 256 chunks per
//                SM, 2 up to 512, else 4 (4: the former rule)
//   norm_impl    1: the former norm kernel (norm_cached_kernel); auto/2: the lean one
//   norm_wlate   lean norm kernel: 1 or auto: weight loaded with the row; 2:
//                after the reduction
//   act_div      silu's division: 1 per-element IEEE (__fdiv_rn, as before);
//                2 branch-free fast path per chunk (IEEE redo of a chunk
//                outside its range); auto: 2 up to 1024 chunks per SM, else 1
//   rot_split    rotary vector path: 1 one block per token, no prefetch (the
//                former shape); 2 prefetch the first item before the cos/sin
//                barrier at every token count (and split a token over blocks
//                of 128 threads below one token per SM); auto: 2 below one
//                token per SM, else 1
//   gq_mode      group quant: 1: lean kernel, 16 elements a lane; 2: lean,
//                32 a lane; 3: the former kernel (which gq_cpl shapes); 4: the
//                few-groups kernel, 4 or 8 elements a lane; auto: 4 for few
//                elements (quant.cu), else 1
//   dq_mode      dynamic per-token quant: 1 or auto: lean kernel, 16 elements
//                a thread; 2: lean with the former 2/4-chunk split; 3: the
//                former kernel (which dq_cpt shapes)
//   act_mode     act_and_mul: 1 or auto: lean kernel; 2: the former kernel
//                (ew_config's shape, which the former static quant kernel keeps)
//                (quant.cu and activation.cu document the measurements)
//   sq_mode      static quant: 1 or auto: lean kernel where the rows are whole
//                aligned 8-byte pieces; 2: the former element-wise kernel
//   rot_mode     rotary: 1 or auto: lean kernel where it applies (aligned
//                heads and cache rows, no tail to copy); 2: the former kernels
//   silu_rcp     silu_and_mul on bf16 / fp16 (activation.cu): 1: the checked
//                hardware exponential and reciprocal on bf16, the checked
//                reciprocal of native's divisor on fp16; 3: the latter on both
//                (session 7); 2: the IEEE quotient (act_div); auto: 1 on bf16
//                from 512 chunks per SM, else 3
namespace ir_cuda {

enum class Knob : int {
  kFp8Div = 0,
  kNormCpt,
  kNormRows,
  kEwMode,
  kEwCpt,
  kEwThreads,
  kDqCpt,
  kGqCpl,
  kNormImpl,
  kNormWlate,
  kActDiv,
  kRotSplit,
  kGqMode,
  kDqMode,
  kActMode,
  kSqMode,
  kRotMode,
  kSiluRcp,
  kCount
};
int knob(Knob k);
// Streaming multiprocessors of the current device (cached per device).
int sm_count();

}  // namespace ir_cuda

// C entry points for the knobs (by lower-case name): set returns the previous
// value, or -2147483648 for an unknown name; get returns the value (same
// sentinel). Not thread safe against concurrent launches: for benchmarks.
extern "C" {
__attribute__((visibility("default"))) int ir_cuda_knob_set(const char* name, int value);
__attribute__((visibility("default"))) int ir_cuda_knob_get(const char* name);
}
