"""A server whose process forks children that keep its pipes open, then never answers.

`forking.py exit`: the first process exits at once (a launcher that left its
children behind); `forking.py hang`: it stays, silent. Of the two children, one
stays in the server's process group and one leaves it (`setsid`, as a daemon
does); both hold stdin, stdout and stderr open and ignore SIGTERM. With $PID_DIR
set, each process writes its pid to a file there.
"""

import os
import signal
import sys
import time
from pathlib import Path


def record(role: str) -> None:
    if os.environ.get("PID_DIR"):
        Path(os.environ["PID_DIR"], f"forking-{role}-{os.getpid()}").write_text(
            "", encoding="utf-8"
        )


def linger(role: str, leave_group: bool, ready: int) -> None:
    if leave_group:
        os.setsid()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    record(role)
    os.write(ready, b".")
    while True:
        time.sleep(60)


record("parent")
ready_read, ready_write = os.pipe()
for role, leave in (("child", False), ("daemon", True)):
    if os.fork() == 0:
        linger(role, leave, ready_write)
for _ in range(2):  # both children are settled before the parent goes on
    os.read(ready_read, 1)
print("forking: children started", file=sys.stderr, flush=True)
if sys.argv[1:] == ["exit"]:
    os._exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    time.sleep(60)
