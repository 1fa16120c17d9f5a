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
// act(g) * u over the E elements of a Vec or a Piece (anything with get(j)
// and set(float[E])). FAST_DIV: silu through silu_chunk_fast (knob act_div,
// see launch_typed).
template <Activation ACT, bool FAST_DIV, int E, typename V>
__device__ __forceinline__ V act_mul_values(const V& g, const V& u) {
  float y[E];
  if constexpr (ACT == Activation::kSilu && FAST_DIV) {
#pragma unroll
    for (int j = 0; j < E; ++j) y[j] = g.get(j);
    silu_chunk_fast(y);
#pragma unroll
    for (int j = 0; j < E; ++j) y[j] = __fmul_rn(y[j], u.get(j));
  } else {
#pragma unroll
    for (int j = 0; j < E; ++j) y[j] = __fmul_rn(activate<ACT>(g.get(j)), u.get(j));
  }
  V o;
  o.set(y);
  return o;
}

template <typename T, Activation ACT, bool FAST_DIV = false>
__device__ __forceinline__ Vec<T> act_mul_chunk(const Vec<T>& g, const Vec<T>& u) {
  return act_mul_values<ACT, FAST_DIV, Vec<T>::N>(g, u);
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

// ------------------------------------------------------------------ lean kernel (act_mode=1)
//
// Candidate for few- and mid-token calls (L2-hot, CUDA graph), where the
// kernel above spends a large share of each thread's instructions outside
// the activation: per-thread alignment checks of three pointers, 64-bit
// chunk indexing, the element-wise fallback around every load and store and
// the grid-stride bookkeeping (~80 sm_90 instructions before the first load,
// for 8 elements of work a thread at 1024 tokens; ~34 here), and where
// one-token calls put 8 elements of a serial activation chain on one warp
// per SM. Here:
//  * the host checks the alignment once (pointers, row strides and d) and
//    picks the piece width BYTES (16, 8 or 4 bytes of each half a thread):
//    no element-wise path, no per-element bounds;
//  * the grid is (column tiles, rows): neighbouring blocks touch neighbouring
//    memory, as the triton provider's flat grid;
//  * 128-thread blocks; few-token calls halve the piece (down to two
//    elements a thread) until the launch has 256 blocks, so a one-token call
//    spreads its activations over four warps a block instead of one (the
//    triton provider's rule, EW_PROGRAMS / EW_MIN_BLOCK).
// Same arithmetic per element as act_mul_chunk: bit-identical output.

// act(g) * u for one piece: the arithmetic of act_mul_chunk.
template <typename T, Activation ACT, bool FAST_DIV, int BYTES>
__device__ __forceinline__ Piece<T, BYTES> act_mul_piece(const Piece<T, BYTES>& g,
                                                         const Piece<T, BYTES>& u) {
  return act_mul_values<ACT, FAST_DIV, Piece<T, BYTES>::E>(g, u);
}

// Block (blockIdx.x, blockIdx.y): pieces [blockIdx.x * blockDim.x * CPT, +
// blockDim.x * CPT) of row blockIdx.y (rows past 65535 in a grid-stride loop
// over y). a.npieces = d / E, a.extra = d; every row half is a whole number
// of aligned pieces (checked by the launcher).
template <typename T, Activation ACT, int BYTES, int CPT, bool FAST_DIV>
__global__ void act_lean_kernel(LeanEwArgs a) {
  using P = Piece<T, BYTES>;
  constexpr int E = P::E;
  const int nt = static_cast<int>(blockDim.x);
  for_each_lean_row<CPT>(a, [&](int64_t row, int p0) {
    const T* gate = static_cast<const T*>(a.in) + row * a.in_stride;
    const T* up = gate + a.extra;
    T* out = static_cast<T*>(a.out) + row * a.out_stride;
    // Threads past the row load its last piece (no branch around the loads)
    // but skip the arithmetic: with two pieces a thread, a row of 7168
    // elements leaves an eighth of the slots empty, and computing them cost
    // gelu 3-4% at 4096-32768 rows (H100 bench, session 6).
    P g[CPT], u[CPT];
#pragma unroll
    for (int k = 0; k < CPT; ++k) {
      const int p = min(p0 + k * nt, a.npieces - 1);
      g[k] = P::load(gate + p * E);
      u[k] = P::load(up + p * E);
    }
    IR_LOAD_FENCE();
#pragma unroll
    for (int k = 0; k < CPT; ++k) {
      const int p = p0 + k * nt;
      if (p < a.npieces) act_mul_piece<T, ACT, FAST_DIV>(g[k], u[k]).store(out + p * E);
    }
  });
}

// Largest piece width (16, 8, 4 bytes; at least two elements) that every
// row start, both halves and the output rows are aligned to; 0: none.
template <typename T>
int lean_piece_bytes(const ActArgs& a) {
  constexpr int64_t kElem = sizeof(T);
  for (int64_t b = 16; b >= 2 * kElem && b >= 4; b /= 2) {
    const bool ok = reinterpret_cast<uintptr_t>(a.x) % b == 0 &&
                    reinterpret_cast<uintptr_t>(a.out) % b == 0 && (a.d * kElem) % b == 0 &&
                    (a.x_stride * kElem) % b == 0 && (a.out_stride * kElem) % b == 0;
    if (ok) return static_cast<int>(b);
  }
  return 0;
}

template <typename T, Activation ACT, int BYTES, int CPT>
void launch_lean_div(const ActArgs& a, bool fast, dim3 grid, dim3 block, int npieces,
                     cudaStream_t stream) {
  const LeanEwArgs p{a.x, a.x_stride, npieces, a.d, nullptr, a.out, a.out_stride, a.rows};
  if constexpr (ACT == Activation::kSilu) {
    if (fast) {
      act_lean_kernel<T, ACT, BYTES, CPT, true><<<grid, block, 0, stream>>>(p);
      return;
    }
  }
  act_lean_kernel<T, ACT, BYTES, CPT, false><<<grid, block, 0, stream>>>(p);
}

// Returns false (nothing launched) where the lean kernel does not apply.
// Shape: 128 threads (knob ew_threads overrides), 16-byte pieces, two a
// thread once the problem fills the GPU several times over (ew_config's
// rule; knob ew_cpt overrides: 1 or 2), else one; the piece halves (one
// piece a thread) while the launch has fewer than 256 blocks.
template <typename T, Activation ACT>
bool launch_lean(const ActArgs& a, bool fast, cudaStream_t stream) {
  int bytes = lean_piece_bytes<T>(a);
  if (bytes == 0) return false;
  constexpr int kElem = sizeof(T);
  constexpr int kMinBytes = 2 * kElem < 4 ? 4 : 2 * kElem;
  constexpr int kTargetBlocks = 256;
  int threads = knob(Knob::kEwThreads);
  threads = threads > 0 ? static_cast<int>(ceil_div(threads, IR_WARP_SIZE)) * IR_WARP_SIZE : 128;
  threads = std::min(std::max(threads, IR_WARP_SIZE), 1024);
  const int64_t chunks16 = a.rows * ceil_div(static_cast<int64_t>(a.d) * kElem, 16);
  int cpt = knob(Knob::kEwCpt);
  if (cpt <= 0) cpt = chunks16 >= static_cast<int64_t>(sm_count()) * 4096 ? 2 : 1;
  cpt = cpt >= 2 && bytes == 16 ? 2 : 1;
  auto pieces = [&](int b) { return static_cast<int64_t>(a.d) * kElem / b; };
  if (cpt == 1) {
    while (bytes > kMinBytes && a.rows * ceil_div(pieces(bytes), threads) < kTargetBlocks) {
      bytes /= 2;
    }
  }
  const int npieces = static_cast<int>(pieces(bytes));
  const int64_t tiles = ceil_div(npieces, static_cast<int64_t>(threads) * cpt);
  const dim3 grid(static_cast<unsigned>(tiles),
                  static_cast<unsigned>(std::min<int64_t>(a.rows, 65535)));
  const dim3 block(threads);
  if (bytes == 16 && cpt == 2) {
    launch_lean_div<T, ACT, 16, 2>(a, fast, grid, block, npieces, stream);
  } else if (bytes == 16) {
    launch_lean_div<T, ACT, 16, 1>(a, fast, grid, block, npieces, stream);
  } else if (bytes == 8) {
    launch_lean_div<T, ACT, 8, 1>(a, fast, grid, block, npieces, stream);
  } else if constexpr (kMinBytes <= 4) {
    launch_lean_div<T, ACT, 4, 1>(a, fast, grid, block, npieces, stream);
  } else {
    return false;
  }
  return true;
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
  // Only silu divides; the other activations keep one instantiation.
  // silu's division: both forms give the IEEE quotient, so the choice may
  // follow the problem size. The branch-free form costs a few more
  // instructions per element (the reciprocal estimate's range scaling) but
  // lets a thread's elements overlap: the default up to 1024 chunks per SM.
  bool fast = false;
  if constexpr (ACT == Activation::kSilu) {
    const int kd = knob(Knob::kActDiv);
    const int64_t chunks = a.rows * static_cast<int64_t>(nchunks);
    fast = kd == 2 || (kd != 1 && chunks <= static_cast<int64_t>(sm_count()) * 1024);
  }
  // act_mode (bit-identical in every mode):
  //   0 (auto) or 1: the lean kernel (launch_lean: host-checked alignment,
  //      (tile, row) grid, 128-thread blocks, pieces down to two elements a
  //      thread for few tokens); a call it cannot take (rows, halves or
  //      strides not aligned to two elements and 4 bytes) falls back to 2;
  //   2: the kernel below, shaped by ew_config (the default before session 4).
  // H100 sweep (session 4, cuda_exp.py, bf16, d = hidden; graph us, do_bench
  // us): silu 1 x 8192 1.57 vs 1.78, 1024 x 4096 6.42 vs 6.94, 16384 x 8192
  // 268.9 vs 274.1; gelu 1 x 2048 1.62 vs 1.77, 1024 x 4096 7.47 vs 7.98;
  // silu 128 x 8192 3.08 vs 3.01 and 1024 x 2048 4.28 vs 4.30 (even).
  if (knob(Knob::kActMode) != 2 && launch_lean<T, ACT>(a, fast, stream)) return;
  const EwConfig c = ew_config(a.rows, nchunks);
  const dim3 grid(c.gx, c.gy), block(c.tx, c.ty);
  if constexpr (ACT == Activation::kSilu) {
    if (fast) {
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
