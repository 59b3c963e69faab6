"""test_data_tables.py -- the azure-data-tables Python SDK against one target.

Debian's python3-azure package provides azure.data.tables. Run by
python-sdks.test.mjs with the target in the environment (see target.py);
every case makes its own table and deletes it, so the order of cases and
the phase the proxy is in do not matter.
"""

import datetime
import math
import unittest
import uuid

try:
    from azure.core import MatchConditions
    from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential
    from azure.core.exceptions import (
        HttpResponseError,
        ResourceExistsError,
        ResourceModifiedError,
        ResourceNotFoundError,
    )
    from azure.data.tables import (
        EdmType,
        EntityProperty,
        TableClient,
        TableSasPermissions,
        TableServiceClient,
        TableTransactionError,
        UpdateMode,
        generate_table_sas,
    )
except ImportError as e:
    raise ImportError(
        f"azure.data.tables cannot be imported ({e}); install the Debian package python3-azure"
    ) from e

import target

UTC = datetime.timezone.utc


def credential():
    return AzureNamedKeyCredential(target.ACCOUNT, target.KEY)


def error_code(err):
    """The Azure error code of a failed call: the SDK's error_code when it
    decoded one, else the x-ms-error-code header of the response."""
    code = getattr(err, "error_code", None)
    if code is None and err.response is not None:
        code = err.response.headers.get("x-ms-error-code")
    return getattr(code, "value", code)


# No retries, so that every answer is seen as sent.
NO_RETRY = {"retry_total": 0}


def service():
    return TableServiceClient(endpoint=target.ENDPOINT, credential=credential(), **NO_RETRY)


class DataTablesCase(unittest.TestCase):
    """Gives each case a fresh table, deleted afterwards."""

    def setUp(self):
        self.svc = service()
        self.name = target.table_name("pyd")
        self.table = self.svc.create_table(self.name)
        self.addCleanup(self.svc.delete_table, self.name)

    def assertFails(self, exc, status, code, fn, *args, **kwargs):
        with self.assertRaises(exc) as cm:
            fn(*args, **kwargs)
        self.assertEqual(cm.exception.status_code, status, str(cm.exception))
        self.assertEqual(error_code(cm.exception), code, str(cm.exception))
        return cm.exception


class Tables(unittest.TestCase):
    def test_create_list_delete(self):
        svc = service()
        name = target.table_name("pyd")
        client = svc.create_table(name)
        self.assertEqual(client.table_name, name)
        self.assertIn(name, [t.name for t in svc.list_tables()])
        found = list(svc.query_tables("TableName eq @n", parameters={"n": name}))
        self.assertEqual([t.name for t in found], [name])

        with self.assertRaises(ResourceExistsError) as cm:
            svc.create_table(name)
        self.assertEqual(cm.exception.status_code, 409)
        self.assertEqual(error_code(cm.exception), "TableAlreadyExists")
        # create_table_if_not_exists tolerates the existing table.
        self.assertEqual(svc.create_table_if_not_exists(name).table_name, name)

        svc.delete_table(name)
        self.assertNotIn(name, [t.name for t in svc.list_tables()])
        with self.assertRaises(ResourceNotFoundError) as cm:
            TableClient(target.ENDPOINT, name, credential=credential(), **NO_RETRY).get_entity("p", "r")
        self.assertEqual(cm.exception.status_code, 404)
        self.assertEqual(error_code(cm.exception), "TableNotFound")
        # The SDK treats deleting a missing table as done.
        svc.delete_table(name)

    def test_list_tables_in_pages(self):
        svc = service()
        names = [target.table_name("pyl") for _ in range(3)]
        for n in names:
            svc.create_table(n)
            self.addCleanup(svc.delete_table, n)
        pages = list(svc.list_tables(results_per_page=1).by_page())
        listed = [t.name for page in pages for t in page]
        for n in names:
            self.assertEqual(listed.count(n), 1, listed)
        self.assertGreaterEqual(len(pages), 3)


