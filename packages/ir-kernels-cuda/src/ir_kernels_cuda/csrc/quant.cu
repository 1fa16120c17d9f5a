// fp8 (float8_e4m3fn) quantisation: static scale, dynamic per-token scale,
// and per-token-group scales.
//
// Values are divided by the scale (an IEEE division, as torch does for a
// tensor divisor), saturated to +-448 and rounded to nearest even. Scales are
// formed exactly as ir_core.ops.quant forms them on the GPU:
// `max(amax, eps) * (1 / 448)` where torch divides by a Python scalar, and
// a NaN in a row (dynamic) or group makes its scale and its outputs NaN, as
// native's amax does (nan_max, common.cuh; before session 8 the maxima left
// NaN out).
// The division goes through the scale's reciprocal (divide_by_scale in
// common.cuh: the same fp8 bytes as the IEEE division).
#include <algorithm>

#include "common.cuh"

namespace ir_cuda {
namespace {

__device__ __forceinline__ float chunk_absmax(float acc, float v) { return nan_max(acc, fabsf(v)); }

template <typename T>
__device__ __forceinline__ float chunk_amax(const Vec<T>& v, float acc) {
#pragma unroll
  for (int j = 0; j < Vec<T>::N; ++j) acc = chunk_absmax(acc, v.get(j));
  return acc;  // chunk padding reads as zero: neutral for |x| max
}

// ------------------------------------------------------------------ static

// Element-wise: the launch shape of ew_config (common.cuh). The loads of a
// tile go out before the scale's (IR_LOAD_FENCE).
template <typename T, int CPT>
__global__ void static_quant_kernel(QuantArgs a, int div_kind) {
  constexpr int N = Vec<T>::N;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  if (row >= a.rows) return;
  const int n = a.hidden;
  const T* x = static_cast<const T*>(a.x) + row * a.x_stride;
  uint8_t* out = a.out + row * n;
  const bool vec = aligned16(x) && aligned_to(out, N);
  const int nchunks = static_cast<int>(ceil_div(n, N));
  const int tile = static_cast<int>(blockDim.x) * CPT;
  for (int base = blockIdx.y * tile; base < nchunks; base += gridDim.y * tile) {
    Vec<T> xs[CPT];
#pragma unroll
    for (int k = 0; k < CPT; ++k) {
      const int c = base + threadIdx.x + k * blockDim.x;
      if (c < nchunks) xs[k] = load_chunk(x, c, n, vec);
    }
    IR_LOAD_FENCE();
    const ScaleDiv d = make_scale_div(*a.scale, div_kind != kDivIeee);
    with_div_kind(div_kind, d, [&](auto kind) {
#pragma unroll
      for (int k = 0; k < CPT; ++k) {
        const int c = base + threadIdx.x + k * blockDim.x;
        if (c < nchunks) quantise_chunk<decltype(kind)::value>(out, c, n, vec, xs[k], d);
      }
    });
  }
}

// The former shape (knob ew_mode=1, for comparisons): one block per row
// (small rows share a block), looping over the row.
template <typename T>
__global__ void static_quant_row_kernel(QuantArgs a, int rows_per_block, int div_kind) {
  constexpr int N = Vec<T>::N;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * rows_per_block + threadIdx.y;
  if (row >= a.rows) return;
  const int n = a.hidden;
  const T* x = static_cast<const T*>(a.x) + row * a.x_stride;
  uint8_t* out = a.out + row * n;
  const bool vec = aligned16(x) && aligned_to(out, N);
  const ScaleDiv d = make_scale_div(*a.scale, div_kind != kDivIeee);
  const int nchunks = static_cast<int>(ceil_div(n, N));
  with_div_kind(div_kind, d, [&](auto kind) {
    for (int c = threadIdx.x; c < nchunks; c += blockDim.x)
      quantise_chunk<decltype(kind)::value>(out, c, n, vec, load_chunk(x, c, n, vec), d);
  });
}

// Lean form (sq_mode 0/1), the activation lean kernel's shape (activation.cu):
// the host checks the alignment once and picks the piece width BYTES (16 or
// 8 bytes of T, at least 4 elements: whole words of fp8 bytes), so there is
// no element-wise path and no per-piece alignment test; the grid is (column
// tiles, rows), neighbouring blocks on neighbouring memory; the scale is
// loaded right after the pieces (IR_LOAD_FENCE), both in flight together. Same
// per-element arithmetic as static_quant_kernel: the same bytes.
template <typename T, int BYTES, int CPT>
__global__ void static_quant_lean_kernel(LeanEwArgs a) {
  using P = Piece<T, BYTES>;
  constexpr int E = P::E;
  const int nt = static_cast<int>(blockDim.x);
  for_each_lean_row<CPT>(a, [&](int64_t row, int p0) {
    const T* x = static_cast<const T*>(a.in) + row * a.in_stride;
    uint8_t* out = static_cast<uint8_t*>(a.out) + row * a.out_stride;
    // Threads past the row load its last piece (no branch around the loads
    // and the arithmetic) and store nothing.
    P v[CPT];
#pragma unroll
    for (int k = 0; k < CPT; ++k) v[k] = P::load(x + min(p0 + k * nt, a.npieces - 1) * E);
    IR_LOAD_FENCE();  // the pieces' loads go out before the scale's (see there)
    const ScaleDiv d = make_scale_div(*a.scale, a.extra != kDivIeee);
    with_div_kind(a.extra, d, [&](auto kind) {
#pragma unroll
      for (int k = 0; k < CPT; ++k) {
        const int p = p0 + k * nt;
        float y[E];
#pragma unroll
        for (int j = 0; j < E; ++j) y[j] = v[k].get(j);
        const Fp8Vec<E> q = to_fp8_values<decltype(kind)::value>(y, d);
        if (p < a.npieces) *reinterpret_cast<Fp8Vec<E>*>(out + p * E) = q;
      }
    });
  });
}

// ------------------------------------------------------------------ dynamic per token

// One block per row; CPT > 0 keeps up to CPT chunks per thread in registers,
// CPT == 0 reads the row twice. The optional upper bound is loaded with the
// row (not after the reduction: one memory round trip less).
constexpr int dq_max_threads(int cpt) { return cpt >= 8 ? 512 : 1024; }

template <typename T, int CPT>
__global__ void __launch_bounds__(dq_max_threads(CPT)) dynamic_quant_kernel(QuantArgs a,
                                                                            int div_kind) {
  constexpr int N = Vec<T>::N;
  __shared__ float smem[1024 / IR_WARP_SIZE];
  const int64_t row = blockIdx.x;
  const int n = a.hidden;
  const T* x = static_cast<const T*>(a.x) + row * a.x_stride;
  uint8_t* out = a.out + row * n;
  const bool vec = aligned16(x) && aligned_to(out, N);
  const int nchunks = static_cast<int>(ceil_div(n, N));
  const float ub = a.scale_ub != nullptr ? *a.scale_ub : 0.0f;
  float amax = 0.0f;
  constexpr int KEEP = CPT > 0 ? CPT : 1;
  Vec<T> xs[KEEP];
  if constexpr (CPT > 0) {
#pragma unroll
    for (int i = 0; i < CPT; ++i) {
      const int c = threadIdx.x + i * blockDim.x;
      if (c < nchunks) xs[i] = load_chunk(x, c, n, vec);
    }
#pragma unroll
    for (int i = 0; i < CPT; ++i)
      if (threadIdx.x + i * blockDim.x < nchunks) amax = chunk_amax(xs[i], amax);
  } else {
    for (int c = threadIdx.x; c < nchunks; c += blockDim.x) amax = chunk_amax(load_chunk(x, c, n, vec), amax);
  }
  amax = row_allreduce(amax, MaxOp{}, smem, 0, static_cast<int>(blockDim.x) / IR_WARP_SIZE);
  if (a.scale_ub != nullptr) amax = nan_min(amax, ub);
  const float scale = nan_max(amax * kInvFp8Max, kMinDynamicScale);
  if (threadIdx.x == 0) a.scales[row] = scale;
  const ScaleDiv d = make_scale_div(scale, div_kind != kDivIeee);
  with_div_kind(div_kind, d, [&](auto kind) {
    constexpr int F = decltype(kind)::value;
    if constexpr (CPT > 0) {
#pragma unroll
      for (int i = 0; i < CPT; ++i) {
        const int c = threadIdx.x + i * blockDim.x;
        if (c < nchunks) quantise_chunk<F>(out, c, n, vec, xs[i], d);
      }
    } else {
      for (int c = threadIdx.x; c < nchunks; c += blockDim.x)
        quantise_chunk<F>(out, c, n, vec, load_chunk(x, c, n, vec), d);
    }
  });
}

// ------------------------------------------------------------------ per token group

// Row and group within the row of a flat group index (a 32-bit division in
// the usual case, where the group count fits).
__device__ __forceinline__ void split_group(int64_t group, int64_t total_groups, int groups_per_row,
                                            int64_t* row, int* g) {
  if (total_groups <= 0x7fffffff) {
    const uint32_t gu = static_cast<uint32_t>(group);
    const uint32_t r = gu / static_cast<uint32_t>(groups_per_row);
    *row = r;
    *g = static_cast<int>(gu - r * static_cast<uint32_t>(groups_per_row));
  } else {
    *row = group / groups_per_row;
    *g = static_cast<int>(group - *row * groups_per_row);
  }
}

// A group's scale from its lanes' |x| maxima: a butterfly over the group's
// `lanes` consecutive lanes (a power of two; every lane of the warp calls it,
// valid or not), then max(amax, 1e-10) / 448 as native forms it.
__device__ __forceinline__ float group_scale(float amax, int lanes) {
  for (int off = lanes / 2; off > 0; off >>= 1) amax = nan_max(amax, IR_SHFL_XOR(amax, off));
  return nan_max(amax, kGroupEps) * kInvFp8Max;
}

// A group of `group_size` features is handled by L lanes of one warp (L a
// power of two <= 32, as few as possible so that each lane keeps several
// 16-byte loads in flight); lane l owns the group's chunks l, l + L, ... (K of
// them, K <= KMAX), kept in registers between the max and the stores. The
// L lanes of a group are consecutive and start at a multiple of L, so the
// butterfly (group_scale) stays inside the group; a warp covers 32 / L consecutive
// groups, whose scales it writes as one contiguous run.
template <typename T, int KMAX>
__global__ void group_quant_kernel(QuantArgs a, int lanes, int chunks_per_lane, int div_kind) {
  constexpr int N = Vec<T>::N;
  const int64_t gid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int lane_shift = __ffs(lanes) - 1;  // lanes is a power of two
  const int groups_per_row = a.hidden / a.group_size;
  const int64_t total_groups = a.rows * groups_per_row;
  const int64_t group = gid >> lane_shift;
  const int lane = static_cast<int>(gid & (lanes - 1));
  const bool valid = group < total_groups;
  int64_t row = 0;
  int g = 0;
  if (valid) split_group(group, total_groups, groups_per_row, &row, &g);
  const int n = a.hidden;
  const T* x = static_cast<const T*>(a.x) + row * a.x_stride;
  uint8_t* out = a.out + row * n;
  const bool vec = aligned16(x) && aligned_to(out, N);
  const int first = g * (a.group_size / N) + lane;
  Vec<T> xs[KMAX];
  // All loads first (up to KMAX in flight), then the max.
#pragma unroll
  for (int k = 0; k < KMAX; ++k)
    if (valid && k < chunks_per_lane) xs[k] = load_chunk(x, first + k * lanes, n, vec);
  float amax = 0.0f;
#pragma unroll
  for (int k = 0; k < KMAX; ++k)
    if (valid && k < chunks_per_lane) amax = chunk_amax(xs[k], amax);
  const float scale = group_scale(amax, lanes);  // every lane of the warp (valid or not)
  if (!valid) return;
  if (lane == 0) a.scales[row * groups_per_row + g] = scale;
  const ScaleDiv d = make_scale_div(scale, div_kind != kDivIeee);
  with_div_kind(div_kind, d, [&](auto kind) {
#pragma unroll
    for (int k = 0; k < KMAX; ++k)
      if (k < chunks_per_lane)
        quantise_chunk<decltype(kind)::value>(out, first + k * lanes, n, vec, xs[k], d);
  });
}

// ------------------------------------------------------------------ lean forms (gq_mode, dq_mode)

// The lean kernels take 16-byte-aligned rows only (the launchers check that on
// the host and otherwise keep the kernels above), so a thread's data is whole
// pairs of chunks: 32 contiguous input bytes, loaded as two 16-byte loads and
// stored as one run of 2N fp8 bytes (one 16-byte store for bf16/fp16). No
// per-chunk alignment or bounds test, no element-wise fallback code. The
// division is divide_by_scale per chunk, as in quantise_chunk: the same bytes.
template <int N>
struct alignas(2 * N) Fp8Pair {
  uint32_t w[N / 2];
};

// max(0, |x|) over the 2N elements of a pair of chunks, NaN if one is NaN:
// the value chunk_amax gives (a max is exact in any order). 16-bit types
// take it on the packed pairs (absolute value by masking the sign bits, then
// the NaN-propagating max of two bf16x2/half2 words, as nan_max; a single
// value converts to float exactly, NaN to NaN): about one
// instruction for two elements where chunk_amax spends two per element
// (widen, max). The ROCm build keeps the float form.
template <typename T>
__device__ __forceinline__ float pair_amax(const Vec<T>& lo, const Vec<T>& hi) {
#ifndef USE_ROCM
  if constexpr (sizeof(T) == 2) {
    using T2 =
        typename std::conditional<std::is_same<T, __half>::value, __half2, __nv_bfloat162>::type;
    const auto abs2 = [](uint32_t w) {
      const uint32_t u = w & 0x7fff7fffu;
      return *reinterpret_cast<const T2*>(&u);
    };
    T2 m[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) m[k] = __hmax2_nan(abs2(lo.w[k]), abs2(hi.w[k]));
    const T2 r = __hmax2_nan(__hmax2_nan(m[0], m[1]), __hmax2_nan(m[2], m[3]));
    return nan_max(nan_max(0.0f, __low2float(r)), __high2float(r));
  }
#endif
  return chunk_amax(hi, chunk_amax(lo, 0.0f));
}

template <int KIND, typename T>
__device__ __forceinline__ void quantise_pair(uint8_t* dst, const Vec<T>& lo, const Vec<T>& hi,
                                              const ScaleDiv& d) {
  constexpr int N = Vec<T>::N;
  Fp8Pair<N> p;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const Fp8Vec<N> q = to_fp8_chunk<KIND>(h == 0 ? lo : hi, d);
#pragma unroll
    for (int k = 0; k < N / 4; ++k) p.w[h * (N / 4) + k] = q.w[k];
  }
  *reinterpret_cast<Fp8Pair<N>*>(dst) = p;
}

// Parameters of group_quant_lean_kernel, in the order its first loads need
// them (see LeanEwArgs in common.cuh): the first line of the parameter bank
// holds everything up to the scales; the output pointer comes last.
struct GroupLeanArgs {
  const void* x;
  int64_t x_stride;      // elements between input rows
  int64_t total_groups;  // rows x groups a row
  int group_size;
  int lane_shift;        // log2 of the lanes a group
  int groups_per_row;
  int div_kind;
  float* scales;         // [rows, groups a row]: index = group
  uint8_t* out;          // contiguous rows: group g's bytes start at g * group_size
};

// This thread's place in the group kernels' 1-D grid: its group (past the
// last group: the last one, valid false) and its lane of the group's lanes.
struct GroupLane {
  int64_t group;
  int lane;
  int lanes;
  bool valid;
};

__device__ __forceinline__ GroupLane group_lane(const GroupLeanArgs& a) {
  const int64_t gid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int lanes = 1 << a.lane_shift;
  const int64_t group0 = gid >> a.lane_shift;
  const bool valid = group0 < a.total_groups;
  return {valid ? group0 : a.total_groups - 1, static_cast<int>(gid) & (lanes - 1), lanes, valid};
}

// First element of group `group` (CONTIG: rows packed back to back, else
// one division by the groups a row).
template <typename T, bool CONTIG>
__device__ __forceinline__ const T* group_start(const GroupLeanArgs& a, int64_t group) {
  const T* x = static_cast<const T*>(a.x);
  if constexpr (CONTIG) {
    return x + group * a.group_size;
  } else {
    int64_t row;
    int g;
    split_group(group, a.total_groups, a.groups_per_row, &row, &g);
    return x + row * a.x_stride + static_cast<int64_t>(g) * a.group_size;
  }
}

// Group quant, lean: lane l of a group (L = 1 << lane_shift lanes, consecutive,
// starting at a multiple of L) owns the group's pairs l, l + L, ... (P of
// them). Thread ids run over the groups of all rows in memory order (1-D grid:
// neighbouring blocks touch neighbouring bytes); with contiguous rows
// (CONTIG, chosen on the host) the group's offset is group * group_size, no
// division by the groups per row. Lanes past the last group load its data
// (no branch around the loads), take part in the shuffles and store nothing.
template <typename T, int P, bool CONTIG>
__global__ void __launch_bounds__(256) group_quant_lean_kernel(GroupLeanArgs a) {
  constexpr int N = Vec<T>::N;
  const GroupLane gl = group_lane(a);
  const int lanes = gl.lanes, lane = gl.lane;
  const int64_t group = gl.group;
  const bool valid = gl.valid;
  const int gs = a.group_size;
  const T* x = group_start<T, CONTIG>(a, group);
  Vec<T> v[2 * P];
#pragma unroll
  for (int j = 0; j < P; ++j) {
    const T* src = x + (lane + j * lanes) * (2 * N);
    v[2 * j] = *reinterpret_cast<const Vec<T>*>(src);
    v[2 * j + 1] = *reinterpret_cast<const Vec<T>*>(src + N);
  }
  float amax = pair_amax(v[0], v[1]);
#pragma unroll
  for (int j = 1; j < P; ++j) amax = nan_max(amax, pair_amax(v[2 * j], v[2 * j + 1]));
  const float scale = group_scale(amax, lanes);  // every lane of the warp (valid or not)
  if (!valid) return;
  if (lane == 0) a.scales[group] = scale;
  const ScaleDiv d = make_scale_div(scale, a.div_kind != kDivIeee);
  uint8_t* out = a.out + group * gs;
  with_div_kind(a.div_kind, d, [&](auto kind) {
#pragma unroll
    for (int j = 0; j < P; ++j)
      quantise_pair<decltype(kind)::value>(out + (lane + j * lanes) * (2 * N), v[2 * j],
                                           v[2 * j + 1], d);
  });
}

// Group quant for few groups: lane l of a group (L = 1 << lane_shift lanes,
// L = group / E <= 32) owns the group's piece l of E = 4 or 8 elements, where
// the lean kernel above gives a lane 16: at 1-16 tokens the lean kernel ran
// a few one-warp blocks whose lanes each quantised 16 elements in a row
// (ncu, H100, group 128: 1 x 2048 3.10 us, 16 x 4096 3.39, against triton's
// 2.85 and 3.10, which spreads a group over 64 threads). Same values: the
// scale is a max (exact in any order), the division divide_by_scale.
template <typename T, int BYTES, bool CONTIG>
__global__ void __launch_bounds__(256) group_quant_piece_kernel(GroupLeanArgs a) {
  using Pc = Piece<T, BYTES>;
  constexpr int E = Pc::E;
  const GroupLane gl = group_lane(a);
  const Pc v = Pc::load(group_start<T, CONTIG>(a, gl.group) + gl.lane * E);
  float y[E];
  float amax = 0.0f;
#pragma unroll
  for (int j = 0; j < E; ++j) {
    y[j] = v.get(j);
    amax = chunk_absmax(amax, y[j]);
  }
  const float scale = group_scale(amax, gl.lanes);  // every lane of the warp (valid or not)
  if (!gl.valid) return;
  if (gl.lane == 0) a.scales[gl.group] = scale;
  const ScaleDiv d = make_scale_div(scale, a.div_kind != kDivIeee);
  Fp8Vec<E>* out = reinterpret_cast<Fp8Vec<E>*>(a.out + gl.group * a.group_size + gl.lane * E);
  with_div_kind(a.div_kind, d,
                [&](auto kind) { *out = to_fp8_values<decltype(kind)::value>(y, d); });
}

// Dynamic per-token quant, lean: one block per row, thread t owns the row's
// pairs t, t + blockDim.x, ... (P of them; pairs past the row are skipped).
// The block's max: a butterfly in each warp, the warp maxima through shared
// memory (one barrier), then a butterfly over the next power of two of the
// warp count only (every lane reads slot lane % that power, or the identity).
//
// Parameters (DynLeanArgs) in the order the first loads need them (see
// LeanEwArgs in common.cuh): the row, the pair count and the upper bound in
// the parameter bank's first line.
struct DynLeanArgs {
  const void* x;
  int64_t x_stride;  // elements between input rows
  int npairs;        // pairs of chunks a row
  int warp_pow2;     // the next power of two of the warps a block
  const float* scale_ub;
  int div_kind;
  int hidden;        // bytes between output rows
  float* scales;     // [rows]
  uint8_t* out;
};

template <typename T, int P>
__global__ void __launch_bounds__(1024) dynamic_quant_lean_kernel(DynLeanArgs a) {
  constexpr int N = Vec<T>::N;
  __shared__ float smem[1024 / IR_WARP_SIZE];
  const int64_t row = blockIdx.x;
  const int npairs = a.npairs;
  const int warp_pow2 = a.warp_pow2;
  const int div_kind = a.div_kind;
  const T* x = static_cast<const T*>(a.x) + row * a.x_stride;
  const float ub = a.scale_ub != nullptr ? *a.scale_ub : 0.0f;
  Vec<T> v[2 * P];
#pragma unroll
  for (int j = 0; j < P; ++j) {
    const int p = threadIdx.x + j * blockDim.x;
    if (p < npairs) {
      v[2 * j] = *reinterpret_cast<const Vec<T>*>(x + p * (2 * N));
      v[2 * j + 1] = *reinterpret_cast<const Vec<T>*>(x + p * (2 * N) + N);
    }
  }
  float amax = 0.0f;
#pragma unroll
  for (int j = 0; j < P; ++j) {
    if (threadIdx.x + j * blockDim.x < npairs)
      amax = nan_max(amax, pair_amax(v[2 * j], v[2 * j + 1]));
  }
  amax = warp_reduce(amax, MaxOp{});
  const int warps = static_cast<int>(blockDim.x) / IR_WARP_SIZE;
  if (warps > 1) {
    const int lane = threadIdx.x % IR_WARP_SIZE;
    if (lane == 0) smem[threadIdx.x / IR_WARP_SIZE] = amax;
    __syncthreads();
    const int slot = lane & (warp_pow2 - 1);
    amax = slot < warps ? smem[slot] : MaxOp::kIdentity;
    for (int off = warp_pow2 / 2; off > 0; off >>= 1) amax = nan_max(amax, IR_SHFL_XOR(amax, off));
  }
  if (a.scale_ub != nullptr) amax = nan_min(amax, ub);
  const float scale = nan_max(amax * kInvFp8Max, kMinDynamicScale);
  if (threadIdx.x == 0) a.scales[row] = scale;
  const ScaleDiv d = make_scale_div(scale, div_kind != kDivIeee);
  uint8_t* out = a.out + row * a.hidden;
  with_div_kind(div_kind, d, [&](auto kind) {
#pragma unroll
    for (int j = 0; j < P; ++j) {
      const int p = threadIdx.x + j * blockDim.x;
      if (p < npairs)
        quantise_pair<decltype(kind)::value>(out + p * (2 * N), v[2 * j], v[2 * j + 1], d);
    }
  });
}

// Host side: whether the lean kernels may read rows of T as whole, aligned
// pairs of chunks and write 2N-byte fp8 runs.
template <typename T>
bool lean_rows_ok(const QuantArgs& a, int row_multiple) {
  constexpr int N = Vec<T>::N;
  return reinterpret_cast<uintptr_t>(a.x) % 16 == 0 &&
         (a.x_stride * static_cast<int64_t>(sizeof(T))) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(a.out) % (2 * N) == 0 && a.hidden % row_multiple == 0;
}

// The group kernels' launch for `lanes` lanes a group (a power of two <= 32):
// 256 threads a block, fewer (down to one warp) while that leaves SMs idle,
// so a few tokens spread over more SMs. Every group is computed alike in any
// launch shape (a max is exact in any order), so the shape may follow the rows.
struct GroupLaunch {
  GroupLeanArgs args;
  unsigned blocks;
  int tpb;
  bool contig;  // rows back to back: the kernels skip the division by groups a row
};

inline GroupLaunch group_launch(const QuantArgs& a, int lanes, int div_kind) {
  const int groups_per_row = a.hidden / a.group_size;
  const int64_t total_groups = a.rows * groups_per_row;
  const int64_t threads = total_groups * lanes;
  const int sms = sm_count();
  int tpb = 256;
  while (tpb > IR_WARP_SIZE && ceil_div(threads, tpb) < sms) tpb /= 2;
  const GroupLeanArgs args{a.x,
                           a.x_stride,
                           total_groups,
                           a.group_size,
                           __builtin_ctz(static_cast<unsigned>(lanes)),
                           groups_per_row,
                           div_kind,
                           a.scales,
                           a.out};
  return {args, static_cast<unsigned>(ceil_div(threads, tpb)), tpb, a.x_stride == a.hidden};
}

// Launches the lean group kernel with P pairs per lane; false (nothing
// launched) where the group is not a power-of-two number (<= 32) of lanes of
// P pairs, or the rows are not aligned.
template <typename T, int P>
bool launch_group_lean(const QuantArgs& a, int div_kind, cudaStream_t stream) {
  constexpr int N = Vec<T>::N;
  const int gs = a.group_size;
  if (gs <= 0 || gs % (2 * N * P) != 0 || !lean_rows_ok<T>(a, gs)) return false;
  const int lanes = gs / (2 * N * P);
  if (lanes > 32 || (lanes & (lanes - 1)) != 0) return false;
  const GroupLaunch g = group_launch(a, lanes, div_kind);
  if (g.contig) group_quant_lean_kernel<T, P, true><<<g.blocks, g.tpb, 0, stream>>>(g.args);
  else group_quant_lean_kernel<T, P, false><<<g.blocks, g.tpb, 0, stream>>>(g.args);
  return true;
}

// Launches the few-groups kernel: pieces of 8 bytes (16-bit types) or 16
// bytes, the first that splits the group into at most 32 lanes of at least
// four elements; false (nothing launched) where none does or the rows are
// not aligned (lean_rows_ok).
template <typename T>
bool launch_group_piece(const QuantArgs& a, int div_kind, cudaStream_t stream) {
  const int gs = a.group_size;
  if (gs <= 0 || !lean_rows_ok<T>(a, gs)) return false;
  int bytes = 0;
  for (int b = 8; b <= 16 && bytes == 0; b *= 2) {
    const int e = b / static_cast<int>(sizeof(T));
    const int lanes = e >= 4 && gs % e == 0 ? gs / e : 0;
    if (lanes > 0 && lanes <= 32 && (lanes & (lanes - 1)) == 0) bytes = b;
  }
  if (bytes == 0) return false;
  const GroupLaunch g = group_launch(a, gs / (bytes / static_cast<int>(sizeof(T))), div_kind);
  if (bytes == 8) {
    if constexpr (sizeof(T) == 2) {
      if (g.contig) group_quant_piece_kernel<T, 8, true><<<g.blocks, g.tpb, 0, stream>>>(g.args);
      else group_quant_piece_kernel<T, 8, false><<<g.blocks, g.tpb, 0, stream>>>(g.args);
      return true;
    }
    return false;
  }
  if (g.contig) group_quant_piece_kernel<T, 16, true><<<g.blocks, g.tpb, 0, stream>>>(g.args);
  else group_quant_piece_kernel<T, 16, false><<<g.blocks, g.tpb, 0, stream>>>(g.args);
  return true;
}

// Launches the lean per-token kernel with P pairs per thread; false where the
// row is not whole aligned pairs or needs more than 1024 threads.
template <typename T, int P>
bool launch_dynamic_lean(const QuantArgs& a, int div_kind, cudaStream_t stream) {
  constexpr int N = Vec<T>::N;
  if (a.hidden <= 0 || !lean_rows_ok<T>(a, 2 * N)) return false;
  const int npairs = a.hidden / (2 * N);
  const int64_t threads = ceil_div(ceil_div(npairs, P), IR_WARP_SIZE) * IR_WARP_SIZE;
  if (threads > 1024) return false;
  const int warps = static_cast<int>(threads) / IR_WARP_SIZE;
  int warp_pow2 = 1;
  while (warp_pow2 < warps) warp_pow2 *= 2;
  const DynLeanArgs p{a.x,        a.x_stride, npairs,   warp_pow2,
                      a.scale_ub, div_kind,   a.hidden, a.scales, a.out};
  dynamic_quant_lean_kernel<T, P>
      <<<static_cast<unsigned>(a.rows), static_cast<unsigned>(threads), 0, stream>>>(p);
  return true;
}

// Launches the lean static kernel; false (nothing launched) where the rows
// are not whole pieces of 8 bytes and 4 elements (or the output rows not
// aligned to them). Shape (session-6 sweep, knob_sweep_h100.md): two
// 16-byte pieces a thread x 128 threads from 1024 chunks per SM on, else
// one piece x 256 threads, halved (to 8 bytes) while the launch has fewer
// than 256 blocks. Knobs ew_cpt (1, 2, 4) and ew_threads override.
template <typename T>
bool launch_static_lean(const QuantArgs& a, int div_kind, cudaStream_t stream) {
  constexpr int64_t kElem = sizeof(T);
  constexpr int kMinBytes = static_cast<int>(4 * kElem) > 8 ? static_cast<int>(4 * kElem) : 8;
  const auto fits = [&](int64_t b) {
    const int64_t e = b / kElem;  // fp8 bytes a piece writes
    return reinterpret_cast<uintptr_t>(a.x) % b == 0 && (a.x_stride * kElem) % b == 0 &&
           (a.hidden * kElem) % b == 0 && reinterpret_cast<uintptr_t>(a.out) % e == 0;
  };
  int bytes = fits(16) ? 16 : (kMinBytes <= 8 && fits(8) ? 8 : 0);
  if (bytes == 0) return false;
  const int64_t chunks16 = a.rows * ceil_div(static_cast<int64_t>(a.hidden) * kElem, 16);
  const int64_t sms = sm_count();
  int cpt = knob(Knob::kEwCpt);
  if (cpt <= 0) cpt = chunks16 >= sms * 1024 ? 2 : 1;
  cpt = cpt >= 4 ? 4 : (cpt >= 2 ? 2 : 1);
  if (cpt > 1 && bytes != 16) cpt = 1;
  int threads = knob(Knob::kEwThreads);
  threads = threads > 0 ? static_cast<int>(ceil_div(threads, IR_WARP_SIZE)) * IR_WARP_SIZE
                        : (cpt == 1 ? 256 : 128);
  threads = std::min(std::max(threads, IR_WARP_SIZE), 1024);
  constexpr int kTargetBlocks = 256;
  auto pieces = [&](int b) { return static_cast<int64_t>(a.hidden) * kElem / b; };
  if (cpt == 1 && bytes == 16 && kMinBytes <= 8 && fits(8) &&
      a.rows * ceil_div(pieces(16), threads) < kTargetBlocks) {
    bytes = 8;
  }
  const int npieces = static_cast<int>(pieces(bytes));
  const int64_t tiles = ceil_div(npieces, static_cast<int64_t>(threads) * cpt);
  const dim3 grid(static_cast<unsigned>(tiles),
                  static_cast<unsigned>(std::min<int64_t>(a.rows, 65535)));
  const LeanEwArgs p{a.x, a.x_stride, npieces, div_kind, a.scale, a.out, a.hidden, a.rows};
  if (bytes == 16 && cpt == 4) {
    static_quant_lean_kernel<T, 16, 4><<<grid, threads, 0, stream>>>(p);
  } else if (bytes == 16 && cpt == 2) {
    static_quant_lean_kernel<T, 16, 2><<<grid, threads, 0, stream>>>(p);
  } else if (bytes == 16) {
    static_quant_lean_kernel<T, 16, 1><<<grid, threads, 0, stream>>>(p);
  } else if constexpr (kMinBytes <= 8) {
    static_quant_lean_kernel<T, 8, 1><<<grid, threads, 0, stream>>>(p);
  }
  return true;
}

// The element-wise static kernels (any alignment): static_quant_kernel, or
// static_quant_row_kernel under ew_mode 1.
template <typename T>
void launch_static_former(const QuantArgs& a, int div_kind, cudaStream_t stream) {
  const int nchunks = static_cast<int>(ceil_div(a.hidden, Vec<T>::N));
  if (knob(Knob::kEwMode) == 1) {
    const int tx = static_cast<int>(std::min<int64_t>(
        512, std::max<int64_t>(IR_WARP_SIZE, ceil_div(nchunks, IR_WARP_SIZE) * IR_WARP_SIZE)));
    const int ty = std::max(1, 256 / tx);
    static_quant_row_kernel<T>
        <<<static_cast<unsigned>(ceil_div(a.rows, ty)), dim3(tx, ty), 0, stream>>>(a, ty, div_kind);
    return;
  }
  // Two chunks x 128 threads, four x 256 from 64K chunks per SM on
  // (session-5 sweeps, scripts/gpu/knob_sweep.py, bf16, CUDA graph us at
  // <= 4096 rows, else do_bench; against the former rule of 1-2 chunks x
  // 256): 1024 x 4096 3.87 vs 4.85, 4096 x 4096 17.8 vs 18.6, 16384 x
  // 2048 39.6 vs 41.0; 16384 x 8192 138.8 (4 x 256) vs 143.6 (2 x 128),
  // 32768 x 4096 137.9 vs 140.6. A 32-register variant of the kernel
  // spilled and lost everywhere (e.g. 4096 x 2048 11.7 vs 5.7).
  const EwConfig c = ew_config(a.rows, nchunks, /*wide=*/true);
  const dim3 grid(c.gx, c.gy), block(c.tx, c.ty);
  if (c.cpt == 4) static_quant_kernel<T, 4><<<grid, block, 0, stream>>>(a, div_kind);
  else if (c.cpt == 2) static_quant_kernel<T, 2><<<grid, block, 0, stream>>>(a, div_kind);
  else static_quant_kernel<T, 1><<<grid, block, 0, stream>>>(a, div_kind);
}

}  // namespace

