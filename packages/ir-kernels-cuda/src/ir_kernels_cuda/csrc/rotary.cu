// Rotary position embedding of query and key, in place or out of place.
//
// One block per token. Work items are (head, pair) over the query heads then
// the key heads; a pair is (i, i + rotary_dim / 2) for NeoX style and
// (2i, 2i + 1) for GPT-J style, rotated by cos/sin of the token's position
// (cache row: cos in the first half, sin in the second). In place, features
// past rotary_dim are not touched (partial rotary); out of place (query_out /
// key_out set: the functional op, which reads and writes each element once
// instead of a clone plus an in-place pass) they are copied. Each product is rounded
// separately, as the native chain of torch element-wise ops does, so results
// equal native bit for bit in float32.
//
// Fast path (16-byte aligned heads, rotary halves a multiple of one 16-byte
// chunk): the block first stages the token's cos/sin row in shared memory
// (float32), then each work item rotates one 16-byte chunk per half (NeoX:
// chunk j of both halves; GPT-J: one chunk of interleaved pairs) with the
// same per-element arithmetic as the scalar path, so results are identical.
#include <algorithm>
#include <cstdint>

#include "common.cuh"

namespace ir_cuda {
namespace {

// `src` and `dst` may alias (in place): each pair is read before it is written.
template <typename T>
__device__ __forceinline__ void rotate_pair(const T* src, T* dst, int i1, int i2, float c, float s) {
  const float x1 = to_float<T>(src[i1]);
  const float x2 = to_float<T>(src[i2]);
  dst[i1] = from_float<T>(__fsub_rn(__fmul_rn(x1, c), __fmul_rn(x2, s)));
  dst[i2] = from_float<T>(__fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, s)));
}

// Out of place: copy features [rotary_dim, head_size) of every head of one
// token (whole 16-byte chunks when `vec`, else element by element).
template <typename T>
__device__ __forceinline__ void copy_tails(const T* src, T* dst, int heads, int64_t src_head_stride,
                                           int64_t dst_head_stride, int rotary_dim, int tail, bool vec) {
  if (vec) {
    constexpr int V = Vec<T>::N;
    const int per_head = tail / V;
    for (int it = threadIdx.x; it < heads * per_head; it += blockDim.x) {
      const int h = it / per_head;
      const int e = rotary_dim + (it - h * per_head) * V;
      *reinterpret_cast<Vec<T>*>(dst + h * dst_head_stride + e) =
          *reinterpret_cast<const Vec<T>*>(src + h * src_head_stride + e);
    }
  } else {
    for (int it = threadIdx.x; it < heads * tail; it += blockDim.x) {
      const int h = it / tail;
      const int e = rotary_dim + (it - h * tail);
      dst[h * dst_head_stride + e] = src[h * src_head_stride + e];
    }
  }
}

// The operands of one token: sources, destinations (== sources in place).
template <typename T>
struct TokenRows {
  const T* q;
  T* qo;
  const T* k;  // nullptr without key
  T* ko;
};

template <typename T>
__device__ __forceinline__ TokenRows<T> token_rows(const RotaryArgs& a, int64_t token) {
  TokenRows<T> r;
  r.q = static_cast<const T*>(a.query) + token * a.query_stride;
  r.qo = static_cast<T*>(a.query_out) + token * a.query_out_stride;
  r.k = a.key == nullptr ? nullptr : static_cast<const T*>(a.key) + token * a.key_stride;
  r.ko = a.key == nullptr ? nullptr : static_cast<T*>(a.key_out) + token * a.key_out_stride;
  return r;
}

// Out of place with partial rotary: the unrotated features of the token.
template <typename T>
__device__ __forceinline__ void copy_token_tails(const RotaryArgs& a, const TokenRows<T>& r, bool vec) {
  const int tail = a.head_size - a.rotary_dim;
  if (tail == 0) return;
  if (a.query_out != a.query)
    copy_tails(r.q, r.qo, a.query_heads, a.query_head_stride, a.query_out_head_stride, a.rotary_dim,
               tail, vec);
  if (r.k != nullptr && a.key_out != a.key)
    copy_tails(r.k, r.ko, a.key_heads, a.key_head_stride, a.key_out_head_stride, a.rotary_dim, tail,
               vec);
}

