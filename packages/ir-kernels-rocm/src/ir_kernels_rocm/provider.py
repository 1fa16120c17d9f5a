"""Registers this package's implementations (filled in by its issue)."""