void launch_static_fp8_quant(const QuantArgs& a, cudaStream_t stream) {
  if (a.rows == 0 || a.hidden == 0) return;
  const int div_kind = div_kind_from_knob();
  IR_DISPATCH_DTYPE(a.dtype, T, {
    // sq_mode: 0 (auto) or 1 the lean kernel where the rows allow it, 2 the
    // element-wise kernel (the default before session 6; ew_mode 1 implies it).
    const bool lean = knob(Knob::kEwMode) != 1 && knob(Knob::kSqMode) != 2;
    if (!lean || !launch_static_lean<T>(a, div_kind, stream)) launch_static_former<T>(a, div_kind, stream);
  });
}

void launch_dynamic_per_token_fp8_quant(const QuantArgs& a, cudaStream_t stream) {
  if (a.rows == 0) return;
  const int div_kind = div_kind_from_knob();
  // Knob dq_mode (0 = auto = 1):
  //   1: lean kernel (dynamic_quant_lean_kernel), one pair of chunks (32
  //      input bytes) per thread at every row count (16 elements a thread),
  //      dividing with the fp8_div form (see div_kind_from_knob);
  //   2: lean kernel with the split of the kernel below: one pair per thread
  //      below one row per SM, else two;
  //   3: the kernel below (the default before session 4).
  // Rows the lean kernel cannot take (misaligned, hidden not a multiple of 2
  // chunks, or over 1024 threads) keep the kernel below. The lean code has no
  // per-chunk alignment and bounds tests or element-wise fallback, a packed
  // 16-bit max, the second butterfly over the warp count only, 16-byte stores.
  // H100 sweep (session 4, scripts/gpu/cuda_exp.py, bf16, dq_mode 1 with the
  // two-correction division against the kernel below; graph us, do_bench us):
  // 1024 x 2048 3.33 vs 3.92, 1024 x 4096 4.85 vs 5.46, 4096 x 2048 7.54 vs
  // 8.67, 16384 x 8192 137.0 vs 138.4; bit-identical to native in the sweep's
  // checks (every fp8 division form, strided rows).
  const int dq_mode = knob(Knob::kDqMode) == 0 ? 1 : knob(Knob::kDqMode);
  IR_DISPATCH_DTYPE(a.dtype, T, {
    const bool lean = (dq_mode == 1 || (dq_mode == 2 && a.rows < sm_count()))
                          ? launch_dynamic_lean<T, 1>(a, div_kind, stream)
                          : dq_mode == 2 && launch_dynamic_lean<T, 2>(a, div_kind, stream);
    if (lean) break;  // launched: leaves the dtype switch
    // About `target` 16-byte chunks per thread: four, or two while the rows
    // do not fill the GPU (a shorter chain per thread: what few rows wait
    // for). A max is exact in any order, so the shape may follow the row
    // count without changing any result. Eight only through the dq_cpt knob
    // (dq_cpt=4 is the former fixed rule).
    const int nchunks = static_cast<int>(ceil_div(a.hidden, Vec<T>::N));
    const int target = knob(Knob::kDqCpt) > 0 ? knob(Knob::kDqCpt)
                                              : (a.rows < sm_count() ? 2 : 4);
    int threads = static_cast<int>(ceil_div(ceil_div(nchunks, target), IR_WARP_SIZE) * IR_WARP_SIZE);
    threads = std::min(std::max(threads, IR_WARP_SIZE), 1024);
    const int cpt = static_cast<int>(ceil_div(nchunks, threads));
    const dim3 grid(static_cast<unsigned>(a.rows));
    if (cpt <= 2) dynamic_quant_kernel<T, 2><<<grid, threads, 0, stream>>>(a, div_kind);
    else if (cpt <= 4) dynamic_quant_kernel<T, 4><<<grid, threads, 0, stream>>>(a, div_kind);
    else if (cpt <= 8 && target >= 8 && threads <= dq_max_threads(8))
      dynamic_quant_kernel<T, 8><<<grid, threads, 0, stream>>>(a, div_kind);
    else dynamic_quant_kernel<T, 0><<<grid, threads, 0, stream>>>(a, div_kind);
  });
}

