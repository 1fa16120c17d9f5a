// Shared device helpers for the ir_cuda kernels.
//
// The kernel files include only CUDA headers (never torch), so they compile
// in seconds and hipify cleanly; the torch glue lives in ops.cpp. Everything
// platform specific (warp size, shuffles, fp8 conversion) sits behind the
// macros and functions of this file so the ROCm build can swap them: no
// inline PTX in shared code, and every CUDA-only intrinsic has a portable
// path under USE_ROCM (activation.cu's one PTX reciprocal is compiled out
// there).
#pragma once

#include <cstdint>
#include <type_traits>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#ifndef USE_ROCM
#include <cuda_fp8.h>
#endif

#include "launch.h"

#ifndef IR_WARP_SIZE
#ifdef USE_ROCM
#define IR_WARP_SIZE 64
#else
#define IR_WARP_SIZE 32
#endif
#endif

#ifdef USE_ROCM
#define IR_SHFL_XOR(v, off) __shfl_xor((v), (off))
#else
#define IR_FULL_MASK 0xffffffffu
#define IR_SHFL_XOR(v, off) __shfl_xor_sync(IR_FULL_MASK, (v), (off))
#endif

namespace ir_cuda {

// ------------------------------------------------------------------ dtypes

// The constants of ir_core.ops.quant, rounded to float32 as torch rounds the
// Python floats (double -> float).
constexpr float kFp8Max = 448.0f;  // float8_e4m3fn
constexpr float kMinDynamicScale = static_cast<float>(1.0 / (448.0 * 512.0));
constexpr float kGroupEps = static_cast<float>(1e-10);
// torch divides a tensor by a Python scalar as a multiplication by the
// float32 reciprocal (CUDA TensorIterator), so `amax / 448` is this product.
constexpr float kInvFp8Max = 1.0f / 448.0f;

template <typename T>
__device__ __forceinline__ float to_float(T v);
template <>
__device__ __forceinline__ float to_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ float to_float<__half>(__half v) { return __half2float(v); }
template <>
__device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

// Round to nearest even, as torch's .to(dtype) does.
template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// x rounded to T and back: the rounding the native chains do between ops.
template <typename T>
__device__ __forceinline__ float round_to(float v) { return to_float<T>(from_float<T>(v)); }

// Raw bits of a float, on the device and on the host (tests call the
// portable fp8 conversion below from host code).
__host__ __device__ __forceinline__ uint32_t float_bits(float v) {
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
  return __float_as_uint(v);
#else
  uint32_t u;
  __builtin_memcpy(&u, &v, sizeof(u));
  return u;
#endif
}

__host__ __device__ __forceinline__ float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
  return __uint_as_float(u);
#else
  float v;
  __builtin_memcpy(&v, &u, sizeof(v));
  return v;
#endif
}

// float -> float8_e4m3fn byte, portable: round to nearest even, saturate to
// +-448, NaN stays NaN. That equals torch's clamp(-448, 448) then the cast.
__host__ __device__ __forceinline__ uint8_t fp8_e4m3_portable(float v) {
  const uint32_t u = float_bits(v);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  const float a = bits_float(u & 0x7fffffffu);
  if (a != a) return sign | 0x7fu;           // NaN
  if (a >= 448.0f) return sign | 0x7eu;      // saturate (also +-inf)
  if (a < 0.015625f) {                       // below 2^-6: subnormal steps of 2^-9
    return sign | static_cast<uint8_t>(rintf(a * 512.0f));  // 8 rounds up to 2^-6: still right
  }
  uint32_t b = u & 0x7fffffffu;
  b += 0x7ffffu + ((b >> 20) & 1u);          // round the mantissa to 3 bits, ties to even
  const uint32_t e = (b >> 23) - 127u + 7u;  // e4m3 exponent (bias 7), 1..15
  const uint32_t m = (b >> 20) & 7u;
  const uint32_t code = (e << 3) | m;
  return sign | static_cast<uint8_t>(code > 0x7eu ? 0x7eu : code);
}

__device__ __forceinline__ uint8_t to_fp8_e4m3(float v) {
#ifdef USE_ROCM
  return fp8_e4m3_portable(v);
#else
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3));
#endif
}

