"""target.py -- the table endpoint a Python SDK suite runs against.

python-sdks.test.mjs runs each suite in this directory once against
Azurite and once through mtable-proxy in every phase, and says which
through these environment variables:

  MTABLE_E2E_PY_ENDPOINT    table endpoint, http://HOST:PORT/ACCOUNT
  MTABLE_E2E_PY_ACCOUNT     account name the clients sign with
  MTABLE_E2E_PY_KEY         base64 account key
  MTABLE_E2E_PY_TARGET      "azurite", or "proxy-N" for the proxy in phase N
  MTABLE_E2E_PY_DEVIATIONS  comma-separated names from lib/deviations.mjs
                            that apply to this target (Azurite's known
                            departures from Azure)
  MTABLE_E2E_PY_CARRY       a table-name prefix for the carry-over cases:
                            their tables outlive the run and are read and
                            written again by the run against the next phase
  MTABLE_E2E_PY_CARRY_FROM  comma-separated targets that wrote the carry-over
                            tables before this run, oldest first

Only the standard library is used here, so that a missing SDK package is
reported by the suite that needs it.
"""

import logging
import os
import uuid

# The SDKs log every failed request (including the ones a case provokes)
# to stderr, where it would interleave with unittest's verbose report.
logging.getLogger("azure").setLevel(logging.CRITICAL)


def _env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(
            f"{name} is not set; run the suites through test/e2e/python-sdks.test.mjs"
        )
    return value


ENDPOINT = _env("MTABLE_E2E_PY_ENDPOINT").rstrip("/")
ACCOUNT = _env("MTABLE_E2E_PY_ACCOUNT")
KEY = _env("MTABLE_E2E_PY_KEY")
TARGET = _env("MTABLE_E2E_PY_TARGET")
_DEVIATIONS = {
    d for d in os.environ.get("MTABLE_E2E_PY_DEVIATIONS", "").split(",") if d
}

CARRY = os.environ.get("MTABLE_E2E_PY_CARRY", "")
CARRY_FROM = [t for t in os.environ.get("MTABLE_E2E_PY_CARRY_FROM", "").split(",") if t]

CONNECTION_STRING = (
    f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
    f"TableEndpoint={ENDPOINT};"
)


def deviates(name):
    """True when Azurite's deviation `name` applies to this target."""
    return name in _DEVIATIONS


def auth_codes():
    """Error codes accepted for a failed authentication."""
    if deviates("auth-code"):
        return {"AuthenticationFailed", "AuthorizationFailure"}
    return {"AuthenticationFailed"}


def table_name(hint):
    """A fresh table name: letters and digits, starting with a letter."""
    return f"{hint}{uuid.uuid4().hex[:12]}"
