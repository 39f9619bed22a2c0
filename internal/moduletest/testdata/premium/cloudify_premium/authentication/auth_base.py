"""Test-only imitation of cloudify_premium.authentication.auth_base.

Its classes differ from cfyauth's stand-ins on purpose, so a test can tell
which were used: UserData keeps fixed attributes in __slots__, and
handle_auth_request writes a marker file (PREMIUM_MARKER_FILE), standing in
for the real method's write to the manager's database. A test passes only
when that file never appears.
"""
import os


class UserData(object):
    __slots__ = ("username", "email", "first_name", "last_name", "groups")

    def __init__(self, username, email=None, first_name=None, last_name=None, groups=None):
        self.username = username
        self.email = email
        self.first_name = first_name
        self.last_name = last_name
        self.groups = groups or []


class AuthBase(object):

    def configure(self, logger):
        return self

    def can_handle_auth_request(self, request):
        return True

    def _authenticate_request(self, request):
        raise NotImplementedError()

    def handle_auth_request(self, request):
        with open(os.environ.get("PREMIUM_MARKER_FILE", "premium-handle-called"), "w") as marker:
            marker.write("handle_auth_request wrote to the database\n")
        return self._authenticate_request(request)