// Two values to two fp8 bytes (first value in the low byte).
__device__ __forceinline__ uint32_t to_fp8x2_e4m3(float a, float b) {
#ifdef USE_ROCM
  return static_cast<uint32_t>(fp8_e4m3_portable(a)) |
         (static_cast<uint32_t>(fp8_e4m3_portable(b)) << 8);
#else
  return static_cast<uint32_t>(
      __nv_cvt_float2_to_fp8x2(make_float2(a, b), __NV_SATFINITE, __NV_E4M3));
#endif
}

// ------------------------------------------------------------------ division by a scale

// Quantisation divides every element by one scale (static), or by the scale
// of its row or group. An IEEE division per element (__fdiv_rn) compiles to a
// reciprocal on the special function unit, five FMAs and a range check that
// branches to a slow path: a serial chain per element that dominated the
// write phase of the norm+fp8 kernel. With the divisor fixed, its correctly
// rounded reciprocal y = RN(1/b) is formed once, and each quotient costs one
// multiplication and two Markstein corrections (q += (a - b q) y, with FMAs):
// the first brings q within one ulp of a/b, after which the second returns
// RN(a/b) exactly (Markstein's theorem: y within half an ulp of 1/b, q within
// one ulp, no underflow). Bitwise equal to __fdiv_rn whenever the quotient
// and the residuals are normal, which the guards below ensure for every
// result that can reach a nonzero fp8 value:
//  * the divisor must lie in [2^-60, 2^60] (else every element takes __fdiv_rn);
//  * an infinite or NaN first quotient is returned as is (inf or NaN, as the
//    division gives; the fp8 cast saturates or keeps NaN the same way);
//  * a dividend below ~2^-100 can lose exactness in a subnormal residual, but
//    its quotient is below 2^-40, which is +-0 in fp8 either way: the sign is
//    restored with copysign (the corrections can turn -0 into +0).
// Checked on the host against IEEE division for every bf16 and fp16 dividend
// and 2^16 random float dividends times 12000 divisors (log-uniform in range,
// all-ones mantissas, amax/448 forms): identical fp8 bytes, and identical
// float bits wherever the dividend is at least 2^-100 and the quotient normal.
struct ScaleDiv {
  float b;     // the divisor
  float y;     // RN(1 / b)
  bool fast;   // b in range: reciprocal path
  bool one_ok; // kDivRecip1 gives IEEE's fp8 bytes for this divisor (see below)
  // kDivCheck bounds on the flags of fp8_mid_flag / fp8_small_flag: a chunk
  // with a flag under its bound takes the two-correction path. Both 0 when y
  // is exact (b a power of two: a * y rounds to RN(a / b) itself).
  uint32_t mid_limit;
  uint32_t small_limit;
};

// How quantising kernels divide by a scale (knob fp8_div: 1 = IEEE, 2 =
// reciprocal + two corrections, 3 = the near-step check below, 0 or 4 = one
// correction where it is exact for the scale, else two; group quant maps 0
// to two corrections, see quant.cu).
enum DivKind : int { kDivIeee = 0, kDivRecip2 = 1, kDivCheck = 2, kDivRecip1 = 3 };

inline int div_kind_from_knob() {
  switch (knob(Knob::kFp8Div)) {
    case 1: return kDivIeee;
    case 2: return kDivRecip2;
    case 3: return kDivCheck;
    default: return kDivRecip1;
  }
}

// One Markstein correction is enough for the fp8 byte (not for every float32
// bit) unless the divisor's significand B (24 bits) is within kOneCorrMargin
// of a multiple of 2^20, multiples excluded. Why: q0 = RN(a y) lies within
// (a/b) 2^-23 (1 + 2^-25) of a / b, and q1 = RN(q0 + r y), with r = a - b q0
// (rounded at most once), within (a/b) 2^-46 of a / b before its rounding.
// So q1 != RN(a/b) only if a float32 rounding midpoint M = K 2^t (K odd,
// 2^24 < K < 2^25) lies that close to a / b: with a = A 2^ea, A < 2^24, the
// integer X = A 2^(ea - eb - t) - B K then satisfies 0 < |X| < 8 (X is not 0:
// B K has at most 23 trailing zero bits, A 2^(ea - eb - t) at least 24). The
// fp8 byte can only change if a neighbour of M is an e4m3 rounding step; a
// step has at most 5 significant bits, so K = S 2^20 +- 1 and B K = +-B
// (mod 2^20), hence B = +-X (mod 2^20): B mod 2^20 in [1, 7] or [2^20 - 7,
// 2^20 - 1]. Divisors there (about 3 in 10^5 of all scales) take two
// corrections; the test is per scale, so a warp never diverges on the data.
// Replayed on the host (tests/test_fp8_div_one_correction.py, exact fma
// emulation) for every bf16 and fp16 dividend, and on the GPU against
// torch's division (test_fp8_division_forms_are_bitwise_native).
constexpr uint32_t kOneCorrMargin = 15;  // 7 is the bound; twice that, for safety

