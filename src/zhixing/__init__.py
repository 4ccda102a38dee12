"""Zhixing (执行): judgment-enforcement command platform for Chinese people's courts."""

__version__ = "0.1.0"
