// Torch glue of the ir_cuda kernels: schemas (TORCH_LIBRARY ir_cuda), argument
// checks, output allocation, and the CUDA implementations that fill the
// launch structs of launch.h. Fake (meta) kernels are registered from Python
// (ir_kernels_cuda._fake). This is the only translation unit that includes
// torch headers.
//
// Every op named after an IR op is functional (fresh outputs, inputs left as
// they are), like the IR op: the provider registers them with inplace=False,
// so a functional call costs one pass over the data, not a clone plus an
// in-place pass. The in-place forms keep torch's trailing underscore
// (fused_add_rms_norm_, fused_add_rms_norm_static_fp8_quant_,
// rotary_embedding_) for callers that own their buffers.
//
// Host time matters on the one-token path (CPU bound): outputs come from
// at::detail::empty_cuda (the caching allocator without a dispatcher round
// trip), the device is switched only when the tensor is not on the current
// device, and shapes are passed as views or small stack vectors.
// Layout rules checked here (the Python supports_args checks the same, so a
// call that would fail here falls through to another provider instead):
// float32/float16/bfloat16 activations on one CUDA device, last dimension
// contiguous, leading dimensions collapsible into one row stride.
#include <optional>
#include <string>
#include <tuple>

#include <ATen/core/DimVector.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/EmptyTensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAFunctions.h>
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

// A contiguous CUDA tensor on `like`'s device, straight from the caching
// allocator (at::empty would go through the dispatcher to the same call).
at::Tensor new_empty(at::IntArrayRef sizes, at::ScalarType dtype, const at::Tensor& like) {
  return at::detail::empty_cuda(sizes, dtype, like.device(), std::nullopt);
}

at::Tensor empty_like_contiguous(const at::Tensor& x) { return new_empty(x.sizes(), x.scalar_type(), x); }

at::Tensor fp8_like(const at::Tensor& x) { return new_empty(x.sizes(), at::kFloat8_e4m3fn, x); }

// x's shape with the last dimension replaced (no heap allocation up to 5 dims).
at::DimVector with_last(const at::Tensor& x, int64_t last) {
  at::DimVector shape(x.sizes().begin(), x.sizes().end());
  shape.back() = last;
  return shape;
}

// The launch context of a tensor's device: its current stream, and a device
// switch (restored at scope exit) only when it is not the current device.
class OnDevice {
 public:
  explicit OnDevice(const at::Tensor& t) {
    const c10::DeviceIndex index = t.device().index();
    if (index != c10::cuda::current_device()) guard_.emplace(t.device());
    stream_ = c10::cuda::getCurrentCUDAStream(index).stream();
  }
  cudaStream_t stream() const { return stream_; }

 private:
  std::optional<c10::cuda::CUDAGuard> guard_;
  cudaStream_t stream_;
};

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

// The residual input; x + residual goes to residual_out (nullptr: in place
// into residual), a contiguous tensor of x's shape.
void set_residual(NormArgs& a, const at::Tensor& x, const at::Tensor& residual, const at::Tensor* residual_out,
                  const char* op) {
  check_same(x, residual, op, "residual");
  TORCH_CHECK(residual.sizes() == x.sizes(), "ir_cuda::", op, ": residual shape ", residual.sizes(),
              " differs from x ", x.sizes());
  const Rows rr = rows_of(residual, op, "residual");
  a.residual = residual.data_ptr();
  a.residual_stride = rr.stride;
  if (residual_out == nullptr) {
    a.residual_out = residual.data_ptr();
    a.residual_out_stride = rr.stride;
  } else {
    a.residual_out = residual_out->data_ptr();
    a.residual_out_stride = rr.hidden;
  }
}

