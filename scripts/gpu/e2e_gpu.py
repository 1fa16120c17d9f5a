"""End-to-end on one CUDA GPU (run by scripts/gpu/e2e.sh; writes $RES/e2e/).

A randomly initialised Llama (hidden 1024, 2 layers) moved onto IR ops with
ir_core.nn.hf.patch_model, under two priorities (triton first, cuda first),
eager and compiled with ir_compile.backend(), against the unmodified model.

- fp32 (the correctness claims): prefill logits within LOGIT_TOL of the
  unmodified model's and the same greedy tokens, for all four configurations
  (triton/cuda first x eager/compiled). In bf16 a random tiny model has
  near-tied logits, so a rounding difference flips an argmax: bf16 token
  equality says nothing about correctness.
- bf16 (speed): tokens/s of a greedy loop without KV cache (a full forward
  per new token; the same dynamic-shape compiled graph serves every length,
  so one compile per configuration) for every configuration, and of
  generate() with a KV cache for the eager ones (compiled generate() costs
  about six more graph compiles per configuration: not in the budget).
- a Qwen3 check (per-head q_norm/k_norm, fp32) and batch invariance of a
  chain of IR ops on the GPU (bf16, bitwise).

Every section is timed and guarded: a failure is recorded and the run goes
on; results are written after each section, so a kill leaves what was done.
E2E_DEVICE=cpu runs the whole script on small sizes (a smoke test).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from typing import Any

import torch

import ir_core as ir
from ir_core.nn.hf import UnsupportedModelError, patch_model

T0 = time.time()
BUDGET_S = float(os.environ.get("E2E_BUDGET_S", "80"))
OUT = os.path.join(os.environ.get("RES", "/tmp/ir-gpu-results"), "e2e")
os.makedirs(OUT, exist_ok=True)
DEV = os.environ.get("E2E_DEVICE", "cuda")  # "cpu": a smoke run of this script (small sizes)
SMALL = DEV == "cpu"
CHECK_DTYPE, SPEED_DTYPE = torch.float32, torch.bfloat16
#: batch, prompt length, greedy tokens checked (fp32), tokens timed (bf16)
BATCH, PROMPT, NEW_CHECK, NEW_SPEED = (2, 8, 3, 4) if SMALL else (4, 64, 8, 16)
#: fp32: largest |logit difference| accepted against the unmodified model
LOGIT_TOL = 1e-3
results: dict[str, Any] = {
    "sections": {},
    "errors": {},
    "notes": [
        f"fp32 ({CHECK_DTYPE}) for the correctness claims: prefill logits within "
        f"{LOGIT_TOL} (abs) and greedy tokens equal ({NEW_CHECK} new tokens, no KV cache)",
        f"bf16 ({SPEED_DTYPE}) for tokens/s only ({NEW_SPEED} new tokens; its logit "
        "differences and token equality are shown for information)",
    ],
}


def left() -> float:
    return BUDGET_S - (time.time() - T0)


def _cell(v: Any) -> str:
    return "-" if v is None else str(v)


def _table(rows: list[dict[str, Any]], cols: list[tuple[str, str]]) -> list[str]:
    out = ["| " + " | ".join(h for h, _ in cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_cell(r.get(k)) for _, k in cols) + " |" for r in rows]
    return [*out, ""]


def write() -> None:
    with open(os.path.join(OUT, "e2e_gpu.json"), "w") as f:
        json.dump(results, f, indent=2, default=str)
    lines = ["# e2e on GPU: a Llama on IR ops (fp32 correctness, bf16 speed)", ""]
    env = results.get("env", {})
    lines += [f"- {k}: {v}" for k, v in env.items()]
    lines += [f"- {n}" for n in results["notes"]] + [""]
    check = results["sections"].get("fp32_check", [])
    if check:
        lines += [
            f"## fp32: correctness against the unmodified model (fp32, tolerance {LOGIT_TOL})",
            "",
        ]
        lines += _table(
            check,
            [
                ("configuration", "name"),
                ("max abs logit diff (fp32)", "max_abs_diff"),
                ("within tolerance", "logits_ok"),
                ("top-1 agree (fp32)", "top1_agree"),
                ("greedy tokens equal (fp32)", "tokens_equal"),
                ("graphs compiled", "graphs_compiled"),
                ("providers", "providers"),
            ],
        )
    speed = results["sections"].get("bf16_speed", [])
    if speed:
        lines += [
            f"## bf16: tokens/s (batch {BATCH}, prompt {PROMPT}, {NEW_SPEED} new tokens)",
            "",
            "greedy no-cache: a full forward per new token (every configuration); generate(): "
            "with a KV cache (eager only). Logit diff, top-1 and token equality are bf16 and "
            "for information only (near-tied logits of a random model flip in bf16).",
            "",
        ]
        lines += _table(
            speed,
            [
                ("configuration", "name"),
                ("greedy no-cache tok/s (bf16)", "greedy_tok_per_s"),
                ("generate() tok/s (bf16)", "generate_tok_per_s"),
                ("max abs logit diff (bf16)", "max_abs_diff"),
                ("top-1 agree (bf16)", "top1_agree"),
                ("greedy tokens equal (bf16)", "tokens_equal"),
                ("graphs compiled", "graphs_compiled"),
            ],
        )
    for key in ("restore_bitwise_equal", "qwen3", "batch_invariance"):
        if key in results["sections"]:
            lines += [
                f"## {key}",
                "",
                "```",
                json.dumps(results["sections"][key], indent=1, default=str),
                "```",
                "",
            ]
    for k, v in results["errors"].items():
        lines += [f"## error in {k}", "", "```", v[-3000:], "```", ""]
    lines.append(f"total {time.time() - T0:.1f}s of budget {BUDGET_S:.0f}s")
    with open(os.path.join(OUT, "e2e_gpu.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def guarded(name: str):
    def deco(fn):
        def run(*a, **kw):
            t = time.time()
            try:
                return fn(*a, **kw)
            except Exception:
                results["errors"][name] = traceback.format_exc()
                print(f"!! {name} failed:\n{results['errors'][name]}", flush=True)
                return None
            finally:
                print(f"-- {name}: {time.time() - t:.1f}s (left {left():.0f}s)", flush=True)
                write()

        return run

    return deco


def build(family: str, dtype: torch.dtype, **over: Any) -> torch.nn.Module:
    import transformers

    cfgs = {
        "llama": ("LlamaConfig", "LlamaForCausalLM"),
        "qwen3": ("Qwen3Config", "Qwen3ForCausalLM"),
    }
    cfg_cls, model_cls = (getattr(transformers, n) for n in cfgs[family])
    kw = dict(
        vocab_size=8192,
        hidden_size=1024,
        intermediate_size=2816,
        num_hidden_layers=2,
        num_attention_heads=16,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
    )
    if SMALL:
        kw.update(
            hidden_size=128,
            intermediate_size=256,
            num_hidden_layers=1,
            num_attention_heads=4,
            num_key_value_heads=2,
        )
    kw.update(over)
    torch.manual_seed(0)  # the same weights in every dtype
    model = model_cls(cfg_cls(**kw)).to(DEV, dtype).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    return model


def logits(model: Any, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids).logits.float()


def sync() -> None:
    if DEV == "cuda":
        torch.cuda.synchronize()


def greedy(model: Any, ids: torch.Tensor, new: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prefill logits (float) and ``new`` greedy tokens, without a KV cache:
    one full forward per token (under torch.compile(dynamic=True) one graph
    serves every length)."""
    first = None
    with torch.no_grad():
        for _ in range(new):
            out = model(ids, use_cache=False).logits
            if first is None:
                first = out.float()
            ids = torch.cat([ids, out[:, -1].argmax(-1, keepdim=True)], 1)
    assert first is not None
    return first, ids[:, -new:]