template <typename T, typename C, typename P, bool NEOX>
__global__ void rotary_kernel(RotaryArgs a) {
  const int64_t token = blockIdx.x;
  const int64_t pos = static_cast<int64_t>(static_cast<const P*>(a.positions)[token]);
  const int half = a.rotary_dim / 2;
  const C* cos = static_cast<const C*>(a.cos_sin_cache) + pos * a.rotary_dim;
  const C* sin = cos + half;
  const TokenRows<T> r = token_rows<T>(a, token);
  const int q_items = a.query_heads * half;
  const int items = q_items + (r.k == nullptr ? 0 : a.key_heads * half);
  for (int it = threadIdx.x; it < items; it += blockDim.x) {
    const bool is_q = it < q_items;
    const int local = is_q ? it : it - q_items;
    const int h = local / half;
    const int i = local - h * half;
    const T* src = is_q ? r.q + h * a.query_head_stride : r.k + h * a.key_head_stride;
    T* dst = is_q ? r.qo + h * a.query_out_head_stride : r.ko + h * a.key_out_head_stride;
    const float c = to_float<C>(cos[i]);
    const float s = to_float<C>(sin[i]);
    if constexpr (NEOX) rotate_pair(src, dst, i, i + half, c, s);
    else rotate_pair(src, dst, 2 * i, 2 * i + 1, c, s);
  }
  copy_token_tails(a, r, false);
}

__device__ __forceinline__ float rot_first(float x1, float x2, float c, float s) {
  return __fsub_rn(__fmul_rn(x1, c), __fmul_rn(x2, s));
}
__device__ __forceinline__ float rot_second(float x1, float x2, float c, float s) {
  return __fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, s));
}

// Vector path; the launcher checks the alignment and divisibility it needs.
// Shared memory: rotary_dim floats (cos in the first half, sin in the second).
// The token's work items are spread over gridDim.y blocks (1 = the former
// shape, one block per token); the tails (out of place) are copied by the
// first of them. PREFETCH issues the first item's loads before the cos/sin
// staging and its barrier (they do not depend on it): one memory round trip
// less on the path of a call with few tokens.
template <typename T, typename C, typename P, bool NEOX, bool PREFETCH>
__global__ void rotary_vec_kernel(RotaryArgs a) {
  constexpr int V = Vec<T>::N;
  extern __shared__ float cs[];
  const int64_t token = blockIdx.x;
  const int half = a.rotary_dim / 2;
  const TokenRows<T> r = token_rows<T>(a, token);
  const int per_head = NEOX ? half / V : a.rotary_dim / V;  // chunks per head
  const int q_items = a.query_heads * per_head;
  const int items = q_items + (r.k == nullptr ? 0 : a.key_heads * per_head);
  const int start = static_cast<int>(blockIdx.y * blockDim.x + threadIdx.x);
  const int step = static_cast<int>(blockDim.x * gridDim.y);
  // Item `it`: its source and destination head and its chunk index j.
  auto locate = [&](int it, const T*& src, T*& dst, int& j) {
    const bool is_q = it < q_items;
    const int local = is_q ? it : it - q_items;
    const int h = local / per_head;
    j = local - h * per_head;
    src = is_q ? r.q + h * a.query_head_stride : r.k + h * a.key_head_stride;
    dst = is_q ? r.qo + h * a.query_out_head_stride : r.ko + h * a.key_out_head_stride;
  };
  // NeoX: chunk j of both halves; GPT-J: one chunk of interleaved pairs.
  auto load = [&](const T* src, int j, Vec<T>& x1, Vec<T>& x2) {
    if constexpr (NEOX) {
      x1 = *reinterpret_cast<const Vec<T>*>(src + j * V);
      x2 = *reinterpret_cast<const Vec<T>*>(src + half + j * V);
    } else {
      x1 = *reinterpret_cast<const Vec<T>*>(src + j * V);
    }
  };
  Vec<T> p1, p2;
  if constexpr (PREFETCH) {
    if (start < items) {
      const T* src;
      T* dst;
      int j;
      locate(start, src, dst, j);
      load(src, j, p1, p2);
    }
  }
  const int64_t pos = static_cast<int64_t>(static_cast<const P*>(a.positions)[token]);
  const C* row = static_cast<const C*>(a.cos_sin_cache) + pos * a.rotary_dim;
  for (int i = threadIdx.x; i < a.rotary_dim; i += blockDim.x) cs[i] = to_float<C>(row[i]);
  __syncthreads();
  for (int it = start; it < items; it += step) {
    const T* src;
    T* dst;
    int j;
    locate(it, src, dst, j);
    Vec<T> x1, x2;
    if (PREFETCH && it == start) {
      x1 = p1;
      x2 = p2;
    } else {
      load(src, j, x1, x2);
    }
    if constexpr (NEOX) {
      const int i0 = j * V;
      float o1[V], o2[V];
#pragma unroll
      for (int e = 0; e < V; ++e) {
        const float c = cs[i0 + e];
        const float s = cs[half + i0 + e];
        o1[e] = rot_first(x1.get(e), x2.get(e), c, s);
        o2[e] = rot_second(x1.get(e), x2.get(e), c, s);
      }
      x1.set(o1);
      x2.set(o2);
      *reinterpret_cast<Vec<T>*>(dst + i0) = x1;
      *reinterpret_cast<Vec<T>*>(dst + half + i0) = x2;
    } else {
      const int e0 = j * V;  // pairs (e0 + 2m, e0 + 2m + 1), pair index e0 / 2 + m
      float o[V];
#pragma unroll
      for (int m = 0; m < V / 2; ++m) {
        const float c = cs[e0 / 2 + m];
        const float s = cs[half + e0 / 2 + m];
        o[2 * m] = rot_first(x1.get(2 * m), x1.get(2 * m + 1), c, s);
        o[2 * m + 1] = rot_second(x1.get(2 * m), x1.get(2 * m + 1), c, s);
      }
      x1.set(o);
      *reinterpret_cast<Vec<T>*>(dst + e0) = x1;
    }
  }
  if (blockIdx.y == 0) copy_token_tails(a, r, (a.head_size - a.rotary_dim) % V == 0);
}

