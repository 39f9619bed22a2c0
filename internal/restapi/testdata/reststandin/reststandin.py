#!/usr/bin/env python3
"""Stand-in for the Cloudify Manager REST service (cloudify-restservice).

cfyauth's tests use it because the real service cannot run without the
manager's database, message broker and private premium package. It runs in
the foreground, so it can be the ExecStart= of a systemd unit or the command
of a supervisord program, and it stops cleanly on SIGTERM.

What it imitates (Cloudify 5.1 to 7.0, from the manager's public code and
documentation):

- At start it loads every *.py file of <root>/opt/manager/resources/
  authenticators (sorted by name), with cloudify_premium.authentication.
  auth_base built from the stand-in AuthBase and UserData that 'cfyauth
  test' uses (internal/pyharness/programs/standins.py) when the real package
  is not importable. It calls each module's configure(logger) once and keeps those
  that do not return None. A module that fails to import, has no callable
  configure, or raises in configure is left out, and its traceback goes to
  the log. The service still starts.
- HTTP basic auth for the bootstrap admin (user "admin") is checked locally
  against <state>/admin_password. Every other basic-auth login, and every
  request without credentials, goes through the loaded authenticators in
  order: can_handle_auth_request, then handle_auth_request. A UserData
  result creates or updates that user; its groups (names or LDAP DNs) map to
  user groups, tenants and roles from <state>/groups.json. Users are kept in
  <state>/users.json, so they survive a restart. A module that raises while
  handling a login makes the request fail with 500 and a traceback, in the
  body and in the log.
- Endpoints under /api/v3.1: ok (no credentials; 200 "OK", or 500 "FAIL"
  while <state>/unhealthy exists), user (with _get_data), idp, version
  (also /api/version), status, config?scope=rest (rows from
  <state>/config.json; admin_only rows masked for non-admins from 6.4),
  user-groups, tokens, maintenance (GET, POST activate and deactivate).
- Errors are the manager's JSON bodies {message, error_code,
  server_traceback}: 401 unauthorized_error, 403 forbidden_error for an
  unknown Tenant header, 503 maintenance_mode_active while maintenance mode
  is on (<state>/maintenance exists; only maintenance, status, version and
  ok still answer).
- From 6.2 every authenticated answer carries X-Cloudify-Audit-Username,
  -Tenant and -Auth-Method (http_basic, token, and from 6.4 external), and
  the audit log gets a line per request. Endpoints that came later answer
  404 on older versions: ok before 6.0, idp before 6.3. GET tokens mints a
  token up to 6.3 and lists them from 6.4. POST tokens creates one; without
  credentials its body (such as {"saml-response": ...}) goes to the
  authenticators, as the console's SAML login does. Up to 6.3 the token
  it returns has no id (those managers do not keep tokens).
- When <root>/etc/cloudify/ssl/okta_certificate.pem exists at start, an
  "okta" authenticator comes first in the pool: it verifies SAML responses
  posted to POST tokens against that certificate with Debian's xmlsec1 and
  refuses a bad one with 401 (reststandin_saml.py says what it checks).

What it does not imitate: nginx (no header stripping, no rate limits, one
port), gunicorn workers (one process, a thread per connection), the
database (no local users but the admin, no account lock), the premium LDAP
authenticator (not loaded), the premium Okta one beyond what
reststandin_saml.py describes, the real names of the /idp entries for custom modules (it uses the module
name), Flask Response results from authenticators (ignored), and RBAC
beyond "sys_admin may list user groups and change maintenance mode".

Faults for the restart tests, as files in the state folder: crash-at-start
(log a traceback and exit 3 after loading modules), start-delay (seconds to
wait before listening), ok-delay (seconds to wait before answering /ok).

Usage: reststandin.py --root DIR --port N [--host 127.0.0.1] [--state DIR]
       [--log FILE] [--tls-cert FILE --tls-key FILE] [--manager-version X.Y.Z]
       [--ready-file FILE] [--standins FILE]

Standard library only (plus the xmlsec1 program for SAML signatures),
written for Python 3.6.
"""
import argparse
import base64
import binascii
import datetime
import hmac
import importlib.util
import ipaddress
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import socketserver
import ssl
import string
import sys
import types
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

import reststandin_saml as saml

