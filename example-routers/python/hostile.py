"""A router that misbehaves on purpose, for the host's tests
(tests/integration/component_faults.rs): its configuration's `mode` says
how its db_for_read misbehaves, for the model `Hostile` only (every other
read and every write goes to `default`, so a test can check that the next
call is served). Not an example to follow.

- loop: never returns; memory: allocates without end; raise: raises;
  recursion: recurses without end (CPython stops it at its recursion
  limit with an exception); file: opens a file; socket: opens a
  socket; exit: calls sys.exit;
- clock: answers `frozen` when time.time() and time.monotonic() say the
  same twice (and the wall clock says 2025-01-01), else `moving`;
- random: answers `r<n>`, n the first 16 random bits of the instance;
- env: answers `empty` when the environment and arguments are, else `leaked`;
- print: prints many lines, then answers `default`;
- anything else: answers `default`.
"""

import os
import random
import socket
import sys
import time

import dbroute_router


@dbroute_router.export
class Router:
    mode = None

    def setup(self, config, connections):
        self.mode = config.get("mode") if isinstance(config, dict) else None

    def db_for_read(self, model, **hints):
        if model.name != "Hostile":
            return "default"
        mode = self.mode
        if mode == "loop":
            while True:
                pass
        if mode == "memory":
            hoard = []
            while True:
                hoard.append(bytearray(1 << 20))
        if mode == "raise":
            raise ValueError("this router raises on purpose")
        if mode == "recursion":
            def deeper(n):
                return deeper(n + 1) + 1
            return str(deeper(0))
        if mode == "file":
            with open("/etc/passwd") as f:
                return f.read(10)
        if mode == "socket":
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.connect(("127.0.0.1", 5432))
            return "leaked"
        if mode == "lookup":
            return str(socket.getaddrinfo("localhost", 5432)[0][4][0])
        if mode == "exit":
            sys.exit(3)
        if mode == "clock":
            wall = (time.time(), time.time())
            mono = (time.monotonic(), time.monotonic())
            same = wall[0] == wall[1] and mono[0] == mono[1] and int(wall[0]) == 1735689600
            return "frozen" if same else "moving"
        if mode == "random":
            return f"r{random.getrandbits(16)}"
        if mode == "env":
            return "empty" if not os.environ and len(sys.argv) <= 1 else "leaked"
        if mode == "print":
            for i in range(10_000):
                print(f"line {i} of a chatty router")
            return "default"
        return "default"

    def db_for_write(self, model, **hints):
        return "default"
