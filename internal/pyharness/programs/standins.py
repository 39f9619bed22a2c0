# Stand-ins that 'cfyauth test' uses where the manager's own packages are
# missing. Written for Python 3.6. The harness runs this file as a module of
# its own and copies its names into stand-in modules (cloudify_premium...
# auth_base, flask, werkzeug.*) only when the real package is not
# importable. The request classes below are always used, because the harness
# builds its synthetic request itself.
#
# The AuthBase and UserData here follow the documented contract of
# cloudify_premium.authentication.auth_base, whose source is not public:
# configure(logger) returns self, can_handle_auth_request returns True, and
# handle_auth_request calls _authenticate_request. Only UserData's first
# argument, the username, is documented; every other field is recorded so the
# harness can list it and warn about it.
import base64
import binascii
import json


# --- werkzeug-like data structures -----------------------------------------

class HTTPException(Exception):
    """An HTTP error response raised as an exception, like werkzeug's."""
    code = None
    description = None

    def __init__(self, description=None, response=None):
        Exception.__init__(self, description or self.description or "")
        if description is not None:
            self.description = description
        self.response = response

    @property
    def name(self):
        return HTTP_STATUS_TEXT.get(self.code, "Unknown Error")

    def __str__(self):
        return "%s %s: %s" % (self.code, self.name, self.description or "")


class BadRequest(HTTPException):
    code = 400
    description = "The browser (or proxy) sent a request that this server could not understand."


class Unauthorized(HTTPException):
    code = 401
    description = "The server could not verify that you are authorized to access the URL requested."


class Forbidden(HTTPException):
    code = 403
    description = "You don't have the permission to access the requested resource."


class UnsupportedMediaType(HTTPException):
    code = 415
    description = "The server does not support the media type transmitted in the request."


HTTP_STATUS_TEXT = {
    200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently", 302: "Found",
    303: "See Other", 307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    409: "Conflict", 415: "Unsupported Media Type", 429: "Too Many Requests",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
}

_EXCEPTIONS_BY_CODE = {400: BadRequest, 401: Unauthorized, 403: Forbidden, 415: UnsupportedMediaType}


class BadRequestKeyError(BadRequest, KeyError):
    """A missing key in request data: a KeyError and a 400, as in werkzeug."""

    def __init__(self, key):
        BadRequest.__init__(self, "missing key %r" % (key,))
        self.args = (key,)

    def __str__(self):
        return BadRequest.__str__(self)


def convert(value, type, default):
    """Apply the type= conversion of get(). A ValueError gives the default."""
    if type is None:
        return value
    try:
        return type(value)
    except ValueError:
        return default


def convert_all(values, type):
    """Apply the type= conversion of getlist(), dropping values that fail."""
    if type is None:
        return values
    marker = object()
    converted = [convert(value, type, marker) for value in values]
    return [value for value in converted if value is not marker]


class Headers(object):
    """Case-insensitive HTTP headers with werkzeug's read API: get, getlist,
    'in', [] (KeyError when missing), items, keys; iteration yields
    (name, value) pairs. Request headers are read-only."""

    def __init__(self, items=None, readonly=False):
        self._items = []
        self._readonly = False
        if items:
            if isinstance(items, dict):
                items = items.items()
            for name, value in items:
                self.add(name, value)
        self._readonly = readonly

    def _check_writable(self):
        if self._readonly:
            raise TypeError("request headers are read-only")

    def get(self, key, default=None, type=None):
        values = self.getlist(key)
        return convert(values[0], type, default) if values else default

    def getlist(self, key, type=None):
        return convert_all([value for name, value in self._items if name.lower() == key.lower()], type)

    get_all = getlist

    def __getitem__(self, key):
        if isinstance(key, int):
            return self._items[key]
        value = self.get(key)
        if value is None:
            raise BadRequestKeyError(key)
        return value

    def __contains__(self, key):
        return any(name.lower() == str(key).lower() for name, _ in self._items)

    def __iter__(self):
        return iter(list(self._items))

    def __len__(self):
        return len(self._items)

    def __bool__(self):
        return bool(self._items)

    def items(self, lower=False):
        return [(name.lower() if lower else name, value) for name, value in self._items]

    def keys(self, lower=False):
        return [name.lower() if lower else name for name, _ in self._items]

    def values(self):
        return [value for _, value in self._items]

    def to_wsgi_list(self):
        return list(self._items)

    def add(self, name, value):
        self._check_writable()
        self._items.append((str(name), str(value)))

    def set(self, name, value):
        self._check_writable()
        self.remove(name)
        self._items.append((str(name), str(value)))

    __setitem__ = set

    def remove(self, name):
        self._check_writable()
        self._items = [item for item in self._items if item[0].lower() != name.lower()]

    __delitem__ = remove

    def extend(self, items):
        if isinstance(items, dict):
            items = items.items()
        for name, value in items:
            self.add(name, value)

    def __repr__(self):
        return "%s(%r)" % (type(self).__name__, self._items)