void run_norm(const NormArgs& a, const OnDevice& on) {
  launch_norm(a, on.stream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

at::Tensor rms_norm(const at::Tensor& x, const std::optional<at::Tensor>& weight, double epsilon,
                    std::optional<int64_t> variance_size) {
  const Rows r = rows_of(x, "rms_norm", "x");
  const OnDevice on(x);
  NormArgs a = norm_args(x, r, weight, epsilon, variance_size, "rms_norm");
  at::Tensor out = empty_like_contiguous(x);
  a.out = out.data_ptr();
  a.out_stride = r.hidden;
  run_norm(a, on);
  return out;
}

// Functional: returns (rms_norm(x + residual), x + residual), both new.
std::tuple<at::Tensor, at::Tensor> fused_add_rms_norm(const at::Tensor& x, const at::Tensor& residual,
                                                      const std::optional<at::Tensor>& weight,
                                                      double epsilon, std::optional<int64_t> variance_size) {
  const char* op = "fused_add_rms_norm";
  const Rows r = rows_of(x, op, "x");
  const OnDevice on(x);
  NormArgs a = norm_args(x, r, weight, epsilon, variance_size, op);
  at::Tensor out = empty_like_contiguous(x);
  at::Tensor residual_out = empty_like_contiguous(x);
  set_residual(a, x, residual, &residual_out, op);
  a.out = out.data_ptr();
  a.out_stride = r.hidden;
  run_norm(a, on);
  return {out, residual_out};
}

// In place: residual <- x + residual, x <- rms_norm(residual).
void fused_add_rms_norm_(at::Tensor& x, at::Tensor& residual, const std::optional<at::Tensor>& weight,
                         double epsilon, std::optional<int64_t> variance_size) {
  const char* op = "fused_add_rms_norm_";
  const Rows r = rows_of(x, op, "x");
  const OnDevice on(x);
  NormArgs a = norm_args(x, r, weight, epsilon, variance_size, op);
  set_residual(a, x, residual, nullptr, op);
  a.out = x.data_ptr();
  a.out_stride = r.stride;
  run_norm(a, on);
}

at::Tensor rms_norm_static_fp8_quant(const at::Tensor& x, const std::optional<at::Tensor>& weight,
                                     double epsilon, const at::Tensor& scale) {
  const char* op = "rms_norm_static_fp8_quant";
  const Rows r = rows_of(x, op, "x");
  const OnDevice on(x);
  NormArgs a = norm_args(x, r, weight, epsilon, std::nullopt, op);
  a.scale = scale_ptr(scale, x, op, "scale");
  at::Tensor out = fp8_like(x);
  a.out = out.data_ptr();
  a.out_stride = r.hidden;
  run_norm(a, on);
  return out;
}

// Returns (fp8(rms_norm(x + residual) / scale), x + residual): the sum goes
// to a new tensor (functional) or into residual (in place).
std::tuple<at::Tensor, at::Tensor> add_norm_quant(const at::Tensor& x, const at::Tensor& residual,
                                                  const std::optional<at::Tensor>& weight, double epsilon,
                                                  const at::Tensor& scale, bool in_place, const char* op) {
  const Rows r = rows_of(x, op, "x");
  const OnDevice on(x);
  NormArgs a = norm_args(x, r, weight, epsilon, std::nullopt, op);
  at::Tensor residual_out = in_place ? residual : empty_like_contiguous(x);
  set_residual(a, x, residual, in_place ? nullptr : &residual_out, op);
  a.scale = scale_ptr(scale, x, op, "scale");
  at::Tensor out = fp8_like(x);
  a.out = out.data_ptr();
  a.out_stride = r.hidden;
  run_norm(a, on);
  return {out, residual_out};
}

// Functional: returns (fp8 values, x + residual), both new.
std::tuple<at::Tensor, at::Tensor> fused_add_rms_norm_static_fp8_quant(
    const at::Tensor& x, const at::Tensor& residual, const std::optional<at::Tensor>& weight, double epsilon,
    const at::Tensor& scale) {
  return add_norm_quant(x, residual, weight, epsilon, scale, false, "fused_add_rms_norm_static_fp8_quant");
}

// In place on residual (<- x + residual); returns the fp8 values.
at::Tensor fused_add_rms_norm_static_fp8_quant_(const at::Tensor& x, at::Tensor& residual,
                                                const std::optional<at::Tensor>& weight, double epsilon,
                                                const at::Tensor& scale) {
  return std::get<0>(
      add_norm_quant(x, residual, weight, epsilon, scale, true, "fused_add_rms_norm_static_fp8_quant_"));
}

// ------------------------------------------------------------------ activations

at::Tensor act_and_mul(const at::Tensor& x, Activation act, const char* op) {
  const Rows r = rows_of(x, op, "x");
  TORCH_CHECK(r.hidden % 2 == 0, "ir_cuda::", op, ": last dimension ", r.hidden, " must be even");
  const OnDevice on(x);
  at::Tensor out = new_empty(with_last(x, r.hidden / 2), x.scalar_type(), x);
  ActArgs a{};
  a.dtype = dtype_id(x, op, "x");
  a.act = act;
  a.rows = r.rows;
  a.d = r.hidden / 2;
  a.x = x.data_ptr();
  a.x_stride = r.stride;
  a.out = out.data_ptr();
  a.out_stride = r.hidden / 2;
  launch_act_and_mul(a, on.stream());
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
                    const char* name, int64_t* token_stride, int64_t* head_stride, int* heads, const char* op) {
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

// Checks the operands and fills everything but the out pointers (in place).
RotaryArgs rotary_args(const at::Tensor& positions, const at::Tensor& query, const std::optional<at::Tensor>& key,
                       int64_t head_size, const at::Tensor& cos_sin_cache, bool is_neox, const char* op) {
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
                 &a.query_heads, op);
  if (key.has_value()) {
    a.key = key->data_ptr();
    rotary_operand(*key, a.tokens, head_size, query, "key", &a.key_stride, &a.key_head_stride, &a.key_heads,
                   op);
  }
  return a;
}

void run_rotary(const RotaryArgs& a, const at::Tensor& query) {
  const OnDevice on(query);
  launch_rotary(a, on.stream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// A contiguous copy-shaped output of a rotary operand: token and head strides.
at::Tensor rotary_out(const at::Tensor& t, int64_t head_size, int64_t* token_stride, int64_t* head_stride) {
  at::Tensor out = empty_like_contiguous(t);
  *token_stride = t.dim() == 2 ? t.size(1) : t.size(1) * t.size(2);
  *head_stride = head_size;
  return out;
}

// Functional: returns the rotated (new) query and key; features past the
// rotary dim are copied.
std::tuple<at::Tensor, std::optional<at::Tensor>> rotary_embedding(
    const at::Tensor& positions, const at::Tensor& query, const std::optional<at::Tensor>& key,
    int64_t head_size, const at::Tensor& cos_sin_cache, bool is_neox) {
  RotaryArgs a = rotary_args(positions, query, key, head_size, cos_sin_cache, is_neox, "rotary_embedding");
  at::Tensor query_out = rotary_out(query, head_size, &a.query_out_stride, &a.query_out_head_stride);
  a.query_out = query_out.data_ptr();
  std::optional<at::Tensor> key_out;
  if (key.has_value()) {
    key_out = rotary_out(*key, head_size, &a.key_out_stride, &a.key_out_head_stride);
    a.key_out = key_out->data_ptr();
  }
  run_rotary(a, query);
  return {query_out, key_out};
}

// In place on query and key.
void rotary_embedding_(const at::Tensor& positions, at::Tensor& query, std::optional<at::Tensor> key,
                       int64_t head_size, const at::Tensor& cos_sin_cache, bool is_neox) {
  run_rotary(rotary_args(positions, query, key, head_size, cos_sin_cache, is_neox, "rotary_embedding_"), query);
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
  const OnDevice on(x);
  at::Tensor out = fp8_like(x);
  QuantArgs a = quant_args(x, r, out, op);
  a.scale = scale_ptr(scale, x, op, "scale");
  launch_static_fp8_quant(a, on.stream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

std::tuple<at::Tensor, at::Tensor> dynamic_per_token_scaled_fp8_quant(
    const at::Tensor& x, const std::optional<at::Tensor>& scale_ub) {
  const char* op = "dynamic_per_token_scaled_fp8_quant";
  const Rows r = rows_of(x, op, "x");
  const OnDevice on(x);
  at::Tensor out = fp8_like(x);
  at::Tensor scales = new_empty(with_last(x, 1), at::kFloat, x);
  QuantArgs a = quant_args(x, r, out, op);
  a.scales = scales.data_ptr<float>();
  if (scale_ub.has_value()) a.scale_ub = scale_ptr(*scale_ub, x, op, "scale_ub");
  launch_dynamic_per_token_fp8_quant(a, on.stream());
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
  const OnDevice on(x);
  at::Tensor out = fp8_like(x);
  at::Tensor scales = new_empty(with_last(x, r.hidden / group_size), at::kFloat, x);
  QuantArgs a = quant_args(x, r, out, op);
  a.scales = scales.data_ptr<float>();
  a.group_size = static_cast<int>(group_size);
  launch_per_token_group_fp8_quant(a, on.stream());
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
  m.def("fused_add_rms_norm(Tensor x, Tensor residual, Tensor? weight, float epsilon, "
        "int? variance_size) -> (Tensor, Tensor)");
  m.def("rms_norm_static_fp8_quant(Tensor x, Tensor? weight, float epsilon, Tensor scale) -> Tensor");
  m.def("fused_add_rms_norm_static_fp8_quant(Tensor x, Tensor residual, Tensor? weight, "
        "float epsilon, Tensor scale) -> (Tensor, Tensor)");
  m.def("silu_and_mul(Tensor x) -> Tensor");
  m.def("gelu_and_mul(Tensor x, str approximate) -> Tensor");
  m.def("rotary_embedding(Tensor positions, Tensor query, Tensor? key, int head_size, "
        "Tensor cos_sin_cache, bool is_neox) -> (Tensor, Tensor?)");
  m.def("static_scaled_fp8_quant(Tensor x, Tensor scale) -> Tensor");
  m.def("dynamic_per_token_scaled_fp8_quant(Tensor x, Tensor? scale_ub) -> (Tensor, Tensor)");
  m.def("per_token_group_quant_fp8(Tensor x, int group_size) -> (Tensor, Tensor)");
  // In-place forms (torch's trailing underscore), for callers that own the buffers.
  m.def("fused_add_rms_norm_(Tensor(a!) x, Tensor(b!) residual, Tensor? weight, float epsilon, "
        "int? variance_size) -> ()");
  m.def("fused_add_rms_norm_static_fp8_quant_(Tensor x, Tensor(a!) residual, Tensor? weight, "
        "float epsilon, Tensor scale) -> Tensor");
  m.def("rotary_embedding_(Tensor positions, Tensor(a!) query, Tensor(b!)? key, int head_size, "
        "Tensor cos_sin_cache, bool is_neox) -> ()");
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
  m.impl("fused_add_rms_norm_", &ir_cuda::fused_add_rms_norm_);
  m.impl("fused_add_rms_norm_static_fp8_quant_", &ir_cuda::fused_add_rms_norm_static_fp8_quant_);
  m.impl("rotary_embedding_", &ir_cuda::rotary_embedding_);
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
  py.def("fused_add_rms_norm_", &fused_add_rms_norm_);
  py.def("fused_add_rms_norm_static_fp8_quant_", &fused_add_rms_norm_static_fp8_quant_);
  py.def("rotary_embedding_", &rotary_embedding_);
}
#endif
