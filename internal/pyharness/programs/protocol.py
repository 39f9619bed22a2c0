# Protocol prelude shared by every program cfyauth runs with the manager's
# Python. Written for Python 3.6, the oldest interpreter a supported manager
# (Cloudify 5.1) ships. Requests arrive as JSON lines on fd 3; messages leave
# as JSON lines on fd 4. Both are moved to private descriptors that child
# processes do not inherit, so module code cannot write into the protocol.
import json
import os
import sys

_REQUEST_FD = os.dup(3)
_RESPONSE_FD = os.dup(4)
os.close(3)
os.close(4)
_requests = os.fdopen(_REQUEST_FD, "r", encoding="utf-8")
_responses = os.fdopen(_RESPONSE_FD, "w", encoding="utf-8")


def send(message):
    _responses.write(json.dumps(message, ensure_ascii=True, sort_keys=True) + "\n")
    _responses.flush()


def read_requests():
    for line in _requests:
        line = line.strip()
        if line:
            yield json.loads(line)


def python_version():
    return "%d.%d.%d" % tuple(sys.version_info[:3])
