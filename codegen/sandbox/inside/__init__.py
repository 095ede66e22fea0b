"""The code that runs inside the sandbox: the worker (first process) and the runner.

Standard library only, and nothing here imports `codegen`: the directory is bound
read-only into the sandbox as the package `_mcp_codegen_inside` and run by the
sandboxed interpreter, which has pydantic and the generated package, not us.
"""
