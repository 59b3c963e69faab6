// deviations.mjs -- where Azurite 3.35.0 answers differently from Azure.
//
// The suite asserts what the Azure documentation (or, where it is silent,
// the official SDKs' own handling) says. Azurite is the reference backend
// but not the reference behaviour, so each known difference is listed here
// once, with the way the suite treats it; a case consults this table only
// for the "azurite" target. The proxy must behave as Azure does in all of
// them. README.md repeats this list for readers.

export const AZURITE_DEVIATIONS = {
  "auth-code": {
    what:
      "a bad Shared Key signature, an expired or tampered SAS and an unsigned " +
      "request get 403 AuthorizationFailure; Azure answers 403 AuthenticationFailed",
    handling: "the azurite target also accepts AuthorizationFailure",
  },
  "sas-key-range": {
    what:
      "table SAS start/end partition and row keys (spk, srk, epk, erk) are " +
      "not enforced: reads outside the range succeed",
    handling: "the key-range case is skipped for azurite",
  },
  "sas-ip-range": {
    what: "a table SAS's signed IP range (sip) is not enforced: a client outside it reads",
    handling: "the IP-range case is skipped for azurite",
  },
  "property-count": {
    what: "an entity with more than 252 custom properties is accepted (Azure: 400 TooManyProperties)",
    handling: "the case is skipped for azurite",
  },
  "entity-size": {
    what: "an entity larger than 1 MiB is accepted (Azure: 400 EntityTooLarge)",
    handling: "the case is skipped for azurite",
  },
  "table-name-code": {
    what:
      "an invalid table name gets 400 with an empty error code (Azure names " +
      "the error, InvalidResourceName or OutOfRangeInput)",
    handling: "only the status is checked on azurite",
  },
  "table-name-case": {
    what:
      "entity operations find a table only under the exact case it was created " +
      "with (404 TableNotFound otherwise); Azure table names are case-insensitive",
    handling: "the azurite target checks case-insensitivity on create only",
  },
  "string-size": {
    what:
      "the 64 KiB limit of a String property is applied to its UTF-8 size, so " +
      "32,768 non-ASCII UTF-16 units are refused with 400 PropertyValueTooLarge",
    handling: "the non-ASCII maximum-size string case is skipped for azurite",
  },
  "filter-type-coercion": {
    what:
      "a filter compares numbers across EDM types: 'dbl gt 3' (an Int32 literal " +
      "against a Double property) matches, and 'i32 eq 1L' fails with 500; " +
      "Azure converts neither, so both match nothing (confirmed by Microsoft " +
      "in Azure/azure-storage-net#122; core/filter.c lists the one conversion " +
      "it makes, an Int32 literal against an Int64 property, which Azurite " +
      "does not make for eq: 'i64 eq 1' matches nothing there)",
    handling: "the cross-type filter case is skipped for azurite",
  },
  "sas-transaction": {
    what:
      "a transaction (POST /$batch) authorized by a table SAS gets 403 " +
      "AuthorizationFailure; Azure accepts it for the SAS's table",
    handling: "the table-SAS transaction case is skipped for azurite",
  },
  "batch-relative-uri": {
    what:
      "a transaction whose sub-requests name a path (POST /devstoreaccount1/t) " +
      "rather than an absolute URL gets 500 with an empty body; the legacy " +
      "Python SDK (azure-cosmosdb-table) writes every sub-request that way",
    handling: "that SDK's transaction cases are skipped for azurite, and its rows are seeded one by one",
  },
  "untyped-whole-double": {
    what:
      "a whole-number Double sent without a type annotation (2.0, as the legacy " +
      "Python SDK sends every float) is stored as Int32; Azure keeps a JSON " +
      "number with a fraction or exponent part as Double",
    handling: "the azurite target checks the value only",
  },
  "version-header": {
    what:
      "x-ms-version in responses is Azurite's newest version (2025-11-05), " +
      "not the version the request asked for",
    handling: "the azurite target only checks that the header is present",
  },
};

// Deviations a proxy whose backends are Azurite passes on to its clients:
// the proxy forwards the value or the filter, and Azurite judges it.
const PASSED_THROUGH = new Set(["string-size", "filter-type-coercion"]);

export function deviates(kind, name) {
  if (!(name in AZURITE_DEVIATIONS)) throw new Error(`unknown deviation ${name}`);
  if (kind === "proxy" && PASSED_THROUGH.has(name)) {
    return (process.env.MTABLE_E2E_BACKEND || "auto") !== "memory";
  }
  return kind === "azurite";
}
