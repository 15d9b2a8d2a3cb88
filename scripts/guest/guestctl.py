#!/usr/bin/env python3
"""Small helpers for driving hvm's test guest under QEMU (used by smoke.sh).

  guestctl.py wait LOG REGEX TIMEOUT [START]  wait until a line of LOG matches REGEX; print the
                                              line and the seconds since START (epoch seconds)
  guestctl.py qmp SOCK CMD [CMD...]           connect to a QMP socket, negotiate, run each CMD
                                              (a command name or a JSON object); print replies
  guestctl.py type SOCK TEXT                  send TEXT and a newline to a serial socket
"""
import json
import re
import socket
import sys
import time


def wait(log, regex, timeout, start=None):
    pat = re.compile(regex)
    deadline = time.time() + float(timeout)
    while time.time() < deadline:
        try:
            with open(log, "rb") as f:
                for raw in f.read().decode("utf-8", "replace").splitlines():
                    if pat.search(raw):
                        took = time.time() - float(start) if start else 0.0
                        print(f"{took:.2f} {raw.strip()}")
                        return 0
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    print(f"timeout: no line matching {regex!r} in {log} after {timeout}s", file=sys.stderr)
    return 1


def qmp(path, cmds):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    for _ in range(100):  # QEMU may not have created the socket yet
        try:
            s.connect(path)
            break
        except OSError:
            time.sleep(0.05)
    else:
        s.connect(path)
    f = s.makefile("rwb")

    def reply():
        while True:
            msg = json.loads(f.readline())
            if "event" not in msg:
                return msg

    reply()  # greeting
    for cmd in ["qmp_capabilities"] + cmds:
        obj = json.loads(cmd) if cmd.startswith("{") else {"execute": cmd}
        f.write(json.dumps(obj).encode() + b"\n")
        f.flush()
        r = reply()
        if cmd != "qmp_capabilities":
            print(json.dumps(r))
        if "error" in r:
            return 1
    return 0


def type_line(path, text):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(text.encode() + b"\n")
    time.sleep(0.2)
    s.close()
    return 0


def main(argv):
    if len(argv) >= 4 and argv[1] == "wait":
        return wait(*argv[2:6])
    if len(argv) >= 4 and argv[1] == "qmp":
        return qmp(argv[2], argv[3:])
    if len(argv) == 4 and argv[1] == "type":
        return type_line(argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
