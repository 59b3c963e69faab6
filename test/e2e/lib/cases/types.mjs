// EDM types: every type with its edge values, written and read through
// both SDKs and in the three JSON metadata levels.
//
// Where an SDK cannot tell two wire forms apart the check is on what the
// SDK can see: data-tables infers Int32 for a Double whose value is a whole
// number (1.0, -0.0) when it arrives without a type annotation, so such
// values are checked by number there and by type through the legacy SDK,
// which keeps the annotation.

import assert from "node:assert/strict";
import { describe } from "node:test";
import { call, eg, legacyService, rejects, strip, TableUtilities } from "../clients.mjs";

// A DateTime as (whole seconds, 100 ns ticks) so that "05.1230000Z" and
// "05.123Z" compare equal but "05.1234567Z" and "05.123Z" do not.
function ticks(s) {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,7}))?Z$/.exec(s);
  assert.ok(m, `not an Azure DateTime: ${s}`);
  return `${m[1]}.${(m[2] ?? "").padEnd(7, "0")}Z`;
}

const GUID = "c9da6455-213d-42c9-9a79-3e9149a57833";
const LONG = "x".repeat(32768); // 64 KiB in UTF-16, the largest string property
const SPECIAL = "quote\" apos' back\\ slash/ amp& lt< gt> nl\n tab\t cr\r uFFFD\uFFFD bom\uFEFF";

// What data-tables sends for each property, and what it must read back
// (with type conversion disabled) -- value as the SDK exposes it.
export const TYPED = {
  i32max: [2147483647, { value: "2147483647", type: "Int32" }],
  i32min: [-2147483648, { value: "-2147483648", type: "Int32" }],
  i32zero: [0, { value: "0", type: "Int32" }],
  i64max: [{ type: "Int64", value: "9223372036854775807" }, { value: "9223372036854775807", type: "Int64" }],
  i64min: [{ type: "Int64", value: "-9223372036854775808" }, { value: "-9223372036854775808", type: "Int64" }],
  i64big: [{ type: "Int64", value: "9007199254740993" }, { value: "9007199254740993", type: "Int64" }],
  i64zero: [{ type: "Int64", value: "0" }, { value: "0", type: "Int64" }],
  dNaN: [{ type: "Double", value: "NaN" }, { value: "NaN", type: "Double" }],
  dInf: [{ type: "Double", value: "Infinity" }, { value: "Infinity", type: "Double" }],
  dNegInf: [{ type: "Double", value: "-Infinity" }, { value: "-Infinity", type: "Double" }],
  dMax: [{ type: "Double", value: 1e308 }, { value: "1e+308", type: "Double" }],
  dMaxFinite: [{ type: "Double", value: 1.7976931348623157e308 }, { value: "1.7976931348623157e+308", type: "Double" }],
  dMinSub: [{ type: "Double", value: 5e-324 }, { value: "5e-324", type: "Double" }],
  dFrac: [{ type: "Double", value: -1.5 }, { value: "-1.5", type: "Double" }],
  dThird: [{ type: "Double", value: 1 / 3 }, { value: String(1 / 3), type: "Double" }],
  tTicks: [{ type: "DateTime", value: "2020-01-02T03:04:05.1234567Z" }, "2020-01-02T03:04:05.1234567Z"],
  tMin: [{ type: "DateTime", value: "1601-01-01T00:00:00Z" }, "1601-01-01T00:00:00Z"],
  tMax: [{ type: "DateTime", value: "9999-12-31T23:59:59.9999999Z" }, "9999-12-31T23:59:59.9999999Z"],
  tMs: [new Date("2021-06-30T12:34:56.789Z"), "2021-06-30T12:34:56.789Z"],
  g: [{ type: "Guid", value: GUID }, { value: GUID, type: "Guid" }],
  gUpper: [{ type: "Guid", value: GUID.toUpperCase() }, { value: GUID, type: "Guid" }],
  bin: [new Uint8Array([0, 1, 127, 128, 255]), { value: "AAF/gP8=", type: "Binary" }],
  binEmpty: [new Uint8Array([]), { value: "", type: "Binary" }],
  binMax: [new Uint8Array(65536).fill(0xa5), { value: Buffer.alloc(65536, 0xa5).toString("base64"), type: "Binary" }],
  yes: [true, { value: "true", type: "Boolean" }],
  no: [false, { value: "false", type: "Boolean" }],
  sEmpty: ["", { value: "", type: "String" }],
  sNonBmp: ["a😀𝄞b", { value: "a😀𝄞b", type: "String" }],
  sSpecial: [SPECIAL, { value: SPECIAL, type: "String" }],
  sLong: [LONG, { value: LONG, type: "String" }],
  sNumeric: ["12345", { value: "12345", type: "String" }],
  sTyped: [{ type: "String", value: "true" }, { value: "true", type: "String" }],
};

