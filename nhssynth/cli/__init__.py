"""Command-line interface: ``nhssynth <command>`` (also ``python -m nhssynth``).

Commands: ``dataloader``, ``model``, ``evaluation``, ``plotting``, ``dashboard``, ``pipeline``
and ``config``; see ``docs/cli.md``.  :func:`main` is the console-script entry point.
"""
from .main import build_parser, main

__all__ = ["main", "build_parser"]
