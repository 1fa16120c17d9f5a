"""Triton providers for ir ops."""

__version__ = "0.1.0"