class Entities(DataTablesCase):
    def test_crud(self):
        t = self.table
        md = t.create_entity({"PartitionKey": "p", "RowKey": "r", "s": "one", "n": 1})
        self.assertTrue(md["etag"].startswith('W/"'), md)
        e = t.get_entity("p", "r")
        self.assertEqual((e["s"], e["n"]), ("one", 1))
        self.assertEqual(e.metadata["etag"], md["etag"])

        self.assertFails(
            ResourceExistsError, 409, "EntityAlreadyExists",
            t.create_entity, {"PartitionKey": "p", "RowKey": "r"},
        )

        t.update_entity({"PartitionKey": "p", "RowKey": "r", "s": "two"}, mode=UpdateMode.REPLACE)
        e = t.get_entity("p", "r")
        self.assertEqual(e["s"], "two")
        self.assertNotIn("n", e)

        t.update_entity({"PartitionKey": "p", "RowKey": "r", "n": 3}, mode=UpdateMode.MERGE)
        e = t.get_entity("p", "r")
        self.assertEqual((e["s"], e["n"]), ("two", 3))

        t.upsert_entity({"PartitionKey": "p", "RowKey": "r", "m": True}, mode=UpdateMode.MERGE)
        self.assertEqual(dict(t.get_entity("p", "r")),
                         {"PartitionKey": "p", "RowKey": "r", "s": "two", "n": 3, "m": True})
        t.upsert_entity({"PartitionKey": "p", "RowKey": "r", "x": "only"}, mode=UpdateMode.REPLACE)
        self.assertEqual(dict(t.get_entity("p", "r")),
                         {"PartitionKey": "p", "RowKey": "r", "x": "only"})
        # Upserts of a missing row insert it, in both modes.
        t.upsert_entity({"PartitionKey": "p", "RowKey": "new1", "v": 1}, mode=UpdateMode.MERGE)
        t.upsert_entity({"PartitionKey": "p", "RowKey": "new2", "v": 2}, mode=UpdateMode.REPLACE)
        self.assertEqual(t.get_entity("p", "new1")["v"], 1)
        self.assertEqual(t.get_entity("p", "new2")["v"], 2)

        self.assertFails(
            ResourceNotFoundError, 404, "ResourceNotFound",
            t.update_entity, {"PartitionKey": "p", "RowKey": "absent"}, mode=UpdateMode.MERGE,
        )

        t.delete_entity("p", "r")
        self.assertFails(ResourceNotFoundError, 404, "ResourceNotFound", t.get_entity, "p", "r")
        # The SDK treats deleting a missing entity as done.
        t.delete_entity("p", "r")
        self.assertEqual(sorted(e["RowKey"] for e in t.list_entities()), ["new1", "new2"])

    def test_conditional_writes_with_received_etag(self):
        t = self.table
        created = t.create_entity({"PartitionKey": "p", "RowKey": "r", "v": 1})["etag"]

        # Replace with the ETag the create answered.
        replaced = t.update_entity(
            {"PartitionKey": "p", "RowKey": "r", "v": 2}, mode=UpdateMode.REPLACE,
            etag=created, match_condition=MatchConditions.IfNotModified,
        )["etag"]
        self.assertNotEqual(replaced, created)
        # The old ETag is now stale, for replace, merge and delete alike.
        for fn, args, kwargs in (
            (t.update_entity, ({"PartitionKey": "p", "RowKey": "r", "v": 9},), {"mode": UpdateMode.REPLACE}),
            (t.update_entity, ({"PartitionKey": "p", "RowKey": "r", "v": 9},), {"mode": UpdateMode.MERGE}),
            (t.delete_entity, ("p", "r"), {}),
        ):
            self.assertFails(
                ResourceModifiedError, 412, "UpdateConditionNotSatisfied", fn, *args,
                etag=created, match_condition=MatchConditions.IfNotModified, **kwargs,
            )
        self.assertEqual(t.get_entity("p", "r")["v"], 2)

        # Merge with the ETag a read returned, taken from the entity itself.
        e = t.get_entity("p", "r")
        self.assertEqual(e.metadata["etag"], replaced)
        e["w"] = "merged"
        merged = t.update_entity(e, mode=UpdateMode.MERGE, match_condition=MatchConditions.IfNotModified)["etag"]
        self.assertNotEqual(merged, replaced)
        self.assertEqual(dict(t.get_entity("p", "r")),
                         {"PartitionKey": "p", "RowKey": "r", "v": 2, "w": "merged"})

        # Delete with the ETag a query returned.
        (q,) = list(t.query_entities("RowKey eq 'r'"))
        self.assertEqual(q.metadata["etag"], merged)
        t.delete_entity(q, match_condition=MatchConditions.IfNotModified)
        self.assertEqual(list(t.list_entities()), [])

        # A conditional write of a missing row is 404.
        self.assertFails(
            ResourceNotFoundError, 404, "ResourceNotFound",
            t.update_entity, {"PartitionKey": "p", "RowKey": "r"}, mode=UpdateMode.REPLACE,
            etag=merged, match_condition=MatchConditions.IfNotModified,
        )