namespace {

// The fewest lanes (a power of two dividing the chunk count, <= 32) that
// leave each lane at most `max_chunks` chunks: more bytes in flight per
// thread, fewer threads and shuffles.
int group_lanes(int group_size, int elem_bytes, int max_chunks, int* chunks_per_lane) {
  const int per_chunk = 16 / elem_bytes;
  if (group_size <= 0 || group_size % per_chunk != 0) return 0;
  const int chunks = group_size / per_chunk;
  for (int lanes = 1; lanes <= 32 && chunks % lanes == 0; lanes *= 2) {
    const int k = chunks / lanes;
    if (k <= max_chunks) {
      if (chunks_per_lane != nullptr) *chunks_per_lane = k;
      return lanes;
    }
  }
  return 0;
}

}  // namespace

int group_quant_lanes(int group_size, int elem_bytes, int* chunks_per_lane) {
  return group_lanes(group_size, elem_bytes, kGroupQuantMaxChunksPerLane, chunks_per_lane);
}

// See launch_per_token_group_fp8_quant. H100 sweep 8 (session 7, bf16, group
// 128, graph us, few-groups / lean / triton): 1 x 2048 1.56 / 1.60 / 1.51,
// 16 x 4096 1.67 / 1.74 / 1.74, 16 x 8192 1.67 / 1.74 / 1.83, 128 x 2048
// 1.77 / 1.77, 128 x 4096 2.04 / 1.89: up to 16 x 8192 (~250 threads an SM).
constexpr int64_t kGroupPieceThreadsPerSm = 256;

