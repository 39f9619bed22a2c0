"""Raises while handling a request: a helper function fails on a header
value it does not expect."""
from cloudify_premium.authentication.auth_base import AuthBase, UserData


def tenant_of(request):
    value = request.headers.get("X-Tenant", "")
    name, _, number = value.partition("-")
    return name, int(number)


class TenantAuthentication(AuthBase):

    def _authenticate_request(self, request):
        tenant, number = tenant_of(request)
        return UserData("%s-user-%d" % (tenant, number))


configure = TenantAuthentication().configure