__host__ __device__ __forceinline__ bool one_correction_exact(float b) {
  const uint32_t low = float_bits(b) & 0xfffffu;
  return !(low - 1u < kOneCorrMargin || low > 0xfffffu - kOneCorrMargin);
}

constexpr uint32_t kFp8MidLimit = 0x8000u;
constexpr uint32_t kFp8SmallLimit = 0x3c800000u * 2u - 1u;  // |q| = 2^-6

__device__ __forceinline__ ScaleDiv make_scale_div(float b, bool allow_fast) {
  ScaleDiv d;
  d.b = b;
  d.y = __fdiv_rn(1.0f, b);  // correctly rounded on every platform (no rcp intrinsic)
  d.fast = allow_fast && b >= 0x1p-60f && b <= 0x1p60f;
  d.one_ok = one_correction_exact(b);
  const bool exact = (float_bits(b) & 0x7fffffu) == 0;
  d.mid_limit = exact ? 0u : kFp8MidLimit;
  d.small_limit = exact ? 0u : kFp8SmallLimit;
  return d;
}

// a / d.b through the reciprocal; valid only when d.fast.
__host__ __device__ __forceinline__ float div_by_reciprocal(float a, float b, float y) {
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
  const float q0 = __fmul_rn(a, y);  // never contracted into a neighbouring FMA
#else
  const float q0 = a * y;
#endif
  const float r0 = fmaf(-q0, b, a);
  const float q1 = fmaf(r0, y, q0);
  const float r1 = fmaf(-q1, b, a);
  const float q2 = fmaf(r1, y, q1);
  return fabsf(q0) <= 3.40282347e+38f ? copysignf(q2, a) : q0;
}

// a / d.b with one correction: the fp8 byte of IEEE division when
// one_correction_exact(b) (see there); valid only when d.fast. The residual
// is formed negated, q0 b - a, so that a zero dividend keeps its sign with
// no copysign: -0 gives nr = +0 and q1 = (-0) y + (-0) = -0 (a - b q0 would
// be +0, and +0 + -0 = +0); the magnitudes are those of q0 + (a - b q0) y.
__host__ __device__ __forceinline__ float div_by_reciprocal1(float a, float b, float y) {
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
  const float q0 = __fmul_rn(a, y);
#else
  const float q0 = a * y;
#endif
  const float q1 = fmaf(-fmaf(q0, b, -a), y, q0);
  return fabsf(q0) <= 3.40282347e+38f ? q1 : q0;  // inf: the correction would give NaN
}

// FAST is a compile-time choice so that each variant is straight-line code
// over a whole chunk (the per-element branch of __fdiv_rn serialises it).
template <bool FAST>
__device__ __forceinline__ float div_scale(float a, const ScaleDiv& d) {
  if constexpr (FAST) return div_by_reciprocal(a, d.b, d.y);
  else return __fdiv_rn(a, d.b);
}

