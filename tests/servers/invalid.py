"""A server that speaks JSON-RPC but lists a tool whose inputSchema is not an object."""

import json
import sys

for line in sys.stdin:
    message = json.loads(line)
    if "id" not in message:
        continue
    method = message.get("method")
    if method == "initialize":
        result = {
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "invalid", "version": "0"},
        }
        reply = {"jsonrpc": "2.0", "id": message["id"], "result": result}
    elif method == "tools/list":
        tools = [{"name": "broken", "inputSchema": "not a schema"}]
        reply = {"jsonrpc": "2.0", "id": message["id"], "result": {"tools": tools}}
    else:
        error = {"code": -32601, "message": f"method not found: {method}"}
        reply = {"jsonrpc": "2.0", "id": message["id"], "error": error}
    print(json.dumps(reply), flush=True)
