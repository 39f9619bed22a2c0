# Run one authenticator module through the documented handler contract,
# offline, for 'cfyauth test'. Written for Python 3.6.
#
# The first request is {"op": "load", ...}: it imports the module from the
# source it carries and calls the module-level configure(logger) once, as the
# REST service does at start. Every further request is {"op": "request", ...}
# with a synthetic request: the harness calls can_handle_auth_request and then
# _authenticate_request on the object configure returned, the way the base
# class's handle_auth_request would, and classifies what came back. The real
# handle_auth_request is never called, because it writes the user to the
# manager's database.
#
# Before each call into module code an "event" message names the step, so the
# parent can bound every step with its own timeout and tell which step hung
# or ended the process. What the module prints and logs is captured per step,
# with every secret of the run replaced by [redacted] before it is truncated.
# Redaction applies to what the module produced (printed and logged text,
# exception text, returned values, response bodies and headers). It never
# applies to the harness's own words, keys or verdicts, because a password
# such as "user" or "a" must not rewrite the report around it.
import base64
import importlib
import importlib.util
import io
import linecache
import logging
import os
import re
import signal
import sys
import threading
import time
import traceback
import types

HARNESS_VERSION = 1
MAIN_PID = os.getpid()
HARNESS_FILENAME = "<string>"
STANDINS_FILENAME = "<cfyauth stand-ins>"
STANDINS_MODULE = "cfyauth_standins"
AUTH_BASE_MODULE = "cloudify_premium.authentication.auth_base"
LOGGER_NAME = "cfyauth.test"

REDACTED = "[redacted]"
MAX_TEXT = 4096            # one log message, field value or exception message
MAX_STEP_OUTPUT = 16384    # what one step printed, per stream
MAX_RECORDS = 200          # log records kept per step
MAX_BODY = 16384           # a response body
MAX_TRACEBACK = 16384
MAX_FIELDS = 100           # fields of one UserData
MAX_DEPTH = 4              # nesting of a field value that is listed

_secrets = []
_secret_pattern = None     # matches any secret, longest first
_capture = None            # the Capture of the step in progress
_standins = None           # the stand-ins module
_auth_base = None          # the AuthBase class in use
_user_data = None          # the UserData class in use
_guard_handle = None       # AuthBase.handle_auth_request as patched by the harness
_module_filename = None
_authenticator = None      # what configure returned
_known_children = set()
_request_id = None         # the id of the request being handled


# --- secrets and sizes ---------------------------------------------------------

def set_secrets(secrets):
    global _secrets, _secret_pattern
    _secrets = sorted(set(s for s in secrets or [] if s), key=len, reverse=True)
    _secret_pattern = re.compile("|".join(re.escape(s) for s in _secrets)) if _secrets else None


def redact(text):
    """Replace every secret in module-produced text, in one pass, so the
    marker of one secret is never rewritten by a shorter secret."""
    if not isinstance(text, str):
        text = str(text)
    if _secret_pattern is None:
        return text
    return _secret_pattern.sub(REDACTED, text)


def clip(text, limit=MAX_TEXT):
    """Return (text cut to limit characters, whether it was cut)."""
    if len(text) <= limit:
        return text, False
    return text[:limit], True


def plain_text(value, limit=MAX_TEXT):
    """Return value as text (a str as it is, anything else as its repr), cut
    to limit characters, without redaction."""
    try:
        text = value if isinstance(value, str) else repr(value)
    except Exception as err:  # a broken __repr__ must not break the report
        text = "<%s whose repr() raised %s>" % (type(value).__name__, type(err).__name__)
    return clip(text, limit)[0]


def safe_text(value, limit=MAX_TEXT):
    """Return a module-produced value as redacted text of at most limit
    characters."""
    return clip(redact(plain_text(value, limit + max([len(s) for s in _secrets] or [0]))), limit)[0]


# --- capture of prints and log records, per step --------------------------------