HERE = os.path.dirname(os.path.abspath(__file__))
STANDINS = os.path.normpath(os.path.join(HERE, "..", "..", "..", "pyharness", "programs", "standins.py"))

AUTHENTICATORS_DIR = "opt/manager/resources/authenticators"
REST_LOG = "var/log/cloudify/rest/cloudify-rest-service.log"
AUDIT_LOG = "var/log/cloudify/rest/audit.log"
SANDBOX_MARKER = "var/lib/cfyauth/sandbox.json"
DEFAULT_STATE = "var/lib/reststandin"

ADMIN = "admin"
DEFAULT_TENANT = "default_tenant"
API_PREFIX = "/api/v3.1"
MAX_BODY = 1 << 20
# Endpoints that still respond while maintenance mode is on.
MAINTENANCE_ALLOWED = ("maintenance", "status", "version", "ok")

log = logging.getLogger("manager_rest")


def now_iso():
    return datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def version_tuple(text):
    parts = []
    for piece in text.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    while len(parts) < 2:
        parts.append(0)
    return tuple(parts)


def write_json_atomic(path, data):
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path, default):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as err:
        log.error("cannot read %s: %s", path, err)
        return default


class HttpError(Exception):
    def __init__(self, status, code, message, server_traceback=None):
        Exception.__init__(self, message)
        self.status = status
        self.code = code
        self.message = message
        self.server_traceback = server_traceback


def unauthorized(message):
    return HttpError(401, "unauthorized_error", message)


# ---------------------------------------------------------------------------
# The request object handed to authenticators: the parts of a Flask request
# that authenticator modules use.

class Authorization(dict):
    """HTTP basic credentials, readable as attributes or keys."""

    def __init__(self, username, password):
        dict.__init__(self, username=username, password=password)
        self.type = "basic"

    @property
    def username(self):
        return self.get("username")

    @property
    def password(self):
        return self.get("password")


class Headers(object):
    """Case-insensitive, read-only request headers."""

    def __init__(self, message):
        self._items = [(k, v) for k, v in message.items()]

    def get(self, key, default=None):
        lower = key.lower()
        for k, v in self._items:
            if k.lower() == lower:
                return v
        return default

    def __getitem__(self, key):
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key):
        return self.get(key) is not None

    def items(self):
        return list(self._items)

    def keys(self):
        return [k for k, _ in self._items]

    def __iter__(self):
        return iter(self._items)


class Request(object):
    def __init__(self, handler, body):
        parts = urlsplit(handler.path)
        self.method = handler.command
        self.path = parts.path
        self.full_path = handler.path
        self.query_string = parts.query.encode("utf-8")
        self.args = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.headers = Headers(handler.headers)
        self.host = self.headers.get("Host", "")
        self.url = "%s://%s%s" % (handler.server.scheme, self.host, handler.path)
        self.remote_addr = handler.client_address[0]
        self.data = body
        self.cookies = {}
        self.authorization = parse_basic_auth(self.headers.get("Authorization"))

    def get_json(self, force=False, silent=False):
        if not force and "json" not in (self.headers.get("Content-Type") or ""):
            return None
        try:
            return json.loads(self.data.decode("utf-8"))
        except ValueError:
            if silent:
                return None
            raise HttpError(400, "bad_parameters_error", "Request body is not valid JSON")

    @property
    def json(self):
        return self.get_json(silent=True)


def parse_basic_auth(header):
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        text = decoded.decode("latin-1")
    if ":" not in text:
        return None
    username, password = text.split(":", 1)
    return Authorization(username, password)


# ---------------------------------------------------------------------------
# Loading authenticators.

def install_standin_auth_base(standins_path):
    """Make cloudify_premium.authentication.auth_base importable, from the
    same stand-in AuthBase and UserData that 'cfyauth test' uses."""
    try:
        import cloudify_premium.authentication.auth_base  # noqa: F401
        log.info("using the installed cloudify_premium.authentication.auth_base")
        return
    except ImportError:
        pass
    spec = importlib.util.spec_from_file_location("cfyauth_standins", standins_path)
    standins = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(standins)
    names = ["cloudify_premium", "cloudify_premium.authentication", "cloudify_premium.authentication.auth_base"]
    for name in names:
        module = types.ModuleType(name)
        module.__path__ = []
        sys.modules[name] = module
    sys.modules[names[0]].authentication = sys.modules[names[1]]
    sys.modules[names[1]].auth_base = sys.modules[names[2]]
    sys.modules[names[2]].AuthBase = standins.AuthBase
    sys.modules[names[2]].UserData = standins.UserData
    log.info("cloudify_premium is not installed; using the stand-in AuthBase from %s", standins_path)


