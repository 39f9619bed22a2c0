"""Raises in configure: the settings file it reads at start does not exist,
so the REST service would leave the module out of the pool."""
from cloudify_premium.authentication.auth_base import AuthBase

SETTINGS_FILE = "/etc/cloudify/does-not-exist/sso.json"


class SettingsAuthentication(AuthBase):

    def configure(self, logger):
        logger.info("reading %s", SETTINGS_FILE)
        with open(SETTINGS_FILE) as settings:
            self.settings = settings.read()
        return self

    def _authenticate_request(self, request):
        return None


configure = SettingsAuthentication().configure
