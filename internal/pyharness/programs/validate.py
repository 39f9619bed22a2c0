# Static checks of authenticator modules. No module code is executed: the
# source is parsed and compiled with this interpreter, then its syntax tree is
# inspected. Each request is {"id", "name", "filename", "source"}, with an
# optional "syntax_version" [X, Y]. That is the manager's Python version when
# this interpreter is used instead of it, and ast.parse applies its grammar.
import ast
import importlib.util
import os
import time

VALIDATOR_VERSION = 2

AUTH_BASE_MODULE = "cloudify_premium.authentication.auth_base"
AUTH_BASE_CLASS = "AuthBase"
HANDLER_METHOD = "_authenticate_request"

# Standard-library top-level modules of Python 3.6 to 3.11, for interpreters
# older than 3.10 that lack sys.stdlib_module_names.
STDLIB_FALLBACK = set("""
__future__ _thread abc aifc argparse array ast asynchat asyncio asyncore atexit audioop base64 bdb
binascii binhex bisect builtins bz2 calendar cgi cgitb chunk cmath cmd code codecs codeop collections
colorsys compileall concurrent configparser contextlib contextvars copy copyreg cProfile crypt csv
ctypes curses dataclasses datetime dbm decimal difflib dis distutils doctest dummy_threading email
encodings ensurepip enum errno faulthandler fcntl filecmp fileinput fnmatch formatter fractions ftplib
functools gc getopt getpass gettext glob graphlib grp gzip hashlib heapq hmac html http imaplib imghdr
imp importlib inspect io ipaddress itertools json keyword lib2to3 linecache locale logging lzma
mailbox mailcap marshal math mimetypes mmap modulefinder msilib msvcrt multiprocessing netrc nis
nntplib ntpath numbers opcode operator optparse os ossaudiodev parser pathlib pdb pickle pickletools
pipes pkgutil platform plistlib poplib posix posixpath pprint profile pstats pty pwd py_compile
pyclbr pydoc queue quopri random re readline reprlib resource rlcompleter runpy sched secrets select
selectors shelve shlex shutil signal site smtpd smtplib sndhdr socket socketserver spwd sqlite3 sre
sre_compile sre_constants sre_parse ssl stat statistics string stringprep struct subprocess sunau
symbol symtable sys sysconfig syslog tabnanny tarfile telnetlib tempfile termios textwrap this
threading time timeit tkinter token tokenize tomllib trace traceback tracemalloc tty turtle
turtledemo types typing unicodedata unittest urllib uu uuid venv warnings wave weakref webbrowser
winreg winsound wsgiref xdrlib xml xmlrpc xxsubtype zipapp zipfile zipimport zlib zoneinfo
""".split())


def check(check_id, status, summary, hint="", evidence=None):
    return {
        "id": check_id,
        "status": status,
        "summary": summary,
        "hint": hint,
        "evidence": evidence or [],
    }


def stdlib_names():
    names = set(STDLIB_FALLBACK)
    names.update(getattr(sys, "stdlib_module_names", ()))
    names.update(sys.builtin_module_names)
    return names


def check_name(name):
    if name in stdlib_names():
        return check("shadowing", "fail",
                     "module name %r is a standard-library module of Python %s" % (name, python_version()),
                     "pick another name with --name, such as %s_auth" % name)
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        origin = spec.origin or "a namespace package"
        return check("shadowing", "fail",
                     "module name %r is already importable in the manager's Python (%s)" % (name, origin),
                     "pick another name with --name, such as %s_auth" % name,
                     [{"key": "existing", "value": str(origin)}])
    return check("shadowing", "pass", "module name %r shadows no installed module" % name)


def top_level_statements(tree):
    """Yield module-level statements, including those inside if/try blocks."""
    pending = list(tree.body)
    while pending:
        node = pending.pop(0)
        yield node
        if isinstance(node, ast.If):
            pending.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            pending.extend(node.body + node.orelse + node.finalbody)
            for handler in node.handlers:
                pending.extend(handler.body)


def assigned_names(target):
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        names = []
        for element in target.elts:
            names.extend(assigned_names(element))
        return names
    return []