// K consecutive values of C from `p` as floats, in loads of up to 16 bytes
// (K * sizeof(C) is 8, 16 or 32 bytes; the launcher checks the alignment).
template <typename C, int K>
__device__ __forceinline__ void load_values(const C* p, float (&f)[K]) {
  constexpr int kBytes = K * static_cast<int>(sizeof(C));
  constexpr int kLoad = kBytes >= 16 ? 16 : kBytes;
  constexpr int kPer = kLoad / static_cast<int>(sizeof(C));
#pragma unroll
  for (int i = 0; i < kBytes / kLoad; ++i) {
    const Piece<C, kLoad> v = Piece<C, kLoad>::load(p + i * kPer);
#pragma unroll
    for (int e = 0; e < kPer; ++e) f[i * kPer + e] = v.get(e);
  }
}

// Parameters of rotary_lean_kernel, in the order its first loads need them
// (see LeanEwArgs in common.cuh: each 64-byte line of the parameter bank the
// first loads wait for can cost a memory round trip): the query items' loads and the
// position load need only the first line (c[0x0][0x210..0x23f] on sm_90).
struct RotaryLeanArgs {
  const void* positions;
  const void* query;
  int64_t query_stride;
  int64_t query_head_stride;
  int q_items;   // query heads x chunks per head
  int items;     // q_items + key heads x chunks per head
  int per_head;  // chunks per head
  int per_head_shift;  // log2(per_head) where a power of two, else -1
  const void* key;
  int64_t key_stride;
  int64_t key_head_stride;
  const void* cos_sin_cache;
  void* query_out;
  int64_t query_out_stride;
  int64_t query_out_head_stride;
  void* key_out;
  int64_t key_out_stride;
  int64_t key_out_head_stride;
  int64_t tokens;
  int rotary_dim;
};

