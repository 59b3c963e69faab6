// clients.mjs -- SDK clients for a target, and the checks on their errors.
//
// Two SDKs, because applications use both: @azure/data-tables (current,
// JSON with minimal metadata, API version 2019-02-02) and the legacy
// azure-storage package (callback style, its own serializer, its own batch
// parser, API version 2018-03-28). Both are built from the same target
// object ({endpoint, accountName, accountKey, connectionString}), so a case
// runs unchanged against Azurite and against the proxy.
//
// Retries are switched off: a conformance test must see the first answer,
// not the one a retry policy settled on.

import assert from "node:assert/strict";
import {
  AzureNamedKeyCredential,
  AzureSASCredential,
  TableClient,
  TableServiceClient,
} from "@azure/data-tables";
import legacy from "azure-storage";

const pipelineOptions = {
  allowInsecureConnection: true,
  retryOptions: { maxRetries: 0 },
};

export function credential(t, key = t.accountKey) {
  return new AzureNamedKeyCredential(t.accountName, key);
}

export function serviceClient(t, { key } = {}) {
  return new TableServiceClient(t.endpoint, credential(t, key), pipelineOptions);
}

export function tableClient(t, table, { key, sas } = {}) {
  const cred = sas ? new AzureSASCredential(sas) : credential(t, key);
  return new TableClient(t.endpoint, table, cred, pipelineOptions);
}

// Legacy clients. The connection string form is what applications use;
// the SAS form takes the host and a token.
export function legacyService(t, { key, payloadFormat } = {}) {
  const cs = key
    ? t.connectionString.replace(t.accountKey, key)
    : t.connectionString;
  const svc = legacy.createTableService(cs);
  if (payloadFormat) svc.defaultPayloadFormat = payloadFormat;
  return svc;
}

export function legacySasService(t, sas) {
  return legacy.createTableServiceWithSas(t.endpoint, sas);
}

export const { TableUtilities, TableQuery, TableBatch } = legacy;
export const eg = legacy.TableUtilities.entityGenerator;

// Calls a callback-style legacy method; resolves {result, response}, rejects
// with the SDK's error (statusCode, code, message).
export function call(svc, method, ...args) {
  return new Promise((ok, fail) => {
    svc[method](...args, (err, result, response) => {
      if (err) {
        err.response ??= response;
        fail(err);
      } else {
        ok({ result, response });
      }
    });
  });
}

// Runs fn and checks that it fails with the given HTTP status and, when
// code is given, Azure error code (a string, or an array of accepted codes).
// Works for both SDKs' errors. Returns the error for further checks.
export async function rejects(fn, status, code) {
  let err = null;
  try {
    await (typeof fn === "function" ? fn() : fn);
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected a ${status}${code ? " " + code : ""} error, but the call succeeded`);
  const got = err.statusCode ?? err.response?.status;
  const gotCode = errorCode(err);
  assert.equal(
    got,
    status,
    `expected status ${status}, got ${got} (${gotCode}): ${String(err.message).slice(0, 300)}`,
  );
  if (code) {
    const want = Array.isArray(code) ? code : [code];
    assert.ok(
      want.includes(gotCode),
      `expected error code ${want.join(" or ")}, got ${gotCode}: ${String(err.message).slice(0, 300)}`,
    );
  }
  return err;
}

// The Azure error code of an SDK error, from wherever that SDK put it.
export function errorCode(err) {
  if (err.code && typeof err.code === "string" && !/^(ECONN|ETIMEDOUT|ERR_)/.test(err.code)) {
    return err.code;
  }
  const h = err.response?.headers;
  const fromHeader = h?.get?.("x-ms-error-code") ?? h?.["x-ms-error-code"];
  if (fromHeader) return fromHeader;
  try {
    const body = JSON.parse(err.response?.bodyAsText ?? "");
    return body["odata.error"]?.code;
  } catch {
    return err.code;
  }
}

// Collects every entity of an async iterator (data-tables listEntities).
export async function all(iter) {
  const out = [];
  for await (const e of iter) out.push(e);
  return out;
}

// Drops the metadata a read adds (etag, timestamp, odata fields) so that two
// reads of the same data compare equal.
export function strip(e) {
  const out = {};
  for (const [k, v] of Object.entries(e)) {
    if (k === "etag" || k === "timestamp" || k.startsWith("odata.")) continue;
    out[k] = v;
  }
  return out;
}

// Unique table names: Azure allows 3-63 letters and digits, a letter first.
// The prefix keeps names of one file apart from those of another run.
const runTag = Math.random().toString(36).slice(2, 7);
let seq = 0;
export function tableName(hint = "t") {
  seq += 1;
  const clean = hint.replace(/[^A-Za-z0-9]/g, "").slice(0, 30) || "t";
  return `e${runTag}${clean}${seq}`;
}
