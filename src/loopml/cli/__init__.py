"""The ``loopml`` command. Nothing imports it; every command calls a public function."""

from loopml.cli._app import app, main

__all__ = ["app", "main"]