// Lean form (rot_mode 0/1): grid (item tiles, tokens), one item a thread,
// items as in rotary_vec_kernel (a 16-byte chunk of a head: NeoX chunk j of
// both halves, GPT-J one chunk of interleaved pairs; query heads, then key
// heads). Each thread reads its own cos/sin values from the cache row (no
// shared-memory staging, no barrier): its chunk loads do not wait for the
// position, and the cos/sin loads wait for the position only. Threads past
// the items redo the last item and store nothing (no branch around the
// loads). The launcher checks the alignment of heads and cache rows, and
// that no unrotated tail must be copied (in place, or rotary_dim ==
// head_size). Same per-element arithmetic as the other kernels: the same bits.
template <typename T, typename C, typename P, bool NEOX>
__global__ void rotary_lean_kernel(RotaryLeanArgs a) {
  constexpr int V = Vec<T>::N;
  constexpr int K = NEOX ? V : V / 2;  // cos (and sin) values an item needs
  const int it0 = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  const bool active = it0 < a.items;
  const int it = min(it0, a.items - 1);
  const bool is_q = it < a.q_items;
  const int local = is_q ? it : it - a.q_items;
  const int h = a.per_head_shift >= 0 ? local >> a.per_head_shift : local / a.per_head;
  const int j = local - h * a.per_head;
  const int e0 = j * V;  // first element of the chunk (NeoX: in each half)
  int64_t token = blockIdx.y;  // < a.tokens: the grid has min(tokens, 65535) rows
  do {
    const int half = a.rotary_dim / 2;
    const T* src = is_q ? static_cast<const T*>(a.query) + token * a.query_stride + h * a.query_head_stride
                        : static_cast<const T*>(a.key) + token * a.key_stride + h * a.key_head_stride;
    const Vec<T> x1 = *reinterpret_cast<const Vec<T>*>(src + e0);
    Vec<T> x2;
    if constexpr (NEOX) x2 = *reinterpret_cast<const Vec<T>*>(src + half + e0);
    const int64_t pos = static_cast<int64_t>(static_cast<const P*>(a.positions)[token]);
    const C* cos = static_cast<const C*>(a.cos_sin_cache) + pos * a.rotary_dim + j * K;
    float c[K], s[K];
    load_values<C, K>(cos, c);
    load_values<C, K>(cos + half, s);
    T* dst = is_q ? static_cast<T*>(a.query_out) + token * a.query_out_stride + h * a.query_out_head_stride
                  : static_cast<T*>(a.key_out) + token * a.key_out_stride + h * a.key_out_head_stride;
    if constexpr (NEOX) {
      float o1[V], o2[V];
#pragma unroll
      for (int e = 0; e < V; ++e) {
        o1[e] = rot_first(x1.get(e), x2.get(e), c[e], s[e]);
        o2[e] = rot_second(x1.get(e), x2.get(e), c[e], s[e]);
      }
      Vec<T> y1, y2;
      y1.set(o1);
      y2.set(o2);
      if (active) {
        *reinterpret_cast<Vec<T>*>(dst + e0) = y1;
        *reinterpret_cast<Vec<T>*>(dst + half + e0) = y2;
      }
    } else {
      float o[V];
#pragma unroll
      for (int m = 0; m < V / 2; ++m) {
        o[2 * m] = rot_first(x1.get(2 * m), x1.get(2 * m + 1), c[m], s[m]);
        o[2 * m + 1] = rot_second(x1.get(2 * m), x1.get(2 * m + 1), c[m], s[m]);
      }
      Vec<T> y;
      y.set(o);
      if (active) *reinterpret_cast<Vec<T>*>(dst + e0) = y;
    }
    token += gridDim.y;
  } while (token < a.tokens);
}

