// Rotary position embedding, in place on query and key.
//
// One block per token. Work items are (head, pair) over the query heads then
// the key heads; a pair is (i, i + rotary_dim / 2) for NeoX style and
// (2i, 2i + 1) for GPT-J style, rotated by cos/sin of the token's position
// (cache row: cos in the first half, sin in the second). Features past
// rotary_dim are not touched (partial rotary). Each product is rounded
// separately, as the native chain of torch element-wise ops does, so results
// equal native bit for bit in float32.
#include <algorithm>

#include "common.cuh"

namespace ir_cuda {
namespace {

template <typename T>
__device__ __forceinline__ void rotate_pair(T* head, int i1, int i2, float c, float s) {
  const float x1 = to_float<T>(head[i1]);
  const float x2 = to_float<T>(head[i2]);
  head[i1] = from_float<T>(__fsub_rn(__fmul_rn(x1, c), __fmul_rn(x2, s)));
  head[i2] = from_float<T>(__fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, s)));
}

template <typename T, typename C, typename P, bool NEOX>
__global__ void rotary_kernel(RotaryArgs a) {
  const int64_t token = blockIdx.x;
  const int64_t pos = static_cast<int64_t>(static_cast<const P*>(a.positions)[token]);
  const int half = a.rotary_dim / 2;
  const C* cos = static_cast<const C*>(a.cos_sin_cache) + pos * a.rotary_dim;
  const C* sin = cos + half;
  T* q = static_cast<T*>(a.query) + token * a.query_stride;
  T* k = a.key == nullptr ? nullptr : static_cast<T*>(a.key) + token * a.key_stride;
  const int q_items = a.query_heads * half;
  const int items = q_items + (k == nullptr ? 0 : a.key_heads * half);
  for (int it = threadIdx.x; it < items; it += blockDim.x) {
    const bool is_q = it < q_items;
    const int local = is_q ? it : it - q_items;
    const int h = local / half;
    const int i = local - h * half;
    T* head = is_q ? q + h * a.query_head_stride : k + h * a.key_head_stride;
    const float c = to_float<C>(cos[i]);
    const float s = to_float<C>(sin[i]);
    if constexpr (NEOX) rotate_pair(head, i, i + half, c, s);
    else rotate_pair(head, 2 * i, 2 * i + 1, c, s);
  }
}

template <typename T, typename C, typename P>
void launch_typed(const RotaryArgs& a, cudaStream_t stream) {
  const int half = a.rotary_dim / 2;
  const int64_t items = static_cast<int64_t>(a.query_heads + (a.key ? a.key_heads : 0)) * half;
  const int threads = static_cast<int>(
      std::min<int64_t>(512, std::max<int64_t>(IR_WARP_SIZE, ceil_div(items, IR_WARP_SIZE) * IR_WARP_SIZE)));
  const dim3 grid(static_cast<unsigned>(a.tokens));
  if (a.is_neox) rotary_kernel<T, C, P, true><<<grid, threads, 0, stream>>>(a);
  else rotary_kernel<T, C, P, false><<<grid, threads, 0, stream>>>(a);
}

template <typename T, typename C>
void launch_positions(const RotaryArgs& a, cudaStream_t stream) {
  if (a.positions_int64) launch_typed<T, C, int64_t>(a, stream);
  else launch_typed<T, C, int32_t>(a, stream);
}

}  // namespace

void launch_rotary(const RotaryArgs& a, cudaStream_t stream) {
  if (a.tokens == 0 || a.rotary_dim < 2) return;
  IR_DISPATCH_DTYPE(a.dtype, T, {
    if (a.cache_dtype == DTypeId::kFloat32) launch_positions<T, float>(a, stream);
    else launch_positions<T, T>(a, stream);
  });
}

}  // namespace ir_cuda