class Capture(object):

    def __init__(self, step):
        self.step = step
        self.chunks = {"stdout": [], "stderr": []}
        self.sizes = {"stdout": 0, "stderr": 0}
        self.dropped = {"stdout": 0, "stderr": 0}
        self.records = []
        self.records_dropped = 0

    def write(self, stream, text):
        # Keep a little more than the limit, so a secret cut at the limit is
        # still whole when it is redacted.
        room = MAX_STEP_OUTPUT + max([len(s) for s in _secrets] or [0]) - self.sizes[stream]
        if room <= 0:
            self.dropped[stream] += len(text)
            return
        if len(text) > room:
            self.dropped[stream] += len(text) - room
            text = text[:room]
        self.chunks[stream].append(text)
        self.sizes[stream] += len(text)

    def output(self):
        result = []
        for stream in ("stdout", "stderr"):
            text = redact("".join(self.chunks[stream]))
            if not text and not self.dropped[stream]:
                continue
            text, cut = clip(text, MAX_STEP_OUTPUT)
            result.append({"step": self.step, "stream": stream, "text": text,
                           "truncated": cut or self.dropped[stream] > 0,
                           "dropped_chars": self.dropped[stream]})
        return result


_between_steps = Capture("harness")


def current_capture():
    return _capture if _capture is not None else _between_steps


class StepStream(io.TextIOBase):
    """Replaces sys.stdout and sys.stderr for good, so output is routed to the
    step in progress even through handlers created in an earlier step."""

    def __init__(self, name, fd):
        io.TextIOBase.__init__(self)
        self.name = name
        self._fd = fd
        self.buffer = StepBuffer(self)

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "replace"

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        # Code that writes to the descriptor itself reaches the real stream,
        # which the parent captures for the whole run.
        return self._fd

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        current_capture().write(self.name, text)
        return len(text)

    def flush(self):
        pass


class StepBuffer(io.RawIOBase):
    """The .buffer of a StepStream: bytes are decoded as UTF-8."""

    def __init__(self, stream):
        io.RawIOBase.__init__(self)
        self._stream = stream

    def writable(self):
        return True

    def write(self, data):
        self._stream.write(bytes(data).decode("utf-8", "replace"))
        return len(data)


class CaptureHandler(logging.Handler):

    def emit(self, record):
        capture = current_capture()
        if len(capture.records) >= MAX_RECORDS:
            capture.records_dropped += 1
            return
        try:
            message = record.getMessage()
        except Exception as err:  # a bad format string in the module's log call
            message = "%r (formatting with %r failed: %s)" % (record.msg, record.args, err)
        if record.exc_info:
            message += "\n" + "".join(traceback.format_exception(*record.exc_info))
        capture.records.append({
            "step": capture.step,
            "level": record.levelname,
            "logger": record.name,
            "message": safe_text(message),
            "file": plain_text(record.pathname, 512),
            "line": record.lineno,
        })


def begin(step):
    global _capture
    _capture = Capture(step)
    send({"type": "event", "id": _request_id, "step": step})
    return _capture


def end(capture):
    global _capture
    _capture = None
    return capture


def leave_if_forked():
    """A process that the module forked must not go on running the harness."""
    if os.getpid() != MAIN_PID:
        os._exit(0)


def call_module(step, function, *args):
    """Call module code for one step. Return (value, error, seconds, capture)."""
    capture = begin(step)
    started = time.monotonic()
    value, error = None, None
    try:
        value = function(*args)
    except BaseException as exc:  # includes SystemExit and KeyboardInterrupt raised by the module
        leave_if_forked()
        error = describe_exception(exc, step)
    leave_if_forked()
    seconds = time.monotonic() - started
    end(capture)
    return value, error, seconds, capture


# --- exceptions ------------------------------------------------------------------

