"""A server that starts and never answers."""

import sys
import time

print("starting up...", file=sys.stderr, flush=True)
while True:
    time.sleep(60)
