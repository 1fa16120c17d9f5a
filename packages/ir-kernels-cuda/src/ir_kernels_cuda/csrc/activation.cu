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

// silu's divisor 1 + e^-x as native computes it (the same expf): every form
// of silu below divides by this b, so they differ only in the quotient.
__device__ __forceinline__ float silu_divisor(float x) { return 1.0f + expf(-x); }

template <Activation ACT>
__device__ __forceinline__ float activate(float x) {
  if constexpr (ACT == Activation::kSilu) {
    return x / silu_divisor(x);
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
    b[j] = silu_divisor(x[j]);
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

// ------------------------------------------------------------------ silu's checked forms
//
// bf16 and fp16 rows (knob silu_rcp). The native chain is p = RN(s * u) with
// s = RN(x / b), b = silu_divisor(x), then out = RN_T(p). Its expf (eight
// instructions) and IEEE quotient (MUFU.RCP, FCHK, five FFMA, a branch to a
// slow path) were about 18 of the ~30 instructions the kernel issued an
// element, where triton's approximate silu issues ~21 (ncu at 128 x 14336:
// 1720K against 1190K in all). The checked forms compute a p' with cheaper
// hardware approximations and prove, by a test on p', that RN_T(p') =
// RN_T(p), or send the element back to the native chain. Errors in units of
// u = 2^-24, relative:
//  * kRcp (session 7; bf16 and fp16): native's b, s' = RN(x * rcp(b)),
//    p' = RN(s' * u). rcp.approx.ftz.f32 is within 1 ulp of 1/b (PTX ISA;
//    2 ulp, 4 u, budgeted): p' is within 8.1 u of p, so their bit patterns
//    are at most 9 apart. Margin 12.
//  * kRcpExp2 (bf16 only): also b' = RN(1 + 2^t), t = RN(x * -log2(e)), by
//    ex2.approx.ftz.f32 (MUFU.EX2, within 2 ulp, 4 u: what __expf and
//    exp2f compute), then s' = RN(x * rcp(b')). Only for x >= -8; smaller x
//    is sent back (there t's rounding error, which grows with |x|, would need
//    a margin of 125 patterns at x = -87; with 256 the H100 sweep ran slower
//    than kRcp, its redo branch taken in ~40% of a warp's pairs). For
//    x >= -8: t is off by at most 8 * (1.443 u + 0.33 u) (the product's
//    rounding, and the constant's), which moves 2^t by 9.8 u; with MUFU's
//    4 u, e' is within 13.8 u of e^-x and native's expf within 4 u, so e'
//    and expf differ by 17.8 u; b' and b by 19.8 u (two roundings of 1 + e);
//    s' and x / b by 19.8 + 4 + 1 u, s' and s by 25.8 u; p' and p by 27.8 u:
//    bit patterns at most 28 apart. Margin 56, twice the bound (the
//    exhaustive test also passed with 48 at every x, session 8). fp16 keeps
//    kRcp: its interval test at this width would send back ~1% of elements.
// Why a margin suffices, once p' and p are at most M patterns apart (also
// across a binade, for subnormal products and at overflow, where +inf is
// the pattern after the largest float):
//  * bf16: a float rounds up or down by its low 16 bits, at the midpoint
//    0x8000 (ties to even); p' is sent back if its low 16 bits are within the
//    margin of it, so p's 16 low bits sit on the same side.
//  * fp16: p' is sent back unless p'(1 - 2^-20) and p'(1 + 2^-20) round to
//    the same fp16; rounding is monotone and the interval holds p.
//  * |s'| < 2^-125 (x zero, tiny, NaN or -inf; b' > 2^126, where the flushed
//    reciprocal is 0) is sent back too.
// The bf16 test sends back 25 (kRcp) or 113 (kRcpExp2) of the 65536
// low-16-bit patterns, 0.04% or 0.17% of random elements; the redo runs
// under a branch that a warp takes only where one of its lanes needs it.
// test_cuda_gpu.py checks every (x, u) pair of bf16 (both forms) and of
// fp16 against the IEEE form. ROCm keeps the IEEE form (no inline PTX there).
enum class SiluDiv {
  kIeee,      // per-element __fdiv_rn (knob act_div 1)
  kChunk,     // silu_chunk_fast (knob act_div 2)
  kRcp,       // checked reciprocal of native's divisor (fp16; knob silu_rcp 3)
  kRcpExp2,   // checked exponential and reciprocal (bf16)
};

template <typename T>
constexpr bool kHasCheckedRcp =
#ifdef USE_ROCM
    false;
#else
    std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>;
#endif
template <typename T>
constexpr bool kHasCheckedExp2 = kHasCheckedRcp<T> && std::is_same_v<T, __nv_bfloat16>;

#ifndef USE_ROCM
__device__ __forceinline__ float rcp_approx_ftz(float b) {
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(b));
  return r;
}
__device__ __forceinline__ float ex2_approx_ftz(float t) {
  float r;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(t));
  return r;
}
#endif