EnvironHeaders = Headers


class MultiDict(object):
    """A read-only mapping that may hold several values per key, with
    werkzeug's API: [] and get return the first value, getlist all of them."""

    def __init__(self, pairs=None):
        self._pairs = list(pairs or [])

    def get(self, key, default=None, type=None):
        values = self.getlist(key)
        return convert(values[0], type, default) if values else default

    def getlist(self, key, type=None):
        return convert_all([value for name, value in self._pairs if name == key], type)

    def __getitem__(self, key):
        for name, value in self._pairs:
            if name == key:
                return value
        raise BadRequestKeyError(key)

    def __contains__(self, key):
        return any(name == key for name, _ in self._pairs)

    def keys(self):
        seen = []
        for name, _ in self._pairs:
            if name not in seen:
                seen.append(name)
        return seen

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self.keys())

    def __bool__(self):
        return bool(self._pairs)

    def values(self):
        return [self[key] for key in self.keys()]

    def items(self, multi=False):
        if multi:
            return list(self._pairs)
        return [(key, self[key]) for key in self.keys()]

    def lists(self):
        return [(key, self.getlist(key)) for key in self.keys()]

    def to_dict(self, flat=True):
        if flat:
            return dict(self.items())
        return dict(self.lists())

    def __repr__(self):
        return "%s(%r)" % (type(self).__name__, self._pairs)


ImmutableMultiDict = MultiDict


class Authorization(dict):
    """The parsed Authorization header: a dict (as in werkzeug before 2.3)
    with attributes type, username, password and token."""

    def __init__(self, auth_type, data=None, token=None):
        dict.__init__(self, data or {})
        self.type = auth_type
        self.token = token

    @property
    def username(self):
        return self.get("username")

    @property
    def password(self):
        return self.get("password")

    def __repr__(self):
        # Never shows the password or token.
        return "<Authorization %s username=%r>" % (self.type, self.get("username"))


def parse_authorization_header(value):
    """Parse 'Basic ...' and 'Bearer ...' values; anything else is None."""
    if not value:
        return None
    scheme, _, rest = value.strip().partition(" ")
    scheme = scheme.lower()
    rest = rest.strip()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(rest.encode("ascii"), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeError, ValueError):
            return None
        username, sep, password = decoded.partition(":")
        if not sep:
            return None
        return Authorization("basic", {"username": username, "password": password})
    if scheme == "bearer" and rest:
        return Authorization("bearer", token=rest)
    return None


# --- the request -------------------------------------------------------------

