"""A server that starts and never answers.

With `HANG_LOG` set it appends `start` when it starts and `stop` when it is sent SIGTERM (then
exits), so a test can tell from the order of the lines whether servers ran at the same time.
"""

import os
import signal
import sys
import time

LOG = os.environ.get("HANG_LOG")


def _note(event: str) -> None:
    if LOG:
        with open(LOG, "a", encoding="utf-8") as log:
            log.write(f"{event} {os.getpid()}\n")


def _stop(signum: int, frame: object) -> None:
    _note("stop")
    sys.exit(0)


signal.signal(signal.SIGTERM, _stop)
_note("start")
print("starting up...", file=sys.stderr, flush=True)
while True:
    time.sleep(60)
