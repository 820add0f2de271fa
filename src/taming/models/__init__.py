"""Compatibility namespace mirroring the original `taming.models` package."""