// The vector path's conditions: every head start 16-byte aligned and each
// rotated half (NeoX) or the rotated span (GPT-J) whole 16-byte chunks.
template <typename T>
bool rotary_vec_ok(const RotaryArgs& a) {
  constexpr int V = Vec<T>::N;
  const int half = a.rotary_dim / 2;
  if ((a.is_neox ? half : a.rotary_dim) % V != 0) return false;
  if (a.rotary_dim > 4096) return false;  // shared-memory staging of cos/sin
  const auto ok = [](const void* p, int64_t s1, int64_t s2) {
    return (reinterpret_cast<uintptr_t>(p) & 15u) == 0 && s1 % V == 0 && s2 % V == 0;
  };
  return ok(a.query, a.query_stride, a.query_head_stride) &&
         ok(a.query_out, a.query_out_stride, a.query_out_head_stride) &&
         (a.key == nullptr || (ok(a.key, a.key_stride, a.key_head_stride) &&
                               ok(a.key_out, a.key_out_stride, a.key_out_head_stride)));
}

int rotary_threads(int64_t items) {
  return static_cast<int>(
      std::min<int64_t>(512, std::max<int64_t>(IR_WARP_SIZE, ceil_div(items, IR_WARP_SIZE) * IR_WARP_SIZE)));
}

// Launches rotary_lean_kernel; false (nothing launched) where it does not
// apply: the vector path's conditions (rotary_vec_ok), cache rows and the
// sin half aligned to the loads of load_values, and nothing to copy past
// rotary_dim. Blocks of up to 256 threads (128 below one token per SM: the
// few tokens spread over more SMs; knob ew_threads overrides), as few per
// token as that allows, with the items split evenly between them.
template <typename T, typename C, typename P>
bool launch_lean(const RotaryArgs& a, bool copies_tail, cudaStream_t stream) {
  constexpr int V = Vec<T>::N;
  constexpr int64_t kCsBytes = (V / 2) * static_cast<int64_t>(sizeof(C));  // GPT-J; NeoX twice
  const int half = a.rotary_dim / 2;
  if (copies_tail || a.rotary_dim < 2 || !rotary_vec_ok<T>(a)) return false;
  const int64_t load = std::min<int64_t>(16, a.is_neox ? 2 * kCsBytes : kCsBytes);
  if (reinterpret_cast<uintptr_t>(a.cos_sin_cache) % load != 0 ||
      (half * static_cast<int64_t>(sizeof(C))) % load != 0) {
    return false;
  }
  const int per_head = a.is_neox ? half / V : a.rotary_dim / V;
  const int64_t items = static_cast<int64_t>(per_head) *
                        (a.query_heads + (a.key != nullptr ? a.key_heads : 0));
  if (items == 0 || items > (int64_t{1} << 30)) return false;
  int cap = knob(Knob::kEwThreads);
  cap = cap > 0 ? cap : (a.tokens < sm_count() ? 128 : 256);
  cap = std::min(std::max(cap, IR_WARP_SIZE), 1024);
  const int64_t blocks = ceil_div(items, cap);
  const int threads = static_cast<int>(
      ceil_div(ceil_div(items, blocks), IR_WARP_SIZE) * IR_WARP_SIZE);
  const dim3 grid(static_cast<unsigned>(ceil_div(items, threads)),
                  static_cast<unsigned>(std::min<int64_t>(a.tokens, 65535)));
  const int shift = (per_head & (per_head - 1)) == 0 ? __builtin_ctz(static_cast<unsigned>(per_head)) : -1;
  const RotaryLeanArgs p{a.positions,
                         a.query,
                         a.query_stride,
                         a.query_head_stride,
                         static_cast<int>(a.query_heads * static_cast<int64_t>(per_head)),
                         static_cast<int>(items),
                         per_head,
                         shift,
                         a.key,
                         a.key_stride,
                         a.key_head_stride,
                         a.cos_sin_cache,
                         a.query_out,
                         a.query_out_stride,
                         a.query_out_head_stride,
                         a.key_out,
                         a.key_out_stride,
                         a.key_out_head_stride,
                         a.tokens,
                         a.rotary_dim};
  if (a.is_neox) rotary_lean_kernel<T, C, P, true><<<grid, threads, 0, stream>>>(p);
  else rotary_lean_kernel<T, C, P, false><<<grid, threads, 0, stream>>>(p);
  return true;
}

