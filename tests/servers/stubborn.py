"""A server that ignores its stdin closing and SIGTERM, and never answers.

With $PID_DIR set, it writes its pid to a file there, so a test can check that
nothing of it survives.
"""

import os
import signal
import sys
import time
from pathlib import Path

signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
if os.environ.get("PID_DIR"):
    Path(os.environ["PID_DIR"], f"stubborn-{os.getpid()}").write_text("", encoding="utf-8")
print("stubborn: ignoring you", file=sys.stderr, flush=True)
while True:
    time.sleep(60)  # never reads stdin, so never sees it close