function checkTyped(got) {
  for (const [name, [, want]] of Object.entries(TYPED)) {
    const g = got[name];
    assert.ok(g, `property ${name} missing`);
    if (typeof want === "string") {
      assert.equal(g.type, "DateTime", `${name} type`);
      assert.equal(ticks(g.value), ticks(want), `${name} value`);
    } else if (want.type === "Guid") {
      assert.deepEqual({ ...g, value: g.value.toLowerCase() }, want, name);
    } else {
      assert.deepEqual(g, want, name);
    }
  }
}

export default function types(ctx) {
  describe("types", () => {
    ctx.test("every EDM type with edge values round-trips (data-tables, typed)", async () => {
      const { client } = await ctx.newTable("types");
      const e = { partitionKey: "p", rowKey: "r" };
      for (const [k, [v]] of Object.entries(TYPED)) e[k] = v;
      await client.createEntity(e);
      checkTyped(await client.getEntity("p", "r", { disableTypeConversion: true }));
      // The same through a query, which takes another serializer path.
      let listed = 0;
      for await (const x of client.listEntities({ queryOptions: { filter: "RowKey eq 'r'" }, disableTypeConversion: true })) {
        checkTyped(x);
        listed++;
      }
      assert.equal(listed, 1);
      // And after a merge that leaves them untouched.
      await client.updateEntity({ partitionKey: "p", rowKey: "r", extra: 1 }, "Merge");
      checkTyped(await client.getEntity("p", "r", { disableTypeConversion: true }));
    });

    ctx.test("whole-number and signed-zero Doubles keep their value", async () => {
      const { client } = await ctx.newTable("dbl");
      await client.createEntity({
        partitionKey: "p",
        rowKey: "r",
        one: { type: "Double", value: 1 },
        big: { type: "Double", value: 2 ** 53 },
        negZero: { type: "Double", value: "-0" },
        posZero: { type: "Double", value: 0 },
      });
      const e = await client.getEntity("p", "r");
      assert.equal(e.one, 1);
      assert.equal(e.big, 2 ** 53);
      assert.equal(e.posZero, 0);
      // -0 must come back as a zero; whether the sign survives is not
      // documented (Azurite drops it), so either zero is accepted.
      assert.equal(Math.abs(e.negZero), 0, `negZero = ${e.negZero}`);
    });

    ctx.test("data-tables native JS values: BigInt, Date, Uint8Array, number, boolean", async () => {
      const { client } = await ctx.newTable("native");
      await client.createEntity({
        partitionKey: "p",
        rowKey: "r",
        big: 9223372036854775807n,
        small: -9223372036854775808n,
        when: new Date("1999-12-31T23:59:59.999Z"),
        bytes: new Uint8Array([9, 8, 7]),
        n: 42,
        f: 0.1,
        ok: true,
      });
      const e = await client.getEntity("p", "r");
      assert.equal(e.big, 9223372036854775807n);
      assert.equal(e.small, -9223372036854775808n);
      assert.equal(e.when.toISOString(), "1999-12-31T23:59:59.999Z");
      assert.deepEqual([...e.bytes], [9, 8, 7]);
      assert.equal(e.n, 42);
      assert.equal(e.f, 0.1);
      assert.equal(e.ok, true);
    });

    ctx.test("legacy SDK: every type, read in full, minimal and no metadata", async () => {
      const { name } = await ctx.newTable("ltypes");
      const lg = legacyService(ctx.target);
      const entity = {
        PartitionKey: eg.String("p"),
        RowKey: eg.String("r"),
        i64max: eg.Int64("9223372036854775807"),
        i64min: eg.Int64("-9223372036854775808"),
        i32max: eg.Int32(2147483647),
        i32min: eg.Int32(-2147483648),
        dOne: eg.Double(1),
        dNaN: eg.Double(NaN),
        dInf: eg.Double(Infinity),
        dNegInf: eg.Double(-Infinity),
        dMinSub: eg.Double(5e-324),
        dMax: eg.Double(1e308),
        when: eg.DateTime(new Date("2022-02-22T22:22:22.222Z")),
        g: eg.Guid(GUID),
        bin: eg.Binary(Buffer.from([255, 0, 1])),
        binEmpty: eg.Binary(Buffer.alloc(0)),
        yes: eg.Boolean(true),
        no: eg.Boolean(false),
        sEmpty: eg.String(""),
        sNonBmp: eg.String("😀 𝄞"),
      };
      await call(lg, "insertEntity", name, entity);
      const norm = (v) =>
        Buffer.isBuffer(v) ? `bin:${v.toString("base64")}`
          : v instanceof Date ? `date:${v.toISOString()}`
            : typeof v === "number" && Number.isNaN(v) ? "NaN"
              : v;
      const { FULL_METADATA, MINIMAL_METADATA, NO_METADATA } = TableUtilities.PayloadFormat;

      // The types JSON cannot carry are annotated in full and minimal
      // metadata; the others (String, Int32, Boolean, fractional Double) are
      // annotated or not, but never with another type.
      const needsType = ["Edm.Int64", "Edm.DateTime", "Edm.Guid", "Edm.Binary"];
      const full = (await call(lg, "retrieveEntity", name, "p", "r", { payloadFormat: FULL_METADATA })).result;
      for (const [k, v] of Object.entries(entity)) {
        if (needsType.includes(v.$)) assert.equal(full[k]?.$, v.$, `${k}: type in full metadata`);
        else assert.ok([undefined, v.$].includes(full[k]?.$), `${k}: type ${full[k]?.$} in full metadata`);
        assert.deepEqual(norm(full[k]._), norm(v._), `${k}: value in full metadata`);
      }
      const min = (await call(lg, "retrieveEntity", name, "p", "r", { payloadFormat: MINIMAL_METADATA })).result;
      for (const [k, v] of Object.entries(entity)) {
        assert.deepEqual(norm(min[k]?._), norm(v._), `${k}: value in minimal metadata`);
        if (needsType.includes(v.$)) assert.equal(min[k].$, v.$, `${k}: type in minimal metadata`);
        else assert.ok([undefined, v.$].includes(min[k]?.$), `${k}: type ${min[k]?.$} in minimal metadata`);
      }
      assert.equal(min.dOne.$, "Edm.Double", "a whole-number Double is annotated");
      // No metadata: values arrive untyped; a resolver restores the types.
      const resolver = (pk, rk, name) => entity[name]?.$ ?? "Edm.String";
      const none = (await call(lg, "retrieveEntity", name, "p", "r", {
        payloadFormat: NO_METADATA,
        propertyResolver: resolver,
      })).result;
      for (const [k, v] of Object.entries(entity)) {
        assert.deepEqual(norm(none[k]?._), norm(v._), `${k}: value in no metadata`);
      }
    });

    ctx.test("a non-ASCII string of 32,768 UTF-16 units is accepted", {
      skip: ctx.deviates("string-size") && "Azurite measures the limit in UTF-8 (see README)",
    }, async () => {
      const { client } = await ctx.newTable("wide");
      const wide = "λ😀".repeat(32768 / 3) + "λλ"; // 32,768 UTF-16 units
      assert.equal(wide.length, 32768);
      await client.createEntity({ partitionKey: "p", rowKey: "r", wide });
      assert.equal((await client.getEntity("p", "r")).wide, wide);
      await rejects(client.createEntity({ partitionKey: "p", rowKey: "s", wide: wide + "λ" }), 400, "PropertyValueTooLarge");
    });

    ctx.test("property names: 255 characters and non-ASCII letters", async () => {
      const { client } = await ctx.newTable("pname");
      const long = "N" + "x".repeat(254);
      await client.createEntity({ partitionKey: "p", rowKey: "r", [long]: 1, Größe: 2, имя: 3, _under: 4 });
      const e = await client.getEntity("p", "r");
      assert.deepEqual(strip(e), { partitionKey: "p", rowKey: "r", [long]: 1, Größe: 2, имя: 3, _under: 4 });
    });
  });
}
