"""Answer requests without credentials with a 401 challenge.

A browser that gets a 401 response with a WWW-Authenticate header asks its
user for a name and password and sends the request again with HTTP basic
credentials. This module only sends the challenge: requests that carry
credentials are left to the next authenticator in the pool (it returns
None for them). It shows how a module returns a Flask response, which the
REST service sends to the client as it is.
"""
import json

from flask import Response

from cloudify_premium.authentication.auth_base import AuthBase

REALM = "Cloudify Manager"


class ChallengeAuthentication(AuthBase):

    def configure(self, logger):
        self.logger = logger
        return self

    def _authenticate_request(self, request):
        if request.authorization is not None:
            return None
        self.logger.debug("challenging a request for %s without credentials", request.path)
        body = json.dumps({"message": "authentication required", "error_code": "unauthorized_error"})
        return Response(body, status=401, mimetype="application/json",
                        headers={"WWW-Authenticate": 'Basic realm="%s"' % REALM})


challenge_authentication = ChallengeAuthentication()
configure = challenge_authentication.configure
