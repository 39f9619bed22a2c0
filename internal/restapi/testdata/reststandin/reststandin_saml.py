"""The REST stand-in's Okta (SAML 2.0) authenticator.

The manager's REST service turns its Okta authenticator on when
/etc/cloudify/ssl/okta_certificate.pem exists at start, and checks every SAML
response the console posts to POST /api/v3.1/tokens (JSON
{"saml-response": BASE64}, no credentials) against that certificate. The
real authenticator lives in the private premium package; this one follows
what the manager is known to enforce:

- the signature must verify with the installed certificate; a response
  signed by another key, unsigned, or tampered with is refused with 401;
- NotBefore and NotOnOrAfter of the assertion's conditions and of its bearer
  subject confirmation must hold now (no allowance for clock skew);
- the audience must be https://HOST/console/auth/saml/callback (Cloudify's
  Okta setup) or https://HOST/console (its Azure AD setup), and the
  recipient, and the Destination when the response has one, the callback;
- the user is the "username" attribute (else the NameID), with "email",
  "firstname", "lastname" and "groups" (group names, matched to user groups
  by name). An accepted response creates or updates that user.

The signature is checked by Debian's xmlsec1 (the standard library has no
RSA), told to take the key only from the installed certificate and never
from the response's KeyInfo. Fields are read only from the one Assertion,
which must be a child of the Response and covered by every signature the
Response or the Assertion carries, so a second, unsigned assertion
(signature wrapping) is refused. A DOCTYPE, an entity declaration, an
encrypted assertion and a duplicate ID are refused as well.

HOST comes from <state>/saml.json, {"manager_host": "manager.example.test"},
read on every request. Without it, or without xmlsec1, a SAML login fails
with 500 and a message naming what is missing.

What it does not imitate: the real error messages (it says why it refused),
the issuer check, InResponseTo and replay checks, and the premium package's
own logging. It never logs a SAML response.

Written for Python 3.6.
"""
import base64
import binascii
import datetime
import json
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET

OKTA_CERTIFICATE = "etc/cloudify/ssl/okta_certificate.pem"
SETTINGS_FILE = "saml.json"

PROTOCOL_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
ASSERTION_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"

XMLSEC_TIMEOUT = 10


def q(ns, tag):
    return "{%s}%s" % (ns, tag)


class SamlRejected(Exception):
    """The response is not acceptable. The message gives the reason (401)."""


class SamlUnavailable(Exception):
    """The check cannot run here. The message names what is missing (500)."""


class SamlUser(object):
    """The user a verified response logs in, shaped like UserData."""

    def __init__(self, username, email, first_name, last_name, groups):
        self.username = username
        self.email = email
        self.first_name = first_name
        self.last_name = last_name
        self.groups = groups


class OktaAuthenticator(object):
    """Accepts POST /tokens bodies holding a verified SAML response."""

    def __init__(self, cert_path, settings_path, logger):
        self.cert_path = cert_path
        self.settings_path = settings_path
        self.log = logger

    def can_handle_auth_request(self, request):
        if request.authorization is not None:
            return False
        body = request.get_json(silent=True)
        return isinstance(body, dict) and "saml-response" in body

    def handle_auth_request(self, request):
        encoded = request.get_json(silent=True).get("saml-response")
        try:
            user = self.verify(encoded, datetime.datetime.utcnow())
        except SamlRejected as err:
            self.log.warning("rejected a SAML response: %s", err)
            raise
        self.log.info("accepted a SAML response for %s (groups %s)", user.username, user.groups)
        return user

    def expected(self):
        try:
            with open(self.settings_path) as f:
                host = json.load(f).get("manager_host")
        except (OSError, ValueError, AttributeError) as err:
            raise SamlUnavailable("the stand-in cannot read %s (%s); it needs {\"manager_host\": HOST}"
                                  % (self.settings_path, err))
        if not isinstance(host, str) or not host:
            raise SamlUnavailable("%s has no manager_host" % self.settings_path)
        callback = "https://%s/console/auth/saml/callback" % host
        return callback, (callback, "https://%s/console" % host)

    def verify(self, encoded, now):
        callback, audiences = self.expected()
        xml = decode(encoded)
        root, assertion = parse_response(xml)
        signed = signed_elements(root, assertion)
        for element in signed:
            run_xmlsec(xml, self.cert_path, signature_xpath(element is assertion))
        check_status(root)
        destination = root.get("Destination")
        if destination is not None and destination != callback:
            raise SamlRejected("wrong destination %r, expected %s" % (destination, callback))
        check_conditions(assertion, audiences, now)
        check_subject(assertion, callback, now)
        return read_user(assertion)


