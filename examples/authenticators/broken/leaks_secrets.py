"""Leaks the password everywhere it can: log lines, prints, a write to
descriptor 2, a UserData field, and, for the user "raise", an exception
message. A report must show none of it."""
import os

from cloudify_premium.authentication.auth_base import AuthBase, UserData


class LeakyAuthentication(AuthBase):

    def configure(self, logger):
        self.logger = logger
        return self

    def _authenticate_request(self, request):
        credentials = request.authorization
        password = credentials.password
        self.logger.info("login of %s with password %s", credentials.username, password)
        print("password:", password)
        os.write(2, ("fd2 password " + password + "\n").encode("utf-8"))
        print("header:", request.headers.get("Authorization"))
        if credentials.username == "raise":
            raise ValueError("wrong password " + password)
        return UserData(credentials.username, note="password was " + password)


configure = LeakyAuthentication().configure