class Transactions(DataTablesCase):
    def test_success(self):
        t = self.table
        etag = t.create_entity({"PartitionKey": "p", "RowKey": "upd", "v": 1})["etag"]
        t.create_entity({"PartitionKey": "p", "RowKey": "mrg", "v": 1})
        t.create_entity({"PartitionKey": "p", "RowKey": "del", "v": 1})
        ops = [
            ("create", {"PartitionKey": "p", "RowKey": "new", "v": 0}),
            ("update", {"PartitionKey": "p", "RowKey": "upd", "v": 2},
             {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified}),
            ("update", {"PartitionKey": "p", "RowKey": "mrg", "w": 2}, {"mode": UpdateMode.MERGE}),
            ("upsert", {"PartitionKey": "p", "RowKey": "ups", "v": 3}, {"mode": UpdateMode.REPLACE}),
            ("delete", {"PartitionKey": "p", "RowKey": "del"}),
        ]
        results = t.submit_transaction(ops)
        self.assertEqual(len(results), 5)
        for r in results[:4]:
            self.assertTrue(r["etag"], results)
        rows = {e["RowKey"]: dict(e) for e in t.list_entities()}
        self.assertEqual(sorted(rows), ["mrg", "new", "upd", "ups"])
        self.assertEqual(rows["upd"]["v"], 2)
        self.assertEqual((rows["mrg"]["v"], rows["mrg"]["w"]), (1, 2))
        self.assertEqual(rows["ups"]["v"], 3)
        # The ETags the transaction answered are the rows' ETags.
        self.assertEqual(t.get_entity("p", "upd").metadata["etag"], results[1]["etag"])

    def _assert_rolled_back(self, t, before):
        after = {e["RowKey"]: (dict(e), e.metadata["etag"]) for e in t.list_entities()}
        self.assertEqual(after, before)

    def test_failing_operation_index(self):
        t = self.table
        etag = t.create_entity({"PartitionKey": "p", "RowKey": "a", "v": 1})["etag"]
        t.update_entity({"PartitionKey": "p", "RowKey": "a", "v": 2})
        t.create_entity({"PartitionKey": "p", "RowKey": "b", "v": 1})
        before = {e["RowKey"]: (dict(e), e.metadata["etag"]) for e in t.list_entities()}

        cases = [
            # (operations, failing index, status, code)
            ([("create", {"PartitionKey": "p", "RowKey": "x1"}),
              ("upsert", {"PartitionKey": "p", "RowKey": "x2"}),
              ("create", {"PartitionKey": "p", "RowKey": "b"})], 2, 409, "EntityAlreadyExists"),
            ([("create", {"PartitionKey": "p", "RowKey": "x1"}),
              ("update", {"PartitionKey": "p", "RowKey": "a", "v": 3},
               {"mode": UpdateMode.MERGE, "etag": etag, "match_condition": MatchConditions.IfNotModified})],
             1, 412, "UpdateConditionNotSatisfied"),
            ([("delete", {"PartitionKey": "p", "RowKey": "a"},
               {"etag": etag, "match_condition": MatchConditions.IfNotModified}),
              ("create", {"PartitionKey": "p", "RowKey": "x1"})], 0, 412, "UpdateConditionNotSatisfied"),
            ([("upsert", {"PartitionKey": "p", "RowKey": "x1"}),
              ("update", {"PartitionKey": "p", "RowKey": "missing"}, {"mode": UpdateMode.REPLACE})],
             1, 404, "ResourceNotFound"),
        ]
        for ops, index, status, code in cases:
            with self.subTest(index=index, code=code):
                with self.assertRaises(TableTransactionError) as cm:
                    t.submit_transaction(ops)
                err = cm.exception
                self.assertEqual(err.index, index, str(err))
                self.assertEqual(err.status_code, status, str(err))
                self.assertEqual(error_code(err), code, str(err))
                self._assert_rolled_back(t, before)


def seed_rows(t, partitions, per_partition):
    for p in range(partitions):
        for start in range(0, per_partition, 100):
            ops = [
                ("create", {"PartitionKey": f"p{p}", "RowKey": f"r{i:03d}", "i": i, "odd": i % 2 == 1})
                for i in range(start, min(per_partition, start + 100))
            ]
            t.submit_transaction(ops)


