"""Returns a (body, status) tuple, as a Flask view may, instead of a
UserData, a response or None."""
from cloudify_premium.authentication.auth_base import AuthBase


class TupleAuthentication(AuthBase):

    def _authenticate_request(self, request):
        return "denied", 403


configure = TupleAuthentication().configure
