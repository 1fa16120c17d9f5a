// RMS norm family: rms_norm, fused_add_rms_norm and their static fp8 variants.
//
// One block per row. A thread owns 16-byte chunks tid, tid + blockDim, ...;
// the row stays in registers between the reduction and the output (one read,
// one write of each element). The block size follows from the hidden size
// only, so the reduction order of a row never depends on how many rows there
// are (batch invariance), nor on whether the row was loaded with vector or
// element-wise instructions (misaligned rows take the element-wise path over
// the same chunks).
#include <algorithm>

#include "common.cuh"

namespace ir_cuda {
namespace {

// Target chunks per thread (tunable from the benchmarks, see launch.h);
// 0 = automatic (see norm_config).
int g_chunks_per_thread = 0;
constexpr int kMaxThreads = 1024;

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
template <typename T, bool FP8>
__device__ __forceinline__ void write_chunk(T* out, uint8_t* out8, int c, int hidden, bool vec,
                                            const Vec<T>& v, const Vec<T>& w, bool has_w,
                                            float inv, float scale) {
  constexpr int N = Vec<T>::N;
  float y[N];
#pragma unroll
  for (int j = 0; j < N; ++j) {
    y[j] = v.get(j) * inv;
    if (has_w) y[j] *= w.get(j);
  }
  if constexpr (FP8) {
#pragma unroll
    for (int j = 0; j < N; ++j) y[j] = __fdiv_rn(round_to<T>(y[j]), scale);
    Fp8Vec<N> q;
    q.set(y);
    store_fp8_chunk<N>(out8, c, hidden, vec, q);
  } else {
    Vec<T> o;
    o.set(y);
    store_chunk(out, c, hidden, vec, o);
  }
}

// CPT > 0: up to CPT chunks per thread held in registers.
template <typename T, bool ADD, bool FP8, int CPT>
__global__ void __launch_bounds__(kMaxThreads) norm_cached_kernel(NormArgs a) {
  __shared__ float smem[IR_WARP_SIZE + 1];
  const int64_t row = blockIdx.x;
  const int hidden = a.hidden;
  const int nchunks = static_cast<int>(ceil_div(hidden, Vec<T>::N));
  const RowPtrs<T, ADD, FP8> p(a, row);
  const float scale = FP8 ? *a.scale : 1.0f;

  // All loads first: several 16-byte loads in flight per thread.
  Vec<T> xs[CPT];
  Vec<T> rs[ADD ? CPT : 1];
#pragma unroll
  for (int i = 0; i < CPT; ++i) {
    const int c = threadIdx.x + i * blockDim.x;
    if (c < nchunks) {
      xs[i] = load_chunk(p.x, c, hidden, p.vec);
      if constexpr (ADD) rs[i] = load_chunk(p.r, c, hidden, p.vec);
    }
  }
  float acc = 0.0f;
#pragma unroll
  for (int i = 0; i < CPT; ++i) {
    const int c = threadIdx.x + i * blockDim.x;
    if (c < nchunks) {
      if constexpr (ADD) {
        xs[i] = add_round(xs[i], rs[i]);
        store_chunk(p.r_out, c, hidden, p.vec, xs[i]);
      }
      acc += chunk_sum_squares(xs[i], c, a.variance_size);
    }
  }
  // The weight is shared by all rows (L2 resident): fetch it while reducing.
  Vec<T> ws[CPT];
  if (p.w != nullptr) {
#pragma unroll
    for (int i = 0; i < CPT; ++i) {
      const int c = threadIdx.x + i * blockDim.x;
      if (c < nchunks) ws[i] = load_chunk(p.w, c, hidden, p.vec);
    }
  }
  const float total = block_reduce(acc, SumOp{}, smem);
  const float inv = rsqrtf(total / static_cast<float>(a.variance_size) + a.epsilon);
#pragma unroll
  for (int i = 0; i < CPT; ++i) {
    const int c = threadIdx.x + i * blockDim.x;
    if (c < nchunks)
      write_chunk<T, FP8>(p.out, p.out8, c, hidden, p.vec, xs[i], ws[i], p.w != nullptr, inv,
                          scale);
  }
}

// Rows too long for registers: two passes, the second re-reads the row (from
// L2 in practice). With ADD the second pass reads the stored residual.
template <typename T, bool ADD, bool FP8>
__global__ void __launch_bounds__(kMaxThreads) norm_looped_kernel(NormArgs a) {
  __shared__ float smem[IR_WARP_SIZE + 1];
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
  const float total = block_reduce(acc, SumOp{}, smem);
  const float inv = rsqrtf(total / static_cast<float>(a.variance_size) + a.epsilon);
  const T* src = ADD ? p.r_out : p.x;
  for (int c = threadIdx.x; c < nchunks; c += blockDim.x) {
    const Vec<T> v = load_chunk(src, c, hidden, p.vec);
    Vec<T> w;
    if (p.w != nullptr) w = load_chunk(p.w, c, hidden, p.vec);
    write_chunk<T, FP8>(p.out, p.out8, c, hidden, p.vec, v, w, p.w != nullptr, inv, scale);
  }
}

struct NormConfig {
  int threads;
  int cpt;  // chunks per thread held in registers; 0 = looped kernel
};

// From the hidden size, element width and op variant only: never from the
// row count. Automatic target: two 16-byte chunks per thread for rows of up
// to 512 chunks (4096 bf16) and for the non-residual fp8 form (whose write
// phase, a division per element, is the heaviest: more threads share it and
// fewer registers per thread allow more rows in flight per SM), else four.
NormConfig norm_config(int hidden, int elem_bytes, bool add, bool fp8) {
  const int per_chunk = 16 / elem_bytes;
  const int nchunks = static_cast<int>(ceil_div(hidden, per_chunk));
  int target = g_chunks_per_thread;
  // Measured on an H100 at 16384 tokens (scripts/gpu/cuda.sh knob sweep): 2 chunks
  // per thread win for rows of up to 512 chunks, except the non-residual fp8 form,
  // which is fastest (or tied) with 4 at every hidden size (8192: 168 us vs 202 us).
  if (target <= 0) target = (nchunks <= 512 && !(fp8 && !add)) ? 2 : 4;
  int threads = static_cast<int>(ceil_div(ceil_div(nchunks, target), IR_WARP_SIZE)) * IR_WARP_SIZE;
  threads = std::min(std::max(threads, IR_WARP_SIZE), kMaxThreads);
  const int cpt = static_cast<int>(ceil_div(nchunks, threads));
  if (cpt <= 2) return {threads, 2};
  if (cpt <= 4) return {threads, 4};
  return {kMaxThreads, 0};
}

template <typename T, bool ADD, bool FP8>
void launch_typed(const NormArgs& a, cudaStream_t stream) {
  const NormConfig cfg = norm_config(a.hidden, sizeof(T), ADD, FP8);
  const dim3 grid(static_cast<unsigned>(a.rows));
  switch (cfg.cpt) {
    case 2:
      norm_cached_kernel<T, ADD, FP8, 2><<<grid, cfg.threads, 0, stream>>>(a);
      break;
    case 4:
      norm_cached_kernel<T, ADD, FP8, 4><<<grid, cfg.threads, 0, stream>>>(a);
      break;
    default:
      norm_looped_kernel<T, ADD, FP8><<<grid, cfg.threads, 0, stream>>>(a);
      break;
  }
}

}  // namespace

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
  g_chunks_per_thread = chunks > 0 ? chunks : 0;
}

int norm_chunks_per_thread() { return g_chunks_per_thread; }

}  // namespace ir_cuda
