// Gated activations: silu_and_mul and gelu_and_mul (exact and tanh).
//
// out[r, :d] = act(x[r, :d]) * x[r, d:2d], computed in float32 with the
// rounding of the native chain: act(x) rounded to float32, then the product
// (no fused multiply-add across the two, as torch runs them as two kernels).
//
// Launch shape: see ew_config (common.cuh): a block covers ty rows and a
// tile of tx * cpt 16-byte chunks of the gate and of the up half, all loads
// of a thread issued before its first store. Rows whose
// halves are not 16-byte aligned (d * sizeof(T) not a multiple of 16, or an
// odd row stride) take the element-wise path over the same chunks.
#include <algorithm>

#include "common.cuh"

namespace ir_cuda {
namespace {

template <Activation ACT>
__device__ __forceinline__ float activate(float x) {
  if constexpr (ACT == Activation::kSilu) {
    return x / (1.0f + expf(-x));
  } else if constexpr (ACT == Activation::kGelu) {
    constexpr float kInvSqrt2 = 0.70710678118654752440f;
    return x * 0.5f * (1.0f + erff(x * kInvSqrt2));
  } else {
    constexpr float kBeta = 0.79788456080286535588f;  // sqrt(2 / pi)
    constexpr float kKappa = 0.044715f;
    const float cube = x * x * x;
    return 0.5f * x * (1.0f + tanhf(kBeta * (x + kKappa * cube)));
  }
}

// silu's quotient x / (1 + e^-x) for a chunk without __fdiv_rn's per-element
// branch, which serialised the chunk (each element's chain of exp, reciprocal
// and corrections waited for the previous one): what a one-token call waits
// for. The body is the fast path that nvcc emits for div.rn.f32 (reciprocal
// estimate, one Newton step, quotient, one correction), correctly rounded
// whenever dividend, divisor and quotient are far from the ends of the normal
// range: here |x| and b in [2^-60, 2^60] (b >= 1 always). A chunk with an
// element outside (a zero, |x| > 2^60, x < -41) redoes its quotients with
// __fdiv_rn on the same divisors, so both paths give the IEEE quotient.
template <int N>
__device__ __forceinline__ void silu_chunk_fast(float (&x)[N]) {
  float b[N], q[N];
  float amin = 0x1p60f, amax = 0.0f, bmax = 0.0f;
#pragma unroll
  for (int j = 0; j < N; ++j) {
    b[j] = 1.0f + expf(-x[j]);
    const float r0 = __fdividef(1.0f, b[j]);  // reciprocal estimate (no branch)
    const float r = fmaf(fmaf(-b[j], r0, 1.0f), r0, r0);
    const float q0 = __fmul_rn(x[j], r);
    q[j] = fmaf(fmaf(-b[j], q0, x[j]), r, q0);
    amin = fminf(amin, fabsf(x[j]));
    amax = fmaxf(amax, fabsf(x[j]));
    bmax = fmaxf(bmax, b[j]);
  }
  if (amin >= 0x1p-60f && amax <= 0x1p60f && bmax <= 0x1p60f) {
#pragma unroll
    for (int j = 0; j < N; ++j) x[j] = q[j];
  } else {
#pragma unroll
    for (int j = 0; j < N; ++j) x[j] = __fdiv_rn(x[j], b[j]);
  }
}

// out = act(gate) * up for one chunk, with the native chain's rounding.
// FAST_DIV: silu through silu_chunk_fast (knob act_div, see launch_typed).
template <typename T, Activation ACT, bool FAST_DIV = false>
__device__ __forceinline__ Vec<T> act_mul_chunk(const Vec<T>& g, const Vec<T>& u) {
  constexpr int N = Vec<T>::N;
  float y[N];
  if constexpr (ACT == Activation::kSilu && FAST_DIV) {
#pragma unroll
    for (int j = 0; j < N; ++j) y[j] = g.get(j);
    silu_chunk_fast(y);
#pragma unroll
    for (int j = 0; j < N; ++j) y[j] = __fmul_rn(y[j], u.get(j));
  } else {
#pragma unroll
    for (int j = 0; j < N; ++j) y[j] = __fmul_rn(activate<ACT>(g.get(j)), u.get(j));
  }
  Vec<T> o;
  o.set(y);
  return o;
}

template <typename T, Activation ACT, int CPT, bool FAST_DIV>
__global__ void act_and_mul_kernel(ActArgs a) {
  constexpr int N = Vec<T>::N;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  if (row >= a.rows) return;
  const int d = a.d;
  const T* gate = static_cast<const T*>(a.x) + row * a.x_stride;
  const T* up = gate + d;
  T* out = static_cast<T*>(a.out) + row * a.out_stride;
  const bool vec = aligned16(gate) && aligned16(up) && aligned16(out);
  const int nchunks = static_cast<int>(ceil_div(d, N));
  const int tile = static_cast<int>(blockDim.x) * CPT;
  for (int base = blockIdx.y * tile; base < nchunks; base += gridDim.y * tile) {
    Vec<T> g[CPT], u[CPT];
#pragma unroll
    for (int k = 0; k < CPT; ++k) {
      const int c = base + threadIdx.x + k * blockDim.x;
      if (c < nchunks) {
        g[k] = load_chunk(gate, c, d, vec);
        u[k] = load_chunk(up, c, d, vec);
      }
    }
#pragma unroll
    for (int k = 0; k < CPT; ++k) {
      const int c = base + threadIdx.x + k * blockDim.x;
      if (c < nchunks) store_chunk(out, c, d, vec, act_mul_chunk<T, ACT, FAST_DIV>(g[k], u[k]));
    }
  }
}

// The former shape (knob ew_mode=1, for comparisons): one block of up to 512
// threads per row (small rows share a block), looping over the row.
template <typename T, Activation ACT>
__global__ void act_and_mul_row_kernel(ActArgs a, int rows_per_block) {
  constexpr int N = Vec<T>::N;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * rows_per_block + threadIdx.y;
  if (row >= a.rows) return;
  const int d = a.d;
  const T* gate = static_cast<const T*>(a.x) + row * a.x_stride;
  const T* up = gate + d;
  T* out = static_cast<T*>(a.out) + row * a.out_stride;
  const bool vec = aligned16(gate) && aligned16(up) && aligned16(out);
  const int nchunks = static_cast<int>(ceil_div(d, N));
  for (int c = threadIdx.x; c < nchunks; c += blockDim.x)
    store_chunk(out, c, d, vec,
                act_mul_chunk<T, ACT>(load_chunk(gate, c, d, vec), load_chunk(up, c, d, vec)));
}

template <typename T, Activation ACT, bool FAST_DIV>
void launch_cpt(const ActArgs& a, int cpt, dim3 grid, dim3 block, cudaStream_t stream) {
  switch (cpt) {
    case 4:
      act_and_mul_kernel<T, ACT, 4, FAST_DIV><<<grid, block, 0, stream>>>(a);
      break;
    case 2:
      act_and_mul_kernel<T, ACT, 2, FAST_DIV><<<grid, block, 0, stream>>>(a);
      break;
    default:
      act_and_mul_kernel<T, ACT, 1, FAST_DIV><<<grid, block, 0, stream>>>(a);
      break;
  }
}

template <typename T, Activation ACT>
void launch_typed(const ActArgs& a, cudaStream_t stream) {
  const int nchunks = static_cast<int>(ceil_div(a.d, Vec<T>::N));
  if (knob(Knob::kEwMode) == 1) {
    const int tx = static_cast<int>(std::min<int64_t>(
        512, std::max<int64_t>(IR_WARP_SIZE, ceil_div(nchunks, IR_WARP_SIZE) * IR_WARP_SIZE)));
    const int ty = std::max(1, 256 / tx);
    act_and_mul_row_kernel<T, ACT>
        <<<static_cast<unsigned>(ceil_div(a.rows, ty)), dim3(tx, ty), 0, stream>>>(a, ty);
    return;
  }
  const EwConfig c = ew_config(a.rows, nchunks);
  const dim3 grid(c.gx, c.gy), block(c.tx, c.ty);
  // Only silu divides; the other activations keep one instantiation.
  // silu's division: both forms give the IEEE quotient, so the choice may
  // follow the problem size. The branch-free form costs a few more
  // instructions per element (the reciprocal estimate's range scaling) but
  // lets a thread's elements overlap: the default up to 1024 chunks per SM.
  if constexpr (ACT == Activation::kSilu) {
    const int kd = knob(Knob::kActDiv);
    const int64_t chunks = a.rows * static_cast<int64_t>(nchunks);
    if (kd == 2 || (kd != 1 && chunks <= static_cast<int64_t>(sm_count()) * 1024)) {
      launch_cpt<T, ACT, true>(a, c.cpt, grid, block, stream);
      return;
    }
  }
  launch_cpt<T, ACT, false>(a, c.cpt, grid, block, stream);
}

}  // namespace

void launch_act_and_mul(const ActArgs& a, cudaStream_t stream) {
  if (a.rows == 0 || a.d == 0) return;
  IR_DISPATCH_DTYPE(a.dtype, T, {
    switch (a.act) {
      case Activation::kSilu:
        launch_typed<T, Activation::kSilu>(a, stream);
        break;
      case Activation::kGelu:
        launch_typed<T, Activation::kGelu>(a, stream);
        break;
      case Activation::kGeluTanh:
        launch_typed<T, Activation::kGeluTanh>(a, stream);
        break;
    }
  });
}

}  // namespace ir_cuda
