"""Passes UserData fields besides the username. The real UserData's fields
are not public, so the harness warns about each one."""
from cloudify_premium.authentication.auth_base import AuthBase, UserData


class DirectoryAuthentication(AuthBase):

    def _authenticate_request(self, request):
        credentials = request.authorization
        if credentials is None:
            return None
        return UserData(credentials.username, email=credentials.username + "@example.com",
                        groups=["developers", "operators"])


configure = DirectoryAuthentication().configure
