"""Broken on purpose: the module binds no module-level 'configure'."""
from cloudify_premium.authentication.auth_base import AuthBase, UserData


class NoConfigureAuthentication(AuthBase):

    def _authenticate_request(self, request):
        return UserData("nobody")


authenticator = NoConfigureAuthentication()