// Only the fp8 byte of a / b is needed, and the fp8 rounding of a float q
// changes only where q crosses a step: a midpoint between two neighbouring
// e4m3 values (above 448 everything saturates: no step). q0 = RN(a * y) lies
// within 2 ulps of a / b (y within half an ulp of 1 / b) and RN(a / b) within
// half an ulp, so if their fp8 bytes differ, a step lies between them, within
// 3 units of q0's bits. Steps at or above 2^-6 are (2m + 1) 2^(e - 4) with
// m in [8, 15]: low 20 bits exactly 0x80000, and not near a binade edge, so
// q0's low 20 bits are then within [-4, 3] of 0x80000: fp8_mid_flag below
// 2^15. Steps under 2^-6 (fp8 subnormals) have other bit patterns: every
// nonzero |q0| under 2^-6 is flagged instead (fp8_small_flag; a zero q0 is
// exact, inf and NaN pass through as the division gives them). The fp8
// values themselves (low 20 bits zero, e.g. the 448 of a group's max) are
// not flagged. Per element: one multiplication and three integer operations
// instead of a multiplication and four FMAs; a chunk with a flagged element
// redoes the chunk with div_by_reciprocal. Ordinary activations scaled onto
// the fp8 range flag a few elements in 10^4, nearly all of them under 2^-6. tests/test_fp8_div_check.py replays the scheme on the
// host against IEEE division for every bf16 and fp16 dividend.
__host__ __device__ __forceinline__ uint32_t fp8_mid_flag(float q0) {
  return float_bits(q0) * 4096u + 0x80004000u;  // ((low 20 bits) - 0x80000 + 4) << 12
}
__host__ __device__ __forceinline__ uint32_t fp8_small_flag(float q0) {
  return float_bits(q0) * 2u - 1u;  // |q0| without the sign, minus one: zero wraps to max
}

template <int KIND, int N>
__device__ __forceinline__ void divide_by_scale(float (&v)[N], const ScaleDiv& d) {
  if constexpr (KIND == kDivCheck) {
    float q[N];
    uint32_t mid = 0xffffffffu;
    uint32_t small = 0xffffffffu;
#pragma unroll
    for (int j = 0; j < N; ++j) {
      q[j] = __fmul_rn(v[j], d.y);
      mid = min(mid, fp8_mid_flag(q[j]));
      small = min(small, fp8_small_flag(q[j]));
    }
    if (mid < d.mid_limit || small < d.small_limit) {
#pragma unroll
      for (int j = 0; j < N; ++j) v[j] = div_by_reciprocal(v[j], d.b, d.y);
    } else {
#pragma unroll
      for (int j = 0; j < N; ++j) v[j] = q[j];
    }
  } else if constexpr (KIND == kDivRecip1) {
#pragma unroll
    for (int j = 0; j < N; ++j) v[j] = div_by_reciprocal1(v[j], d.b, d.y);
  } else {
#pragma unroll
    for (int j = 0; j < N; ++j) v[j] = div_scale<KIND == kDivRecip2>(v[j], d);
  }
}

// Calls f(std::integral_constant<int, KIND>) with the division variant for
// this scale: IEEE where the scale is out of the reciprocal's range.
template <typename F>
__device__ __forceinline__ void with_div_kind(int kind, const ScaleDiv& d, F&& f) {
  if (d.fast && kind == kDivCheck) f(std::integral_constant<int, kDivCheck>{});
  else if (d.fast && kind == kDivRecip1 && d.one_ok) f(std::integral_constant<int, kDivRecip1>{});
  else if (d.fast) f(std::integral_constant<int, kDivRecip2>{});
  else f(std::integral_constant<int, kDivIeee>{});
}

// Keeps every load of a thread above it ahead of what follows: without it
// the compiler sinks a load below arithmetic that does not need it (the
// activation kernel: the up-half load below the gelu/tanh chain, next to its
// first use), or hoists a loop-invariant chain that waits for another load
// above it (static quant: the scale's reciprocal, whose first instruction
// stalls the in-order issue until the scale arrives, so the row's loads went
// out one memory round trip later). Either way a few-token call paid two
// round trips for one. __syncwarp is a scheduling barrier for memory
// accesses and costs at most a NOP for a converged warp (checked in the
// sm_90 SASS). Every lane of the warp must reach it (no early exit before).
#ifdef USE_ROCM
#define IR_LOAD_FENCE() ((void)0)
#else
#define IR_LOAD_FENCE() __syncwarp()
#endif

// Parameters of the lean element-wise kernels (activations, static quant),
// passed by value. Why a struct of its own: a kernel's first instructions
// read its parameters from the constant bank, whose contents are new at
// every launch, so (our reading; the constant cache misses were not measured
// directly) each 64-byte line of it that the first loads wait for can cost a
// memory round trip; one line instead of two gained 0.05-0.1 us a call at
// 1-128 rows on the H100 (knob_sweep_h100.md F3). Everything the row's first loads need
// comes first (c[0x0][0x210..0x23f] on sm_90, one line); the row count last:
// the kernels' row loop (for_each_lean_row) tests it only after the first row.
struct LeanEwArgs {
  const void* in;     // input rows
  int64_t in_stride;  // elements between input rows
  int npieces;        // pieces a row (activations: of each half)
  int extra;          // activations: d, the up half's offset; static quant: the division kind
  const float* scale; // static quant: the one-element scale
  void* out;          // output rows
  int64_t out_stride; // elements (bytes for fp8) between output rows
  int64_t rows;
};

