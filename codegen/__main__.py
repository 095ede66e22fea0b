"""`python -m codegen` is `mcp-codegen`."""

from codegen.cli import main

main()