template <typename T, typename C, typename P>
void launch_typed(const RotaryArgs& a, cudaStream_t stream) {
  const int half = a.rotary_dim / 2;
  const int64_t heads = a.query_heads + (a.key ? a.key_heads : 0);
  // Out of place, the features past rotary_dim are copied by the same threads.
  const int tail = a.query_out != a.query || (a.key && a.key_out != a.key) ? a.head_size - a.rotary_dim : 0;
  // rot_mode: 0 (auto) or 1 the lean kernel where it applies, 2 the kernels below.
  if (knob(Knob::kRotMode) != 2 && launch_lean<T, C, P>(a, tail != 0, stream)) return;
  const dim3 grid(static_cast<unsigned>(a.tokens));
  if (rotary_vec_ok<T>(a)) {
    constexpr int V = Vec<T>::N;
    const int64_t tail_items = heads * (tail % V == 0 ? tail / V : tail);
    const int64_t items = heads * (a.is_neox ? half / V : a.rotary_dim / V);
    int threads = rotary_threads(std::max<int64_t>(items, tail_items));
    dim3 vgrid = grid;
    // Fewer tokens than SMs: the first item's loads before the cos/sin
    // barrier, and the token's items over several blocks of up to 128
    // threads (one item each), so the call spreads over more SMs. From one
    // token per SM on, the former shape (one block per token, no prefetch):
    // the prefetching kernel measured 10% slower there on the H100 (ir bench,
    // rotary 16384 x 8192: 270.4 us against 244.8 for the former shape).
    // Knob rot_split: 1 the former shape always, 2 the new one always.
    const int split_knob = knob(Knob::kRotSplit);
    const bool few = a.tokens < sm_count();
    const bool former = split_knob == 1 || (split_knob != 2 && !few);
    if (!former && few && items > 128) {
      threads = 128;
      vgrid.y = static_cast<unsigned>(std::min<int64_t>(ceil_div(items, threads), 65535));
    }
    const size_t smem = static_cast<size_t>(a.rotary_dim) * sizeof(float);
    if (former) {
      if (a.is_neox) rotary_vec_kernel<T, C, P, true, false><<<vgrid, threads, smem, stream>>>(a);
      else rotary_vec_kernel<T, C, P, false, false><<<vgrid, threads, smem, stream>>>(a);
    } else {
      if (a.is_neox) rotary_vec_kernel<T, C, P, true, true><<<vgrid, threads, smem, stream>>>(a);
      else rotary_vec_kernel<T, C, P, false, true><<<vgrid, threads, smem, stream>>>(a);
    }
    return;
  }
  const int threads = rotary_threads(std::max<int64_t>(heads * half, heads * tail));
  if (a.is_neox) rotary_kernel<T, C, P, true><<<grid, threads, 0, stream>>>(a);
  else rotary_kernel<T, C, P, false><<<grid, threads, 0, stream>>>(a);
}

template <typename T, typename C>
void launch_positions(const RotaryArgs& a, cudaStream_t stream) {
  if (a.positions_int64) launch_typed<T, C, int64_t>(a, stream);
  else launch_typed<T, C, int32_t>(a, stream);
}

}  // namespace

void launch_rotary(const RotaryArgs& args, cudaStream_t stream) {
  // In place (no out pointers): the kernels write through the out pointers,
  // which then are the operands themselves.
  RotaryArgs a = args;
  if (a.query_out == nullptr) {
    a.query_out = a.query;
    a.query_out_stride = a.query_stride;
    a.query_out_head_stride = a.query_head_stride;
  }
  if (a.key != nullptr && a.key_out == nullptr) {
    a.key_out = a.key;
    a.key_out_stride = a.key_stride;
    a.key_out_head_stride = a.key_head_stride;
  }
  const bool in_place = a.query_out == a.query && (a.key == nullptr || a.key_out == a.key);
  // rotary_dim 0 (an empty cache row): nothing to rotate, but out of place
  // the kernels still copy the heads.
  if (a.tokens == 0 || (a.rotary_dim < 2 && in_place)) return;
  IR_DISPATCH_DTYPE(a.dtype, T, {
    if (a.cache_dtype == DTypeId::kFloat32) launch_positions<T, float>(a, stream);
    else launch_positions<T, T>(a, stream);
  });
}

}  // namespace ir_cuda
