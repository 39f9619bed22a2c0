"""Passes with a warning: the base class comes from another module, so the
validator cannot prove statically that it derives from AuthBase."""
from company_auth_helpers import CompanyAuthBase


class CompanyAuthentication(CompanyAuthBase):

    def _authenticate_request(self, request):
        return None


configure = CompanyAuthentication().configure
