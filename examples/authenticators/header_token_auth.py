"""Authenticate requests that carry a shared token in a header.

A reverse proxy in front of the manager authenticates users itself and then
forwards each request with two headers: X-Proxy-Token, a secret shared with
this module, and X-Proxy-User, the user it authenticated. The token is read
at start from the file named by the CFY_PROXY_TOKEN_FILE environment variable
(default /etc/cloudify/proxy-token), never from the module source, because
files under the authenticators folder may be readable by other users.
"""
import hmac
import os

from cloudify_premium.authentication.auth_base import AuthBase, UserData

TOKEN_HEADER = "X-Proxy-Token"
USER_HEADER = "X-Proxy-User"
DEFAULT_TOKEN_FILE = "/etc/cloudify/proxy-token"


class HeaderTokenAuthentication(AuthBase):

    def __init__(self):
        self.logger = None
        self.token = None

    def configure(self, logger):
        self.logger = logger
        path = os.environ.get("CFY_PROXY_TOKEN_FILE", DEFAULT_TOKEN_FILE)
        try:
            with open(path) as token_file:
                self.token = token_file.read().strip()
        except OSError as err:
            logger.warning("header token authenticator disabled: cannot read %s: %s", path, err)
            return None
        if not self.token:
            logger.warning("header token authenticator disabled: %s is empty", path)
            return None
        return self

    def can_handle_auth_request(self, request):
        return TOKEN_HEADER in request.headers

    def _authenticate_request(self, request):
        presented = request.headers.get(TOKEN_HEADER, "")
        username = request.headers.get(USER_HEADER, "").strip()
        if not username:
            return None
        if not hmac.compare_digest(presented.encode("utf-8"), self.token.encode("utf-8")):
            self.logger.info("rejected a request for %s: wrong proxy token", username)
            return None
        return UserData(username)


header_token_authentication = HeaderTokenAuthentication()
configure = header_token_authentication.configure
