// Torch glue of the ROCm build: the ir_rocm op namespace over the launch
// functions of ir-kernels-cuda's launch.h (hipified beside this file).
//
// Written against HIP directly (this file is passed through hipify with the
// kernels only so that its include of launch.h follows the renamed header).
// Ops write into outputs the Python wrappers allocate; each is compiled only
// when the kernel sources define its launcher (IR_HAS_* from the build).
#include <ATen/core/Tensor.h>
#include <c10/core/DeviceGuard.h>
#include <c10/hip/HIPStream.h>
#include <torch/library.h>

#include "launch.h"

namespace {

using ir_cuda::DTypeId;

DTypeId dtype_id(const at::Tensor& t, const char* what) {
  switch (t.scalar_type()) {
    case at::kFloat: return DTypeId::kFloat32;
    case at::kHalf: return DTypeId::kFloat16;
    case at::kBFloat16: return DTypeId::kBFloat16;
    default: TORCH_CHECK(false, "ir_rocm: ", what, " must be float32, float16 or bfloat16, got ",
                         t.scalar_type());
  }
  return DTypeId::kFloat32;  // unreachable
}

hipStream_t stream_of(const at::Tensor& t) {
  return c10::hip::getCurrentHIPStream(t.device().index()).stream();
}

// [rows, hidden] view with a unit last stride and one row stride (a copy
// only when the layout cannot be described that way).
at::Tensor rows_view(const at::Tensor& t) {
  TORCH_CHECK(t.dim() >= 1, "ir_rocm: expected at least one dimension");
  at::Tensor v = t.stride(-1) == 1 ? t : t.contiguous();
  const int64_t hidden = v.size(-1);
  if (v.dim() == 1) return v.view({1, hidden});
  if (v.dim() == 2) return v;
  return v.reshape({-1, hidden});
}

void check_out(const at::Tensor& out, const at::Tensor& like, const char* what) {
  TORCH_CHECK(out.is_contiguous(), "ir_rocm: ", what, " must be contiguous");
  TORCH_CHECK(out.numel() == like.numel(), "ir_rocm: ", what, " has ", out.numel(),
              " elements, expected ", like.numel());
  TORCH_CHECK(out.device() == like.device(), "ir_rocm: ", what, " is on another device");
}

const float* scalar_f32(const c10::optional<at::Tensor>& t, const char* what) {
  if (!t.has_value()) return nullptr;
  TORCH_CHECK(t->scalar_type() == at::kFloat && t->numel() == 1 && t->is_cuda(),
              "ir_rocm: ", what, " must be a one-element float32 GPU tensor");
  return t->data_ptr<float>();
}

#ifdef IR_HAS_NORM
// out (and residual_out) are contiguous; x / residual may be row-strided.
void norm_impl(at::Tensor& out, const c10::optional<at::Tensor>& residual_out, const at::Tensor& x,
               const c10::optional<at::Tensor>& residual, const c10::optional<at::Tensor>& weight,
               double epsilon, int64_t variance_size, const c10::optional<at::Tensor>& scale) {
  const c10::DeviceGuard guard(x.device());
  const at::Tensor x2 = rows_view(x);
  ir_cuda::NormArgs a{};
  a.dtype = dtype_id(x, "x");
  a.rows = x2.size(0);
  a.hidden = static_cast<int>(x2.size(1));
  a.variance_size = static_cast<int>(variance_size > 0 ? variance_size : x2.size(1));
  TORCH_CHECK(a.variance_size <= a.hidden, "ir_rocm: variance_size exceeds the hidden size");
  a.epsilon = static_cast<float>(epsilon);
  a.x = x2.data_ptr();
  a.x_stride = x2.stride(0);
  at::Tensor r2;
  if (residual.has_value()) {
    TORCH_CHECK(residual_out.has_value(), "ir_rocm: residual_out missing");
    TORCH_CHECK(residual->scalar_type() == x.scalar_type(), "ir_rocm: residual dtype differs from x");
    r2 = rows_view(*residual);
    check_out(*residual_out, x, "residual_out");
    a.residual = r2.data_ptr();
    a.residual_stride = r2.stride(0);
    a.residual_out = residual_out->data_ptr();
    a.residual_out_stride = a.hidden;
  }
  check_out(out, x, "out");
  a.out = out.data_ptr();
  a.out_stride = a.hidden;
  at::Tensor w;
  if (weight.has_value()) {
    TORCH_CHECK(weight->scalar_type() == x.scalar_type() && weight->numel() == a.hidden,
                "ir_rocm: weight must have x's dtype and hidden-size elements");
    w = weight->contiguous();
    a.weight = w.data_ptr();
  }
  a.scale = scalar_f32(scale, "scale");
  ir_cuda::launch_norm(a, stream_of(x));
}

void rms_norm(at::Tensor out, const at::Tensor& x, const c10::optional<at::Tensor>& weight,
              double epsilon, int64_t variance_size) {
  norm_impl(out, c10::nullopt, x, c10::nullopt, weight, epsilon, variance_size, c10::nullopt);
}

void fused_add_rms_norm(at::Tensor out, at::Tensor residual_out, const at::Tensor& x,
                        const at::Tensor& residual, const c10::optional<at::Tensor>& weight,
                        double epsilon, int64_t variance_size) {
  norm_impl(out, residual_out, x, residual, weight, epsilon, variance_size, c10::nullopt);
}

void rms_norm_static_fp8_quant(at::Tensor out, const at::Tensor& x,
                               const c10::optional<at::Tensor>& weight, double epsilon,
                               const at::Tensor& scale) {
  norm_impl(out, c10::nullopt, x, c10::nullopt, weight, epsilon, 0, scale);
}

void fused_add_rms_norm_static_fp8_quant(at::Tensor out, at::Tensor residual_out,
                                         const at::Tensor& x, const at::Tensor& residual,
                                         const c10::optional<at::Tensor>& weight, double epsilon,
                                         const at::Tensor& scale) {
  norm_impl(out, residual_out, x, residual, weight, epsilon, 0, scale);
}
#endif  // IR_HAS_NORM

#ifdef IR_HAS_ACT
// act: 0 silu, 1 gelu (erf), 2 gelu (tanh).
void act_and_mul(at::Tensor out, const at::Tensor& x, int64_t act) {
  TORCH_CHECK(act >= 0 && act <= 2, "ir_rocm: unknown activation ", act);
  const c10::DeviceGuard guard(x.device());
  const at::Tensor x2 = rows_view(x);
  TORCH_CHECK(x2.size(1) % 2 == 0, "ir_rocm: the last dimension must be even");
  ir_cuda::ActArgs a{};
  a.dtype = dtype_id(x, "x");
  a.act = static_cast<ir_cuda::Activation>(act);
  a.rows = x2.size(0);
  a.d = static_cast<int>(x2.size(1) / 2);
  a.x = x2.data_ptr();
  a.x_stride = x2.stride(0);
  TORCH_CHECK(out.is_contiguous() && out.numel() == a.rows * a.d, "ir_rocm: bad out");
  a.out = out.data_ptr();
  a.out_stride = a.d;
  ir_cuda::launch_act_and_mul(a, stream_of(x));
}
#endif  // IR_HAS_ACT

#ifdef IR_HAS_ROTARY
// In place on query/key ([tokens, heads * head_size] or [tokens, heads, head_size]).
void rotary_embedding(const at::Tensor& positions, at::Tensor query,
                      const c10::optional<at::Tensor>& key, int64_t head_size,
                      const at::Tensor& cos_sin_cache, bool is_neox) {
  const c10::DeviceGuard guard(query.device());
  TORCH_CHECK(query.stride(-1) == 1, "ir_rocm: query's last dimension must be contiguous");
  TORCH_CHECK(positions.scalar_type() == at::kLong || positions.scalar_type() == at::kInt,
              "ir_rocm: positions must be int32 or int64");
  const at::Tensor pos = positions.contiguous();
  const at::Tensor cache = cos_sin_cache.contiguous();
  ir_cuda::RotaryArgs a{};
  a.dtype = dtype_id(query, "query");
  a.cache_dtype = dtype_id(cache, "cos_sin_cache");
  TORCH_CHECK(cache.scalar_type() == query.scalar_type() || cache.scalar_type() == at::kFloat,
              "ir_rocm: cos_sin_cache must have query's dtype or float32");
  a.positions_int64 = pos.scalar_type() == at::kLong;
  a.is_neox = is_neox;
  a.tokens = pos.numel();
  a.head_size = static_cast<int>(head_size);
  a.rotary_dim = static_cast<int>(cache.size(-1));
  a.positions = pos.data_ptr();
  a.cos_sin_cache = cache.data_ptr();
  // A token's heads: [heads, head_size] with their own stride, or packed.
  auto describe = [&](const at::Tensor& t, int64_t& token_stride, int64_t& head_stride, int& heads) {
    TORCH_CHECK(t.stride(-1) == 1, "ir_rocm: query/key last dimension must be contiguous");
    if (t.dim() >= 3 && t.size(-1) == head_size) {
      heads = static_cast<int>(t.size(-2));
      head_stride = t.stride(-2);
      token_stride = t.stride(-3);
    } else {
      TORCH_CHECK(t.size(-1) % head_size == 0, "ir_rocm: last dimension is not a multiple of head_size");
      heads = static_cast<int>(t.size(-1) / head_size);
      head_stride = head_size;
      token_stride = t.dim() >= 2 ? t.stride(-2) : t.size(-1);
    }
    TORCH_CHECK(t.numel() == a.tokens * heads * head_size, "ir_rocm: query/key size does not match positions");
  };
  describe(query, a.query_stride, a.query_head_stride, a.query_heads);
  a.query = query.data_ptr();
  if (key.has_value()) {
    describe(*key, a.key_stride, a.key_head_stride, a.key_heads);
    a.key = key->data_ptr();
  }
  ir_cuda::launch_rotary(a, stream_of(query));
}
#endif  // IR_HAS_ROTARY

#if defined(IR_HAS_STATIC_QUANT) || defined(IR_HAS_DYNAMIC_QUANT) || defined(IR_HAS_GROUP_QUANT)
ir_cuda::QuantArgs quant_args(const at::Tensor& x2, at::Tensor& out) {
  ir_cuda::QuantArgs a{};
  a.dtype = dtype_id(x2, "x");
  a.rows = x2.size(0);
  a.hidden = static_cast<int>(x2.size(1));
  a.x = x2.data_ptr();
  a.x_stride = x2.stride(0);
  TORCH_CHECK(out.is_contiguous() && out.numel() == x2.numel() && out.element_size() == 1,
              "ir_rocm: out must be a contiguous one-byte tensor of x's size");
  a.out = static_cast<uint8_t*>(out.data_ptr());
  return a;
}
#endif

#ifdef IR_HAS_STATIC_QUANT
void static_fp8_quant(at::Tensor out, const at::Tensor& x, const at::Tensor& scale) {
  const c10::DeviceGuard guard(x.device());
  const at::Tensor x2 = rows_view(x);
  ir_cuda::QuantArgs a = quant_args(x2, out);
  a.scale = scalar_f32(scale, "scale");
  ir_cuda::launch_static_fp8_quant(a, stream_of(x));
}
#endif

#ifdef IR_HAS_DYNAMIC_QUANT
void dynamic_per_token_fp8_quant(at::Tensor out, at::Tensor scales, const at::Tensor& x,
                                 const c10::optional<at::Tensor>& scale_ub) {
  const c10::DeviceGuard guard(x.device());
  const at::Tensor x2 = rows_view(x);
  ir_cuda::QuantArgs a = quant_args(x2, out);
  TORCH_CHECK(scales.scalar_type() == at::kFloat && scales.is_contiguous() && scales.numel() == a.rows,
              "ir_rocm: scales must be contiguous float32 with one element per row");
  a.scales = scales.data_ptr<float>();
  a.scale_ub = scalar_f32(scale_ub, "scale_ub");
  ir_cuda::launch_dynamic_per_token_fp8_quant(a, stream_of(x));
}
#endif

#ifdef IR_HAS_GROUP_QUANT
void per_token_group_fp8_quant(at::Tensor out, at::Tensor scales, const at::Tensor& x,
                               int64_t group_size) {
  const c10::DeviceGuard guard(x.device());
  const at::Tensor x2 = rows_view(x);
  ir_cuda::QuantArgs a = quant_args(x2, out);
  TORCH_CHECK(group_size > 0 && a.hidden % group_size == 0,
              "ir_rocm: hidden size must be a multiple of group_size");
  TORCH_CHECK(scales.scalar_type() == at::kFloat && scales.is_contiguous() &&
                  scales.numel() == a.rows * (a.hidden / group_size),
              "ir_rocm: scales must be contiguous float32 [rows, hidden / group_size]");
  a.scales = scales.data_ptr<float>();
  a.group_size = static_cast<int>(group_size);
  ir_cuda::launch_per_token_group_fp8_quant(a, stream_of(x));
}
#endif

}  // namespace

