// Torch glue of the ir_cuda kernels: schemas (TORCH_LIBRARY ir_cuda), argument
// checks, output allocation, and the CUDA implementations that fill the
// launch structs of launch.h. Fake (meta) kernels are registered from Python
// (ir_kernels_cuda._fake). This is the only translation unit that includes
// torch headers.
//
// Layout rules checked here (the Python supports_args checks the same, so a
// call that would fail here falls through to another provider instead):
// float32/float16/bfloat16 activations on one CUDA device, last dimension
// contiguous, leading dimensions collapsible into one row stride.
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "launch.h"

namespace ir_cuda {
namespace {

DTypeId dtype_id(const at::Tensor& t, const char* op, const char* name) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return DTypeId::kFloat32;
    case at::kHalf:
      return DTypeId::kFloat16;
    case at::kBFloat16:
      return DTypeId::kBFloat16;
    default:
      TORCH_CHECK(false, "ir_cuda::", op, ": ", name, " must be float32, float16 or bfloat16, got ",
                  t.scalar_type());
  }
}

// A tensor seen as rows x hidden with one row stride.
struct Rows {
  int64_t rows;
  int64_t stride;
  int hidden;
};

Rows rows_of(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK(t.is_cuda(), "ir_cuda::", op, ": ", name, " must be a CUDA tensor, got ", t.device());
  TORCH_CHECK(t.dim() >= 1, "ir_cuda::", op, ": ", name, " must have at least one dimension");
  const int64_t hidden = t.size(-1);
  TORCH_CHECK(hidden < (int64_t{1} << 31), "ir_cuda::", op, ": ", name, " last dimension too large");
  TORCH_CHECK(hidden <= 1 || t.stride(-1) == 1, "ir_cuda::", op, ": ", name,
              " must be contiguous in its last dimension, strides ", t.strides());
  int64_t rows = 1;
  for (int64_t i = 0; i + 1 < t.dim(); ++i) rows *= t.size(i);
  // Row dims of size > 1, innermost first, must nest: stride(outer) == stride(inner) * size(inner).
  int64_t stride = hidden;
  int64_t inner = -1;
  for (int64_t i = t.dim() - 2; i >= 0; --i) {
    if (t.size(i) == 1) continue;
    if (inner < 0) {
      stride = t.stride(i);
    } else {
      TORCH_CHECK(t.stride(i) == t.stride(inner) * t.size(inner), "ir_cuda::", op, ": ", name,
                  " leading dimensions must collapse into one row stride, strides ", t.strides());
    }
    inner = i;
  }
  return {rows, stride, static_cast<int>(hidden)};
}

void check_same(const at::Tensor& a, const at::Tensor& b, const char* op, const char* name) {
  TORCH_CHECK(b.device() == a.device(), "ir_cuda::", op, ": ", name, " is on ", b.device(),
              ", expected ", a.device());
  TORCH_CHECK(b.scalar_type() == a.scalar_type(), "ir_cuda::", op, ": ", name, " has dtype ",
              b.scalar_type(), ", expected ", a.scalar_type());
}

const void* weight_ptr(const std::optional<at::Tensor>& weight, const at::Tensor& x, int hidden,
                       const char* op) {
  if (!weight.has_value()) return nullptr;
  const at::Tensor& w = *weight;
  check_same(x, w, op, "weight");
  TORCH_CHECK(w.dim() == 1 && w.size(0) == hidden && w.is_contiguous(), "ir_cuda::", op,
              ": weight must be a contiguous [", hidden, "] tensor, got ", w.sizes());
  return w.data_ptr();
}

const float* scale_ptr(const at::Tensor& scale, const at::Tensor& x, const char* op, const char* name) {
  TORCH_CHECK(scale.device() == x.device() && scale.scalar_type() == at::kFloat && scale.numel() == 1,
              "ir_cuda::", op, ": ", name, " must be a one-element float32 tensor on ", x.device());
  return scale.data_ptr<float>();
}

int variance_of(std::optional<int64_t> variance_size, int hidden, const char* op) {
  if (!variance_size.has_value()) return hidden;
  TORCH_CHECK(*variance_size > 0 && *variance_size <= hidden, "ir_cuda::", op, ": variance_size ",
              *variance_size, " must be in [1, ", hidden, "]");
  return static_cast<int>(*variance_size);
}

