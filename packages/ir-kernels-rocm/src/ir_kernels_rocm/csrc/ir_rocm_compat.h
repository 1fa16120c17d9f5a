// HIP replacements for the CUDA fp8 conversion intrinsics that the ROCm
// build's rewrite step (ir_kernels_rocm/hip_sources.py) maps onto, for
// sources that call them outside a USE_ROCM branch.
//
// torch.float8_e4m3fn is the OCP e4m3 format: gfx942 has no conversion
// instruction for it and hip_fp8.h only gained it in later ROCm releases,
// so the conversion is done in software: round to nearest even, saturate to
// +-448 (IR_ROCM_SATFINITE) or to NaN (IR_ROCM_NOSAT), NaN kept.
#pragma once

#include <cstdint>

#include <hip/hip_runtime.h>

enum IrRocmSaturation { IR_ROCM_NOSAT = 0, IR_ROCM_SATFINITE = 1 };
// Only e4m3 is provided: a source asking for e5m2 fails to compile here.
enum IrRocmFp8Kind { IR_ROCM_E4M3 = 0 };

__host__ __device__ inline uint8_t ir_rocm_cvt_float_to_fp8(float v, IrRocmSaturation sat,
                                                            IrRocmFp8Kind /*kind*/) {
  const uint32_t u = __float_as_uint(v);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  const uint32_t abs_bits = u & 0x7fffffffu;
  if (abs_bits > 0x7f800000u) return sign | 0x7fu;  // NaN
  const float a = __uint_as_float(abs_bits);
  if (a > 464.0f) return sign | (sat == IR_ROCM_SATFINITE ? 0x7eu : 0x7fu);  // past 448 + half ulp
  if (a >= 448.0f) return sign | 0x7eu;                                       // rounds to 448
  if (a < 0.015625f) {  // below 2^-6: subnormals in steps of 2^-9 (8 steps = the smallest normal)
    return sign | static_cast<uint8_t>(rintf(a * 512.0f));
  }
  uint32_t b = abs_bits;
  b += 0x7ffffu + ((b >> 20) & 1u);  // round the mantissa to 3 bits, ties to even
  const uint32_t e = (b >> 23) - 127u + 7u;
  const uint32_t m = (b >> 20) & 7u;
  const uint32_t code = (e << 3) | m;
  return sign | static_cast<uint8_t>(code > 0x7eu ? 0x7eu : code);
}

// Two values, the first in the low byte (as CUDA's fp8x2 conversion).
__host__ __device__ inline uint16_t ir_rocm_cvt_float2_to_fp8x2(float2 v, IrRocmSaturation sat,
                                                                IrRocmFp8Kind kind) {
  return static_cast<uint16_t>(ir_rocm_cvt_float_to_fp8(v.x, sat, kind)) |
         static_cast<uint16_t>(static_cast<uint16_t>(ir_rocm_cvt_float_to_fp8(v.y, sat, kind)) << 8);
}