// Calls f(row, p0) for each row a block of a lean element-wise kernel
// covers: blockIdx.y, then every gridDim.y after it (rows past 65535). The
// row count is tested only after the first row: the launch's grid y never
// exceeds it, and a test before the row's loads would make them wait for the
// count's parameter line. p0 is this thread's first piece in the row, its
// k-th piece p0 + k * blockDim.x (a block covers blockDim.x * CPT pieces).
template <int CPT, typename F>
__device__ __forceinline__ void for_each_lean_row(const LeanEwArgs& a, F&& f) {
  const int p0 = static_cast<int>(blockIdx.x) * static_cast<int>(blockDim.x) * CPT +
                 static_cast<int>(threadIdx.x);
  int64_t row = blockIdx.y;
  do {
    f(row, p0);
    row += gridDim.y;
  } while (row < a.rows);
}

// ------------------------------------------------------------------ vectors

// Raw bits of one element, and back.
template <typename T>
__device__ __forceinline__ float bits_to_float(uint32_t b);
template <>
__device__ __forceinline__ float bits_to_float<float>(uint32_t b) { return __uint_as_float(b); }
template <>
__device__ __forceinline__ float bits_to_float<__nv_bfloat16>(uint32_t b) {
  return __uint_as_float(b << 16);
}
template <>
__device__ __forceinline__ float bits_to_float<__half>(uint32_t b) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(b)));
}

// Two floats rounded to T and packed into one word (one element for float).
template <typename T>
__device__ __forceinline__ uint32_t pack2(float a, float b);
template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float a, float b) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);  // a in the low half
  return *reinterpret_cast<const uint32_t*>(&h);
}
template <>
__device__ __forceinline__ uint32_t pack2<__half>(float a, float b) {
  const __half2 h = __floats2half2_rn(a, b);
  return *reinterpret_cast<const uint32_t*>(&h);
}

// A piece: BYTES (4, 8 or 16) of consecutive elements of T, kept as raw
// words so that it costs BYTES / 4 registers whatever T is. The lean kernels
// load and store whole pieces (their launchers check the alignment on the
// host); Vec is the 16-byte piece.
template <int BYTES>
struct RawPiece;
template <>
struct RawPiece<4> { using type = uint32_t; };
template <>
struct RawPiece<8> { using type = uint2; };
template <>
struct RawPiece<16> { using type = uint4; };

// E elements of T in W words.
template <typename T, int BYTES>
struct alignas(BYTES) Piece {
  using Elem = T;
  static constexpr int W = BYTES / 4;
  static constexpr int E = BYTES / static_cast<int>(sizeof(T));
  uint32_t w[W];

  // Element j as float (j must be a compile-time constant after unrolling).
  __device__ __forceinline__ float get(int j) const {
    if constexpr (sizeof(T) == 4) return bits_to_float<T>(w[j]);
    else return bits_to_float<T>((j & 1) ? (w[j >> 1] >> 16) : (w[j >> 1] & 0xffffu));
  }
  // Set every element from f[0..E), rounding to T.
  __device__ __forceinline__ void set(const float (&f)[E]) {
    if constexpr (sizeof(T) == 4) {
#pragma unroll
      for (int k = 0; k < W; ++k) w[k] = __float_as_uint(f[k]);
    } else {
#pragma unroll
      for (int k = 0; k < W; ++k) w[k] = pack2<T>(f[2 * k], f[2 * k + 1]);
    }
  }
  __device__ __forceinline__ static Piece load(const T* p) {
    using R = typename RawPiece<BYTES>::type;
    Piece out;
    *reinterpret_cast<R*>(out.w) = *reinterpret_cast<const R*>(p);
    return out;
  }
  __device__ __forceinline__ void store(T* p) const {
    using R = typename RawPiece<BYTES>::type;
    *reinterpret_cast<R*>(p) = *reinterpret_cast<const R*>(w);
  }
};