def exception_name(exc):
    cls = type(exc)
    module = getattr(cls, "__module__", "")
    if module in ("builtins", "exceptions", None, ""):
        return cls.__name__
    return module + "." + cls.__name__


def describe_exception(exc, step):
    """Describe an exception raised by module code: type, message, where in the
    module it happened, and the traceback without the harness's own frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == HARNESS_FILENAME:
        tb = tb.tb_next
    frames = traceback.extract_tb(tb) if tb is not None else []
    location = None
    for frame in frames:
        if frame.filename == _module_filename:
            location = frame
    innermost = frames[-1] if frames else None
    if isinstance(exc, SyntaxError) and exc.filename == _module_filename:
        file_name, line = exc.filename, exc.lineno
    elif location is not None:
        file_name, line = location.filename, location.lineno
    elif innermost is not None:
        file_name, line = innermost.filename, innermost.lineno
    else:
        file_name, line = None, None

    if isinstance(exc, SystemExit):
        message = "the module called sys.exit(%s)" % safe_text(exc.code)
    else:
        message = safe_text(str(exc)) if str(exc) else ""
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    text, cut = clip(redact(text), MAX_TRACEBACK)
    info = {
        "step": step,
        "type": exception_name(exc),
        "message": message,
        "file": file_name,
        "line": line,
        "traceback": text,
        "traceback_truncated": cut,
    }
    if innermost is not None and location is not None and innermost is not location:
        info["raised_in"] = "%s:%s" % (innermost.filename, innermost.lineno)
    code = getattr(exc, "code", None)
    if isinstance(code, int) and not isinstance(exc, SystemExit) and hasattr(exc, "description"):
        info["http_status"] = code
    return info


def error_summary(error):
    where = ""
    if error.get("file"):
        where = " at %s:%s" % (error["file"], error["line"])
    if error["type"] == "SystemExit":
        return error["message"] + where
    if error["message"]:
        return "%s: %s%s" % (error["type"], error["message"], where)
    return "%s%s" % (error["type"], where)


# --- stand-ins -------------------------------------------------------------------

def load_standins(source):
    global _standins
    module = types.ModuleType(STANDINS_MODULE)
    module.__file__ = STANDINS_FILENAME
    linecache.cache[STANDINS_FILENAME] = (len(source), None, source.splitlines(True), STANDINS_FILENAME)
    sys.modules[STANDINS_MODULE] = module
    exec(compile(source, STANDINS_FILENAME, "exec", dont_inherit=True), module.__dict__)
    _standins = module


def facade(name, attributes, package=False):
    module = types.ModuleType(name)
    module.__file__ = STANDINS_FILENAME
    module.__cfyauth_stand_in__ = True
    if package:
        module.__path__ = []
    for attribute in attributes:
        setattr(module, attribute, getattr(_standins, attribute))
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent and parent in sys.modules:
        setattr(sys.modules[parent], child, module)
    return module


def importable(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def install_web_standins():
    """Provide flask and werkzeug stand-ins where the real ones are missing.
    Return what the module will see for each."""
    seen = {}
    if importable("werkzeug"):
        seen["werkzeug"] = "installed"
    else:
        facade("werkzeug", [], package=True)
        facade("werkzeug.datastructures", ["Headers", "EnvironHeaders", "MultiDict", "ImmutableMultiDict",
                                           "Authorization"])
        facade("werkzeug.exceptions", ["HTTPException", "BadRequest", "BadRequestKeyError", "Unauthorized",
                                       "Forbidden", "UnsupportedMediaType", "abort"])
        facade("werkzeug.wrappers", ["Response", "Request"])
        sys.modules["werkzeug"].Response = _standins.Response
        sys.modules["werkzeug"].Request = _standins.Request
        seen["werkzeug"] = "stand-in"
    if importable("flask"):
        seen["flask"] = "installed"
    else:
        facade("flask", ["Response", "jsonify", "make_response", "abort", "request"])
        seen["flask"] = "stand-in"
    return seen


def install_auth_base(mode):
    """Make AuthBase and UserData importable. Return (path, file, fatal):
    path is "premium" or "stand-in"; fatal describes why the premium
    package could not be used when it was required or present."""
    global _auth_base, _user_data, _guard_handle
    use_premium = mode == "premium" or (mode == "auto" and importable("cloudify_premium"))
    if use_premium:
        try:
            auth_base = importlib.import_module(AUTH_BASE_MODULE)
            _auth_base = auth_base.AuthBase
            _user_data = auth_base.UserData
        except BaseException as exc:  # the premium package may fail in any way outside a running manager
            leave_if_forked()
            return "premium", None, {
                "kind": "premium",
                "reason": "cannot import %s.AuthBase and UserData: %s" % (
                    AUTH_BASE_MODULE, error_summary(describe_exception(exc, "premium"))),
            }

        def handle_auth_request_blocked(self, request):
            raise RuntimeError("cfyauth test blocks AuthBase.handle_auth_request, because the real one "
                               "writes the user to the manager's database; call _authenticate_request")

        # Patched in this process only, so no code path of the test can write.
        _auth_base.handle_auth_request = handle_auth_request_blocked
        _guard_handle = handle_auth_request_blocked
        return "premium", plain_text(getattr(auth_base, "__file__", None) or "", 512), None

    facade("cloudify_premium", [], package=True)
    facade("cloudify_premium.authentication", [], package=True)
    facade(AUTH_BASE_MODULE, ["AuthBase", "UserData"])
    _auth_base = _standins.AuthBase
    _user_data = _standins.UserData
    _guard_handle = _standins.AuthBase.__dict__["handle_auth_request"]
    return "stand-in", None, None


# --- steps ------------------------------------------------------------------------

def step(step_id, status, summary, hint="", evidence=None, seconds=0.0):
    """Return a step. Callers pass module-produced values in the summary and
    evidence through safe_text, because the step itself is not redacted."""
    return {"id": step_id, "status": status, "summary": summary, "hint": hint,
            "evidence": [{"key": k, "value": plain_text(v, 1024)} for k, v in (evidence or [])],
            "seconds": seconds}


def error_step(step_id, error, seconds, hint):
    evidence = [("exception", error["type"])]
    if error.get("file"):
        evidence.append(("file", error["file"]))
        evidence.append(("line", error["line"]))
    if error.get("raised_in"):
        evidence.append(("raised_in", error["raised_in"]))
    summary = error_summary(error)
    if error["type"] != "SystemExit":
        summary = "raised " + summary
    return step(step_id, "fail", summary, hint, evidence, seconds)


def skipped(step_id, why):
    return step(step_id, "skip", why)


def class_name(value):
    cls = type(value)
    return "%s.%s" % (cls.__module__, cls.__name__) if cls.__module__ != "builtins" else cls.__name__


def new_children():
    """Return the processes started by this one since the last call (Linux),
    as (PID, whether it is still in this process group) pairs."""
    found = {}
    me = str(os.getpid())
    group = str(os.getpgrp())
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as stat_file:
                fields = stat_file.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # The fields are state, ppid, pgrp and more. A zombie has already ended.
        if len(fields) > 2 and fields[1] == me and fields[0] != "Z":
            found[int(entry)] = fields[2] == group
    fresh = [(pid, found[pid]) for pid in sorted(found) if pid not in _known_children]
    _known_children.update(found)
    return fresh


def stop_group_members():
    """Kill what the module left running in this process group, so the run
    ends now. A process that left the group (setsid) is out of reach."""
    if os.getpgrp() != os.getpid():
        return
    me = os.getpid()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open("/proc/%s/stat" % entry) as stat_file:
                fields = stat_file.read().rsplit(")", 1)[1].split()
            if len(fields) > 2 and int(fields[2]) == me:
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, IndexError, ValueError):
            continue


def collect(captures):
    logs, output, dropped = [], [], 0
    for capture in captures:
        logs.extend(capture.records)
        dropped += capture.records_dropped
        output.extend(capture.output())
    return logs, output, dropped


def children_warning(children):
    grouped = [str(pid) for pid, in_group in children if in_group]
    escaped = [str(pid) for pid, in_group in children if not in_group]
    parts = []
    if grouped:
        parts.append("the module started %d process(es) that were still running after the step (PIDs %s); "
                     "the harness stops them when it ends" % (len(grouped), ", ".join(grouped)))
    if escaped:
        parts.append("the module started %d process(es) in a new process group or session (PIDs %s), "
                     "which the harness cannot stop; stop them yourself" % (len(escaped), ", ".join(escaped)))
    return "; ".join(parts)


# --- load: import and configure ---------------------------------------------------------

def load(request):
    global _module_filename, _authenticator
    set_secrets(request.get("secrets"))
    load_standins(request["standins"])
    web = install_web_standins()
    path, auth_file, fatal = install_auth_base(request.get("auth_base") or "auto")
    result = {"id": request["id"], "auth_base": path, "auth_base_file": auth_file, "flask": web["flask"],
              "werkzeug": web["werkzeug"], "steps": [], "warnings": [], "configured": False}
    # Sent before any module code runs, so the parent has these even when a
    # later step hangs.
    send({"type": "event", "id": request["id"], "step": "setup", "auth_base": path,
          "auth_base_file": auth_file, "flask": web["flask"], "werkzeug": web["werkzeug"]})
    if fatal is not None:
        result["fatal"] = fatal
        return result

    name = request["name"]
    _module_filename = request["filename"]
    source = request["source"]
    steps = result["steps"]
    captures = []
    if name in sys.modules:
        result["fatal"] = {"kind": "name",
                           "reason": "the module name %r is already taken by a module the harness or the "
                                     "manager's Python imported" % name}
        return result
    linecache.cache[_module_filename] = (len(source), None, source.splitlines(True), _module_filename)
    module = types.ModuleType(name)
    module.__file__ = _module_filename
    sys.modules[name] = module

    def run_module():
        exec(compile(source, _module_filename, "exec", dont_inherit=True), module.__dict__)

    _, error, seconds, capture = call_module("import", run_module)
    captures.append(capture)
    children = new_children()
    if children:
        result["warnings"].append(children_warning(children))
    base_note = "stand-in AuthBase and UserData" if path == "stand-in" else "the manager's AuthBase and UserData"
    if error is not None:
        sys.modules.pop(name, None)
        steps.append(error_step("import", error, seconds, "fix the error in the module; the REST service "
                                                         "cannot load a module that fails to import"))
        steps.append(skipped("configure", "not called because the import failed"))
        result["error"] = error
        result["logs"], result["output"], result["logs_dropped"] = collect(captures)
        return result
    steps.append(step("import", "pass", "imported %s with %s" % (name, base_note),
                      evidence=[("file", _module_filename)], seconds=seconds))

    configure = module.__dict__.get("configure")
    if configure is None or not callable(configure):
        what = "no module-level name 'configure'" if configure is None else \
            "the module-level 'configure' is a %s, not callable" % class_name(configure)
        steps.append(step("configure", "fail", what,
                          "add 'configure = YourAuthenticator().configure' at the end of the module"))
        result["logs"], result["output"], result["logs_dropped"] = collect(captures)
        return result

    logger = logging.getLogger(LOGGER_NAME)
    value, error, seconds, capture = call_module("configure", configure, logger)
    captures.append(capture)
    children = new_children()
    if children:
        result["warnings"].append(children_warning(children))
    if error is not None:
        steps.append(error_step("configure", error, seconds,
                                "fix configure(logger): when it raises, the module does not join the pool"))
        result["error"] = error
    elif value is None:
        steps.append(step("configure", "warn",
                          "configure(logger) returned None, so the REST service leaves this module out of the pool",
                          "return self from configure when the module should handle requests", seconds=seconds))
        result["skipped"] = True
    else:
        steps.append(check_authenticator(value, configure, seconds))
        if steps[-1]["status"] != "fail":
            _authenticator = value
            result["configured"] = True
            result["warnings"].extend(override_warnings(value))
    result["logs"], result["output"], result["logs_dropped"] = collect(captures)
    return result


def check_authenticator(value, configure, seconds):
    evidence = [("class", class_name(value))]
    if not callable(getattr(value, "_authenticate_request", None)):
        return step("configure", "fail",
                    "configure(logger) returned a %s, which has no _authenticate_request method" % class_name(value),
                    "return self from configure, on a class that derives from AuthBase", evidence, seconds)
    if not callable(getattr(value, "handle_auth_request", None)):
        return step("configure", "fail",
                    "configure(logger) returned a %s, which has no handle_auth_request method; the REST "
                    "service calls that method" % class_name(value),
                    "derive the class from %s.AuthBase" % AUTH_BASE_MODULE, evidence, seconds)
    if not isinstance(value, _auth_base):
        return step("configure", "warn",
                    "configure(logger) returned a %s, which does not derive from AuthBase" % class_name(value),
                    "derive the class from %s.AuthBase" % AUTH_BASE_MODULE, evidence, seconds)
    bound_to = getattr(configure, "__self__", None)
    if bound_to is not None and value is not bound_to:
        evidence.append(("bound_to", class_name(bound_to)))
        return step("configure", "pass",
                    "configure(logger) returned another %s object than the one it is bound to; that object "
                    "joins the pool" % class_name(value), evidence=evidence, seconds=seconds)
    return step("configure", "pass", "configure(logger) returned the authenticator, so it joins the pool",
                evidence=evidence, seconds=seconds)


def override_warnings(authenticator):
    handle = getattr(type(authenticator), "handle_auth_request", None)
    if handle is not None and handle is not _guard_handle and isinstance(authenticator, _auth_base):
        return ["%s overrides handle_auth_request; the harness calls _authenticate_request directly and does "
                "not run that override" % class_name(authenticator)]
    return []


# --- requests -------------------------------------------------------------------

def build_request(spec):
    headers = [(h[0], h[1]) for h in spec.get("headers") or []]
    body = spec.get("body")
    body = body.encode("utf-8") if body is not None else b""
    path, _, query = (spec.get("path") or "/").partition("?")
    return _standins.Request(spec.get("method") or "GET", path, query, spec.get("remote_addr") or "127.0.0.1",
                             headers, body)


def handle(request):
    result = {"id": request["id"], "steps": [], "warnings": []}
    steps = result["steps"]
    if _authenticator is None:
        result["outcome"] = "not_configured"
        steps.append(skipped("can_handle", "not called because the module is not in the pool"))
        steps.append(skipped("authenticate", "not called because the module is not in the pool"))
        return result
    synthetic = build_request(request["request"])
    _standins.current_request = synthetic
    captures = []
    try:
        handled = run_can_handle(synthetic, result, captures)
        if handled:
            run_authenticate(synthetic, result, captures)
    finally:
        _standins.current_request = None
    result["logs"], result["output"], result["logs_dropped"] = collect(captures)
    return result


def run_can_handle(synthetic, result, captures):
    steps = result["steps"]
    method = getattr(_authenticator, "can_handle_auth_request", None)
    if method is None:
        steps.append(step("can_handle", "warn",
                          "the authenticator has no can_handle_auth_request; AuthBase's default handles every "
                          "request", "derive the class from AuthBase"))
        return True
    value, error, seconds, capture = call_module("can_handle", method, synthetic)
    captures.append(capture)
    note_children(result)
    if error is not None:
        steps.append(error_step("can_handle", error, seconds, "fix can_handle_auth_request(request)"))
        steps.append(skipped("authenticate", "not called because can_handle_auth_request raised"))
        result["outcome"] = "error"
        result["error"] = error
        return False
    if not value:
        steps.append(step("can_handle", "pass",
                          "can_handle_auth_request returned %s: the module does not handle this request"
                          % safe_text(value, 80), seconds=seconds))
        steps.append(skipped("authenticate", "not called because the module does not handle the request"))
        result["outcome"] = "not_handled"
        return False
    steps.append(step("can_handle", "pass", "can_handle_auth_request returned %s" % safe_text(value, 80),
                      seconds=seconds))
    return True


def run_authenticate(synthetic, result, captures):
    steps = result["steps"]
    value, error, seconds, capture = call_module("authenticate", _authenticator._authenticate_request, synthetic)
    captures.append(capture)
    note_children(result)
    if error is not None:
        hint = "fix _authenticate_request(request); return None for a request the module rejects"
        if error.get("http_status"):
            hint = "return a response object instead of raising an HTTP error, or return None"
        steps.append(error_step("authenticate", error, seconds, hint))
        result["outcome"] = "error"
        result["error"] = error
        return
    if value is None:
        steps.append(step("authenticate", "pass",
                          "_authenticate_request returned None: no user for this request", seconds=seconds))
        result["outcome"] = "no_user"
        return
    if isinstance(value, _user_data):
        steps.append(describe_user(value, result, seconds))
        return
    response = describe_response(value)
    if response is not None:
        result["outcome"] = "response"
        result["response"] = response
        steps.append(step("authenticate", "pass",
                          "_authenticate_request returned a %s with status %s; the REST service sends it to the "
                          "client as it is" % (class_name(value), response["status"]), seconds=seconds))
        return
    result["outcome"] = "invalid_value"
    steps.append(step("authenticate", "fail",
                      "_authenticate_request returned a %s (%s); the REST service expects a UserData, a response "
                      "or None" % (class_name(value), safe_text(value, 200)),
                      "return UserData(username) for an authenticated user, a flask.Response, or None",
                      seconds=seconds))


def note_children(result):
    children = new_children()
    if children:
        result["warnings"].append(children_warning(children))


def json_value(value, depth=0, text=safe_text):
    """Return a JSON-safe copy of a field value. Other objects become their
    repr. text turns strings and other objects into text: safe_text redacts
    them for the report, plain_text keeps them for comparing with a case's
    expectation."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return text(value)
    if isinstance(value, bytes):
        return text(value.decode("utf-8", "replace"))
    if depth >= MAX_DEPTH:
        return text(value, 200)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        if isinstance(value, (set, frozenset)):
            items = sorted(items, key=repr)
        return [json_value(item, depth + 1, text) for item in items[:MAX_FIELDS]]
    if isinstance(value, dict):
        copied = {}
        for key in list(value)[:MAX_FIELDS]:
            copied[text(key, 200)] = json_value(value[key], depth + 1, text)
        return copied
    return text(value, 1024)


