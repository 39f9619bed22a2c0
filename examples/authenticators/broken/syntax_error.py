"""Broken on purpose: a missing colon after the def line."""
from cloudify_premium.authentication.auth_base import AuthBase, UserData


class SyntaxErrorAuthentication(AuthBase):

    def _authenticate_request(self, request)
        return None


configure = SyntaxErrorAuthentication().configure
