"""Never returns from _authenticate_request, like a module that waits for
a server that never replies."""
import time

from cloudify_premium.authentication.auth_base import AuthBase


class HangingAuthentication(AuthBase):

    def _authenticate_request(self, request):
        print("waiting for the identity server")
        while True:
            time.sleep(1)


configure = HangingAuthentication().configure
