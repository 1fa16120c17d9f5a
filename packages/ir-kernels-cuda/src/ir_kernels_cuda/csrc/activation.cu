// Gated activations: silu_and_mul and gelu_and_mul (exact and tanh).
//
// out[r, :d] = act(x[r, :d]) * x[r, d:2d], computed in float32 with the
// rounding of the native chain: act(x) rounded to float32, then the product
// (no fused multiply-add across the two, as torch runs them as two kernels).
//
// A block covers `rows_per_block` rows; in a row, thread t owns the 16-byte
// chunks t, t + threads, ... of the gate and of the up half. Rows whose
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

template <typename T, Activation ACT>
__global__ void act_and_mul_kernel(ActArgs a, int rows_per_block) {
  constexpr int N = Vec<T>::N;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * rows_per_block + threadIdx.y;
  if (row >= a.rows) return;
  const int d = a.d;
  const T* gate = static_cast<const T*>(a.x) + row * a.x_stride;
  const T* up = gate + d;
  T* out = static_cast<T*>(a.out) + row * a.out_stride;
  const bool vec = aligned16(gate) && aligned16(up) && aligned16(out);
  const int nchunks = static_cast<int>(ceil_div(d, N));
  for (int c = threadIdx.x; c < nchunks; c += blockDim.x) {
    const Vec<T> g = load_chunk(gate, c, d, vec);
    const Vec<T> u = load_chunk(up, c, d, vec);
    float y[N];
#pragma unroll
    for (int j = 0; j < N; ++j) y[j] = __fmul_rn(activate<ACT>(g.get(j)), u.get(j));
    Vec<T> o;
    o.set(y);
    store_chunk(out, c, d, vec, o);
  }
}

template <typename T, Activation ACT>
void launch_typed(const ActArgs& a, cudaStream_t stream) {
  const int nchunks = static_cast<int>(ceil_div(a.d, Vec<T>::N));
  // Threads per row: enough for one chunk each, 32..512; small rows share a block.
  const int tx = static_cast<int>(
      std::min<int64_t>(512, std::max<int64_t>(IR_WARP_SIZE, ceil_div(nchunks, IR_WARP_SIZE) * IR_WARP_SIZE)));
  const int ty = std::max(1, 256 / tx);
  const dim3 block(tx, ty);
  const dim3 grid(static_cast<unsigned>(ceil_div(a.rows, ty)));
  act_and_mul_kernel<T, ACT><<<grid, block, 0, stream>>>(a, ty);
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
