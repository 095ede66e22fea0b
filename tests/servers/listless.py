"""A server that answers `initialize`, then never answers `tools/list` (and ignores SIGTERM)."""

import json
import os
import signal
import sys
import time
from pathlib import Path

signal.signal(signal.SIGTERM, signal.SIG_IGN)
if os.environ.get("PID_DIR"):
    Path(os.environ["PID_DIR"], f"listless-{os.getpid()}").write_text("", encoding="utf-8")
for line in sys.stdin:
    message = json.loads(line)
    if message.get("method") == "initialize":
        result = {
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "listless", "version": "0"},
        }
        print(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}), flush=True)
    elif message.get("method") == "tools/list":
        print("listless: thinking about tools/list forever", file=sys.stderr, flush=True)
        while True:
            time.sleep(60)
    elif "id" in message:  # server/discover and the like: not known here, as in older servers
        error = {"code": -32601, "message": f"method not found: {message.get('method')}"}
        print(json.dumps({"jsonrpc": "2.0", "id": message["id"], "error": error}), flush=True)