void launch_per_token_group_fp8_quant(const QuantArgs& a, cudaStream_t stream) {
  if (a.rows == 0 || a.hidden == 0) return;
  // Group quant keeps the two-correction division by default. Its scale
  // changes every group, so the one-correction form's per-scale guard is a
  // branch inside the warp, and it measured slower on the H100
  // (scripts/gpu/div_diag.py, CUDA graph: 1024 x 4096 4.72 us vs 4.38,
  // 4096 x 2048 7.85 vs 7.27); the near-step check too in session 4
  // (1024 x 8192 9.52 vs 8.94). All give IEEE division's fp8 bytes.
  const int div_kind =
      knob(Knob::kFp8Div) == 0 ? static_cast<int>(kDivRecip2) : div_kind_from_knob();
  // Knob gq_mode (0 = auto = 1):
  //   1: lean kernel (group_quant_lean_kernel), one pair of chunks (32 input
  //      bytes, 16 fp8 bytes out) per lane: bf16 group 128 = 8 lanes of 16
  //      elements, whole-line 16-byte stores;
  //   2: the lean kernel with two pairs per lane (bf16 group 128 = 4 lanes of
  //      32 elements);
  //   3: the kernel below (the default before session 4).
  // Groups or rows the lean kernel cannot take (misaligned rows, a group that
  // is not a power-of-two number <= 32 of lanes) keep the kernel below.
  // Why: the kernel below spends about 320 SASS instructions per 16 elements
  // (two integer divisions and per-chunk alignment tests before its loads;
  // a warp writes a quarter of each of 8 lines per store), the lean one 273.
  // H100 sweep (session 4, cuda_exp.py, bf16, group 128; graph us, do_bench
  // us): 1 x 2048 1.67 vs 1.99, 1024 x 8192 7.07 vs 8.78, 4096 x 4096 17.96 vs
  // 20.61, 16384 x 2048 40.5 vs 44.9, 16384 x 8192 140.0 vs 144.4. Mode 2 was
  // 0.3 us faster at 1024-4096 rows x 2048-8192 and slower at the rest.
  //   4: the few-groups kernel (group_quant_piece_kernel: 4 or 8 elements a
  //      lane, up to 32 lanes a group) wherever it applies.
  // Auto: the few-groups kernel while it runs at most kGroupPieceThreadsPerSm
  // threads an SM, else the lean kernel.
  int gq_mode = knob(Knob::kGqMode);
  if (gq_mode == 0) {
    const int64_t elements = a.rows * static_cast<int64_t>(a.hidden);
    // threads of the few-groups kernel: about one per 4 elements (16-bit types)
    gq_mode = elements / 4 <= static_cast<int64_t>(sm_count()) * kGroupPieceThreadsPerSm ? 4 : 1;
  }
  IR_DISPATCH_DTYPE(a.dtype, T, {
    // (break: a lean kernel was launched; leaves the dtype switch)
    if (gq_mode == 4 && launch_group_piece<T>(a, div_kind, stream)) break;
    if (gq_mode == 4 && launch_group_lean<T, 1>(a, div_kind, stream)) break;
    if (gq_mode == 1 && launch_group_lean<T, 1>(a, div_kind, stream)) break;
    if (gq_mode == 2 && launch_group_lean<T, 2>(a, div_kind, stream)) break;
    int k = 0;
    int lanes = 0;
    // Fewer chunks per lane (more lanes per group, more threads) for small
    // problems: a shorter chain per thread. The scale is a max (exact in any
    // order), so this changes no result. gq_cpl=4 is the former fixed rule.
    int max_k = knob(Knob::kGqCpl);
    if (max_k <= 0) {
      const int64_t chunks = a.rows * static_cast<int64_t>(a.hidden / Vec<T>::N);
      const int64_t per_sm = chunks / sm_count();
      max_k = per_sm <= 256 ? 1 : (per_sm <= 512 ? 2 : kGroupQuantMaxChunksPerLane);
    }
    if (max_k < kGroupQuantMaxChunksPerLane)  // more lanes, if the group allows
      lanes = group_lanes(a.group_size, sizeof(T), max_k, &k);
    if (lanes == 0) lanes = group_quant_lanes(a.group_size, sizeof(T), &k);
    if (lanes == 0) return;  // rejected by the caller's checks
    const int64_t threads = a.rows * (a.hidden / a.group_size) * lanes;
    constexpr int kBlock = 256;
    group_quant_kernel<T, kGroupQuantMaxChunksPerLane>
        <<<static_cast<unsigned>(ceil_div(threads, kBlock)), kBlock, 0, stream>>>(a, lanes, k,
                                                                             div_kind);
  });
}

}  // namespace ir_cuda