class Request(object):
    """A synthetic request with the attributes of a Flask request that
    authenticators read. It is built from a plain description, never from a
    network connection."""

    def __init__(self, method, path, query, remote_addr, headers, body, scheme="https", host="localhost"):
        self.method = method.upper()
        self.path = path
        self.query_string = query.encode("utf-8")
        self.remote_addr = remote_addr
        self.access_route = [remote_addr]
        self.scheme = scheme
        self.host = host
        self.is_secure = scheme == "https"
        self.headers = Headers(headers, readonly=True)
        self.args = MultiDict(parse_query(query))
        self.cookies = MultiDict(parse_cookies(self.headers.getlist("Cookie")))
        self.form = MultiDict()
        self.files = MultiDict()
        self.values = self.args
        self._body = body or b""
        self.authorization = parse_authorization_header(self.headers.get("Authorization"))
        self.environ = self._make_environ()

    @property
    def full_path(self):
        return self.path + "?" + self.query_string.decode("utf-8")

    @property
    def host_url(self):
        return "%s://%s/" % (self.scheme, self.host)

    url_root = host_url

    @property
    def base_url(self):
        return "%s://%s%s" % (self.scheme, self.host, self.path)

    @property
    def url(self):
        if self.query_string:
            return self.base_url + "?" + self.query_string.decode("utf-8")
        return self.base_url

    @property
    def content_type(self):
        return self.headers.get("Content-Type")

    @property
    def mimetype(self):
        return (self.content_type or "").split(";")[0].strip().lower()

    @property
    def content_length(self):
        return len(self._body) if self._body else None

    @property
    def user_agent(self):
        return self.headers.get("User-Agent", "")

    @property
    def is_json(self):
        mimetype = self.mimetype
        return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))

    @property
    def data(self):
        return self._body

    def get_data(self, cache=True, as_text=False, parse_form_data=False):
        if as_text:
            return self._body.decode("utf-8", "replace")
        return self._body

    def get_json(self, force=False, silent=False, cache=True):
        # As werkzeug 2.1 and 2.2 do, a request that is not JSON is a 400
        # error unless silent is set. werkzeug 1.x returns None here, and 2.3
        # and later raise a 415 error.
        if not (force or self.is_json):
            if silent:
                return None
            raise BadRequest("the request is not JSON: its Content-Type is not application/json")
        try:
            return json.loads(self._body.decode("utf-8"))
        except ValueError:
            if silent:
                return None
            raise BadRequest("the request body is not valid JSON")

    @property
    def json(self):
        return self.get_json()

    def _make_environ(self):
        environ = {
            "REQUEST_METHOD": self.method,
            "PATH_INFO": self.path,
            "QUERY_STRING": self.query_string.decode("utf-8"),
            "REMOTE_ADDR": self.remote_addr,
            "SERVER_NAME": self.host,
            "SERVER_PORT": "443" if self.is_secure else "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": self.scheme,
        }
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = value
            else:
                environ["HTTP_" + key] = value
        return environ

    def __repr__(self):
        return "<Request %s %s>" % (self.method, self.url)


def parse_query(query):
    try:
        from urllib.parse import parse_qsl
    except ImportError:  # pragma: no cover - Python 2 is refused before this runs
        return []
    return parse_qsl(query, keep_blank_values=True)


def parse_cookies(values):
    pairs = []
    for value in values:
        for part in value.split(";"):
            name, sep, content = part.strip().partition("=")
            if sep and name:
                pairs.append((name.strip(), content.strip().strip('"')))
    return pairs


# The request the harness is running, for the flask.request stand-in.
current_request = None


class RequestProxy(object):
    """Stands in for flask.request: forwards to the request being tested."""

    def __getattr__(self, name):
        if current_request is None:
            raise RuntimeError("Working outside of request context.")
        return getattr(current_request, name)

    def __repr__(self):
        return repr(current_request)


request = RequestProxy()


# --- flask-like responses ----------------------------------------------------

