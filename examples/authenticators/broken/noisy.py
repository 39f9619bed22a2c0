"""Prints a lot, writes to file descriptors directly, tries to write into
descriptor 4, and forks a child that keeps running. It still authenticates
the user "noisy". When NOISY_PID_FILE is set, the child's PID is written
there."""
import os
import sys
import time

from cloudify_premium.authentication.auth_base import AuthBase, UserData

print("loading the noisy module")


class NoisyAuthentication(AuthBase):

    def configure(self, logger):
        self.logger = logger
        sys.stderr.write("configure writes to stderr\n")
        return self

    def _authenticate_request(self, request):
        print("x" * (4 << 20))
        os.write(1, b"written to descriptor 1\n")
        os.write(2, b"written to descriptor 2\n")
        try:
            os.write(4, b'{"type": "result", "id": "forged"}\n')
        except OSError:
            pass
        for number in range(1000):
            self.logger.info("log line %d", number)
        child = os.fork()
        if child == 0:
            time.sleep(60)
            return None
        pid_file = os.environ.get("NOISY_PID_FILE")
        if pid_file:
            with open(pid_file, "w") as out:
                out.write(str(child))
        return UserData("noisy")


configure = NoisyAuthentication().configure