def user_fields(user):
    recorded = getattr(user, "_cfyauth_fields", None)
    if recorded is not None and type(user) is _standins.UserData:
        return list(recorded)
    fields = []
    names = []
    if hasattr(user, "__dict__"):
        names.extend(sorted(vars(user)))
    for cls in type(user).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if isinstance(slot, str) and slot not in names:
                names.append(slot)
    if "username" in names:
        names.remove("username")
    names.insert(0, "username")
    for name in names:
        if name.startswith("_"):
            continue
        try:
            value = getattr(user, name)
        except Exception:
            continue
        if callable(value):
            continue
        fields.append((name, value))
    return fields[:MAX_FIELDS]


def describe_user(user, result, seconds):
    fields = user_fields(user)
    username = getattr(user, "username", None)
    result["outcome"] = "user"
    result["user"] = {"username": json_value(username),
                      "fields": [{"name": n, "value": json_value(v)} for n, v in fields]}
    # The values as returned, for the parent to compare with a case's
    # expectation before anything is redacted; the parent never shows them.
    result["user_unredacted"] = {"username": json_value(username, text=plain_text),
                                 "fields": [{"name": n, "value": json_value(v, text=plain_text)} for n, v in fields]}
    evidence = [("username", safe_text(username))]
    if not isinstance(username, str) or not username.strip():
        result["outcome"] = "invalid_value"
        return step("authenticate", "fail",
                    "_authenticate_request returned a UserData whose username is %s" % safe_text(username, 80),
                    "pass the user's name as a non-empty string: UserData(username)", evidence, seconds)
    extra = [n for n, _ in fields if n != "username"]
    if type(user) is _standins.UserData and extra:
        names = ", ".join(extra)
        warning = ("UserData got field(s) %s besides the username; the real class's fields are not public, so "
                   "check that the manager's UserData accepts them" % names)
        if getattr(user, "_cfyauth_positional", 0):
            warning += "; positional arguments after the username are not documented at all"
        result["warnings"].append(warning)
        evidence.append(("fields", names))
        return step("authenticate", "warn",
                    "_authenticate_request returned UserData for '%s' with undocumented field(s) %s"
                    % (safe_text(username, 200), names), "pass only the username unless you know the manager's UserData fields",
                    evidence, seconds)
    return step("authenticate", "pass", "_authenticate_request returned UserData for '%s'" % safe_text(username, 200),
                evidence=evidence, seconds=seconds)