// One 16-byte chunk of T (8 bf16/fp16 or 4 fp32): the unit of the kernels'
// 16-byte loads and stores (and of load_chunk / store_chunk).
template <typename T>
struct alignas(16) Vec : Piece<T, 16> {
  static constexpr int N = 16 / sizeof(T);
  using Piece<T, 16>::w;

  // The raw bits of element j (the element-wise stores).
  __device__ __forceinline__ uint32_t raw(int j) const {
    if constexpr (sizeof(T) == 4) return w[j];
    else return (j & 1) ? (w[j >> 1] >> 16) : (w[j >> 1] & 0xffffu);
  }
};

// N fp8 bytes (what one input chunk quantises to), packed in N / 4 words.
template <int N>
struct alignas(N) Fp8Vec {
  uint32_t w[N / 4];

  __device__ __forceinline__ void set(const float (&f)[N]) {
#pragma unroll
    for (int k = 0; k < N / 4; ++k) {
      w[k] = to_fp8x2_e4m3(f[4 * k], f[4 * k + 1]) | (to_fp8x2_e4m3(f[4 * k + 2], f[4 * k + 3]) << 16);
    }
  }
  __device__ __forceinline__ uint8_t byte(int j) const {
    return static_cast<uint8_t>(w[j >> 2] >> (8 * (j & 3)));
  }
};

__device__ __forceinline__ bool aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}
__device__ __forceinline__ bool aligned_to(const void* p, unsigned bytes) {
  return (reinterpret_cast<uintptr_t>(p) & (bytes - 1u)) == 0;
}

// Raw element access for the element-wise paths.
template <typename T>
using RawOf = typename std::conditional<sizeof(T) == 4, uint32_t, uint16_t>::type;

// Load chunk `c` of a row of `n` elements: one 16-byte load when `vec` and the
// chunk is whole, else element by element (missing elements read as zero).
// Both paths fill the same registers, so results do not depend on the path.
template <typename T>
__device__ __forceinline__ Vec<T> load_chunk(const T* row, int c, int n, bool vec) {
  constexpr int N = Vec<T>::N;
  Vec<T> out;
  const int base = c * N;
  if (vec && base + N <= n) {
    out = *reinterpret_cast<const Vec<T>*>(row + base);
  } else {
    const RawOf<T>* r = reinterpret_cast<const RawOf<T>*>(row);
    if constexpr (sizeof(T) == 4) {
#pragma unroll
      for (int k = 0; k < 4; ++k) out.w[k] = base + k < n ? r[base + k] : 0u;
    } else {
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const uint32_t lo = base + 2 * k < n ? r[base + 2 * k] : 0u;
        const uint32_t hi = base + 2 * k + 1 < n ? r[base + 2 * k + 1] : 0u;
        out.w[k] = lo | (hi << 16);
      }
    }
  }
  return out;
}

template <typename T>
__device__ __forceinline__ void store_chunk(T* row, int c, int n, bool vec, const Vec<T>& val) {
  constexpr int N = Vec<T>::N;
  const int base = c * N;
  if (vec && base + N <= n) {
    *reinterpret_cast<Vec<T>*>(row + base) = val;
  } else {
    RawOf<T>* r = reinterpret_cast<RawOf<T>*>(row);
#pragma unroll
    for (int j = 0; j < N; ++j)
      if (base + j < n) r[base + j] = static_cast<RawOf<T>>(val.raw(j));
  }
}

template <int N>
__device__ __forceinline__ void store_fp8_chunk(uint8_t* row, int c, int n, bool vec,
                                                const Fp8Vec<N>& val) {
  const int base = c * N;
  if (vec && base + N <= n) {
    *reinterpret_cast<Fp8Vec<N>*>(row + base) = val;
  } else {
#pragma unroll
    for (int j = 0; j < N; ++j)
      if (base + j < n) row[base + j] = val.byte(j);
  }
}