def load_authenticators(folder):
    """Import every module of the folder and configure it, in name order."""
    loaded = []
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".py") and not n.startswith("."))
    except FileNotFoundError:
        log.warning("authenticators folder %s does not exist; no external authentication", folder)
        return loaded
    except OSError as err:
        log.error("cannot list authenticators folder %s: %s", folder, err)
        return loaded
    for filename in names:
        name = filename[:-3]
        path = os.path.join(folder, filename)
        if name in sys.modules:
            log.error("authenticator module %s (%s) not loaded: the name is already taken by module %r",
                      name, path, sys.modules[name])
            continue
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        except Exception:
            sys.modules.pop(name, None)
            log.error("failed to import authenticator module %s from %s\n%s", name, path, traceback.format_exc().rstrip())
            continue
        configure = getattr(module, "configure", None)
        if not callable(configure):
            log.error("authenticator module %s (%s) has no callable configure; not loaded", name, path)
            continue
        try:
            authenticator = configure(logging.getLogger("manager_rest.authenticators." + name))
        except Exception:
            log.error("configure() of authenticator module %s (%s) raised\n%s", name, path, traceback.format_exc().rstrip())
            continue
        if authenticator is None:
            log.info("authenticator module %s: configure() returned None; not loaded", name)
            continue
        log.info("loaded authenticator module %s from %s", name, path)
        loaded.append((name, authenticator))
    return loaded


# ---------------------------------------------------------------------------
# Users, groups and tokens.