// True where RN_T(p) might differ from RN_T of a float within the form's
// margin (in float bit patterns; see above).
template <typename T, SiluDiv DIV>
__device__ __forceinline__ bool near_rounding_midpoint(float p) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    // (low 16 bits of p) + margin - 0x8000, mod 2^16, in the high half: one IMAD.
    constexpr uint32_t m = DIV == SiluDiv::kRcpExp2 ? 56 : 12;
    const uint32_t d = __float_as_uint(p) * 65536u + (m - 0x8000u) * 65536u;
    return d < (2 * m + 1) * 65536u;
  } else {
    static_assert(DIV == SiluDiv::kRcp, "fp16 takes the kRcp form");
    const uint32_t h = pack2<__half>(__fmul_rn(p, 1.0f - 0x1p-20f), __fmul_rn(p, 1.0f + 0x1p-20f));
    return h != __byte_perm(h, 0, 0x1032);  // the two halves differ
  }
}

// y[j] = silu(g_j) * u_j with native's rounding to T (see above), two
// elements at a time: each pair's redo branch ends the pair's live range, so
// a thread holds two divisors, not eight (eight took 48 registers a thread:
// 10 of 16 blocks an SM, two waves at 128 x 14336 where triton's 30-register
// kernel runs one; capping the registers instead made ptxas spill).
template <typename T, SiluDiv DIV, int E, typename V>
__device__ __forceinline__ void silu_mul_checked(const V& g, const V& u, float (&y)[E]) {
  static_assert(DIV == SiluDiv::kRcp ? kHasCheckedRcp<T> : kHasCheckedExp2<T>,
                "kRcp is for bf16 and fp16, kRcpExp2 for bf16, on CUDA");
#ifndef USE_ROCM
  static_assert(E % 2 == 0, "pieces hold whole pairs");
  constexpr float kNegLog2e = -1.4426950408889634f;
#pragma unroll
  for (int j0 = 0; j0 < E; j0 += 2) {
    float b[2];
    bool redo[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const float x = g.get(j0 + i);
      b[i] = DIV == SiluDiv::kRcp ? silu_divisor(x) : 1.0f + ex2_approx_ftz(x * kNegLog2e);
      const float s = __fmul_rn(x, rcp_approx_ftz(b[i]));
      y[j0 + i] = __fmul_rn(s, u.get(j0 + i));
      redo[i] = !(fabsf(s) >= 0x1p-125f) || (DIV == SiluDiv::kRcpExp2 && x < -8.0f) ||
                near_rounding_midpoint<T, DIV>(y[j0 + i]);
    }
    if (redo[0] || redo[1]) {
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        if (redo[i]) {
          const float x = g.get(j0 + i);
          const float bn = DIV == SiluDiv::kRcp ? b[i] : silu_divisor(x);
          y[j0 + i] = __fmul_rn(__fdiv_rn(x, bn), u.get(j0 + i));
        }
      }
    }
  }
#endif
}

// Calls f(std::integral_constant<SiluDiv, D>{}) for the form div names,
// instantiating only the forms that ACT and T have (silu alone divides; the
// checked forms are bf16 and fp16 on CUDA).
template <typename T, Activation ACT, typename F>
void with_div(SiluDiv div, F&& f) {
  using K = SiluDiv;
  if constexpr (ACT == Activation::kSilu) {
    if constexpr (kHasCheckedExp2<T>) {
      if (div == K::kRcpExp2) return f(std::integral_constant<K, K::kRcpExp2>{});
    }
    if constexpr (kHasCheckedRcp<T>) {
      if (div == K::kRcp) return f(std::integral_constant<K, K::kRcp>{});
    }
    if (div == K::kChunk) return f(std::integral_constant<K, K::kChunk>{});
  }
  f(std::integral_constant<K, K::kIeee>{});
}