class Queries(DataTablesCase):
    def test_filters(self):
        t = self.table
        seed_rows(t, 2, 10)
        self.assertEqual(len(list(t.query_entities("PartitionKey eq 'p1' and i ge 7"))), 3)
        got = [(e["PartitionKey"], e["RowKey"]) for e in t.query_entities("odd eq true and i lt 4")]
        self.assertEqual(got, [("p0", "r001"), ("p0", "r003"), ("p1", "r001"), ("p1", "r003")])
        got = [e["RowKey"] for e in t.query_entities(
            "PartitionKey eq @pk and ( RowKey eq @a or RowKey eq @b )",
            parameters={"pk": "p0", "a": "r002", "b": "r009"})]
        self.assertEqual(got, ["r002", "r009"])
        self.assertEqual(list(t.query_entities("missing eq 1")), [])
        self.assertEqual(list(t.query_entities("not (i ge 0)")), [])
        # $select: only the keys and the properties asked for.
        sel = list(t.query_entities("RowKey eq 'r005'", select=["i", "RowKey"]))
        self.assertEqual([dict(e) for e in sel], [{"RowKey": "r005", "i": 5}] * 2)
        with self.assertRaises(HttpResponseError) as cm:
            list(t.query_entities("i eq eq 1"))
        self.assertEqual(cm.exception.status_code, 400)

    def test_continuation(self):
        t = self.table
        seed_rows(t, 3, 9)  # 27 rows, pages of 5 cross partition boundaries
        pages = list(t.list_entities(results_per_page=5).by_page())
        self.assertEqual([len(list(p)) for p in pages], [5, 5, 5, 5, 5, 2])
        keys = [(e["PartitionKey"], e["RowKey"]) for e in t.list_entities(results_per_page=5)]
        self.assertEqual(keys, sorted(keys))
        self.assertEqual(len(keys), 27)
        self.assertEqual(len(set(keys)), 27)

        # A filtered scan in pages, resumed from a saved continuation token.
        pager = t.query_entities("odd eq false", results_per_page=4).by_page()
        first = [e["RowKey"] for e in next(pager)]
        token = pager.continuation_token
        self.assertIsNotNone(token)
        rest = [
            (e["PartitionKey"], e["RowKey"])
            for page in t.query_entities("odd eq false", results_per_page=4).by_page(continuation_token=token)
            for e in page
        ]
        self.assertEqual(first, ["r000", "r002", "r004", "r006"])
        self.assertEqual(len(rest), 15 - 4)
        self.assertEqual(rest[0], ("p0", "r008"))
        self.assertEqual(rest[-1], ("p2", "r008"))


