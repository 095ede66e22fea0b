"""`python -m codegen.serve`: the same as `mcp-codegen serve`."""

from .command import serve_command

serve_command()
