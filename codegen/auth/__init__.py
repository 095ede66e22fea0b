"""Authentication on the host: `mcp-codegen login` (OAuth as a client, with a person).

The OAuth client itself lives in `codegen.runtime.oauth` (a generated package uses
it too) and the token store in `codegen.runtime.tokens`; `serve`'s own
authentication of its callers is `codegen.serve.auth`.
"""

from __future__ import annotations

from .login import LoginResult, login, logout

__all__ = ["LoginResult", "login", "logout"]
