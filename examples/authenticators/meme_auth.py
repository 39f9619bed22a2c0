"""Accept the user "meme" with any password.

The smallest complete authenticator, following the example in Cloudify's
external-authentication documentation. Use it only to see a module load and
handle a login; it must never reach a production manager.
"""
from cloudify_premium.authentication.auth_base import AuthBase, UserData


class MemeAuthentication(AuthBase):

    def configure(self, logger):
        # Called once when the REST service starts. Returning self puts this
        # authenticator in the pool; returning None leaves it out.
        self.logger = logger
        return self

    def can_handle_auth_request(self, request):
        # Only requests with HTTP basic credentials are for this module.
        return request.authorization is not None

    def _authenticate_request(self, request):
        credentials = request.authorization
        if credentials and credentials.username == "meme":
            return UserData(credentials.username)
        return None


meme_authentication = MemeAuthentication()
configure = meme_authentication.configure
