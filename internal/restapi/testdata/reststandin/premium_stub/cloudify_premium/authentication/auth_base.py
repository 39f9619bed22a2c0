"""Stand-in for cloudify_premium.authentication.auth_base.

The real module ships in Cloudify's private premium package, so its code is
not public. This one follows the documented contract of an authenticator:

- a module binds a module-level ``configure`` to an instance's ``configure``;
- ``configure(logger)`` is called once at start and returns the
  authenticator (``self``) to put it in the pool, or None to leave it out;
- ``can_handle_auth_request(request)`` returns whether the authenticator wants
  the request (default: yes);
- ``handle_auth_request(request)`` calls ``_authenticate_request(request)``,
  which returns a ``UserData`` for an accepted login and None otherwise.

Differences from the real base class: ``handle_auth_request`` returns the
``UserData`` itself, and the caller (the REST stand-in or the offline
harness) creates or updates the user. Only ``UserData(username)`` is
documented publicly; the keyword fields below are this stand-in's guess at
what the real one carries (the manager's user model has e-mail, first and
last name, and groups decide tenants and roles).

Written for Python 3.6, the oldest interpreter a supported manager ships.
"""


class UserData(object):
    """A user that an authenticator accepted."""

    def __init__(self, username, email=None, first_name=None, last_name=None,
                 groups=None, **extra):
        self.username = username
        self.email = email
        self.first_name = first_name
        self.last_name = last_name
        # Group names or LDAP DNs; the manager maps them to its user groups.
        self.groups = list(groups or [])
        self.extra = extra

    def to_dict(self):
        return {
            "username": self.username,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "groups": list(self.groups),
        }

    def __repr__(self):
        return "UserData(username=%r, groups=%r)" % (self.username, self.groups)


class AuthBase(object):
    """Base class of every authenticator module."""

    def configure(self, logger):
        self.logger = logger
        return self

    def can_handle_auth_request(self, request):
        return True

    def handle_auth_request(self, request):
        return self._authenticate_request(request)

    def _authenticate_request(self, request):
        raise NotImplementedError(
            "%s must define _authenticate_request(request)" % type(self).__name__)

    def action_handler(self, action):
        # Cloudify 7.0 lets an authenticator take over user and tenant
        # management actions; None leaves them refused.
        return None