def decode(encoded):
    if not isinstance(encoded, str) or not encoded.strip():
        raise SamlRejected("saml-response is empty or not a string")
    try:
        return base64.b64decode("".join(encoded.split()), validate=True)
    except (binascii.Error, ValueError):
        raise SamlRejected("saml-response is not base64")


def parse_response(xml):
    """Parse the response and return its root and its one assertion."""
    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:
        raise SamlRejected("a DOCTYPE or entity declaration is not allowed")
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as err:
        raise SamlRejected("the response is not well-formed XML: %s" % err)
    if root.tag != q(PROTOCOL_NS, "Response"):
        raise SamlRejected("the document is %s, not a SAML Response" % root.tag)
    seen = set()
    for el in root.iter():
        value = el.get("ID")
        if value is None:
            continue
        if value in seen:
            raise SamlRejected("the ID %r occurs twice" % value)
        seen.add(value)
    if any(True for _ in root.iter(q(ASSERTION_NS, "EncryptedAssertion"))):
        raise SamlRejected("encrypted assertions are not supported")
    everywhere = list(root.iter(q(ASSERTION_NS, "Assertion")))
    children = root.findall(q(ASSERTION_NS, "Assertion"))
    if len(everywhere) != 1 or len(children) != 1:
        raise SamlRejected("the response must contain exactly one Assertion, as a child of the Response; it contains %d"
                           % len(everywhere))
    return root, children[0]


def signed_elements(root, assertion):
    """Return the elements (Response, Assertion) that carry a signature of
    their own, after checking that each signature references its parent."""
    signed = []
    for element in (root, assertion):
        signatures = element.findall(q(DSIG_NS, "Signature"))
        if len(signatures) > 1:
            raise SamlRejected("the %s has more than one signature" % local(element))
        if not signatures:
            continue
        refs = signatures[0].findall("%s/%s" % (q(DSIG_NS, "SignedInfo"), q(DSIG_NS, "Reference")))
        want = "#" + (element.get("ID") or "")
        if len(refs) != 1 or refs[0].get("URI") != want or want == "#":
            raise SamlRejected("the signature of the %s does not reference the %s itself" % (local(element), local(element)))
        signed.append(element)
    if not signed:
        raise SamlRejected("neither the Response nor the Assertion is signed")
    return signed


def local(element):
    return element.tag.rsplit("}", 1)[-1]


def signature_xpath(of_assertion):
    def step(name, ns):
        return "*[local-name()='%s' and namespace-uri()='%s']" % (name, ns)
    path = "/" + step("Response", PROTOCOL_NS)
    if of_assertion:
        path += "/" + step("Assertion", ASSERTION_NS)
    return path + "/" + step("Signature", DSIG_NS)


def run_xmlsec(xml, cert_path, xpath):
    """Verify the signature at xpath with the certificate's key only."""
    xmlsec = shutil.which("xmlsec1")
    if xmlsec is None:
        raise SamlUnavailable("xmlsec1 is not installed (apt-get install xmlsec1)")
    fd, path = tempfile.mkstemp(prefix="reststandin-saml-", suffix=".xml")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(xml)
        cmd = [xmlsec, "--verify",
               "--pubkey-cert-pem", cert_path,
               # Keys named in or carried by the response (KeyValue,
               # X509Data) are ignored: only the installed certificate counts.
               "--enabled-key-data", "key-name",
               "--enabled-reference-uris", "same-doc",
               "--id-attr:ID", PROTOCOL_NS + ":Response",
               "--id-attr:ID", ASSERTION_NS + ":Assertion",
               "--node-xpath", xpath,
               path]
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=XMLSEC_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise SamlUnavailable("xmlsec1 did not finish within %ds" % XMLSEC_TIMEOUT)
    finally:
        os.remove(path)
    if proc.returncode != 0:
        explain_xmlsec_failure(proc.stderr.decode("utf-8", "replace"), proc.returncode)


