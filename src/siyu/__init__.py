"""Siyu — a self-hosted SCRM for private-domain customer operations."""

__version__ = "0.1.0"
