// RMS norm family: rms_norm, fused_add_rms_norm and their static fp8 variants.
//
// One row per blockDim.x threads (blockDim.y rows per block, 1 by default).
// A thread owns 16-byte chunks tid, tid + blockDim.x, ...;
// the row stays in registers between the reduction and the output (one read,
// one write of each element).
//
// Batch invariance. The default (lean) kernel sums a row's squares in one
// canonical order that no launch shape can change: each chunk's squares in
// element order (one FMA chain), then a pairwise tree over the chunk index c,
// padded with zeros to a power of two, that joins the partials differing in
// bit 4, 3, 2, 1, 0 of c, then in the highest bit, the next highest, down to
// bit 5. With a power-of-two thread count T >= 32 and chunks c = i T + t,
// the low five bits of c are the lane, the bits from log2(T) up are i and the
// bits between are the warp, so a butterfly over the lanes of each chunk's
// partial (offsets 16..1), then a tree over i (highest first), then one over
// the warps (highest first) is that order for every T and chunks per thread:
// the launch may follow the row count (wide rows at few tokens) and a row's
// bits stay the same (padding adds exact zeros). Whether a row is loaded
// with vector or element-wise instructions does not matter either
// (misaligned rows take the element-wise path over the same chunks). The
// former kernel (norm_impl 1) and the looped one keep their own order and
// a launch from the hidden size only.
#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "common.cuh"

namespace ir_cuda {
namespace {

constexpr int kMaxThreads = 1024;
// Eight chunks per thread need more than the 64 registers a 1024-thread block
// leaves (they spill): those blocks are capped at 512 threads.
constexpr int max_threads_for(int cpt) { return cpt >= 8 ? 512 : kMaxThreads; }

// ------------------------------------------------------------------ knobs

// Knob values (0 = automatic), first read from IR_CUDA_KNOB_<NAME>. Plain
// ints: set from Python between launches by benchmarks only.
constexpr const char* kKnobNames[] = {"fp8_div",    "norm_cpt", "norm_rows",  "ew_mode",
                                      "ew_cpt",     "ew_threads", "dq_cpt",   "gq_cpl",
                                      "norm_impl",  "norm_wlate", "act_div",  "rot_split",
                                      "gq_mode",    "dq_mode",  "act_mode",
                                      "sq_mode",    "rot_mode", "silu_rcp"};
static_assert(sizeof(kKnobNames) / sizeof(kKnobNames[0]) == static_cast<int>(Knob::kCount),
              "one name per knob");
int g_knobs[static_cast<int>(Knob::kCount)] = {};

int* knob_table() {
  static const bool initialised = [] {
    for (int i = 0; i < static_cast<int>(Knob::kCount); ++i) {
      char var[64] = "IR_CUDA_KNOB_";
      const size_t len = std::strlen(var);
      for (size_t j = 0; kKnobNames[i][j] != '\0' && len + j + 1 < sizeof(var); ++j) {
        const char ch = kKnobNames[i][j];
        var[len + j] = (ch >= 'a' && ch <= 'z') ? static_cast<char>(ch - 'a' + 'A') : ch;
        var[len + j + 1] = '\0';
      }
      if (const char* v = std::getenv(var)) g_knobs[i] = std::atoi(v);
    }
    return true;
  }();
  (void)initialised;
  return g_knobs;
}

int knob_index(const char* name) {
  if (name == nullptr) return -1;
  for (int i = 0; i < static_cast<int>(Knob::kCount); ++i)
    if (std::strcmp(name, kKnobNames[i]) == 0) return i;
  return -1;
}

// ------------------------------------------------------------------ kernels

template <typename T, bool ADD, bool FP8>
struct RowPtrs {
  const T* x;
  const T* r;
  T* r_out;
  T* out;
  uint8_t* out8;
  const T* w;
  bool vec;

