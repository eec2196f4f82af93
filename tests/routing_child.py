"""A process sharing a pool's state on Redis, driven line by line over stdin (for tests).

``python -m tests.routing_child URL STRATEGY`` builds the pool ``chat`` of three deployments on
the Redis at URL and answers each command with one JSON line:

* ``fail INDEX STATUS [HEADER=VALUE ...]`` — record a failure of that deployment (a 429 with
  ``retry-after-ms=30000``...); answers the verdict;
* ``pick N`` — pick N times; answers the count of each deployment id (``null``: all cooling);
* ``state`` — answers every deployment's state, failures included;
* ``quit`` — answers the WARNING records logged so far, then exits.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from typing import Any

from registry.routing import Deployment, Failure, Pool, RedisStateStore

DEPLOYMENTS = [Deployment(f"chat#{i}", f"region{i}.example.com/gpt-4o") for i in range(3)]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _answer(value: Any) -> None:
    print(json.dumps(value), flush=True)


def main(url: str, strategy: str) -> None:
    collect = _Collect()
    logging.getLogger("modelreg").addHandler(collect)
    store = RedisStateStore(url, reconnect_after=0.05)
    pool = Pool("chat", DEPLOYMENTS, strategy=strategy, store=store)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "fail":
            headers = dict(arg.split("=", 1) for arg in args[2:])
            failure = Failure.from_response(int(args[1]), headers)
            verdict = pool.record_failure(DEPLOYMENTS[int(args[0])], failure)
            _answer({"cooldown": verdict.cooldown, "reason": verdict.reason})
        elif command == "pick":
            picked = [pool.pick() for _ in range(int(args[0]))]
            _answer(Counter(d.id if d else None for d in picked))
        elif command == "state":
            _answer([state.to_dict() for state in pool.snapshot(failures=True)])
        elif command == "quit":
            _answer(collect.messages)
            return


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "weighted")
