"""End-to-end on one CUDA GPU (run by scripts/gpu/e2e.sh; writes $RES/e2e/).

A randomly initialised Llama (hidden 1024, 4 layers, bf16) moved onto IR ops
with ir_core.nn.hf.patch_model, under two priorities (triton first, cuda
first), eager and compiled with ir_compile.backend(), against the unmodified
model: prefill logits, greedy tokens, tokens/s of generate(); a Qwen3 check
(per-head q_norm/k_norm); batch invariance of a chain of IR ops on the GPU.
Every section is timed and guarded: a failure is recorded and the run goes on;
results are written after each section, so a kill leaves what was done.
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
DTYPE = torch.bfloat16
BATCH, PROMPT, NEW = (2, 8, 4) if SMALL else (4, 64, 32)
results: dict[str, Any] = {"sections": {}, "errors": {}}


def left() -> float:
    return BUDGET_S - (time.time() - T0)


def write() -> None:
    with open(os.path.join(OUT, "e2e_gpu.json"), "w") as f:
        json.dump(results, f, indent=2, default=str)
    lines = ["# e2e on GPU: a Llama on IR ops (bf16)", ""]
    env = results.get("env", {})
    lines += [f"- {k}: {v}" for k, v in env.items()] + [""]
    rows = results["sections"].get("configs", [])
    if rows:
        lines += [
            "| configuration | max abs logit diff | top-1 agree | greedy tokens equal | "
            "generate tok/s | providers |",
            "|---|---|---|---|---|---|",
        ]
        for r in rows:
            lines.append(
                f"| {r['name']} | {r.get('max_abs_diff', '-')} | {r.get('top1_agree', '-')} | "
                f"{r.get('tokens_equal', '-')} | {r.get('tok_per_s', '-')} | "
                f"{r.get('providers', r.get('error', '-'))} |"
            )
        lines.append("")
    for key in ("qwen3", "batch_invariance"):
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


def build(family: str, **over: Any) -> torch.nn.Module:
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
        num_hidden_layers=4,
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
    torch.manual_seed(0)
    model = model_cls(cfg_cls(**kw)).to(DEV, DTYPE).eval()
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


def generate(model: Any, ids: torch.Tensor, new: int = NEW) -> tuple[torch.Tensor, float]:
    kw = dict(
        attention_mask=torch.ones_like(ids),
        max_new_tokens=new,
        min_new_tokens=new,
        do_sample=False,
        pad_token_id=0,
    )
    with torch.no_grad():
        model.generate(ids, **kw)  # warm up (and compile: prefill, decode, dynamic decode)
        sync()
        t = time.perf_counter()
        out = model.generate(ids, **kw)
        sync()
    return out, ids.shape[0] * new / (time.perf_counter() - t)


def compare(
    name: str,
    ref_logits: torch.Tensor,
    ref_tokens: torch.Tensor,
    got: torch.Tensor,
    tokens: torch.Tensor | None,
    tps: float | None,
    providers: Any,
) -> dict[str, Any]:
    diff = (got - ref_logits).abs().max().item()
    agree = (got.argmax(-1) == ref_logits.argmax(-1)).float().mean().item()
    row = {
        "name": name,
        "max_abs_diff": round(diff, 4),
        "top1_agree": round(agree, 4),
        "tokens_equal": None if tokens is None else bool(torch.equal(tokens, ref_tokens)),
        "tok_per_s": None if tps is None else round(tps, 1),
        "providers": providers,
    }
    if tokens is not None and not row["tokens_equal"]:
        same = (tokens == ref_tokens).all(0)
        row["first_divergent_position"] = (
            int((~same).nonzero()[0].item()) if (~same).any() else None
        )
    print(row, flush=True)
    results["sections"].setdefault("configs", []).append(row)
    return row


def providers_seen(model: Any, ids: torch.Tensor) -> dict[str, list[str]]:
    with ir.trace() as t:
        logits(model, ids[:1, :8])
    return {op: sorted(set(t.providers(op))) for op in sorted({r.op for r in t})}


def run_eager(model: Any, ids: torch.Tensor, ref: dict[str, Any], pname: str, prio: Any) -> None:
    with ir.priority(prio):
        seen = providers_seen(model, ids)
        got = logits(model, ids)
        toks, tps = generate(model, ids)
    compare(f"IR {pname}, eager", ref["logits"], ref["tokens"], got, toks, tps, seen)


def run_compiled(
    model: Any, ids: torch.Tensor, ref: dict[str, Any], pname: str, prio: Any, reserve: float
) -> None:
    """Compiled prefill logits; then greedy generate (prefill and decode
    graphs compile on its warm-up) only if ``reserve`` seconds stay for the rest."""
    import ir_compile

    backend = ir_compile.backend()
    with ir.priority(prio):
        torch._dynamo.reset()
        model.forward = torch.compile(model.__class__.forward.__get__(model), backend=backend)
        try:
            got = logits(model, ids)
            toks, tps = None, None
            if left() > 15 + reserve:
                toks, tps = generate(model, ids)
        finally:
            del model.forward
    chosen = sorted({(d.op, d.provider) for d in backend.decisions})
    row = compare(f"IR {pname}, compiled", ref["logits"], ref["tokens"], got, toks, tps, chosen)
    row["graphs_compiled"] = backend.compiles


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
    model = build("llama")
    ids = torch.randint(
        0, 8192, (BATCH, PROMPT), device=DEV, generator=torch.Generator(DEV).manual_seed(1)
    )
    ref = {}

    @guarded("baseline")
    def baseline() -> None:
        ref["logits"] = logits(model, ids)
        ref["tokens"], tps = generate(model, ids)
        compare(
            "unmodified, eager",
            ref["logits"],
            ref["tokens"],
            ref["logits"],
            ref["tokens"],
            tps,
            "-",
        )

    baseline()
    if "tokens" not in ref:
        return 1
    try:
        handle = patch_model(model)
    except UnsupportedModelError as exc:  # e.g. another transformers' attention forward
        results["errors"]["patch_model"] = f"{exc}; retried without the rotary mapping"
        handle = patch_model(model, rotary=False)
    results["env"]["patched"] = handle.replaced

    for pname, prio in prios.items():
        guarded(f"{pname} eager")(run_eager)(model, ids, ref, pname, prio)
    for pname, prio in prios.items():
        if left() < 25:
            results["errors"][f"{pname} compiled"] = "skipped: not enough budget left"
            continue
        reserve = 20.0 * (len(prios) - 1 - list(prios).index(pname))  # the later configs' logits
        guarded(f"{pname} compiled")(run_compiled)(model, ids, ref, pname, prio, reserve)
    handle.restore()

    @guarded("restore")
    def restored() -> None:
        results["sections"]["restore_bitwise_equal"] = bool(
            torch.equal(logits(model, ids), ref["logits"])
        )

    restored()

    @guarded("qwen3")
    def qwen3() -> None:
        q = build("qwen3", num_hidden_layers=2)
        r = logits(q, ids)
        out = {}
        with patch_model(
            q,
            rotary="rotary" in results["env"]["patched"]
            and results["env"]["patched"]["rotary"] > 0,
        ):
            for pname, prio in prios.items():
                with ir.priority(prio):
                    g = logits(q, ids)
                out[pname] = {
                    "max_abs_diff": round((g - r).abs().max().item(), 4),
                    "top1_agree": round((g.argmax(-1) == r.argmax(-1)).float().mean().item(), 4),
                }
        results["sections"]["qwen3"] = out

    qwen3()

    @guarded("batch_invariance")
    def batch_inv() -> None:
        from ir_core.ops.rotary import cos_sin_cache

        hidden, head, rows = 2048, 128, 257
        g = torch.Generator(DEV).manual_seed(5)
        x = torch.randn(rows, hidden, device=DEV, generator=g).to(DTYPE)
        res = torch.randn(rows, hidden, device=DEV, generator=g).to(DTYPE)
        pos = torch.randint(0, 4096, (rows,), device=DEV, generator=g)
        w = (1 + 0.1 * torch.randn(hidden, device=DEV, generator=g)).to(DTYPE)
        cache = cos_sin_cache(4096, head, dtype=DTYPE, device=DEV)

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
    write()
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        write()