class Response(object):
    """A minimal flask.Response: body, status, headers, mimetype."""

    default_status = 200
    default_mimetype = "text/plain"

    def __init__(self, response=None, status=None, headers=None, mimetype=None, content_type=None,
                 direct_passthrough=False):
        if response is None:
            body = b""
        elif isinstance(response, bytes):
            body = response
        elif isinstance(response, str):
            body = response.encode("utf-8")
        else:
            body = b"".join(part if isinstance(part, bytes) else str(part).encode("utf-8") for part in response)
        self._body = body
        self.headers = Headers(headers)
        if content_type is None:
            content_type = mimetype or self.default_mimetype
            if content_type.startswith("text/") and "charset" not in content_type:
                content_type += "; charset=utf-8"
        if "Content-Type" not in self.headers:
            self.headers.set("Content-Type", content_type)
        self.status_code = self.default_status
        if status is not None:
            self.status = status

    @property
    def status(self):
        return "%d %s" % (self.status_code, HTTP_STATUS_TEXT.get(self.status_code, "UNKNOWN").upper())

    @status.setter
    def status(self, value):
        if isinstance(value, int):
            self.status_code = value
        else:
            self.status_code = int(str(value).strip().split(" ")[0])

    @property
    def mimetype(self):
        return (self.headers.get("Content-Type") or "").split(";")[0].strip()

    @property
    def content_type(self):
        return self.headers.get("Content-Type")

    def get_data(self, as_text=False):
        if as_text:
            return self._body.decode("utf-8", "replace")
        return self._body

    def set_data(self, value):
        self._body = value.encode("utf-8") if isinstance(value, str) else bytes(value)

    @property
    def data(self):
        return self._body

    def get_json(self, force=False, silent=False):
        try:
            return json.loads(self._body.decode("utf-8"))
        except ValueError:
            if silent:
                return None
            raise

    @property
    def json(self):
        return self.get_json()

    def set_cookie(self, key, value="", **kwargs):
        self.headers.add("Set-Cookie", "%s=%s" % (key, value))

    def __repr__(self):
        return "<Response %d bytes [%s]>" % (len(self._body), self.status)


def jsonify(*args, **kwargs):
    if args and kwargs:
        raise TypeError("jsonify() takes either positional or keyword arguments, not both")
    if len(args) == 1:
        payload = args[0]
    elif args:
        payload = list(args)
    else:
        payload = kwargs
    return Response(json.dumps(payload, indent=None, separators=(",", ":")) + "\n", mimetype="application/json")


def make_response(*args):
    if not args:
        return Response()
    if len(args) == 1 and isinstance(args[0], tuple):
        args = args[0]
    body = args[0]
    if isinstance(body, Response):
        response = body
    elif isinstance(body, (dict, list)):
        response = jsonify(body)
    else:
        response = Response(body)
    for extra in args[1:]:
        if isinstance(extra, (int, str)) and not isinstance(extra, bool):
            response.status = extra
        elif extra:
            response.headers.extend(extra)
    return response


def abort(status, *args, **kwargs):
    if isinstance(status, Response):
        raise HTTPException(response=status)
    exception_class = _EXCEPTIONS_BY_CODE.get(status)
    if exception_class is None:
        exception_class = type("HTTPException%d" % status, (HTTPException,), {"code": status})
    raise exception_class(*args, **kwargs)


# --- cloudify_premium.authentication.auth_base ---------------------------------

class AuthBase(object):
    """Stand-in for the premium package's AuthBase, following its documented
    contract. The REST stand-in of the test suite uses it too."""

    def configure(self, logger):
        self.logger = logger
        return self

    def can_handle_auth_request(self, request):
        return True

    def _authenticate_request(self, request):
        raise NotImplementedError("an authenticator must implement _authenticate_request(request)")

    def handle_auth_request(self, request):
        # The real method also creates or updates the user in the manager's
        # database; this stand-in only returns what _authenticate_request
        # returned.
        return self._authenticate_request(request)

    def action_handler(self, action):
        # Cloudify 7.0 lets an authenticator take over user and tenant
        # management actions; None leaves them refused.
        return None


class UserData(object):
    """Stand-in for the premium package's UserData. Only the username (the
    first argument) is documented; every other argument is kept as a field
    so the harness can report it."""

    def __init__(self, username, *args, **fields):
        self.username = username
        recorded = [("username", username)]
        for index, value in enumerate(args):
            name = "arg%d" % (index + 2)
            setattr(self, name, value)
            recorded.append((name, value))
        for name in sorted(fields):
            setattr(self, name, fields[name])
            recorded.append((name, fields[name]))
        self._cfyauth_fields = recorded
        self._cfyauth_positional = len(args)

    def __repr__(self):
        return "<UserData %r>" % (self.username,)