class Store(object):
    def __init__(self, state_dir, version):
        self.state_dir = state_dir
        self.version = version
        self.lock = threading.Lock()
        self.users_path = os.path.join(state_dir, "users.json")
        self.users = read_json(self.users_path, {})
        self.tokens = {}
        created = now_iso()
        self.admin = {
            "username": ADMIN, "role": "sys_admin", "groups": [], "direct_tenants": {DEFAULT_TENANT: "user"},
            "created_at": created, "first_login_at": None, "last_login_at": None, "active": True,
        }

    def path(self, name):
        return os.path.join(self.state_dir, name)

    def admin_password(self):
        try:
            with open(self.path("admin_password")) as f:
                return f.readline().rstrip("\r\n")
        except OSError:
            return None

    def groups_config(self):
        return read_json(self.path("groups.json"), {})

    def groups(self):
        return self.groups_config().get("groups", [])

    def tenants(self):
        names = {DEFAULT_TENANT}
        cfg = self.groups_config()
        names.update(cfg.get("tenants", []))
        for g in cfg.get("groups", []):
            names.update((g.get("tenants") or {}).keys())
        return names

    def match_groups(self, values):
        wanted = set(v.lower() for v in values if isinstance(v, str))
        matched = []
        for g in self.groups():
            name = (g.get("name") or "").lower()
            dn = (g.get("ldap_dn") or "").lower()
            if name in wanted or (dn and dn in wanted):
                matched.append(g["name"])
        return sorted(matched)

    def find(self, username):
        if username.lower() == ADMIN:
            return self.admin
        return self.users.get(username.lower())

    def record_login(self, user):
        stamp = now_iso()
        if not user.get("first_login_at"):
            user["first_login_at"] = stamp
        user["last_login_at"] = stamp

    def upsert_external(self, data, authenticator):
        """Create or update the user an authenticator accepted."""
        with self.lock:
            key = data.username.lower()
            user = self.users.get(key)
            if user is None:
                user = {"username": data.username, "role": "default", "direct_tenants": {},
                        "created_at": now_iso(), "first_login_at": None, "active": True}
                self.users[key] = user
                log.info("created user %s after a login accepted by authenticator %s", data.username, authenticator)
            else:
                log.info("updated user %s after a login accepted by authenticator %s", data.username, authenticator)
            user["groups"] = self.match_groups(getattr(data, "groups", None) or [])
            for field in ("email", "first_name", "last_name"):
                value = getattr(data, field, None)
                if value:
                    user[field] = value
            self.record_login(user)
            try:
                write_json_atomic(self.users_path, self.users)
            except OSError as err:
                log.error("cannot save users to %s: %s", self.users_path, err)
            return user

    def user_response(self, user, get_data):
        groups = {g["name"]: g for g in self.groups()}
        member_of = [groups[name] for name in user.get("groups", []) if name in groups]
        all_roles = {}
        for tenant, role in user.get("direct_tenants", {}).items():
            all_roles.setdefault(tenant, set()).add(role)
        group_tenants = {}
        for g in member_of:
            for tenant, role in (g.get("tenants") or {}).items():
                all_roles.setdefault(tenant, set()).add(role)
                group_tenants.setdefault(tenant, {}).setdefault(role, []).append(g["name"])
        group_system_roles = {}
        for g in member_of:
            group_system_roles.setdefault(g.get("role") or "default", []).append(g["name"])
        tenants = {
            tenant: {"tenant-role": user.get("direct_tenants", {}).get(tenant), "roles": sorted(roles)}
            for tenant, roles in all_roles.items()
        }
        doc = {
            "username": user["username"],
            "role": user.get("role", "default"),
            "groups": sorted(g["name"] for g in member_of),
            "tenants": tenants,
            "group_system_roles": group_system_roles,
            "active": user.get("active", True),
            "created_at": user.get("created_at"),
            "first_login_at": user.get("first_login_at"),
            "last_login_at": user.get("last_login_at"),
            "is_locked": False,
            "show_getting_started": False,
        }
        if get_data:
            doc["tenant_roles"] = {"direct": dict(user.get("direct_tenants", {})), "groups": group_tenants}
        else:
            doc["tenants"] = len(doc["tenants"])
            doc["groups"] = len(doc["groups"])
        return doc

    def system_roles(self, user):
        roles = {user.get("role", "default")}
        names = set(user.get("groups", []))
        roles.update(g.get("role") or "default" for g in self.groups() if g["name"] in names)
        return roles

    def create_token(self, user, description, expiration):
        token_id = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(10))
        secret = secrets.token_urlsafe(30)
        token = {"id": token_id, "secret": secret, "username": user["username"], "description": description,
                 "expiration_date": expiration, "last_used": None}
        with self.lock:
            self.tokens[token_id] = token
        return token

    def token_response(self, token, with_secret):
        user = self.find(token["username"]) or {}
        return {
            "id": token["id"],
            "value": "ctok-%s-%s" % (token["id"], token["secret"] if with_secret else "********"),
            "username": token["username"],
            "role": user.get("role", "default"),
            "expiration_date": token["expiration_date"],
            "last_used": token["last_used"],
            "description": token["description"],
        }

    def user_for_token(self, value):
        parts = value.split("-", 2)
        if len(parts) != 3:
            raise unauthorized("Invalid token structure")
        token = self.tokens.get(parts[1])
        if token is None or not hmac.compare_digest(token["secret"], parts[2]):
            raise unauthorized("Unauthorized")
        token["last_used"] = now_iso()
        user = self.find(token["username"])
        if user is None:
            raise unauthorized("No authentication info provided")
        return user


# ---------------------------------------------------------------------------
# The HTTP side.

class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, family, app, tls_context):
        self.address_family = family
        self.app = app
        self.tls_context = tls_context
        self.scheme = "https" if tls_context else "http"
        HTTPServer.__init__(self, address, Handler)

    def handle_error(self, request, client_address):
        # A failed TLS handshake or a client that went away is routine; it
        # is logged on one line instead of a traceback on stderr.
        log.info("connection from %s ended with an error: %s", client_address[0], sys.exc_info()[1])


