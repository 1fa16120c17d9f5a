"""CUDA C++ providers for ir ops (a torch extension built ahead of time or on first use)."""

__version__ = "0.1.0"