def timed_greedy(
    model: Any, ids: torch.Tensor, new: int
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """:func:`greedy` once to warm up (and compile), then timed: (logits, tokens, tok/s)."""
    greedy(model, ids, new)
    sync()
    t = time.perf_counter()
    first, toks = greedy(model, ids, new)
    sync()
    return first, toks, ids.shape[0] * new / (time.perf_counter() - t)


def generate(model: Any, ids: torch.Tensor, new: int) -> tuple[torch.Tensor, float]:
    """generate() with a KV cache, warm-up then timed: (tokens, tok/s)."""
    kw = dict(
        attention_mask=torch.ones_like(ids),
        max_new_tokens=new,
        min_new_tokens=new,
        do_sample=False,
        pad_token_id=0,
    )
    with torch.no_grad():
        model.generate(ids, **kw)
        sync()
        t = time.perf_counter()
        out = model.generate(ids, **kw)
        sync()
    return out[:, -new:], ids.shape[0] * new / (time.perf_counter() - t)


def compare(
    section: str,
    name: str,
    ref: dict[str, Any],
    got: torch.Tensor,
    tokens: torch.Tensor | None,
    **extra: Any,
) -> dict[str, Any]:
    diff = (got - ref["logits"]).abs().max().item()
    agree = (got.argmax(-1) == ref["logits"].argmax(-1)).float().mean().item()
    row = {
        "name": name,
        "max_abs_diff": float(f"{diff:.3g}"),
        "top1_agree": round(agree, 4),
        "tokens_equal": None if tokens is None else bool(torch.equal(tokens, ref["tokens"])),
        **extra,
    }
    if section == "fp32_check":
        row["logits_ok"] = diff <= LOGIT_TOL
    if tokens is not None and not row["tokens_equal"]:
        same = (tokens == ref["tokens"]).all(0)
        row["first_divergent_position"] = int((~same).nonzero()[0].item())
    print(section, row, flush=True)
    results["sections"].setdefault(section, []).append(row)
    return row


def providers_seen(model: Any, ids: torch.Tensor) -> dict[str, list[str]]:
    with ir.trace() as t:
        logits(model, ids[:1, :8])
    return {op: sorted(set(t.providers(op))) for op in sorted({r.op for r in t})}


def compiled_forward(model: Any) -> Any:
    """Compile ``model.forward`` (dynamic shapes) with a fresh ir_compile
    backend; returns the backend. ``del model.forward`` undoes it."""
    import ir_compile

    backend = ir_compile.backend()
    torch._dynamo.reset()
    # dynamic=True would otherwise trace Python float scalars symbolically, then
    # restart the analysis and compile the whole graph a second time
    if hasattr(torch._dynamo.config, "specialize_float"):
        torch._dynamo.config.specialize_float = True
    model.forward = torch.compile(
        model.__class__.forward.__get__(model), backend=backend, dynamic=True
    )
    return backend


def main() -> int:
    from ir_core import registry

    ir.load_providers()
    registered = registry.registered_providers()
    results["env"] = {
        "device": torch.cuda.get_device_name() if DEV == "cuda" else DEV,
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "providers registered": sorted(registered),
        "packages": {k: (p.loaded, p.error) for k, p in ir.provider_packages().items()},
    }
    write()
    prios = {}
    for name, order in (("triton-first", ("triton", "cuda")), ("cuda-first", ("cuda", "triton"))):
        names = [p for p in order if p in registered]
        if names:
            prios[name] = {"*": [*names, "native"]}
    if SMALL:
        prios["native"] = {"*": ["native"]}
    ids = torch.randint(
        0, 8192, (BATCH, PROMPT), device=DEV, generator=torch.Generator(DEV).manual_seed(1)
    )
    models: dict[str, Any] = {}
    handles: dict[str, Any] = {}
    refs: dict[str, dict[str, Any]] = {"check": {}, "speed": {}}
    compile_s: dict[str, float] = {}

    def patch(which: str) -> None:
        try:
            handles[which] = patch_model(models[which])
        except UnsupportedModelError as exc:  # e.g. another transformers' attention forward
            results["errors"][f"patch_model {which}"] = f"{exc}; retried without the rotary mapping"
            handles[which] = patch_model(models[which], rotary=False)
        results["env"][f"patched ({which})"] = handles[which].replaced

    # ---- fp32: correctness of all four configurations ----
    @guarded("fp32 baseline")
    def check_baseline() -> None:
        models["check"] = build("llama", CHECK_DTYPE)
        ref = refs["check"]
        ref["logits"], ref["tokens"] = greedy(models["check"], ids, NEW_CHECK)
        compare("fp32_check", "unmodified, eager", ref, ref["logits"], ref["tokens"])
        patch("check")

    check_baseline()
    if "check" in handles:
        model = models["check"]
        for pname, prio in prios.items():

            @guarded(f"fp32 {pname} eager")
            def check_eager(pname: str = pname, prio: Any = prio) -> None:
                with ir.priority(prio):
                    seen = providers_seen(model, ids)
                    got, toks = greedy(model, ids, NEW_CHECK)
                compare(
                    "fp32_check", f"IR {pname}, eager", refs["check"], got, toks, providers=seen
                )

            check_eager()
        for pname, prio in prios.items():
            if left() < 15:
                results["errors"][f"fp32 {pname} compiled"] = "skipped: not enough budget left"
                continue

            @guarded(f"fp32 {pname} compiled")
            def check_compiled(pname: str = pname, prio: Any = prio) -> None:
                t = time.time()
                with ir.priority(prio):
                    backend = compiled_forward(model)
                    try:
                        got, toks = greedy(model, ids, NEW_CHECK)
                    finally:
                        del model.forward
                compile_s[pname] = time.time() - t
                chosen = sorted({(d.op, d.provider) for d in backend.decisions})
                compare(
                    "fp32_check",
                    f"IR {pname}, compiled",
                    refs["check"],
                    got,
                    toks,
                    providers=chosen,
                    graphs_compiled=backend.compiles,
                )

            check_compiled()
        handles["check"].restore()

        @guarded("restore")
        def restored() -> None:
            with torch.no_grad():
                again = model(ids, use_cache=False).logits.float()
            results["sections"]["restore_bitwise_equal"] = bool(
                torch.equal(again, refs["check"]["logits"])
            )

        restored()

    # ---- bf16: tokens/s, eager (compiled at the end, budget permitting) ----
    @guarded("bf16 baseline")
    def speed_baseline() -> None:
        models["speed"] = build("llama", SPEED_DTYPE)
        ref = refs["speed"]
        ref["logits"], ref["tokens"], tps = timed_greedy(models["speed"], ids, NEW_SPEED)
        _, gen_tps = generate(models["speed"], ids, NEW_SPEED)
        compare(
            "bf16_speed",
            "unmodified, eager",
            ref,
            ref["logits"],
            ref["tokens"],
            greedy_tok_per_s=round(tps, 1),
            generate_tok_per_s=round(gen_tps, 1),
        )
        patch("speed")

    speed_baseline()
    if "speed" in handles:
        fast = models["speed"]
        for pname, prio in prios.items():

            @guarded(f"bf16 {pname} eager")
            def speed_eager(pname: str = pname, prio: Any = prio) -> None:
                with ir.priority(prio):
                    got, toks, tps = timed_greedy(fast, ids, NEW_SPEED)
                    _, gen_tps = generate(fast, ids, NEW_SPEED)
                compare(
                    "bf16_speed",
                    f"IR {pname}, eager",
                    refs["speed"],
                    got,
                    toks,
                    greedy_tok_per_s=round(tps, 1),
                    generate_tok_per_s=round(gen_tps, 1),
                )

            speed_eager()

    @guarded("qwen3")
    def qwen3() -> None:
        q = build("qwen3", CHECK_DTYPE)
        r = logits(q, ids)
        out = {"dtype": str(CHECK_DTYPE)}
        rotary = any(h.replaced.get("rotary", 0) > 0 for h in handles.values())
        with patch_model(q, rotary=rotary):
            for pname, prio in prios.items():
                with ir.priority(prio):
                    g = logits(q, ids)
                diff = (g - r).abs().max().item()
                out[pname] = {
                    "max_abs_diff": float(f"{diff:.3g}"),
                    "within_tolerance": diff <= LOGIT_TOL,
                    "top1_agree": round((g.argmax(-1) == r.argmax(-1)).float().mean().item(), 4),
                }
        results["sections"]["qwen3"] = out

    qwen3()

    @guarded("batch_invariance")
    def batch_inv() -> None:
        from ir_core.ops.rotary import cos_sin_cache

        hidden, head, rows = 2048, 128, 257
        g = torch.Generator(DEV).manual_seed(5)
        x = torch.randn(rows, hidden, device=DEV, generator=g).to(SPEED_DTYPE)
        res = torch.randn(rows, hidden, device=DEV, generator=g).to(SPEED_DTYPE)
        pos = torch.randint(0, 4096, (rows,), device=DEV, generator=g)
        w = (1 + 0.1 * torch.randn(hidden, device=DEV, generator=g)).to(SPEED_DTYPE)
        cache = cos_sin_cache(4096, head, dtype=SPEED_DTYPE, device=DEV)

        def chain(sel: torch.Tensor) -> list[torch.Tensor]:
            h, r = ir.ops.fused_add_rms_norm(x[sel], res[sel], w, 1e-6)
            a = ir.ops.silu_and_mul(torch.cat((h, h.flip(-1)), -1))
            q, k = ir.ops.rotary_embedding(
                pos[sel], a, a[:, : 4 * head].contiguous(), head, cache, True
            )
            return [ir.ops.rms_norm(q, w, 1e-6), k, r]

        out: dict[str, Any] = {}
        for pname, prio in prios.items():
            with ir.batch_invariant(), ir.priority(prio):
                with ir.trace() as t:
                    full = chain(torch.arange(rows, device=DEV))
                bad = []
                sels = [torch.arange(i, i + 1, device=DEV) for i in (0, 128, rows - 1)]
                sels += [
                    torch.arange(0, 7, device=DEV),
                    torch.arange(30, 200, device=DEV),
                    torch.randperm(rows, device=DEV, generator=g),
                ]
                for sel in sels:
                    part = chain(sel)
                    if not all(torch.equal(p, f[sel]) for p, f in zip(part, full, strict=True)):
                        bad.append(f"batch of {len(sel)} from row {int(sel[0])}")
            out[pname] = {
                "providers": sorted({(r.op, r.provider) for r in t}),
                "bit_identical": not bad,
                "failures": bad,
            }
        results["sections"]["batch_invariance"] = out

    batch_inv()

    # ---- bf16 compiled tokens/s: last, each only if its compile fits ----
    if "speed" in handles:
        for pname, prio in prios.items():
            need = 1.2 * compile_s.get(pname, 20.0) + 5
            if left() < need:
                results["errors"][f"bf16 {pname} compiled"] = (
                    f"skipped: {left():.0f}s of budget left, about {need:.0f}s needed "
                    "(from the fp32 compile of the same configuration)"
                )
                continue

            @guarded(f"bf16 {pname} compiled")
            def speed_compiled(pname: str = pname, prio: Any = prio) -> None:
                with ir.priority(prio):
                    backend = compiled_forward(fast)
                    try:
                        got, toks, tps = timed_greedy(fast, ids, NEW_SPEED)
                    finally:
                        del fast.forward
                compare(
                    "bf16_speed",
                    f"IR {pname}, compiled",
                    refs["speed"],
                    got,
                    toks,
                    greedy_tok_per_s=round(tps, 1),
                    graphs_compiled=backend.compiles,
                )

            speed_compiled()
        handles["speed"].restore()
    write()
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        write()
