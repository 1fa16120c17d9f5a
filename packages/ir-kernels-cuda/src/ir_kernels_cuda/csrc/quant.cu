// fp8 (float8_e4m3fn) quantisation: static scale, dynamic per-token scale,
// and per-token-group scales.
//
// Values are divided by the scale (an IEEE division, as torch does for a
// tensor divisor), saturated to +-448 and rounded to nearest even. Scales are
// formed exactly as ir_core.ops.quant forms them on the GPU:
// `max(amax, eps) * (1 / 448)` where torch divides by a Python scalar.
// The division goes through the scale's reciprocal (divide_by_scale in
// common.cuh: the same fp8 bytes as the IEEE division).
#include <algorithm>

#include "common.cuh"

namespace ir_cuda {
namespace {

__device__ __forceinline__ float chunk_absmax(float acc, float v) { return fmaxf(acc, fabsf(v)); }

template <typename T>
__device__ __forceinline__ float chunk_amax(const Vec<T>& v, float acc) {
#pragma unroll
  for (int j = 0; j < Vec<T>::N; ++j) acc = chunk_absmax(acc, v.get(j));
  return acc;  // chunk padding reads as zero: neutral for |x| max
}

// ------------------------------------------------------------------ static

// Element-wise: the launch shape of ew_config (common.cuh). The loads of a
// tile go out before the scale's reciprocal is needed.
template <typename T, int CPT>
__global__ void static_quant_kernel(QuantArgs a, int div_kind) {
  constexpr int N = Vec<T>::N;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  if (row >= a.rows) return;
  const int n = a.hidden;
  const T* x = static_cast<const T*>(a.x) + row * a.x_stride;
  uint8_t* out = a.out + row * n;
  const bool vec = aligned16(x) && aligned_to(out, N);
  const float scale = *a.scale;
  const int nchunks = static_cast<int>(ceil_div(n, N));
  const int tile = static_cast<int>(blockDim.x) * CPT;
  for (int base = blockIdx.y * tile; base < nchunks; base += gridDim.y * tile) {
    Vec<T> xs[CPT];
#pragma unroll
    for (int k = 0; k < CPT; ++k) {
      const int c = base + threadIdx.x + k * blockDim.x;
      if (c < nchunks) xs[k] = load_chunk(x, c, n, vec);
    }
    const ScaleDiv d = make_scale_div(scale, div_kind != kDivIeee);
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
  if (a.scale_ub != nullptr) amax = fminf(amax, ub);
  const float scale = fmaxf(amax * kInvFp8Max, kMinDynamicScale);
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

// A group of `group_size` features is handled by L lanes of one warp (L a
// power of two <= 32, as few as possible so that each lane keeps several
// 16-byte loads in flight); lane l owns the group's chunks l, l + L, ... (K of
// them, K <= KMAX), kept in registers between the max and the stores. The
// L lanes of a group are consecutive and start at a multiple of L, so the
// butterfly below stays inside the group; a warp covers 32 / L consecutive
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
  if (valid) {
    if (total_groups <= 0x7fffffff) {  // the usual case: 32-bit division
      const uint32_t gu = static_cast<uint32_t>(group);
      const uint32_t r = gu / static_cast<uint32_t>(groups_per_row);
      row = r;
      g = static_cast<int>(gu - r * static_cast<uint32_t>(groups_per_row));
    } else {
      row = group / groups_per_row;
      g = static_cast<int>(group - row * groups_per_row);
    }
  }
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
  // Every lane of the warp takes part in the shuffles (valid or not).
  for (int off = lanes / 2; off > 0; off >>= 1) amax = fmaxf(amax, IR_SHFL_XOR(amax, off));
  if (!valid) return;
  const float scale = fmaxf(amax, kGroupEps) * kInvFp8Max;
  if (lane == 0) a.scales[row * groups_per_row + g] = scale;
  const ScaleDiv d = make_scale_div(scale, div_kind != kDivIeee);
  with_div_kind(div_kind, d, [&](auto kind) {
#pragma unroll
    for (int k = 0; k < KMAX; ++k)
      if (k < chunks_per_lane)
        quantise_chunk<decltype(kind)::value>(out, first + k * lanes, n, vec, xs[k], d);
  });
}

}  // namespace

void launch_static_fp8_quant(const QuantArgs& a, cudaStream_t stream) {
  if (a.rows == 0 || a.hidden == 0) return;
  const int div_kind = div_kind_from_knob();
  IR_DISPATCH_DTYPE(a.dtype, T, {
    const int nchunks = static_cast<int>(ceil_div(a.hidden, Vec<T>::N));
    if (knob(Knob::kEwMode) == 1) {
      const int tx = static_cast<int>(std::min<int64_t>(
          512, std::max<int64_t>(IR_WARP_SIZE, ceil_div(nchunks, IR_WARP_SIZE) * IR_WARP_SIZE)));
      const int ty = std::max(1, 256 / tx);
      static_quant_row_kernel<T>
          <<<static_cast<unsigned>(ceil_div(a.rows, ty)), dim3(tx, ty), 0, stream>>>(a, ty, div_kind);
    } else {
      const EwConfig c = ew_config(a.rows, nchunks);
      const dim3 grid(c.gx, c.gy), block(c.tx, c.ty);
      if (c.cpt == 4) static_quant_kernel<T, 4><<<grid, block, 0, stream>>>(a, div_kind);
      else if (c.cpt == 2) static_quant_kernel<T, 2><<<grid, block, 0, stream>>>(a, div_kind);
      else static_quant_kernel<T, 1><<<grid, block, 0, stream>>>(a, div_kind);
    }
  });
}

void launch_dynamic_per_token_fp8_quant(const QuantArgs& a, cudaStream_t stream) {
  if (a.rows == 0) return;
  const int div_kind = div_kind_from_knob();
  IR_DISPATCH_DTYPE(a.dtype, T, {
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

void launch_per_token_group_fp8_quant(const QuantArgs& a, cudaStream_t stream) {
  if (a.rows == 0 || a.hidden == 0) return;
  // Group quant keeps the two-correction division by default: with the same
  // launch, the near-step check measured slower on the H100
  // (scripts/gpu/cuda_exp.py, CUDA graph: 1024 x 8192 9.52 us vs 8.94,
  // 4096 x 4096 20.82 vs 20.61; do_bench 16384 x 8192 144.5 vs 143.4).
  // Both give IEEE division's fp8 bytes; fp8_div still selects any form.
  const int div_kind = knob(Knob::kFp8Div) == 0 ? static_cast<int>(kDivRecip2) : div_kind_from_knob();
  IR_DISPATCH_DTYPE(a.dtype, T, {
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