TORCH_LIBRARY(ir_rocm, m) {
#ifdef IR_HAS_NORM
  m.def("rms_norm(Tensor(a!) out, Tensor x, Tensor? weight, float epsilon, int variance_size) -> ()");
  m.def("fused_add_rms_norm(Tensor(a!) out, Tensor(b!) residual_out, Tensor x, Tensor residual, "
        "Tensor? weight, float epsilon, int variance_size) -> ()");
  m.def("rms_norm_static_fp8_quant(Tensor(a!) out, Tensor x, Tensor? weight, float epsilon, "
        "Tensor scale) -> ()");
  m.def("fused_add_rms_norm_static_fp8_quant(Tensor(a!) out, Tensor(b!) residual_out, Tensor x, "
        "Tensor residual, Tensor? weight, float epsilon, Tensor scale) -> ()");
#endif
#ifdef IR_HAS_ACT
  m.def("act_and_mul(Tensor(a!) out, Tensor x, int act) -> ()");
#endif
#ifdef IR_HAS_ROTARY
  m.def("rotary_embedding(Tensor positions, Tensor(a!) query, Tensor(b!)? key, int head_size, "
        "Tensor cos_sin_cache, bool is_neox) -> ()");
#endif
#ifdef IR_HAS_STATIC_QUANT
  m.def("static_fp8_quant(Tensor(a!) out, Tensor x, Tensor scale) -> ()");
#endif
#ifdef IR_HAS_DYNAMIC_QUANT
  m.def("dynamic_per_token_fp8_quant(Tensor(a!) out, Tensor(b!) scales, Tensor x, "
        "Tensor? scale_ub) -> ()");
#endif
#ifdef IR_HAS_GROUP_QUANT
  m.def("per_token_group_fp8_quant(Tensor(a!) out, Tensor(b!) scales, Tensor x, int group_size) -> ()");
#endif
}

// ROCm tensors carry the CUDA dispatch key.
TORCH_LIBRARY_IMPL(ir_rocm, CUDA, m) {
#ifdef IR_HAS_NORM
  m.impl("rms_norm", &rms_norm);
  m.impl("fused_add_rms_norm", &fused_add_rms_norm);
  m.impl("rms_norm_static_fp8_quant", &rms_norm_static_fp8_quant);
  m.impl("fused_add_rms_norm_static_fp8_quant", &fused_add_rms_norm_static_fp8_quant);
#endif
#ifdef IR_HAS_ACT
  m.impl("act_and_mul", &act_and_mul);
#endif
#ifdef IR_HAS_ROTARY
  m.impl("rotary_embedding", &rotary_embedding);
#endif
#ifdef IR_HAS_STATIC_QUANT
  m.impl("static_fp8_quant", &static_fp8_quant);
#endif
#ifdef IR_HAS_DYNAMIC_QUANT
  m.impl("dynamic_per_token_fp8_quant", &dynamic_per_token_fp8_quant);
#endif
#ifdef IR_HAS_GROUP_QUANT
  m.impl("per_token_group_fp8_quant", &per_token_group_fp8_quant);
#endif
}