  __device__ __forceinline__ RowPtrs(const NormArgs& a, int64_t row) {
    constexpr int N = Vec<T>::N;
    x = static_cast<const T*>(a.x) + row * a.x_stride;
    w = static_cast<const T*>(a.weight);
    r = ADD ? static_cast<const T*>(a.residual) + row * a.residual_stride : nullptr;
    r_out = ADD ? static_cast<T*>(a.residual_out) + row * a.residual_out_stride : nullptr;
    out = FP8 ? nullptr : static_cast<T*>(a.out) + row * a.out_stride;
    out8 = FP8 ? static_cast<uint8_t*>(a.out) + row * a.out_stride : nullptr;
    vec = aligned16(x) && (w == nullptr || aligned16(w));
    if (ADD) vec = vec && aligned16(r) && aligned16(r_out);
    vec = vec && (FP8 ? aligned_to(out8, N) : aligned16(out));
  }
};

// Squares of the chunk's elements that fall below `var_size`.
template <typename T>
__device__ __forceinline__ float chunk_sum_squares(const Vec<T>& v, int c, int var_size) {
  constexpr int N = Vec<T>::N;
  const int limit = var_size - c * N;
  float acc = 0.0f;
#pragma unroll
  for (int j = 0; j < N; ++j) {
    const float f = v.get(j);
    acc += j < limit ? f * f : 0.0f;
  }
  return acc;
}

// x + residual in float32, rounded to T (the new residual stream).
template <typename T>
__device__ __forceinline__ Vec<T> add_round(const Vec<T>& x, const Vec<T>& r) {
  constexpr int N = Vec<T>::N;
  float f[N];
#pragma unroll
  for (int j = 0; j < N; ++j) f[j] = x.get(j) + r.get(j);
  Vec<T> s;
  s.set(f);
  return s;
}

// Normalise one chunk and store it (T, or fp8 of the T-rounded value, as the
// native chain rms_norm -> static quant does).
template <typename T, bool FP8, bool FAST>
__device__ __forceinline__ void write_chunk(T* out, uint8_t* out8, int c, int hidden, bool vec,
                                            const Vec<T>& v, const Vec<T>& w, bool has_w,
                                            float inv, const ScaleDiv& d) {
  constexpr int N = Vec<T>::N;
  float y[N];
#pragma unroll
  for (int j = 0; j < N; ++j) {
    y[j] = v.get(j) * inv;
    if (has_w) y[j] *= w.get(j);
  }
  if constexpr (FP8) {
#pragma unroll
    for (int j = 0; j < N; ++j) y[j] = div_scale<FAST>(round_to<T>(y[j]), d);
    Fp8Vec<N> q;
    q.set(y);
    store_fp8_chunk<N>(out8, c, hidden, vec, q);
  } else {
    Vec<T> o;
    o.set(y);
    store_chunk(out, c, hidden, vec, o);
  }
}

// CPT > 0: up to CPT chunks per thread held in registers. blockDim.x threads
// (a multiple of the warp size) per row, blockDim.y rows per block; a row's
// reduction order depends on blockDim.x and CPT only.
template <typename T, bool ADD, bool FP8, int CPT>
__global__ void __launch_bounds__(max_threads_for(CPT))
    norm_cached_kernel(NormArgs a, bool allow_fast_div) {
  __shared__ float smem[kMaxThreads / IR_WARP_SIZE];
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  const bool valid = row < a.rows;  // a partial last block still joins the barrier
  const int hidden = a.hidden;
  const int nchunks = static_cast<int>(ceil_div(hidden, Vec<T>::N));
  const int wpr = static_cast<int>(blockDim.x) / IR_WARP_SIZE;
  const RowPtrs<T, ADD, FP8> p(a, valid ? row : 0);
  const float scale = FP8 ? *a.scale : 1.0f;
  // The weight is shared by all rows (L2 resident). Its loads go out with the
  // row's (one memory round trip less before the reduction: what a one-token
  // call waits for), except where that would hold three operands at once.
  constexpr bool kEarlyWeight = !ADD || CPT <= 2;

  // All loads first: several 16-byte loads in flight per thread.
  Vec<T> xs[CPT];
  Vec<T> rs[ADD ? CPT : 1];
  Vec<T> ws[CPT];
#pragma unroll
  for (int i = 0; i < CPT; ++i) {
    const int c = threadIdx.x + i * blockDim.x;
    if (valid && c < nchunks) {
      xs[i] = load_chunk(p.x, c, hidden, p.vec);
      if constexpr (ADD) rs[i] = load_chunk(p.r, c, hidden, p.vec);
    }
  }
  if (kEarlyWeight && p.w != nullptr) {
#pragma unroll
    for (int i = 0; i < CPT; ++i) {
      const int c = threadIdx.x + i * blockDim.x;
      if (valid && c < nchunks) ws[i] = load_chunk(p.w, c, hidden, p.vec);
    }
  }
  float acc = 0.0f;
#pragma unroll
  for (int i = 0; i < CPT; ++i) {
    const int c = threadIdx.x + i * blockDim.x;
    if (valid && c < nchunks) {
      if constexpr (ADD) {
        xs[i] = add_round(xs[i], rs[i]);
        store_chunk(p.r_out, c, hidden, p.vec, xs[i]);
      }
      acc += chunk_sum_squares(xs[i], c, a.variance_size);
    }
  }
  if (!kEarlyWeight && p.w != nullptr) {
#pragma unroll
    for (int i = 0; i < CPT; ++i) {
      const int c = threadIdx.x + i * blockDim.x;
      if (valid && c < nchunks) ws[i] = load_chunk(p.w, c, hidden, p.vec);
    }
  }
  const float total =
      row_allreduce(acc, SumOp{}, smem, static_cast<int>(threadIdx.y) * wpr, wpr);
  if (!valid) return;
  const float inv = rsqrtf(total / static_cast<float>(a.variance_size) + a.epsilon);
  const ScaleDiv d = make_scale_div(scale, FP8 && allow_fast_div);
  auto write_all = [&](auto fast) {
#pragma unroll
    for (int i = 0; i < CPT; ++i) {
      const int c = threadIdx.x + i * blockDim.x;
      if (c < nchunks)
        write_chunk<T, FP8, decltype(fast)::value>(p.out, p.out8, c, hidden, p.vec, xs[i], ws[i],
                                                   p.w != nullptr, inv, d);
    }
  };
  if (FP8 && d.fast) write_all(std::true_type{});
  else write_all(std::false_type{});
}

// ------------------------------------------------------------------ lean kernel (norm_impl 0/2)
//
// Same launch shape and row layout as norm_cached_kernel, fewer instructions
// per element (that kernel was issue bound at 16384x8192 with an fp8 output:
// ~30 instructions per element, 73% of DRAM peak):
//  * the sum of squares is one FMA per element (no per-element mask unless
//    the chunk straddles variance_size);
//  * the weight multiply is unconditional (ones without a weight: exact);
//  * the rounding to T goes through packed conversions (two per instruction);
//  * fp8: the division of divide_by_scale (kDivCheck: a multiplication and
//    three integer operations per element, exact).
// LATE_W loads the weight after the reduction: its registers are not live
// across the loads and the barrier (more blocks per SM), at the cost of one
// L2 round trip after the reduction. Numerically identical either way, so
// the launcher may choose it from the row count.

// FULL (chosen on the host): every chunk of every row exists, every row is
// 16-byte aligned and the mean covers the whole row, so the loads, stores
// and squares skip their per-chunk tests (integer work that made the fp8
// form issue-bound; ncu_gap_h100.md).
template <bool FULL, typename T>
__device__ __forceinline__ Vec<T> row_load(const T* row, int c, int n, bool vec) {
  if constexpr (FULL) return reinterpret_cast<const Vec<T>*>(row)[c];
  else return load_chunk(row, c, n, vec);
}
template <bool FULL, typename T>
__device__ __forceinline__ void row_store(T* row, int c, int n, bool vec, const Vec<T>& v) {
  if constexpr (FULL) reinterpret_cast<Vec<T>*>(row)[c] = v;
  else store_chunk(row, c, n, vec, v);
}

// acc += squares of the chunk's elements below var_size, one FMA each.
template <bool FULL = false, typename T>
__device__ __forceinline__ float chunk_sumsq_fma(const Vec<T>& v, int c, int var_size, float acc) {
  constexpr int N = Vec<T>::N;
  const int limit = FULL ? N : var_size - c * N;
  if (limit >= N) {
#pragma unroll
    for (int j = 0; j < N; ++j) acc = fmaf(v.get(j), v.get(j), acc);
  } else {
#pragma unroll
    for (int j = 0; j < N; ++j)
      if (j < limit) acc = fmaf(v.get(j), v.get(j), acc);
  }
  return acc;
}

// The weight chunk, or ones (1.0 in T) without a weight.
template <bool FULL = false, typename T>
__device__ __forceinline__ Vec<T> weight_chunk(const T* w, int c, int n, bool vec) {
  if (w != nullptr) return row_load<FULL>(w, c, n, vec);
  Vec<T> one;
  uint32_t bits = 0x3f803f80u;  // two bf16 ones
  if constexpr (sizeof(T) == 4) bits = 0x3f800000u;
  if constexpr (std::is_same<T, __half>::value) bits = 0x3c003c00u;
#pragma unroll
  for (int k = 0; k < 4; ++k) one.w[k] = bits;
  return one;
}

template <typename T, bool FP8, int KIND, bool FULL = false>
__device__ __forceinline__ void write_chunk_lean(T* out, uint8_t* out8, int c, int hidden, bool vec,
                                                 const Vec<T>& v, const Vec<T>& w, float inv,
                                                 const ScaleDiv& d) {
  constexpr int N = Vec<T>::N;
  float y[N];
#pragma unroll
  for (int j = 0; j < N; ++j) y[j] = __fmul_rn(__fmul_rn(v.get(j), inv), w.get(j));
  Vec<T> o;
  o.set(y);  // rounded to T: the output, or the dividend of the fp8 form
  if constexpr (FP8 && FULL) {
    reinterpret_cast<Fp8Vec<N>*>(out8)[c] = to_fp8_chunk<KIND>(o, d);
  } else if constexpr (FP8) {
    quantise_chunk<KIND>(out8, c, hidden, vec, o, d);
  } else {
    row_store<FULL>(out, c, hidden, vec, o);
  }
}

// The row's sum of squares in the canonical order (header comment): part[i]
// is the partial of chunk tid + i * blockDim.x (0 past the row); blockDim.x
// must be a power of two, at least a warp.
template <int CPT>
__device__ __forceinline__ float canonical_row_sum(float (&part)[CPT], float* smem, int base,
                                                   int wpr) {
#pragma unroll
  for (int i = 0; i < CPT; ++i) part[i] = warp_reduce(part[i], SumOp{});  // bits 4..0
#pragma unroll
  for (int h = CPT / 2; h >= 1; h /= 2) {  // the bits of i, highest first
#pragma unroll
    for (int i = 0; i < h; ++i) part[i] += part[i + h];
  }
  return combine_warps(part[0], SumOp{}, smem, base, wpr);  // the warp bits, highest first
}

template <typename T, bool ADD, bool FP8, int CPT, bool LATE_W, bool FULL>
__global__ void __launch_bounds__(max_threads_for(CPT))
    norm_lean_kernel(NormArgs a, int div_kind) {
  __shared__ float smem[kMaxThreads / IR_WARP_SIZE];
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  const bool valid = row < a.rows;  // a partial last block still joins the barrier
  const int hidden = a.hidden;
  const int nchunks = (hidden + Vec<T>::N - 1) / Vec<T>::N;
  const int tid = static_cast<int>(threadIdx.x);
  const int stride = static_cast<int>(blockDim.x);
  const int wpr = stride / IR_WARP_SIZE;
  const RowPtrs<T, ADD, FP8> p(a, valid ? row : 0);
  const float scale = FP8 ? *a.scale : 1.0f;

  Vec<T> xs[CPT];
  Vec<T> rs[ADD ? CPT : 1];
  Vec<T> ws[CPT];
#pragma unroll
  for (int i = 0; i < CPT; ++i) {
    const int c = tid + i * stride;
    if (valid && (FULL || c < nchunks)) {
      xs[i] = row_load<FULL>(p.x, c, hidden, p.vec);
      if constexpr (ADD) rs[i] = row_load<FULL>(p.r, c, hidden, p.vec);
    }
  }
  if constexpr (!LATE_W) {
#pragma unroll
    for (int i = 0; i < CPT; ++i) {
      const int c = tid + i * stride;
      if (valid && (FULL || c < nchunks)) ws[i] = weight_chunk<FULL>(p.w, c, hidden, p.vec);
    }
  }
  float part[CPT];
#pragma unroll
  for (int i = 0; i < CPT; ++i) {
    const int c = tid + i * stride;
    part[i] = 0.0f;
    if (valid && (FULL || c < nchunks)) {
      if constexpr (ADD) {
        xs[i] = add_round(xs[i], rs[i]);
        row_store<FULL>(p.r_out, c, hidden, p.vec, xs[i]);
      }
      part[i] = chunk_sumsq_fma<FULL>(xs[i], c, a.variance_size, 0.0f);
    }
  }
  const float total = canonical_row_sum(part, smem, static_cast<int>(threadIdx.y) * wpr, wpr);
  if (!valid) return;
  if constexpr (LATE_W) {
#pragma unroll
    for (int i = 0; i < CPT; ++i) {
      const int c = tid + i * stride;
      if (c < nchunks) ws[i] = weight_chunk<FULL>(p.w, c, hidden, p.vec);
    }
  }
  const float inv = rsqrtf(total / static_cast<float>(a.variance_size) + a.epsilon);
  const ScaleDiv d = make_scale_div(scale, FP8 && div_kind != kDivIeee);
  auto write_all = [&](auto kind) {
#pragma unroll
    for (int i = 0; i < CPT; ++i) {
      const int c = tid + i * stride;
      if (FULL || c < nchunks)
        write_chunk_lean<T, FP8, decltype(kind)::value, FULL>(p.out, p.out8, c, hidden, p.vec,
                                                              xs[i], ws[i], inv, d);
    }
  };
  if constexpr (FP8) with_div_kind(div_kind, d, write_all);
  else write_all(std::integral_constant<int, kDivIeee>{});
}

// Rows too long for registers: two passes, the second re-reads the row (from
// L2 in practice). With ADD the second pass reads the stored residual. One
// row per block.
template <typename T, bool ADD, bool FP8>
__global__ void __launch_bounds__(kMaxThreads) norm_looped_kernel(NormArgs a, bool allow_fast_div) {
  __shared__ float smem[kMaxThreads / IR_WARP_SIZE];
  const int64_t row = blockIdx.x;
  const int hidden = a.hidden;
  const int nchunks = static_cast<int>(ceil_div(hidden, Vec<T>::N));
  const RowPtrs<T, ADD, FP8> p(a, row);
  const float scale = FP8 ? *a.scale : 1.0f;

  float acc = 0.0f;
  for (int c = threadIdx.x; c < nchunks; c += blockDim.x) {
    Vec<T> v = load_chunk(p.x, c, hidden, p.vec);
    if constexpr (ADD) {
      v = add_round(v, load_chunk(p.r, c, hidden, p.vec));
      store_chunk(p.r_out, c, hidden, p.vec, v);
    }
    acc += chunk_sum_squares(v, c, a.variance_size);
  }
  const float total =
      row_allreduce(acc, SumOp{}, smem, 0, static_cast<int>(blockDim.x) / IR_WARP_SIZE);
  const float inv = rsqrtf(total / static_cast<float>(a.variance_size) + a.epsilon);
  const T* src = ADD ? p.r_out : p.x;
  const ScaleDiv d = make_scale_div(scale, FP8 && allow_fast_div);
  auto write_all = [&](auto fast) {
    for (int c = threadIdx.x; c < nchunks; c += blockDim.x) {
      const Vec<T> v = load_chunk(src, c, hidden, p.vec);
      Vec<T> w;
      if (p.w != nullptr) w = load_chunk(p.w, c, hidden, p.vec);
      write_chunk<T, FP8, decltype(fast)::value>(p.out, p.out8, c, hidden, p.vec, v, w,
                                                 p.w != nullptr, inv, d);
    }
  };
  if (FP8 && d.fast) write_all(std::true_type{});
  else write_all(std::false_type{});
}

struct NormConfig {
  int threads;  // per row
  int rows;     // per block
  int cpt;      // chunks per thread held in registers; 0 = looped kernel
};

int pow2_at_least(int n) {
  int p = 1;
  while (p < n) p <<= 1;
  return p;
}

// Threads per row: a power of two (the canonical order needs it) from a warp
// to `cap`, for about `target` chunks per thread over `span` (a power of two
// >= the row's chunks).
int pow2_threads(int span, int target, int cap) {
  const int t = span / pow2_at_least(std::max(target, 1));
  return std::min(std::max(t, IR_WARP_SIZE), cap);
}

// The register kernels' shape for `rows` rows. Many rows (>= 2 per SM): two
// 16-byte chunks per thread for rows of up to 512 chunks (4096 bf16), except
// the non-residual fp8 form, else four; measured on an H100 at 16384 tokens
// (scripts/gpu/cuda.sh knob sweep), e.g. the non-residual fp8 form at 8192:
// 168 us with 4 vs 202 with 2. Few rows: the row spread over up to 512
// threads, two chunks each (every chunk slot used: the FULL kernel), which
// the knob sweeps of session 5 found faster at 1-128 tokens
// (scripts/gpu/knob_sweep.py, CUDA graph, bf16, at a3165d6: fused_add_rms_norm
// 16 x 2048 1.81 us vs 2.05 with one chunk a thread and 2.00 with the
// many-rows shape; rms_norm_static_fp8_quant 128 x 4096 2.37 vs 2.59 and
// 2.47) and not at 1024 (rms_norm_static_fp8_quant 1024 x 8192 9.58 vs
// 8.19). Rows whose many-rows shape would need over 4 chunks per thread take
// the looped kernel at every row count; eight chunks per thread only through
// the norm_cpt knob. The row count changes the shape, never a row's result
// (canonical order, header comment); the former kernel (norm_impl 1) takes
// the many-rows shape at every row count (pass rows = -1).
NormConfig norm_config(int hidden, int elem_bytes, bool add, bool fp8, int64_t rows) {
  const int per_chunk = 16 / elem_bytes;
  const int nchunks = static_cast<int>(ceil_div(hidden, per_chunk));
  const int span = pow2_at_least(nchunks);
  const int many_target = (nchunks <= 512 && !(fp8 && !add)) ? 2 : 4;
  const int many_threads = pow2_threads(span, many_target, kMaxThreads);
  const int knob_target = knob(Knob::kNormCpt);
  int threads;
  if (knob_target > 0) {
    threads = pow2_threads(span, knob_target, knob_target >= 8 ? max_threads_for(8) : kMaxThreads);
  } else {
    if (span / many_threads > 4) return {kMaxThreads, 1, 0};
    const bool few_rows = rows >= 0 && rows < 2 * static_cast<int64_t>(sm_count());
    threads = few_rows ? std::max(std::min(span / 2, 512), many_threads) : many_threads;
  }
  const int cpt = std::max(span / threads, 2);
  if (cpt > 8 || threads > max_threads_for(cpt)) return {kMaxThreads, 1, 0};
  const int per_block =
      std::min(std::max(knob(Knob::kNormRows), 1), max_threads_for(cpt) / threads);
  return {threads, per_block, cpt};
}

bool aligned_rows(const void* base, int64_t stride_elems, int elem_bytes, int align) {
  return reinterpret_cast<uintptr_t>(base) % align == 0 && (stride_elems * elem_bytes) % align == 0;
}

// The FULL kernel's conditions (see row_load): the launch covers each row's
// chunks exactly, the mean covers the row, and every row of every operand
// starts on a 16-byte boundary (fp8 output rows: on the chunk's N bytes).
template <typename T, bool ADD, bool FP8>
bool full_rows(const NormArgs& a, const NormConfig& cfg, int cpt) {
  constexpr int N = Vec<T>::N;
  constexpr int E = static_cast<int>(sizeof(T));
  if (static_cast<int64_t>(cfg.threads) * cpt * N != a.hidden || a.variance_size != a.hidden)
    return false;
  bool ok = aligned_rows(a.x, a.x_stride, E, 16) &&
            (a.weight == nullptr || reinterpret_cast<uintptr_t>(a.weight) % 16 == 0);
  if (ADD) {
    ok = ok && aligned_rows(a.residual, a.residual_stride, E, 16) &&
         aligned_rows(a.residual_out, a.residual_out_stride, E, 16);
  }
  return ok && (FP8 ? aligned_rows(a.out, a.out_stride, 1, N) : aligned_rows(a.out, a.out_stride, E, 16));
}

template <typename T, bool ADD, bool FP8, int CPT>
void launch_lean(const NormArgs& a, const NormConfig& cfg, int div_kind, cudaStream_t stream) {
  const dim3 block(cfg.threads, cfg.rows);
  const dim3 grid(static_cast<unsigned>(ceil_div(a.rows, cfg.rows)));
  // Weight timing (no effect on the results): with the row's loads by
  // default. Loading it after the reduction (fewer live registers) was
  // expected to help when the rows fill the GPU, but the H100 sweep measured
  // the opposite at 16384 rows (scripts/gpu/cuda_exp.py, do_bench:
  // rms_norm_static_fp8_quant 16384 x 8192 148.6 us early vs 151.2 late,
  // 16384 x 2048 43.0 vs 45.0) and a tie at few rows; norm_wlate=2 keeps it.
  const bool late = knob(Knob::kNormWlate) == 2;
  if (late) norm_lean_kernel<T, ADD, FP8, CPT, true, false><<<grid, block, 0, stream>>>(a, div_kind);
  else if (full_rows<T, ADD, FP8>(a, cfg, CPT))
    norm_lean_kernel<T, ADD, FP8, CPT, false, true><<<grid, block, 0, stream>>>(a, div_kind);
  else norm_lean_kernel<T, ADD, FP8, CPT, false, false><<<grid, block, 0, stream>>>(a, div_kind);
}

template <typename T, bool ADD, bool FP8>
void launch_typed(const NormArgs& a, cudaStream_t stream) {
  const bool lean = knob(Knob::kNormImpl) != 1;
  const NormConfig cfg = norm_config(a.hidden, sizeof(T), ADD, FP8, lean ? a.rows : -1);
  const int div_kind = div_kind_from_knob();
  const bool fast = div_kind != kDivIeee;
  const dim3 block(cfg.threads, cfg.rows);
  const dim3 grid(static_cast<unsigned>(ceil_div(a.rows, cfg.rows)));
  if (lean && cfg.cpt != 0) {
    switch (cfg.cpt) {
      case 2:
        launch_lean<T, ADD, FP8, 2>(a, cfg, div_kind, stream);
        break;
      case 4:
        launch_lean<T, ADD, FP8, 4>(a, cfg, div_kind, stream);
        break;
      default:
        launch_lean<T, ADD, FP8, 8>(a, cfg, div_kind, stream);
        break;
    }
    return;
  }
  switch (cfg.cpt) {
    case 2:
      norm_cached_kernel<T, ADD, FP8, 2><<<grid, block, 0, stream>>>(a, fast);
      break;
    case 4:
      norm_cached_kernel<T, ADD, FP8, 4><<<grid, block, 0, stream>>>(a, fast);
      break;
    case 8:
      norm_cached_kernel<T, ADD, FP8, 8><<<grid, block, 0, stream>>>(a, fast);
      break;
    default:
      norm_looped_kernel<T, ADD, FP8><<<grid, block, 0, stream>>>(a, fast);
      break;
  }
}

}  // namespace

int knob(Knob k) { return knob_table()[static_cast<int>(k)]; }

int sm_count() {
  constexpr int kMaxDevices = 64;
  static int cached[kMaxDevices] = {};
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0) return 132;
  if (dev < kMaxDevices && cached[dev] > 0) return cached[dev];
  int n = 0;
  if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n <= 0) {
    (void)cudaGetLastError();  // a failed query must not leave an error for the next check
    n = 132;
  }
  if (dev < kMaxDevices) cached[dev] = n;
  return n;
}