at::Tensor fp8_like(const at::Tensor& x) {
  return at::empty(x.sizes(), x.options().dtype(at::kFloat8_e4m3fn));
}

// ------------------------------------------------------------------ norms

NormArgs norm_args(const at::Tensor& x, const Rows& r, const std::optional<at::Tensor>& weight,
                   double epsilon, std::optional<int64_t> variance_size, const char* op) {
  NormArgs a{};
  a.dtype = dtype_id(x, op, "x");
  a.rows = r.rows;
  a.hidden = r.hidden;
  a.variance_size = variance_of(variance_size, r.hidden, op);
  a.epsilon = static_cast<float>(epsilon);
  a.x = x.data_ptr();
  a.x_stride = r.stride;
  a.weight = weight_ptr(weight, x, r.hidden, op);
  return a;
}

void set_residual(NormArgs& a, const at::Tensor& x, const at::Tensor& residual, const char* op) {
  check_same(x, residual, op, "residual");
  TORCH_CHECK(residual.sizes() == x.sizes(), "ir_cuda::", op, ": residual shape ", residual.sizes(),
              " differs from x ", x.sizes());
  const Rows rr = rows_of(residual, op, "residual");
  a.residual = residual.data_ptr();
  a.residual_stride = rr.stride;
  a.residual_out = residual.data_ptr();
  a.residual_out_stride = rr.stride;
}

