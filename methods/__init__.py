"""Denoising methods: one file per method, all registered by name (see ``methods.registry``)."""

from methods.base import Method, NoisyRaw, param
from methods.registry import create_method, get_method_class, list_methods, register_method

__all__ = ["Method", "NoisyRaw", "param", "create_method", "get_method_class", "list_methods", "register_method"]