class Types(DataTablesCase):
    def test_typed_properties(self):
        t = self.table
        dt = datetime.datetime(2021, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)
        g = uuid.UUID("3f2504e0-4f89-41d3-9a0c-0305e82c3301")
        blob = bytes(range(256))
        t.create_entity({
            "PartitionKey": "p", "RowKey": "r",
            "i64": EntityProperty(2**53 + 1, EdmType.INT64),
            "i64min": EntityProperty(-(2**63), EdmType.INT64),
            "i64max": EntityProperty(2**63 - 1, EdmType.INT64),
            "i32": -(2**31),
            "dbl": 1.5,
            "dblbig": 1e300,
            "dblneg": -0.000123,
            "dt": dt,
            "guid": g,
            "bin": blob,
            "empty": b"",
            "nan": float("nan"),
            "inf": float("inf"),
            "ninf": float("-inf"),
            "estr": "",
            "yes": True,
            "no": False,
            "s": "ünïcødé \U0001F600",
        })
        e = t.get_entity("p", "r")
        self.assertEqual(e["i64"], EntityProperty(2**53 + 1, EdmType.INT64))
        self.assertEqual(e["i64min"], EntityProperty(-(2**63), EdmType.INT64))
        self.assertEqual(e["i64max"], EntityProperty(2**63 - 1, EdmType.INT64))
        self.assertEqual((type(e["i32"]), e["i32"]), (int, -(2**31)))
        for k, v in (("dbl", 1.5), ("dblbig", 1e300), ("dblneg", -0.000123)):
            self.assertEqual((type(e[k]), e[k]), (float, v), k)
        self.assertIsInstance(e["dt"], datetime.datetime)
        self.assertEqual(e["dt"], dt)
        self.assertEqual((type(e["guid"]), e["guid"]), (uuid.UUID, g))
        self.assertEqual((type(e["bin"]), e["bin"]), (bytes, blob))
        self.assertEqual(e["empty"], b"")
        self.assertTrue(math.isnan(e["nan"]))
        self.assertEqual((e["inf"], e["ninf"]), (math.inf, -math.inf))
        self.assertEqual(e["estr"], "")
        self.assertEqual(e["yes"], True)
        self.assertEqual(e["no"], False)
        self.assertEqual(e["s"], "ünïcødé \U0001F600")

        # Filters on each type find the row, and a near miss does not.
        for hit, miss in (
            (f"i64 eq {2**53 + 1}L", f"i64 eq {2**53}L"),
            ("i64max gt 9223372036854775806L", "i64min gt -9223372036854775808L"),
            ("dbl eq 1.5", "dbl gt 1.5"),
            ("dt eq datetime'2021-02-03T04:05:06.789012Z'", "dt lt datetime'2021-02-03T04:05:06.789012Z'"),
            (f"guid eq guid'{g}'", f"guid ne guid'{g}'"),
            ("bin eq X'" + blob.hex() + "'", "bin eq X'00'"),
            ("yes eq true and no eq false", "yes eq false"),
        ):
            self.assertEqual(len(list(t.query_entities(hit))), 1, hit)
            self.assertEqual(list(t.query_entities(miss)), [], miss)
        # Parameters typed by the SDK.
        got = list(t.query_entities("dt eq @dt and guid eq @g", parameters={"dt": dt, "g": g}))
        self.assertEqual(len(got), 1)


class Sas(DataTablesCase):
    def sas_client(self, **perms):
        token = generate_table_sas(
            credential(), self.name,
            permission=TableSasPermissions(**perms),
            expiry=datetime.datetime.now(UTC) + datetime.timedelta(hours=1),
        )
        return TableClient(target.ENDPOINT, self.name, credential=AzureSasCredential(token), **NO_RETRY)

    def test_read_only_sas(self):
        self.table.create_entity({"PartitionKey": "p", "RowKey": "r", "v": 1})
        ro = self.sas_client(read=True)
        self.assertEqual(ro.get_entity("p", "r")["v"], 1)
        self.assertEqual([e["RowKey"] for e in ro.query_entities("v eq 1")], ["r"])
        self.assertFails(
            HttpResponseError, 403, "AuthorizationPermissionMismatch",
            ro.create_entity, {"PartitionKey": "p", "RowKey": "s"},
        )
        self.assertFails(
            HttpResponseError, 403, "AuthorizationPermissionMismatch",
            ro.update_entity, {"PartitionKey": "p", "RowKey": "r", "v": 2},
        )

    def test_full_sas(self):
        rw = self.sas_client(read=True, add=True, update=True, delete=True)
        etag = rw.create_entity({"PartitionKey": "p", "RowKey": "r", "v": 1})["etag"]
        rw.update_entity({"PartitionKey": "p", "RowKey": "r", "v": 2}, mode=UpdateMode.MERGE,
                         etag=etag, match_condition=MatchConditions.IfNotModified)
        rw.upsert_entity({"PartitionKey": "p", "RowKey": "s"})
        self.assertEqual([e["RowKey"] for e in rw.list_entities()], ["r", "s"])
        self.assertEqual(rw.get_entity("p", "r")["v"], 2)
        rw.delete_entity("p", "s")
        self.assertEqual([e["RowKey"] for e in self.table.list_entities()], ["r"])

    def test_transaction_with_sas(self):
        if target.deviates("sas-transaction"):
            self.skipTest("Azurite refuses a transaction under a table SAS (deviation sas-transaction)")
        rw = self.sas_client(read=True, add=True, update=True, delete=True)
        rw.submit_transaction([("create", {"PartitionKey": "p", "RowKey": "s"}),
                               ("upsert", {"PartitionKey": "p", "RowKey": "t"})])
        self.assertEqual([e["RowKey"] for e in self.table.list_entities()], ["s", "t"])
        ro = self.sas_client(read=True)
        with self.assertRaises(HttpResponseError) as cm:
            ro.submit_transaction([("create", {"PartitionKey": "p", "RowKey": "u"})])
        self.assertEqual(cm.exception.status_code, 403)
        self.assertEqual([e["RowKey"] for e in self.table.list_entities()], ["s", "t"])

    def test_sas_of_another_table(self):
        other = target.table_name("pyo")
        self.svc.create_table(other)
        self.addCleanup(self.svc.delete_table, other)
        token = generate_table_sas(
            credential(), other, permission=TableSasPermissions(read=True),
            expiry=datetime.datetime.now(UTC) + datetime.timedelta(hours=1),
        )
        client = TableClient(target.ENDPOINT, self.name, credential=AzureSasCredential(token), **NO_RETRY)
        with self.assertRaises(HttpResponseError) as cm:
            list(client.list_entities())
        self.assertEqual(cm.exception.status_code, 403)

    def test_wrong_key(self):
        bad = TableClient(target.ENDPOINT, self.name,
                          credential=AzureNamedKeyCredential(target.ACCOUNT, "AAAA" + target.KEY[4:]),
                          **NO_RETRY)
        with self.assertRaises(HttpResponseError) as cm:
            bad.get_entity("p", "r")
        self.assertEqual(cm.exception.status_code, 403)
        self.assertIn(error_code(cm.exception), target.auth_codes())


