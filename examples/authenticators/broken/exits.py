"""Calls sys.exit while handling a request."""
import sys

from cloudify_premium.authentication.auth_base import AuthBase


class ExitingAuthentication(AuthBase):

    def _authenticate_request(self, request):
        sys.exit(3)


configure = ExitingAuthentication().configure