def explain_xmlsec_failure(stderr, code):
    """Turn xmlsec1's error lines into the reason for the refusal."""
    cert = "/" + OKTA_CERTIFICATE
    if "failed to load public key" in stderr:
        raise SamlUnavailable("xmlsec1 cannot load a certificate from %s" % cert)
    if "digest do not match" in stderr:
        raise SamlRejected("the signed content was changed after signing (digest mismatch)")
    if "data do not match" in stderr:
        raise SamlRejected("the signature does not verify with %s: another key made it, or it was altered" % cert)
    reasons = re.findall(r"error=\d+:([^:\n]+)", stderr)
    raise SamlRejected("the signature does not verify with %s (xmlsec1 exit %d%s)"
                       % (cert, code, ": " + reasons[-1] if reasons else ""))


def check_status(root):
    code = root.find("%s/%s" % (q(PROTOCOL_NS, "Status"), q(PROTOCOL_NS, "StatusCode")))
    value = code.get("Value") if code is not None else None
    if value != SUCCESS:
        raise SamlRejected("the response status is %s, not Success" % value)


def check_window(what, element, now):
    not_before = parse_instant(element.get("NotBefore"), what + " NotBefore")
    not_after = parse_instant(element.get("NotOnOrAfter"), what + " NotOnOrAfter")
    if not_before is not None and now < not_before:
        raise SamlRejected("the %s is not valid before %s" % (what, element.get("NotBefore")))
    if not_after is not None and now >= not_after:
        raise SamlRejected("the %s expired at %s" % (what, element.get("NotOnOrAfter")))
    return not_after


def check_conditions(assertion, audiences, now):
    conditions = assertion.find(q(ASSERTION_NS, "Conditions"))
    if conditions is None:
        raise SamlRejected("the assertion has no Conditions")
    check_window("assertion", conditions, now)
    restrictions = conditions.findall(q(ASSERTION_NS, "AudienceRestriction"))
    if not restrictions:
        raise SamlRejected("the assertion names no audience")
    for restriction in restrictions:
        sent = [text(a) for a in restriction.findall(q(ASSERTION_NS, "Audience"))]
        if not any(a in audiences for a in sent):
            raise SamlRejected("wrong audience %s, expected %s" % (sent, audiences[0]))


def check_subject(assertion, callback, now):
    subject = assertion.find(q(ASSERTION_NS, "Subject"))
    if subject is None:
        raise SamlRejected("the assertion has no Subject")
    for confirmation in subject.findall(q(ASSERTION_NS, "SubjectConfirmation")):
        if confirmation.get("Method") != BEARER:
            continue
        data = confirmation.find(q(ASSERTION_NS, "SubjectConfirmationData"))
        if data is None:
            raise SamlRejected("the bearer subject confirmation has no SubjectConfirmationData")
        if data.get("Recipient") != callback:
            raise SamlRejected("wrong recipient %r, expected %s" % (data.get("Recipient"), callback))
        if check_window("subject confirmation", data, now) is None:
            raise SamlRejected("the subject confirmation has no NotOnOrAfter")
        return
    raise SamlRejected("the assertion has no bearer subject confirmation")


def read_user(assertion):
    values = {}
    for attribute in assertion.iter(q(ASSERTION_NS, "Attribute")):
        values.setdefault(attribute.get("Name"), []).extend(
            text(v) for v in attribute.findall(q(ASSERTION_NS, "AttributeValue")))
    name_id = assertion.find("%s/%s" % (q(ASSERTION_NS, "Subject"), q(ASSERTION_NS, "NameID")))
    username = first(values.get("username")) or (text(name_id) if name_id is not None else "")
    if not username:
        raise SamlRejected("the assertion names no user (no username attribute and no NameID)")
    return SamlUser(username, first(values.get("email")), first(values.get("firstname")),
                    first(values.get("lastname")), values.get("groups", []))


def text(element):
    return "".join(element.itertext())


def first(values):
    return values[0] if values else None


INSTANT = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$")


def parse_instant(value, what):
    """Parse an xs:dateTime into a naive UTC datetime. None is returned as None."""
    if value is None:
        return None
    m = INSTANT.match(value.strip())
    if m is None:
        raise SamlRejected("%s %r is not a date and time" % (what, value))
    parts = [int(p) for p in m.groups()[:6]]
    fraction = m.group(7)
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    try:
        instant = datetime.datetime(*parts, microsecond=micro)
    except ValueError:
        raise SamlRejected("%s %r is not a date and time" % (what, value))
    zone = m.group(8)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        instant -= sign * datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    return instant
