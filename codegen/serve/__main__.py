"""`python -m codegen.serve`: the same as `mcp-codegen serve`."""

from ..cli.serve import serve_command

serve_command()