def find_configure(tree):
    """Return (line, how) of the module-level binding of 'configure', or None."""
    for node in top_level_statements(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "configure":
            return node.lineno, "a module-level function"
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if "configure" in assigned_names(target):
                    return node.lineno, "an assignment"
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            if "configure" in assigned_names(node.target):
                return node.lineno, "an assignment"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                if bound == "configure":
                    return node.lineno, "an import"
    return None


def dotted(node):
    """Return 'a.b.c' for a Name/Attribute chain, or None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def import_table(tree):
    """Map each module-level name bound by an import to its full dotted origin."""
    table = {}
    for node in top_level_statements(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    table[alias.asname] = alias.name
                else:
                    first = alias.name.split(".")[0]
                    table[first] = first
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                table[alias.asname or alias.name] = node.module + "." + alias.name
    return table


def resolve_base(expr, imports):
    """Return the full dotted origin of a base-class expression, or None."""
    name = dotted(expr)
    if name is None:
        return None
    head, _, rest = name.partition(".")
    if head in imports:
        origin = imports[head]
        return origin + ("." + rest if rest else "")
    return name


def class_methods(node):
    names = set()
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(item.name)
        elif isinstance(item, ast.Assign):
            for target in item.targets:
                names.update(assigned_names(target))
    return names


def check_authbase(tree):
    imports = import_table(tree)
    classes = {}
    for node in top_level_statements(tree):
        if isinstance(node, ast.ClassDef):
            classes[node.name] = node
    target = AUTH_BASE_MODULE + "." + AUTH_BASE_CLASS

    # verdict per class: "yes", "no" or ("unknown", base)
    verdicts = {}

    def verdict(name, seen):
        """Return ("yes"|"no"|"unknown", unresolved base) for a local class."""
        if name in verdicts:
            return verdicts[name]
        if name in seen:
            return ("no", None)
        seen = seen | {name}
        unknown = None
        for base in classes[name].bases:
            origin = resolve_base(base, imports)
            if origin == target:
                verdicts[name] = ("yes", None)
                return verdicts[name]
            if origin == "object":
                continue
            if origin in classes and origin not in imports:
                inner = verdict(origin, seen)
                if inner[0] == "yes":
                    verdicts[name] = inner
                    return inner
                if inner[0] == "unknown" and unknown is None:
                    unknown = inner[1]
                continue
            if unknown is None:
                unknown = origin or "an expression on line %d" % base.lineno
        verdicts[name] = ("unknown", unknown) if unknown is not None else ("no", None)
        return verdicts[name]

    def defines_handler(name, seen):
        if name in seen:
            return False
        node = classes[name]
        if HANDLER_METHOD in class_methods(node):
            return True
        for base in node.bases:
            origin = resolve_base(base, imports)
            if origin in classes and origin not in imports and defines_handler(origin, seen | {name}):
                return True
        return False

    proven, proven_missing, unproven = [], [], []
    for name in classes:
        kind, base = verdict(name, set())
        if kind == "yes":
            if defines_handler(name, set()):
                proven.append(name)
            else:
                proven_missing.append(name)
        elif kind == "unknown" and defines_handler(name, set()):
            unproven.append((name, base))

    if proven:
        return check("authbase", "pass",
                     "class %s derives from AuthBase and defines %s" % (proven[0], HANDLER_METHOD),
                     evidence=[{"key": "classes", "value": ", ".join(proven)},
                               {"key": "line", "value": str(classes[proven[0]].lineno)}])
    if unproven:
        name, base = unproven[0]
        return check("authbase", "warn",
                     "cannot prove that class %s derives from AuthBase: its base %s is defined elsewhere" % (name, base),
                     "derive the class from %s directly, or check that %s does" % (target, base),
                     [{"key": "class", "value": name}, {"key": "base", "value": str(base)}])
    if proven_missing:
        name = proven_missing[0]
        return check("authbase", "fail",
                     "class %s derives from AuthBase but does not define %s" % (name, HANDLER_METHOD),
                     "add a method %s(self, request) that returns a UserData, a response, or None" % HANDLER_METHOD,
                     [{"key": "line", "value": str(classes[name].lineno)}])
    return check("authbase", "fail",
                 "no class derives from AuthBase",
                 "define a class that derives from %s and implements %s(self, request)" % (target, HANDLER_METHOD))


def interpreter_name():
    return os.path.basename(sys.executable or "") or "python3"


def syntax_target(request):
    """Return (target X.Y, feature_version tuple or None, summary of how the
    syntax is checked). The tuple is set when this interpreter can apply the
    grammar of another version (ast.parse feature_version, Python 3.8+)."""
    here = "%d.%d" % sys.version_info[:2]
    wanted = request.get("syntax_version")
    if not wanted or tuple(wanted) == tuple(sys.version_info[:2]):
        return here, None, "compiles with Python %s" % python_version()
    target = "%d.%d" % tuple(wanted)
    if sys.version_info >= (3, 8):
        return target, tuple(wanted), "checked as Python %s syntax with %s %s" % (
            target, interpreter_name(), python_version())
    # NOTE: before 3.8, ast.parse cannot apply another version's grammar, so
    # syntax newer than the target passes here.
    return here, None, "compiles with %s %s; Python %s syntax is not checked by this interpreter" % (
        interpreter_name(), python_version(), target)


def validate(request):
    name = request.get("name") or ""
    filename = request.get("filename") or (name + ".py")
    source = request["source"]
    checks = []
    started = time.time()
    if request.get("check_name", True) and name:
        checks.append(check_name(name))
    target, feature_version, how = syntax_target(request)
    try:
        if feature_version is not None:
            tree = ast.parse(source, filename, feature_version=feature_version)
            # Compiling the tree finds what the parser leaves to the compiler
            # ('return' outside a function), with the target's keywords.
            compile(tree, filename, "exec", dont_inherit=True)
        else:
            tree = ast.parse(source, filename)
            compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError as err:
        detail = "%s (line %s" % (err.msg, err.lineno)
        if err.offset:
            detail += ", column %s" % err.offset
        detail += ")"
        checker = "Python %s" % python_version()
        fix = "fix the module so that it compiles with the manager's Python %s" % python_version()
        if request.get("syntax_version"):
            fix = "fix the module so that it compiles with Python %s" % python_version()
        if feature_version is not None:
            checker = "Python %s (checked with %s %s)" % (target, interpreter_name(), python_version())
            fix = "fix the module so that it parses as Python %s, the manager's version" % target
        checks.append(check("syntax", "fail",
                            "syntax error for %s: %s" % (checker, detail),
                            fix,
                            [{"key": "line", "value": str(err.lineno)},
                             {"key": "text", "value": (err.text or "").rstrip()}]))
        checks.append(check("configure", "skip", "not checked because the module does not compile"))
        checks.append(check("authbase", "skip", "not checked because the module does not compile"))
        return checks, time.time() - started
    except (ValueError, MemoryError, RecursionError) as err:
        checks.append(check("syntax", "fail", "the module cannot be compiled: %s" % err,
                            "simplify or fix the module"))
        checks.append(check("configure", "skip", "not checked because the module does not compile"))
        checks.append(check("authbase", "skip", "not checked because the module does not compile"))
        return checks, time.time() - started
    checks.append(check("syntax", "pass", how))

    found = find_configure(tree)
    if found is None:
        checks.append(check("configure", "fail",
                            "no module-level name 'configure'",
                            "add 'configure = YourAuthenticator().configure' at the end of the module"))
    else:
        checks.append(check("configure", "pass",
                            "module-level 'configure' is bound by %s on line %d" % (found[1], found[0]),
                            evidence=[{"key": "line", "value": str(found[0])}]))
    checks.append(check_authbase(tree))
    return checks, time.time() - started


def main():
    send({"type": "hello", "python": python_version(), "validator": VALIDATOR_VERSION,
          "executable": sys.executable})
    for request in read_requests():
        try:
            checks, elapsed = validate(request)
        except Exception as err:  # a checker bug must not hide the other modules' results
            checks, elapsed = [check("internal", "fail", "the validator failed: %r" % (err,),
                                     "report this module to the cfyauth maintainers")], 0.0
        send({"type": "result", "id": request.get("id"), "checks": checks, "seconds": elapsed})
    send({"type": "done"})


main()