class CarryOver(unittest.TestCase):
    """Rows written by the runs against earlier phases of the same proxy
    (and, from phase 3 on, copied to the new table by the migrator) read
    back with their types, and take conditional writes with their ETag."""

    def conditional(self, write, e, reread):
        """write(ETag of e). In prefer_new, a row read from the old table is
        copied to the new one by the first write to it, under a new ETag,
        and that write fails with 412 (test/e2e/README.md, "Observations
        that are not failures"): then the row must read back unchanged
        under another ETag, and the write succeed with that one."""
        try:
            return write(e.metadata["etag"])
        except ResourceModifiedError:
            if target.TARGET != "proxy-2":
                raise
        fresh = reread()
        self.assertNotEqual(fresh.metadata["etag"], e.metadata["etag"])
        self.assertEqual(dict(fresh), dict(e))
        return write(fresh.metadata["etag"])

    def test_rows_of_earlier_phases(self):
        if not target.CARRY:
            self.skipTest("no carry-over table (MTABLE_E2E_PY_CARRY)")
        t = service().create_table_if_not_exists(target.CARRY + "d")
        rows = {e["RowKey"]: e for e in t.list_entities()}
        expect = list(target.CARRY_FROM)
        if expect:
            expect.append("del-" + expect[-1])
        self.assertEqual(sorted(rows), sorted(expect))
        when = datetime.datetime(2020, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
        for i, who in enumerate(target.CARRY_FROM):
            e = rows[who]
            self.assertEqual(e["n"], len(target.CARRY_FROM) - 1 - i, who)
            self.assertEqual((e["big"], e["when"], e["bin"]),
                             (EntityProperty(2**40 + i, EdmType.INT64), when, b"\x00\xff"), who)
            new = self.conditional(
                lambda etag: t.update_entity({"PartitionKey": "carry", "RowKey": who, "n": e["n"] + 1},
                                             mode=UpdateMode.MERGE, etag=etag,
                                             match_condition=MatchConditions.IfNotModified)["etag"],
                e, lambda: t.get_entity("carry", who))
            with self.assertRaises(ResourceModifiedError):
                t.delete_entity(e, match_condition=MatchConditions.IfNotModified)
            self.assertEqual(t.get_entity("carry", who).metadata["etag"], new, who)
        if target.CARRY_FROM:
            gone = rows["del-" + target.CARRY_FROM[-1]]
            self.conditional(
                lambda etag: t.delete_entity("carry", gone["RowKey"], etag=etag,
                                             match_condition=MatchConditions.IfNotModified),
                gone, lambda: t.get_entity("carry", gone["RowKey"]))
        t.create_entity({
            "PartitionKey": "carry", "RowKey": target.TARGET, "n": 0,
            "big": EntityProperty(2**40 + len(target.CARRY_FROM), EdmType.INT64),
            "when": when, "bin": b"\x00\xff",
        })
        t.create_entity({"PartitionKey": "carry", "RowKey": "del-" + target.TARGET})
        self.assertEqual(sorted(e["RowKey"] for e in t.list_entities()),
                         sorted(target.CARRY_FROM + [target.TARGET, "del-" + target.TARGET]))


if __name__ == "__main__":
    unittest.main()