// N values (a multiple of 4: whole words of fp8 bytes) divided by the scale
// (KIND: see divide_by_scale) and packed as fp8: the arithmetic of every
// quantising kernel's write step.
//
// kDivRecip1 skips div_by_reciprocal1's infinity test per element: where the
// first quotient is infinite the unchecked correction gives NaN (inf - inf)
// instead of the division's inf, i.e. an fp8 NaN byte (0x7f / 0xff) where
// IEEE division saturates to +-448. A chunk with a NaN byte (that, or a NaN
// dividend: rare either way) is redone with the test; the check costs three
// integer operations per four bytes instead of two per element.
template <int KIND, int N>
__device__ __forceinline__ Fp8Vec<N> to_fp8_values(float (&y)[N], const ScaleDiv& d) {
  Fp8Vec<N> q;
  if constexpr (KIND == kDivRecip1) {
    float f[N];
#pragma unroll
    for (int j = 0; j < N; ++j) {
      const float q0 = __fmul_rn(y[j], d.y);
      f[j] = fmaf(-fmaf(q0, d.b, -y[j]), d.y, q0);
    }
    q.set(f);
    uint32_t nan = 0;
#pragma unroll
    for (int k = 0; k < N / 4; ++k) nan |= ((q.w[k] & 0x7f7f7f7fu) + 0x01010101u) & 0x80808080u;
    if (nan == 0) return q;
  }
  divide_by_scale<KIND>(y, d);
  q.set(y);
  return q;
}

// The same for one 16-byte chunk of T.
template <int KIND, typename T>
__device__ __forceinline__ Fp8Vec<Vec<T>::N> to_fp8_chunk(const Vec<T>& v, const ScaleDiv& d) {
  float y[Vec<T>::N];
#pragma unroll
  for (int j = 0; j < Vec<T>::N; ++j) y[j] = v.get(j);
  return to_fp8_values<KIND>(y, d);
}

// Chunk c of a row, divided by the scale and stored as fp8.
template <int KIND, typename T>
__device__ __forceinline__ void quantise_chunk(uint8_t* out, int c, int n, bool vec, const Vec<T>& v,
                                               const ScaleDiv& d) {
  store_fp8_chunk<Vec<T>::N>(out, c, n, vec, to_fp8_chunk<KIND>(v, d));
}

// ------------------------------------------------------------------ reductions

