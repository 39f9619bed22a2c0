"""Broken on purpose: the class does not derive from AuthBase."""


class PlainAuthentication(object):

    def configure(self, logger):
        return self

    def _authenticate_request(self, request):
        return None


configure = PlainAuthentication().configure
