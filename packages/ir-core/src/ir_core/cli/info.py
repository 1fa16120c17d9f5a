"""``ir info``: platform, devices, provider packages and effective priorities
(a doctor: what is installed, compatible, selected, and what failed)."""

from __future__ import annotations

import argparse
import json
import platform as _platform
import sys
from typing import Any

import torch


def add_parser(sub: Any) -> None:
    p = sub.add_parser("info", help="platform, devices, provider packages, priorities")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def collect() -> dict[str, Any]:
    """Everything ``ir info`` reports, as a dict."""
    from .. import __version__, platforms, providers, registry
    from ..priorities import effective_priority, is_batch_invariant

    pkgs = providers.load_providers()
    plat = platforms.current_platform()
    devices = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            devices.append(
                {
                    "index": i,
                    "name": torch.cuda.get_device_name(i),
                    "capability": ".".join(map(str, platforms.device_capability(i))),
                }
            )
    ops: dict[str, Any] = {}
    for name, op in sorted(registry.ops().items()):
        prio, source = effective_priority(name)
        ops[name] = {
            "priority": list(prio),
            "source": source,
            "providers": {
                p: (
                    "supported"
                    if impl.is_supported()
                    else f"unsupported: {impl.unsupported_reason}"
                )
                for p, impl in sorted(op.impls.items())
            },
        }
    return {
        "ir_core": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "torch_hip": torch.version.hip,
        "machine": _platform.machine(),
        "platform": {
            "name": plat.name,
            "device_type": plat.device_type,
            "package": plat.package or "built in",
            "default_priority": {k: list(v) for k, v in plat.default_priority.items()},
        },
        "platform_errors": [{"entry_point": n, "error": e} for n, e in platforms.platform_errors],
        "devices": devices,
        "batch_invariant": is_batch_invariant(),
        "provider_packages": [
            {
                "entry_point": p.entry_point,
                "distribution": p.distribution,
                "version": p.version,
                "module": p.module,
                "loaded": p.loaded,
                "error": p.error,
                "providers": sorted(p.providers),
            }
            for p in pkgs.values()
        ],
        "ops": ops,
    }


def run(args: argparse.Namespace) -> int:
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    out = [
        f"ir-core {info['ir_core']}  python {info['python']}  torch {info['torch']}"
        f" (cuda {info['torch_cuda']}, hip {info['torch_hip']})",
        f"platform: {info['platform']['name']} ({info['platform']['package']}); "
        f"batch-invariant mode: {'on' if info['batch_invariant'] else 'off'}",
    ]
    for d in info["devices"]:
        out.append(f"  device {d['index']}: {d['name']} (capability {d['capability']})")
    if not info["devices"]:
        out.append("  no GPU visible")
    for e in info["platform_errors"]:
        out.append(f"  platform entry point {e['entry_point']!r} FAILED: {e['error']}")
    out.append("provider packages:")
    for p in info["provider_packages"]:
        state = "loaded" if p["loaded"] else f"NOT LOADED: {p['error']}"
        provs = ", ".join(p["providers"]) or "-"
        out.append(
            f"  {p['entry_point']:<10} {p['distribution']} {p['version']:<8} {state}; providers: {provs}"
        )
    if not info["provider_packages"]:
        out.append("  (none installed)")
    out.append("ops (effective priority -> providers registered):")
    for name, o in info["ops"].items():
        out.append(f"  {name}: [{', '.join(o['priority'])}] from {o['source']}")
        for p, state in o["providers"].items():
            out.append(f"      {p:<12} {state}")
    print("\n".join(out))
    return 0