def describe_response(value):
    status = getattr(value, "status_code", None)
    if not isinstance(status, int) or isinstance(status, bool):
        return None
    try:
        get_data = getattr(value, "get_data", None)
        if callable(get_data):
            body = get_data(as_text=True)
        else:
            body = getattr(value, "data", b"")
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
    except Exception as err:  # streamed or broken bodies
        body = "<cannot read the body: %s>" % type(err).__name__
    body, cut = clip(redact(body), MAX_BODY)
    headers = []
    try:
        for name, header_value in list(getattr(value, "headers", []) or [])[:MAX_FIELDS]:
            headers.append({"name": safe_text(name, 200), "value": safe_text(header_value, 1024)})
    except (TypeError, ValueError):
        pass
    return {"status": status, "status_line": safe_text(getattr(value, "status", status), 200),
            "headers": headers, "body": body, "body_truncated": cut, "class": class_name(value)}


# --- main -------------------------------------------------------------------------

def main():
    global _between_steps, _request_id
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    root.addHandler(CaptureHandler())
    sys.stdout = StepStream("stdout", 1)
    sys.stderr = StepStream("stderr", 2)

    send({"type": "hello", "python": python_version(), "harness": HARNESS_VERSION,
          "executable": sys.executable})

    loaded, fatal = False, False
    for request in read_requests():
        op = request.get("op")
        _request_id = request.get("id")
        if fatal:
            result = {"id": request.get("id"), "outcome": "not_run", "steps": []}
        elif op == "load" and not loaded:
            result = load(request)
            loaded = True
        elif op == "request" and loaded:
            result = handle(request)
        else:
            result = {"id": request.get("id"), "fatal": {"kind": "protocol", "reason": "unexpected request %r" % (op,)}}
        fatal = fatal or bool(result.get("fatal"))
        # What module threads printed or logged between steps.
        logs, output, _ = collect([_between_steps])
        if logs or output:
            result.setdefault("logs", []).extend(logs)
            result.setdefault("output", []).extend(output)
            _between_steps = Capture("harness")
        result["type"] = "result"
        send(result)

    send({"type": "done"})
    stop_group_members()
    # Skip interpreter shutdown: threads the module left running would delay
    # it, and its atexit handlers are not part of the contract.
    os._exit(0)


main()