class Handler(BaseHTTPRequestHandler):
    server_version = "reststandin"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def setup(self):
        # Headers and body leave in separate writes; without TCP_NODELAY a
        # keep-alive client waits for the delayed ACK between them.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The TLS handshake runs here, in the connection's own thread, so a
        # client that stalls or rejects the certificate does not block other
        # connections.
        if self.server.tls_context is not None:
            self.request.settimeout(10)
            try:
                self.request = self.server.tls_context.wrap_socket(self.request, server_side=True)
            except (ssl.SSLError, OSError) as err:
                log.info("TLS handshake with %s failed: %s", self.client_address[0], err)
                self.request.close()
                raise
        BaseHTTPRequestHandler.setup(self)

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.server.app.handle(self)

    do_POST = do_GET
    do_PUT = do_GET
    do_PATCH = do_GET
    do_DELETE = do_GET

    def send_json(self, status, payload, headers=None):
        body = b"" if payload is None else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class App(object):
    def __init__(self, args, store, authenticators):
        self.args = args
        self.store = store
        self.authenticators = authenticators
        self.version = args.manager_version
        self.vt = version_tuple(self.version)
        self.audit = logging.getLogger("audit")

    def control(self, name):
        return os.path.join(self.args.state, name)

    def control_seconds(self, name):
        try:
            with open(self.control(name)) as f:
                return max(0.0, float(f.read().strip() or 0))
        except (OSError, ValueError):
            return 0.0

    def maintenance_state(self):
        path = self.control("maintenance")
        if not os.path.exists(path):
            return None
        state = read_json(path, {})
        if not isinstance(state, dict):
            state = {}
        state.setdefault("status", "activated")
        return state

    def handle(self, handler):
        started = time.time()
        audit = {}
        status = 500
        try:
            length = int(handler.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise HttpError(413, "bad_parameters_error", "Request body too large")
            body = handler.rfile.read(length) if length > 0 else b""
            request = Request(handler, body)
            status, payload, extra = self.dispatch(request, audit)
        except HttpError as err:
            status = err.status
            payload = {"message": err.message, "error_code": err.code, "server_traceback": err.server_traceback}
            extra = {}
        except Exception:
            tb = traceback.format_exc()
            log.error("unhandled error on %s %s\n%s", handler.command, handler.path, tb.rstrip())
            status = 500
            payload = {"message": "Internal error in the REST stand-in", "error_code": "internal_server_error",
                       "server_traceback": tb}
            extra = {}
        headers = dict(extra)
        if audit.get("method") and self.vt >= (6, 2):
            headers["X-Cloudify-Audit-Username"] = audit["username"]
            headers["X-Cloudify-Audit-Tenant"] = audit.get("tenant", "")
            headers["X-Cloudify-Audit-Auth-Method"] = audit["method"]
        try:
            handler.send_json(status, payload, headers)
        except OSError as err:
            log.info("cannot send the response to %s: %s", handler.client_address[0], err)
        elapsed = (time.time() - started) * 1000
        log.info("%s %s %d user=%s method=%s %.1fms", handler.command, urlsplit(handler.path).path, status,
                 audit.get("username", "-"), audit.get("method", "-"), elapsed)
        self.audit.info("%s %s %s %d user=%s tenant=%s auth_method=%s", handler.client_address[0], handler.command,
                        urlsplit(handler.path).path, status, audit.get("username", "-"), audit.get("tenant", "-"),
                        audit.get("method", "-"))

    def dispatch(self, request, audit):
        path = request.path.rstrip("/")
        if path == "/api/version":
            endpoint = "version"
        elif path.startswith(API_PREFIX + "/") or path == API_PREFIX:
            endpoint = path[len(API_PREFIX):].strip("/")
        else:
            raise HttpError(404, "not_found_error", "404 Not Found: The requested URL was not found on the server.")

        maintenance = self.maintenance_state()
        if maintenance and maintenance.get("status") == "activated" \
                and not endpoint.split("/")[0] in MAINTENANCE_ALLOWED:
            raise HttpError(503, "maintenance_mode_active",
                            "Your request was rejected since Cloudify manager is currently in maintenance mode")

        if endpoint == "ok":
            return self.get_ok(request)

        user, method = self.authenticate(request)
        tenant = request.headers.get("Tenant")
        audit.update(username=user["username"], method=method, tenant=tenant or DEFAULT_TENANT)
        if tenant and tenant not in self.store.tenants():
            raise HttpError(403, "forbidden_error",
                            "Authorization failed: Tried to authenticate with invalid tenant name: %s" % tenant)
        if not user.get("active", True):
            raise HttpError(403, "forbidden_error", "Authorization failed: User `%s` is deactivated" % user["username"])

        routes = {
            ("GET", "user"): self.get_user,
            ("GET", "idp"): self.get_idp,
            ("GET", "version"): self.get_version,
            ("GET", "status"): self.get_status,
            ("GET", "config"): self.get_config,
            ("GET", "user-groups"): self.get_user_groups,
            ("GET", "tokens"): self.get_tokens,
            ("POST", "tokens"): self.post_tokens,
            ("GET", "maintenance"): self.get_maintenance,
            ("POST", "maintenance/activate"): self.post_maintenance,
            ("POST", "maintenance/deactivate"): self.post_maintenance,
        }
        route = routes.get((request.method, endpoint))
        if endpoint.startswith("tokens/") and request.method == "DELETE":
            route = self.delete_token
        if route is None or (endpoint == "idp" and self.vt < (6, 3)):
            raise HttpError(404, "not_found_error", "404 Not Found: The requested URL was not found on the server.")
        return route(request, user, endpoint)

    # -- authentication ----------------------------------------------------

    def authenticate(self, request):
        auth = request.authorization
        if auth and auth.username and auth.username[0] in string.ascii_letters and auth.username.lower() == ADMIN:
            expected = self.store.admin_password()
            if expected is not None and hmac.compare_digest(expected.encode("utf-8"), (auth.password or "").encode("utf-8")):
                self.store.record_login(self.store.admin)
                return self.store.admin, "http_basic"
            raise unauthorized("Authentication failed for <User username=`%s`>. Wrong credentials or locked account"
                               % auth.username)
        token = request.headers.get("Authentication-Token")
        if token:
            return self.store.user_for_token(token), "token"
        for name, authenticator in self.authenticators:
            try:
                if not authenticator.can_handle_auth_request(request):
                    continue
                result = authenticator.handle_auth_request(request)
            except HttpError:
                raise
            except saml.SamlRejected as err:
                raise unauthorized("SAML response rejected: %s" % err)
            except saml.SamlUnavailable as err:
                log.error("authenticator %s cannot check SAML responses: %s", name, err)
                raise HttpError(500, "internal_server_error", "Authenticator %s failed: %s" % (name, err))
            except Exception:
                tb = traceback.format_exc()
                log.error("authenticator %s raised while handling %s %s\n%s", name, request.method, request.path, tb.rstrip())
                raise HttpError(500, "internal_server_error", "Authenticator %s failed: %s" % (name, sys.exc_info()[1]), tb)
            if result is None:
                continue
            if not isinstance(getattr(result, "username", None), str) or not result.username:
                log.warning("authenticator %s returned %r instead of UserData or None; ignored", name, type(result).__name__)
                continue
            user = self.store.upsert_external(result, name)
            # NOTE: 6.2 and 6.3 had no "external" audit value, and which label
            # an external login got there is not public, so this guesses the
            # label of the credentials it came with.
            if self.vt >= (6, 4):
                method = "external"
            elif auth:
                method = "http_basic"
            else:
                method = "token"
            return user, method
        raise unauthorized("No authentication info provided")

    # -- endpoints -----------------------------------------------------------

    def get_ok(self, request):
        if self.vt < (6, 0):
            raise HttpError(404, "not_found_error", "404 Not Found: The requested URL was not found on the server.")
        delay = self.control_seconds("ok-delay")
        if delay:
            time.sleep(delay)
        if os.path.exists(self.control("unhealthy")):
            return 500, "FAIL", {}
        return 200, "OK", {}

    def get_user(self, request, user, endpoint):
        get_data = str(request.args.get("_get_data", "")).lower() in ("true", "1", "yes")
        return 200, self.store.user_response(user, get_data), {}

    def get_idp(self, request, user, endpoint):
        names = [name for name, _ in self.authenticators]
        return 200, ",".join(names) if names else "local", {}

    def get_version(self, request, user, endpoint):
        return 200, {
            "version": self.version, "edition": "premium", "distribution": "rhel", "distro_release": "Ootpa",
            "build": None, "date": None, "commit": None,
        }, {}

    def get_status(self, request, user, endpoint):
        return 200, {"status": "OK", "services": {}}, {}

    def get_config(self, request, user, endpoint):
        scope = request.args.get("scope")
        rows = {"rest_service_log_level": "INFO", "failed_logins_before_account_lock": 4, "account_lock_period": -1}
        rows.update(read_json(self.control("config.json"), {}))
        is_admin = "sys_admin" in self.store.system_roles(user)
        items = []
        for name in sorted(rows):
            item = {"name": name, "value": rows[name], "scope": "rest", "schema": None, "is_editable": True,
                    "updated_at": None, "updater_name": None}
            if self.vt >= (6, 4):
                item["admin_only"] = name in ("ldap_username", "ldap_password")
                if item["admin_only"] and not is_admin:
                    item["value"] = "********"
            items.append(item)
        if scope:
            items = [i for i in items if i["scope"] == scope]
        return 200, {"metadata": {}, "items": items}, {}

    def require_admin(self, user, action):
        if "sys_admin" not in self.store.system_roles(user):
            raise HttpError(403, "forbidden_error",
                            "User `%s` is not permitted to perform the action %s" % (user["username"], action))

    def get_user_groups(self, request, user, endpoint):
        self.require_admin(user, "user_group_list")
        get_data = str(request.args.get("_get_data", "")).lower() in ("true", "1", "yes")
        members = {}
        for u in list(self.store.users.values()):
            for g in u.get("groups", []):
                members.setdefault(g, []).append(u["username"])
        items = []
        for g in self.store.groups():
            tenants = dict(g.get("tenants") or {})
            users = sorted(members.get(g["name"], []))
            items.append({
                "name": g["name"], "ldap_dn": g.get("ldap_dn"), "role": g.get("role") or "default",
                "tenants": tenants if get_data else len(tenants), "users": users if get_data else len(users),
            })
        return 200, {"items": items, "metadata": {"pagination": {"total": len(items), "size": len(items), "offset": 0}}}, {}

    def get_tokens(self, request, user, endpoint):
        if self.vt < (6, 4):
            token = self.store.create_token(user, None, None)
            doc = self.store.token_response(token, True)
            return 200, {"value": doc["value"], "role": doc["role"], "username": doc["username"]}, {}
        mine = [self.store.token_response(t, False) for t in list(self.store.tokens.values())
                if t["username"].lower() == user["username"].lower()]
        return 200, {"items": mine, "metadata": {"pagination": {"total": len(mine), "size": len(mine), "offset": 0}}}, {}

    def post_tokens(self, request, user, endpoint):
        body = request.get_json(silent=True) or {}
        token = self.store.create_token(user, body.get("description"), body.get("expiration_date"))
        doc = self.store.token_response(token, True)
        if self.vt < (6, 4):
            return 200, {"value": doc["value"], "role": doc["role"], "username": doc["username"]}, {}
        return 200, doc, {}

    def delete_token(self, request, user, endpoint):
        token_id = endpoint.split("/", 1)[1]
        token = self.store.tokens.get(token_id)
        if token is None or (token["username"].lower() != user["username"].lower()
                             and "sys_admin" not in self.store.system_roles(user)):
            raise HttpError(404, "not_found_error", "Requested `Token` with ID `%s` was not found" % token_id)
        with self.store.lock:
            self.store.tokens.pop(token_id, None)
        return 204, None, {}

    def get_maintenance(self, request, user, endpoint):
        state = self.maintenance_state() or {"status": "deactivated"}
        return 200, state, {}

    def post_maintenance(self, request, user, endpoint):
        self.require_admin(user, "maintenance_mode_set")
        if endpoint.endswith("activate") and not endpoint.endswith("deactivate"):
            state = {"status": "activated", "activated_at": now_iso(), "requested_by": user["username"],
                     "activation_requested_at": now_iso(), "remaining_executions": []}
            write_json_atomic(self.control("maintenance"), state)
            log.info("maintenance mode activated by %s", user["username"])
            return 200, state, {}
        try:
            os.remove(self.control("maintenance"))
        except FileNotFoundError:
            pass
        log.info("maintenance mode deactivated by %s", user["username"])
        return 200, {"status": "deactivated"}, {}


# ---------------------------------------------------------------------------
# Start and stop.

def parse_args(argv):
    p = argparse.ArgumentParser(description="Stand-in for the Cloudify Manager REST service, for tests.")
    p.add_argument("--root", required=True, help="manager root folder (a cfyauth sandbox)")
    p.add_argument("--port", required=True, type=int, help="TCP port to listen on")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    p.add_argument("--state", help="folder for admin_password, groups.json, config.json, users.json, saml.json "
                                   "and the fault files (default ROOT/%s)" % DEFAULT_STATE)
    p.add_argument("--log", help="log file (default ROOT/%s)" % REST_LOG)
    p.add_argument("--audit-log", help="audit log file (default ROOT/%s)" % AUDIT_LOG)
    p.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--tls-key", help="private key of --tls-cert (PEM)")
    p.add_argument("--manager-version", help="version to report and imitate (default: the sandbox release "
                                             "plus .0, else 7.0.0)")
    p.add_argument("--ready-file", help="write {pid, port, url} here once listening")
    p.add_argument("--standins", default=STANDINS,
                   help="the stand-ins file of 'cfyauth test', whose AuthBase and UserData are used when "
                        "cloudify_premium is not importable (default %s)" % STANDINS)
    args = p.parse_args(argv)
    args.root = os.path.abspath(args.root)
    args.state = os.path.abspath(args.state or os.path.join(args.root, DEFAULT_STATE))
    args.log = os.path.abspath(args.log or os.path.join(args.root, REST_LOG))
    args.audit_log = os.path.abspath(args.audit_log or os.path.join(args.root, AUDIT_LOG))
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if not (0 < args.port < 65536):
        p.error("--port must be between 1 and 65535, got %d" % args.port)
    if not is_loopback(args.host):
        p.error("--host must be a loopback address such as 127.0.0.1 or ::1, got %s" % args.host)
    if not args.manager_version:
        marker = read_json(os.path.join(args.root, SANDBOX_MARKER), {})
        release = marker.get("release") if isinstance(marker, dict) else None
        args.manager_version = (release + ".0") if release else "7.0.0"
    return args


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def okta_authenticator(args):
    """Return the Okta authenticator when the IdP certificate is installed, else None."""
    cert = os.path.join(args.root, saml.OKTA_CERTIFICATE)
    if not os.path.exists(cert):
        return None
    log.info("found %s: SAML responses are checked against it", cert)
    if shutil.which("xmlsec1") is None:
        log.error("xmlsec1 is not installed, so every SAML login fails (apt-get install xmlsec1)")
    return saml.OktaAuthenticator(cert, os.path.join(args.state, saml.SETTINGS_FILE),
                                  logging.getLogger("manager_rest.authenticators.okta"))


def setup_logging(args):
    for path in (args.log, args.audit_log):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    handler = logging.FileHandler(args.log)
    handler.setFormatter(logging.Formatter("[%(asctime)s: %(levelname)s/%(name)s] %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    audit_handler = logging.FileHandler(args.audit_log)
    audit_handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    audit = logging.getLogger("audit")
    audit.addHandler(audit_handler)
    audit.propagate = False


def main(argv):
    args = parse_args(argv)
    os.makedirs(args.state, exist_ok=True)
    setup_logging(args)
    log.info("REST stand-in starting: pid %d, manager version %s, root %s", os.getpid(), args.manager_version, args.root)
    if not os.path.exists(os.path.join(args.state, "admin_password")):
        log.warning("no %s: the admin cannot log in", os.path.join(args.state, "admin_password"))

    install_standin_auth_base(os.path.abspath(args.standins))
    authenticators = load_authenticators(os.path.join(args.root, AUTHENTICATORS_DIR))
    okta = okta_authenticator(args)
    if okta is not None:
        authenticators.insert(0, ("okta", okta))
    log.info("external authenticators: %s", ",".join(n for n, _ in authenticators) or "none (local)")

    if os.path.exists(os.path.join(args.state, "crash-at-start")):
        try:
            raise RuntimeError("crash requested by %s" % os.path.join(args.state, "crash-at-start"))
        except RuntimeError:
            log.critical("REST stand-in failed to start\n%s", traceback.format_exc().rstrip())
        return 3

    app = App(args, Store(args.state, args.manager_version), authenticators)
    delay = app.control_seconds("start-delay")
    if delay:
        log.info("waiting %.1fs before listening (start-delay)", delay)
        time.sleep(delay)

    tls_context = None
    if args.tls_cert:
        tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    try:
        server = Server((args.host, args.port), family, app, tls_context)
    except OSError as err:
        log.critical("cannot listen on %s port %d: %s", args.host, args.port, err)
        return 3
    url = "%s://%s:%d" % (server.scheme, "[%s]" % args.host if family == socket.AF_INET6 else args.host, args.port)

    def stop(signum, frame):
        log.info("received signal %d; stopping", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.ready_file:
        write_json_atomic(args.ready_file, {"pid": os.getpid(), "port": args.port, "url": url})
    log.info("listening on %s", url)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    log.info("REST stand-in stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
