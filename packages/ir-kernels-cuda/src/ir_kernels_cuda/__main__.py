"""``python -m ir_kernels_cuda build|info``: prebuild the extension, show the cache."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time

from . import build


def _info() -> int:
    print(f"sources:    {build.source_dir()}")
    print(f"cache root: {build.cache_root()}  (${build.ENV_CACHE})")
    try:
        arch = build.current_arch()
    except RuntimeError as exc:
        print(f"GPU:        none ({exc})")
        return 0
    t = build.target(arch)
    print(f"GPU arch:   sm_{arch.replace('.', '')}")
    print(f"cache key:  {t.key}")
    print(f"library:    {t.library} ({'built' if t.library.exists() else 'not built'})")
    print(f"build log:  {t.log}")
    return 0


def _build(arch: str | None, verbose: bool, force: bool) -> int:
    start = time.perf_counter()
    try:
        path = build.build(arch, verbose=verbose, force=force)
    except build.BuildError as exc:
        print(f"ir-kernels-cuda: {exc}", file=sys.stderr)
        with contextlib.suppress(OSError):
            print(exc.log_path.read_text()[-8000:], file=sys.stderr)
        return 1
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{path}  ({time.perf_counter() - start:.1f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ir_kernels_cuda",
        description="Build and inspect the ir_cuda torch extension.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="compile the extension into the cache (MAX_JOBS limits ninja)")
    b.add_argument("--arch", help="compute capability, e.g. 9.0 (default: the current GPU)")
    b.add_argument("--verbose", action="store_true", help="show the compiler commands")
    b.add_argument("--force", action="store_true", help="rebuild even if cached")
    sub.add_parser("info", help="show sources, cache directory and key")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.command == "build":
        return _build(args.arch, args.verbose, args.force)
    return _info()


if __name__ == "__main__":
    sys.exit(main())