// out = act(gate) * up for one chunk, with the native chain's rounding.
// act(g) * u over the E elements of a Vec or a Piece (anything with get(j)
// and set(float[E])). DIV: silu's quotient (see launch_typed).
template <Activation ACT, SiluDiv DIV, int E, typename V>
__device__ __forceinline__ V act_mul_values(const V& g, const V& u) {
  float y[E];
  if constexpr (ACT == Activation::kSilu && (DIV == SiluDiv::kRcp || DIV == SiluDiv::kRcpExp2)) {
    silu_mul_checked<typename V::Elem, DIV>(g, u, y);
  } else if constexpr (ACT == Activation::kSilu && DIV == SiluDiv::kChunk) {
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

template <typename T, Activation ACT, SiluDiv DIV = SiluDiv::kIeee>
__device__ __forceinline__ Vec<T> act_mul_chunk(const Vec<T>& g, const Vec<T>& u) {
  return act_mul_values<ACT, DIV, Vec<T>::N>(g, u);
}

template <typename T, Activation ACT, int CPT, SiluDiv DIV>
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
      if (c < nchunks) store_chunk(out, c, d, vec, act_mul_chunk<T, ACT, DIV>(g[k], u[k]));
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
template <typename T, Activation ACT, SiluDiv DIV, int BYTES>
__device__ __forceinline__ Piece<T, BYTES> act_mul_piece(const Piece<T, BYTES>& g,
                                                         const Piece<T, BYTES>& u) {
  return act_mul_values<ACT, DIV, Piece<T, BYTES>::E>(g, u);
}

// Block (blockIdx.x, blockIdx.y): pieces [blockIdx.x * blockDim.x * CPT, +
// blockDim.x * CPT) of row blockIdx.y (rows past 65535 in a grid-stride loop
// over y). a.npieces = d / E, a.extra = d; every row half is a whole number
// of aligned pieces (checked by the launcher).
template <typename T, Activation ACT, int BYTES, int CPT, SiluDiv DIV>
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
      if (p < a.npieces) act_mul_piece<T, ACT, DIV>(g[k], u[k]).store(out + p * E);
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
void launch_lean_div(const ActArgs& a, SiluDiv div, dim3 grid, dim3 block, int npieces,
                     cudaStream_t stream) {
  const LeanEwArgs p{a.x, a.x_stride, npieces, a.d, nullptr, a.out, a.out_stride, a.rows};
  with_div<T, ACT>(div, [&](auto form) {
    act_lean_kernel<T, ACT, BYTES, CPT, decltype(form)::value><<<grid, block, 0, stream>>>(p);
  });
}

// Returns false (nothing launched) where the lean kernel does not apply.
// Shape: 128 threads (knob ew_threads overrides), one 16-byte piece a
// thread (knob ew_cpt 2: two), the piece halving while the launch has fewer
// than 256 blocks. Until session 7 two pieces a thread from 4096 chunks per
// SM (ew_config's rule); at the bench's MLP widths (d = 3.5 x hidden) one is
// as fast or faster everywhere (H100 sweep 7, graph us, one against two:
// gelu 1024 x 14336 31.04 / 31.57, 4096 x 7168 59.92 / 60.50; silu
// 1024 x 7168 14.47 / 14.74; 16384 rows even by do_bench), and two took
// 44-63 registers a thread.
template <typename T, Activation ACT>
bool launch_lean(const ActArgs& a, SiluDiv div, cudaStream_t stream) {
  int bytes = lean_piece_bytes<T>(a);
  if (bytes == 0) return false;
  constexpr int kElem = sizeof(T);
  constexpr int kMinBytes = 2 * kElem < 4 ? 4 : 2 * kElem;
  constexpr int kTargetBlocks = 256;
  int threads = knob(Knob::kEwThreads);
  threads = threads > 0 ? static_cast<int>(ceil_div(threads, IR_WARP_SIZE)) * IR_WARP_SIZE : 128;
  threads = std::min(std::max(threads, IR_WARP_SIZE), 1024);
  const int cpt = knob(Knob::kEwCpt) >= 2 && bytes == 16 ? 2 : 1;
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
    launch_lean_div<T, ACT, 16, 2>(a, div, grid, block, npieces, stream);
  } else if (bytes == 16) {
    launch_lean_div<T, ACT, 16, 1>(a, div, grid, block, npieces, stream);
  } else if (bytes == 8) {
    launch_lean_div<T, ACT, 8, 1>(a, div, grid, block, npieces, stream);
  } else if constexpr (kMinBytes <= 4) {
    launch_lean_div<T, ACT, 4, 1>(a, div, grid, block, npieces, stream);
  } else {
    return false;
  }
  return true;
}

template <typename T, Activation ACT, SiluDiv DIV>
void launch_cpt(const ActArgs& a, int cpt, dim3 grid, dim3 block, cudaStream_t stream) {
  switch (cpt) {
    case 4:
      act_and_mul_kernel<T, ACT, 4, DIV><<<grid, block, 0, stream>>>(a);
      break;
    case 2:
      act_and_mul_kernel<T, ACT, 2, DIV><<<grid, block, 0, stream>>>(a);
      break;
    default:
      act_and_mul_kernel<T, ACT, 1, DIV><<<grid, block, 0, stream>>>(a);
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
  // Only silu divides; the other activations keep one instantiation. Every
  // form of silu's quotient gives native's output, so the choice may follow
  // the dtype and the problem size:
  //  * bf16 and fp16: a checked form (silu_mul_checked). bf16 from 512
  //    chunks per SM: approximate exponential and reciprocal (kRcpExp2);
  //    otherwise native's expf and the checked reciprocal (kRcp). H100 sweep
  //    9 (session 8, graph us, kRcpExp2 / kRcp): 128 x 8192 2.71 / 2.79,
  //    128 x 14336 3.25 / 3.38, 1024 x 4096 5.01 / 5.33; but below, where a
  //    call is one wave and its time that of its slowest warp, kRcpExp2's
  //    longer and more frequent redo (expf and the division) costs more than
  //    it saves: 128 x 4096 2.28 / 2.18, 16 x 28672 2.27 / 2.12. Knob
  //    silu_rcp 1: kRcpExp2 (bf16) at every size; 3: kRcp; 2: the IEEE
  //    quotient, as below;
  //  * otherwise the IEEE quotient: the branch-free chunk form
  //    (silu_chunk_fast) up to 1024 chunks per SM, where it lets a thread's
  //    elements overlap for a few more instructions (the reciprocal
  //    estimate's range scaling), else __fdiv_rn per element (knob act_div).
  SiluDiv div = SiluDiv::kIeee;
  if constexpr (ACT == Activation::kSilu) {
    const int kd = knob(Knob::kActDiv);
    const int64_t chunks = a.rows * static_cast<int64_t>(nchunks);
    const int kr = knob(Knob::kSiluRcp);
    if (kHasCheckedRcp<T> && kr != 2) {
      // sm_count() only where it decides (bf16 under auto): a launch-path call
      const bool exp2 = kHasCheckedExp2<T> &&
                        (kr == 1 || (kr == 0 && chunks >= static_cast<int64_t>(sm_count()) * 512));
      div = exp2 ? SiluDiv::kRcpExp2 : SiluDiv::kRcp;
    } else if (kd == 2 || (kd != 1 && chunks <= static_cast<int64_t>(sm_count()) * 1024)) {
      div = SiluDiv::kChunk;
    }
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
  if (knob(Knob::kActMode) != 2 && launch_lean<T, ACT>(a, div, stream)) return;
  const EwConfig c = ew_config(a.rows, nchunks);
  const dim3 grid(c.gx, c.gy), block(c.tx, c.ty);
  with_div<T, ACT>(div, [&](auto form) {
    launch_cpt<T, ACT, decltype(form)::value>(a, c.cpt, grid, block, stream);
  });
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
