"""Fails to import: it needs a package that the manager's Python lacks."""
import company_sso_client  # noqa: F401  (not installed anywhere)

from cloudify_premium.authentication.auth_base import AuthBase


class CompanySSOAuthentication(AuthBase):

    def _authenticate_request(self, request):
        return None


configure = CompanySSOAuthentication().configure