void run_norm(const NormArgs& a) {
  launch_norm(a, c10::cuda::getCurrentCUDAStream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

at::Tensor rms_norm(const at::Tensor& x, const std::optional<at::Tensor>& weight, double epsilon,
                    std::optional<int64_t> variance_size) {
  const Rows r = rows_of(x, "rms_norm", "x");
  const c10::cuda::CUDAGuard guard(x.device());
  NormArgs a = norm_args(x, r, weight, epsilon, variance_size, "rms_norm");
  at::Tensor out = at::empty(x.sizes(), x.options());
  a.out = out.data_ptr();
  a.out_stride = r.hidden;
  run_norm(a);
  return out;
}

// In place: residual <- x + residual, x <- rms_norm(residual).
void fused_add_rms_norm(at::Tensor& x, at::Tensor& residual, const std::optional<at::Tensor>& weight,
                        double epsilon, std::optional<int64_t> variance_size) {
  const Rows r = rows_of(x, "fused_add_rms_norm", "x");
  const c10::cuda::CUDAGuard guard(x.device());
  NormArgs a = norm_args(x, r, weight, epsilon, variance_size, "fused_add_rms_norm");
  set_residual(a, x, residual, "fused_add_rms_norm");
  a.out = x.data_ptr();
  a.out_stride = r.stride;
  run_norm(a);
}

at::Tensor rms_norm_static_fp8_quant(const at::Tensor& x, const std::optional<at::Tensor>& weight,
                                     double epsilon, const at::Tensor& scale) {
  const char* op = "rms_norm_static_fp8_quant";
  const Rows r = rows_of(x, op, "x");
  const c10::cuda::CUDAGuard guard(x.device());
  NormArgs a = norm_args(x, r, weight, epsilon, std::nullopt, op);
  a.scale = scale_ptr(scale, x, op, "scale");
  at::Tensor out = fp8_like(x);
  a.out = out.data_ptr();
  a.out_stride = r.hidden;
  run_norm(a);
  return out;
}

// In place on residual (<- x + residual); returns fp8(rms_norm(residual) / scale).
at::Tensor fused_add_rms_norm_static_fp8_quant(const at::Tensor& x, at::Tensor& residual,
                                               const std::optional<at::Tensor>& weight, double epsilon,
                                               const at::Tensor& scale) {
  const char* op = "fused_add_rms_norm_static_fp8_quant";
  const Rows r = rows_of(x, op, "x");
  const c10::cuda::CUDAGuard guard(x.device());
  NormArgs a = norm_args(x, r, weight, epsilon, std::nullopt, op);
  set_residual(a, x, residual, op);
  a.scale = scale_ptr(scale, x, op, "scale");
  at::Tensor out = fp8_like(x);
  a.out = out.data_ptr();
  a.out_stride = r.hidden;
  run_norm(a);
  return out;
}

// ------------------------------------------------------------------ activations

at::Tensor act_and_mul(const at::Tensor& x, Activation act, const char* op) {
  const Rows r = rows_of(x, op, "x");
  TORCH_CHECK(r.hidden % 2 == 0, "ir_cuda::", op, ": last dimension ", r.hidden, " must be even");
  const c10::cuda::CUDAGuard guard(x.device());
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = r.hidden / 2;
  at::Tensor out = at::empty(shape, x.options());
  ActArgs a{};
  a.dtype = dtype_id(x, op, "x");
  a.act = act;
  a.rows = r.rows;
  a.d = r.hidden / 2;
  a.x = x.data_ptr();
  a.x_stride = r.stride;
  a.out = out.data_ptr();
  a.out_stride = r.hidden / 2;
  launch_act_and_mul(a, c10::cuda::getCurrentCUDAStream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

at::Tensor silu_and_mul(const at::Tensor& x) { return act_and_mul(x, Activation::kSilu, "silu_and_mul"); }

at::Tensor gelu_and_mul(const at::Tensor& x, c10::string_view approximate) {
  TORCH_CHECK(approximate == "none" || approximate == "tanh",
              "ir_cuda::gelu_and_mul: approximate must be 'none' or 'tanh', got '",
              std::string(approximate), "'");
  return act_and_mul(x, approximate == "tanh" ? Activation::kGeluTanh : Activation::kGelu,
                     "gelu_and_mul");
}

// ------------------------------------------------------------------ rotary

// query/key as [tokens, heads * head_size] or [tokens, heads, head_size].
void rotary_operand(const at::Tensor& t, int64_t tokens, int64_t head_size, const at::Tensor& ref,
                    const char* name, int64_t* token_stride, int64_t* head_stride, int* heads) {
  const char* op = "rotary_embedding";
  check_same(ref, t, op, name);
  TORCH_CHECK(t.dim() == 2 || (t.dim() == 3 && t.size(2) == head_size), "ir_cuda::", op, ": ", name,
              " must be [tokens, heads * head_size] or [tokens, heads, head_size], got ", t.sizes());
  TORCH_CHECK(t.size(0) == tokens, "ir_cuda::", op, ": ", name, " has ", t.size(0),
              " tokens, positions has ", tokens);
  TORCH_CHECK(t.stride(-1) == 1, "ir_cuda::", op, ": ", name, " must be contiguous in its last dimension");
  if (t.dim() == 2) {
    TORCH_CHECK(t.size(1) % head_size == 0, "ir_cuda::", op, ": ", name, " width ", t.size(1),
                " is not a multiple of head_size ", head_size);
    *heads = static_cast<int>(t.size(1) / head_size);
    *head_stride = head_size;
  } else {
    *heads = static_cast<int>(t.size(1));
    *head_stride = t.stride(1);
  }
  *token_stride = t.stride(0);
}

void rotary_embedding(const at::Tensor& positions, at::Tensor& query, std::optional<at::Tensor> key,
                      int64_t head_size, const at::Tensor& cos_sin_cache, bool is_neox) {
  const char* op = "rotary_embedding";
  TORCH_CHECK(query.is_cuda(), "ir_cuda::", op, ": query must be a CUDA tensor");
  TORCH_CHECK(positions.device() == query.device() && positions.is_contiguous() &&
                  (positions.scalar_type() == at::kLong || positions.scalar_type() == at::kInt),
              "ir_cuda::", op, ": positions must be a contiguous int64/int32 tensor on ", query.device());
  TORCH_CHECK(cos_sin_cache.device() == query.device() && cos_sin_cache.dim() == 2 &&
                  cos_sin_cache.is_contiguous() &&
                  (cos_sin_cache.scalar_type() == query.scalar_type() ||
                   cos_sin_cache.scalar_type() == at::kFloat),
              "ir_cuda::", op, ": cos_sin_cache must be a contiguous 2-D tensor of query's dtype or float32");
  const int64_t rot = cos_sin_cache.size(1);
  TORCH_CHECK(rot % 2 == 0 && rot <= head_size && head_size > 0, "ir_cuda::", op, ": rotary dim ", rot,
              " must be even and at most head_size ", head_size);
  RotaryArgs a{};
  a.dtype = dtype_id(query, op, "query");
  a.cache_dtype = cos_sin_cache.scalar_type() == at::kFloat ? DTypeId::kFloat32 : a.dtype;
  a.positions_int64 = positions.scalar_type() == at::kLong;
  a.is_neox = is_neox;
  a.tokens = positions.numel();
  a.head_size = static_cast<int>(head_size);
  a.rotary_dim = static_cast<int>(rot);
  a.positions = positions.data_ptr();
  a.cos_sin_cache = cos_sin_cache.data_ptr();
  a.query = query.data_ptr();
  rotary_operand(query, a.tokens, head_size, query, "query", &a.query_stride, &a.query_head_stride,
                 &a.query_heads);
  if (key.has_value()) {
    a.key = key->data_ptr();
    rotary_operand(*key, a.tokens, head_size, query, "key", &a.key_stride, &a.key_head_stride,
                   &a.key_heads);
  }
  const c10::cuda::CUDAGuard guard(query.device());
  launch_rotary(a, c10::cuda::getCurrentCUDAStream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// ------------------------------------------------------------------ quant

QuantArgs quant_args(const at::Tensor& x, const Rows& r, at::Tensor& out, const char* op) {
  QuantArgs a{};
  a.dtype = dtype_id(x, op, "x");
  a.rows = r.rows;
  a.hidden = r.hidden;
  a.x = x.data_ptr();
  a.x_stride = r.stride;
  a.out = static_cast<uint8_t*>(out.data_ptr());
  return a;
}

at::Tensor static_scaled_fp8_quant(const at::Tensor& x, const at::Tensor& scale) {
  const char* op = "static_scaled_fp8_quant";
  const Rows r = rows_of(x, op, "x");
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor out = fp8_like(x);
  QuantArgs a = quant_args(x, r, out, op);
  a.scale = scale_ptr(scale, x, op, "scale");
  launch_static_fp8_quant(a, c10::cuda::getCurrentCUDAStream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

std::tuple<at::Tensor, at::Tensor> dynamic_per_token_scaled_fp8_quant(
    const at::Tensor& x, const std::optional<at::Tensor>& scale_ub) {
  const char* op = "dynamic_per_token_scaled_fp8_quant";
  const Rows r = rows_of(x, op, "x");
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor out = fp8_like(x);
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = 1;
  at::Tensor scales = at::empty(shape, x.options().dtype(at::kFloat));
  QuantArgs a = quant_args(x, r, out, op);
  a.scales = scales.data_ptr<float>();
  if (scale_ub.has_value()) a.scale_ub = scale_ptr(*scale_ub, x, op, "scale_ub");
  launch_dynamic_per_token_fp8_quant(a, c10::cuda::getCurrentCUDAStream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {out, scales};
}

std::tuple<at::Tensor, at::Tensor> per_token_group_quant_fp8(const at::Tensor& x, int64_t group_size) {
  const char* op = "per_token_group_quant_fp8";
  const Rows r = rows_of(x, op, "x");
  TORCH_CHECK(group_size > 0 && r.hidden % group_size == 0, "ir_cuda::", op, ": hidden size ", r.hidden,
              " is not a multiple of group_size ", group_size);
  TORCH_CHECK(group_quant_lanes(static_cast<int>(group_size), static_cast<int>(x.element_size()), nullptr) > 0,
              "ir_cuda::", op, ": group_size ", group_size, " is not supported for ", x.scalar_type(),
              " (needs a multiple of 16 bytes and at most ", 32 * kGroupQuantMaxChunksPerLane,
              " 16-byte chunks)");
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor out = fp8_like(x);
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = r.hidden / group_size;
  at::Tensor scales = at::empty(shape, x.options().dtype(at::kFloat));
  QuantArgs a = quant_args(x, r, out, op);
  a.scales = scales.data_ptr<float>();
  a.group_size = static_cast<int>(group_size);
  launch_per_token_group_fp8_quant(a, c10::cuda::getCurrentCUDAStream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {out, scales};
}

// Benchmark knob (see launch.h); returns the previous value.
int64_t norm_chunks_per_thread_knob(int64_t chunks) {
  const int previous = norm_chunks_per_thread();
  set_norm_chunks_per_thread(static_cast<int>(chunks));
  return previous;
}

}  // namespace
}  // namespace ir_cuda

TORCH_LIBRARY(ir_cuda, m) {
  m.def("rms_norm(Tensor x, Tensor? weight, float epsilon, int? variance_size) -> Tensor");
  m.def("fused_add_rms_norm(Tensor(a!) x, Tensor(b!) residual, Tensor? weight, float epsilon, "
        "int? variance_size) -> ()");
  m.def("rms_norm_static_fp8_quant(Tensor x, Tensor? weight, float epsilon, Tensor scale) -> Tensor");
  m.def("fused_add_rms_norm_static_fp8_quant(Tensor x, Tensor(a!) residual, Tensor? weight, "
        "float epsilon, Tensor scale) -> Tensor");
  m.def("silu_and_mul(Tensor x) -> Tensor");
  m.def("gelu_and_mul(Tensor x, str approximate) -> Tensor");
  m.def("rotary_embedding(Tensor positions, Tensor(a!) query, Tensor(b!)? key, int head_size, "
        "Tensor cos_sin_cache, bool is_neox) -> ()");
  m.def("static_scaled_fp8_quant(Tensor x, Tensor scale) -> Tensor");
  m.def("dynamic_per_token_scaled_fp8_quant(Tensor x, Tensor? scale_ub) -> (Tensor, Tensor)");
  m.def("per_token_group_quant_fp8(Tensor x, int group_size) -> (Tensor, Tensor)");
  m.def("_norm_chunks_per_thread(int chunks) -> int", &ir_cuda::norm_chunks_per_thread_knob);
}

TORCH_LIBRARY_IMPL(ir_cuda, CUDA, m) {
  m.impl("rms_norm", &ir_cuda::rms_norm);
  m.impl("fused_add_rms_norm", &ir_cuda::fused_add_rms_norm);
  m.impl("rms_norm_static_fp8_quant", &ir_cuda::rms_norm_static_fp8_quant);
  m.impl("fused_add_rms_norm_static_fp8_quant", &ir_cuda::fused_add_rms_norm_static_fp8_quant);
  m.impl("silu_and_mul", &ir_cuda::silu_and_mul);
  m.impl("gelu_and_mul", &ir_cuda::gelu_and_mul);
  m.impl("rotary_embedding", &ir_cuda::rotary_embedding);
  m.impl("static_scaled_fp8_quant", &ir_cuda::static_scaled_fp8_quant);
  m.impl("dynamic_per_token_scaled_fp8_quant", &ir_cuda::dynamic_per_token_scaled_fp8_quant);
  m.impl("per_token_group_quant_fp8", &ir_cuda::per_token_group_quant_fp8);
}

// Direct Python bindings of the same functions, for the eager fast path of
// provider.py (runtime.kernels): a call that nothing traces skips the torch
// dispatcher (schema parsing, autograd fallback), a few microseconds per call.
// Only in the torch extension build (which defines TORCH_EXTENSION_NAME);
// the TORCH_LIBRARY ops above stay the path for tracing and compilation.
#ifdef TORCH_EXTENSION_NAME
#include <torch/extension.h>

PYBIND11_MODULE(TORCH_EXTENSION_NAME, py) {
  using namespace ir_cuda;
  py.def("rms_norm", &rms_norm);
  py.def("fused_add_rms_norm", &fused_add_rms_norm);
  py.def("rms_norm_static_fp8_quant", &rms_norm_static_fp8_quant);
  py.def("fused_add_rms_norm_static_fp8_quant", &fused_add_rms_norm_static_fp8_quant);
  py.def("silu_and_mul", &silu_and_mul);
  py.def("gelu_and_mul",
         [](const at::Tensor& x, const std::string& approximate) { return gelu_and_mul(x, approximate); });
  py.def("rotary_embedding", &rotary_embedding);
  py.def("static_scaled_fp8_quant", &static_scaled_fp8_quant);
  py.def("dynamic_per_token_scaled_fp8_quant", &dynamic_per_token_scaled_fp8_quant);
  py.def("per_token_group_quant_fp8", &per_token_group_quant_fp8);
}
#endif
