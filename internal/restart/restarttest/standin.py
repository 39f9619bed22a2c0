"""Test stand-in for the Cloudify REST service (cloudify-restservice).

It imitates what the restart health gate and `cfyauth status` observe of the
real service:
- at start it imports every *.py in <root>/opt/manager/resources/authenticators
  and calls its module-level configure(logger), as the manager's external
  authentication handler does; a module that raises is logged with its
  traceback to <root>/var/log/cloudify/rest/cloudify-rest-service.log and
  skipped, and the service stays up;
- GET /api/v3.1/ok returns 200 "OK" (500 "FAIL" while not ready), without
  authentication;
- GET /api/v3.1/idp returns the comma-joined names of the loaded
  authenticators, or "local", to a basic-auth admin login;
- GET /api/v3.1/status responds to a basic-auth admin login (before 6.0 the
  only health endpoint).

It does not imitate logins through the authenticators, tokens, the database,
nginx, TLS or gunicorn workers. Its faults are chosen with flags: --crash-after,
--fail-ok-for, --never-ready and --no-ok; --html returns a web page for every
path, as another web server at the health URL would. Standard library only;
written for Python 3.6 and later.
"""

import argparse
import base64
import importlib.util
import json
import logging
import os
import signal
import socketserver
import sys
import threading
import time
import traceback
import types
from http.server import BaseHTTPRequestHandler, HTTPServer

AUTHENTICATORS = "opt/manager/resources/authenticators"
REST_LOG = "var/log/cloudify/rest/cloudify-rest-service.log"


def parse_args():
    p = argparse.ArgumentParser(description="Cloudify REST service stand-in")
    p.add_argument("--root", required=True, help="manager root folder")
    p.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    p.add_argument("--admin-password", default="admin-secret",
                   help="password of the bootstrap admin for /idp and /status")
    p.add_argument("--crash-after", type=float, default=0,
                   help="exit with status 1 this many seconds after start")
    p.add_argument("--fail-ok-for", type=float, default=0,
                   help="return 500 from /ok for this many seconds after start")
    p.add_argument("--never-ready", action="store_true",
                   help="return 500 from /ok forever")
    p.add_argument("--no-ok", action="store_true",
                   help="return 404 from /ok, as managers before 6.0 do")
    p.add_argument("--html", action="store_true",
                   help="return 200 and an HTML page for every GET, as a web server that is not "
                        "the REST service does")
    return p.parse_args()


def make_logger(root):
    path = os.path.join(root, REST_LOG)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    logger = logging.getLogger("manager_rest")
    logger.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s [%(process)d] %(levelname)s: %(message)s")
    for handler in (logging.FileHandler(path), logging.StreamHandler(sys.stderr)):
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    return logger


def install_auth_base():
    """Provide cloudify_premium.authentication.auth_base when it is missing."""
    try:
        importlib.import_module("cloudify_premium.authentication.auth_base")
        return
    except ImportError:
        pass

    class UserData(object):
        def __init__(self, username, **fields):
            self.username = username
            self.__dict__.update(fields)

    class AuthBase(object):
        def configure(self, logger):
            self.logger = logger
            return self

        def can_handle_auth_request(self, request):
            return True

        def handle_auth_request(self, request):
            return self._authenticate_request(request)

    names = ["cloudify_premium", "cloudify_premium.authentication",
             "cloudify_premium.authentication.auth_base"]
    for name in names:
        sys.modules[name] = types.ModuleType(name)
    sys.modules[names[2]].AuthBase = AuthBase
    sys.modules[names[2]].UserData = UserData


def load_authenticators(root, logger):
    folder = os.path.join(root, AUTHENTICATORS)
    loaded = []
    try:
        files = sorted(f for f in os.listdir(folder)
                       if f.endswith(".py") and not f.startswith("."))
    except OSError as e:
        logger.warning("cannot list authenticators folder %s: %s", folder, e)
        return loaded
    for filename in files:
        name = filename[:-3]
        path = os.path.join(folder, filename)
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            authenticator = module.configure(logger)
        except Exception:
            logger.error("failed to load authenticator module %s from %s\n%s",
                         name, path, traceback.format_exc().rstrip())
            continue
        if authenticator is not None:
            loaded.append(name)
            logger.info("loaded authenticator %s", name)
    return loaded


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_handler(args, started, loaded, logger):
    expected_auth = "Basic " + base64.b64encode(
        ("admin:" + args.admin_password).encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *a):
            pass

        def send_json(self, code, value):
            body = json.dumps(value).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def authorized(self):
            if self.headers.get("Authorization") == expected_auth:
                return True
            self.send_json(401, {"message": "No authentication info provided",
                                 "error_code": "unauthorized_error"})
            return False

        def send_page(self):
            body = b"<!DOCTYPE html>\n<html><head><title>Welcome</title></head><body>It works.</body></html>\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if args.html:
                self.send_page()
            elif path == "/api/v3.1/ok" and not args.no_ok:
                ready = not args.never_ready and time.time() - started >= args.fail_ok_for
                if ready:
                    self.send_json(200, "OK")
                else:
                    logger.warning("health check: database not reachable yet")
                    self.send_json(500, "FAIL")
            elif path == "/api/v3.1/idp":
                if self.authorized():
                    self.send_json(200, ",".join(loaded) if loaded else "local")
            elif path == "/api/v3.1/status":
                if self.authorized():
                    self.send_json(200, {"status": "OK", "services": {}})
            else:
                self.send_json(404, {"message": "not found: " + path,
                                     "error_code": "not_found_error"})

    return Handler


def main():
    args = parse_args()
    started = time.time()
    logger = make_logger(args.root)
    logger.info("starting REST service stand-in (pid %d) on 127.0.0.1:%d", os.getpid(), args.port)

    def on_term(signum, frame):
        logger.info("stopping on signal %d", signum)
        logging.shutdown()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)

    install_auth_base()
    loaded = load_authenticators(args.root, logger)

    if args.crash_after > 0:
        def crash():
            logger.error("fatal: worker crashed %.1f s after start", args.crash_after)
            logging.shutdown()
            os._exit(1)
        timer = threading.Timer(args.crash_after, crash)
        timer.daemon = True
        timer.start()

    server = Server(("127.0.0.1", args.port), make_handler(args, started, loaded, logger))
    logger.info("listening")
    server.serve_forever()


if __name__ == "__main__":
    main()
