"""ROCm providers for ir ops: the CUDA sources built for HIP, and AITER."""

__version__ = "0.1.0"
