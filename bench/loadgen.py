"""`python -m bench.loadgen module:function`: one load generator (or baseline) in a process of its own.

Reads a JSON spec on stdin, runs `await function(spec)` on uvloop, prints its result as one JSON line.
"""

import asyncio
import importlib
import json
import sys


def main() -> None:
    target = sys.argv[1]
    module_name, _, function_name = target.partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    spec = json.loads(sys.stdin.read() or "{}")
    try:
        import uvloop

        result = uvloop.run(function(spec))
    except ImportError:
        result = asyncio.run(function(spec))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