struct SumOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return a + b; }
  static constexpr float kIdentity = 0.0f;
};
// max and min that give NaN where either operand is NaN, as torch's amax,
// minimum and clamp do (fmaxf and fminf return the other operand): a NaN in
// a quantised row or group makes its scale and outputs NaN, as native's.
// One instruction on sm_80 and newer (max.NaN / min.NaN, FMNMX.NAN), like
// fmaxf; the ROCm build spells it out.
__device__ __forceinline__ float nan_max(float a, float b) {
#ifdef USE_ROCM
  return (a != a || b != b) ? a + b : fmaxf(a, b);
#else
  float r;
  asm("max.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
  return r;
#endif
}
__device__ __forceinline__ float nan_min(float a, float b) {
#ifdef USE_ROCM
  return (a != a || b != b) ? a + b : fminf(a, b);
#else
  float r;
  asm("min.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
  return r;
#endif
}

struct MaxOp {  // the quant kernels' |x| max: NaN propagates (nan_max)
  __device__ __forceinline__ float operator()(float a, float b) const { return nan_max(a, b); }
  static constexpr float kIdentity = 0.0f;  // used for |x|, so 0 is the identity
};

// Butterfly over `width` lanes (a power of two <= warp size). The tree is
// fixed, so the result is deterministic and the same in every lane.
template <typename Op, int WIDTH = IR_WARP_SIZE>
__device__ __forceinline__ float warp_reduce(float v, Op op) {
#pragma unroll
  for (int off = WIDTH / 2; off > 0; off >>= 1) v = op(v, IR_SHFL_XOR(v, off));
  return v;
}

// Sum (or max) over the `wpr` warps of one row whose warp slots are
// smem[base .. base + wpr); every thread of the row gets the result. One
// barrier: each warp writes its partial, then every warp reduces the row's
// partials itself, all with the same butterfly (lanes past `wpr` add the
// identity): the same bits as the former two-barrier block reduction
// (warp 0 reduced the partials and broadcast them), in every warp. The order
// depends only on blockDim.x, which the launchers derive from the hidden
// size alone: that is what makes rows batch invariant. `wpr` must be the same for every row of the block
// (the barrier is reached by all threads or none), and `smem` used once per
// kernel (a second call would need a barrier before reusing the slots).
// combine_warps: the second half, for a `v` that is already its warp's total
// in every lane.
template <typename Op>
__device__ __forceinline__ float combine_warps(float v, Op op, float* smem, int base, int wpr) {
  const int lane = threadIdx.x % IR_WARP_SIZE;
  if (wpr == 1) return v;
  if (lane == 0) smem[base + static_cast<int>(threadIdx.x) / IR_WARP_SIZE] = v;
  __syncthreads();
  const float w = lane < wpr ? smem[base + lane] : Op::kIdentity;
  return warp_reduce(w, op);
}

template <typename Op>
__device__ __forceinline__ float row_allreduce(float v, Op op, float* smem, int base, int wpr) {
  return combine_warps(warp_reduce(v, op), op, smem, base, wpr);
}

// Instantiate `body` with T bound to the element type of `id`.
#define IR_DISPATCH_DTYPE(id, T, ...)                     \
  switch (id) {                                           \
    case ::ir_cuda::DTypeId::kFloat32: {                  \
      using T = float;                                    \
      __VA_ARGS__;                                        \
      break;                                              \
    }                                                     \
    case ::ir_cuda::DTypeId::kFloat16: {                  \
      using T = __half;                                   \
      __VA_ARGS__;                                        \
      break;                                              \
    }                                                     \
    case ::ir_cuda::DTypeId::kBFloat16: {                 \
      using T = __nv_bfloat16;                            \
      __VA_ARGS__;                                        \
      break;                                              \
    }                                                     \
  }

__host__ __device__ constexpr inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ------------------------------------------------------------------ element-wise launch shape

// Element-wise kernels (act_and_mul, static quant) over `rows` rows of
// `nchunks` 16-byte chunks: block (tx, ty) covers ty rows and a tile of
// tx * cpt chunks of each; grid.x walks the rows, grid.y the column tiles
// (a grid-stride loop past 65535 tiles). Few rows still spread over many
// blocks (a one-token call is one wave of short blocks, not one block that
// loops over the row). No reduction: the shape may follow the row count.
struct EwConfig {
  int tx, ty, cpt;
  unsigned gx, gy;
};

// `wide` (static quant): two chunks per thread and 128 threads per block
// whenever the chunks give more than 64 threads per SM, four x 256 from 64K
// chunks per SM on.
inline EwConfig ew_config(int64_t rows, int nchunks, bool wide = false) {
  const int64_t total = rows * static_cast<int64_t>(nchunks);
  const bool tiny = total <= static_cast<int64_t>(sm_count()) * 64;
  const bool huge = wide && total >= static_cast<int64_t>(sm_count()) * 65536;
  int cpt = knob(Knob::kEwCpt);
  // Default: two chunks per thread once the problem fills the GPU several
  // times over (more bytes in flight per thread), else one (more blocks).
  if (cpt <= 0) {
    cpt = huge ? 4 : (wide && !tiny) || total >= static_cast<int64_t>(sm_count()) * 4096 ? 2 : 1;
  }
  cpt = cpt >= 4 ? 4 : (cpt >= 2 ? 2 : 1);
  int max_tx = knob(Knob::kEwThreads);
  // Default: 256 threads per block (128 when wide, but huge); one warp per
  // block while the chunks would give under 64 threads per SM (a few tokens):
  // the same threads over more SMs, fewer warps per scheduler on each
  // (ew_threads=256: the former rule).
  const int small_tx = tiny ? IR_WARP_SIZE : (wide && !huge ? 128 : 256);
  max_tx = max_tx > 0 ? static_cast<int>(ceil_div(max_tx, IR_WARP_SIZE)) * IR_WARP_SIZE : small_tx;
  max_tx = max_tx < IR_WARP_SIZE ? IR_WARP_SIZE : (max_tx > 1024 ? 1024 : max_tx);
  const int64_t row_threads = ceil_div(ceil_div(nchunks, cpt), IR_WARP_SIZE) * IR_WARP_SIZE;
  EwConfig c;
  c.cpt = cpt;
  c.tx = static_cast<int>(row_threads < max_tx ? row_threads : max_tx);
  c.ty = max_tx / c.tx > 1 ? max_tx / c.tx : 1;
  const int64_t tiles = ceil_div(nchunks, static_cast<int64_t>(c.tx) * cpt);
  c.gx = static_cast<unsigned>(ceil_div(rows, c.ty));
  c.gy = static_cast<unsigned>(tiles < 65535 ? tiles : 65535);
  return c;
}

}  // namespace ir_cuda
