"""A server that dies at start, as one does without its API key."""

import sys

print("FatalError: EXAMPLE_API_KEY is not set", file=sys.stderr)
sys.exit(3)