void launch_norm(const NormArgs& a, cudaStream_t stream) {
  if (a.rows == 0 || a.hidden == 0) return;
  const bool add = a.residual != nullptr;
  const bool fp8 = a.scale != nullptr;
  IR_DISPATCH_DTYPE(a.dtype, T, {
    if (add && fp8) launch_typed<T, true, true>(a, stream);
    else if (add) launch_typed<T, true, false>(a, stream);
    else if (fp8) launch_typed<T, false, true>(a, stream);
    else launch_typed<T, false, false>(a, stream);
  });
}

void set_norm_chunks_per_thread(int chunks) {
  knob_table()[static_cast<int>(Knob::kNormCpt)] = chunks > 0 ? chunks : 0;
}

int norm_chunks_per_thread() { return knob(Knob::kNormCpt); }

}  // namespace ir_cuda

extern "C" int ir_cuda_knob_set(const char* name, int value) {
  const int i = ir_cuda::knob_index(name);
  if (i < 0) return INT_MIN;
  int* table = ir_cuda::knob_table();
  const int previous = table[i];
  table[i] = value;
  return previous;
}

extern "C" int ir_cuda_knob_get(const char* name) {
  const int i = ir_cuda::knob_index(name);
  return i < 0 ? INT_MIN : ir_cuda::knob_table()[i];
}
