"""test_cosmosdb_table.py -- the legacy azure-cosmosdb-table SDK against one target.

Debian's python3-azure-cosmosdb-table package provides azure.cosmosdb.table.
Run by python-sdks.test.mjs with the target in the environment (see
target.py); every case makes its own table and deletes it.

This SDK does not keep the ETag header of a read: it rebuilds each entity's
etag from the Timestamp property of the body, as W/"datetime'<Timestamp,
URL-quoted>'". A conditional write with that etag only works when the
ETag the service hands out and the Timestamp it returns name the same
instant in the same digits, which the cases here check in every phase.
"""

import datetime
import math
import unittest
import uuid

try:
    from azure.common import AzureConflictHttpError, AzureHttpError, AzureMissingResourceHttpError
    from azure.cosmosdb.table.models import (
        AzureBatchOperationError,
        EdmType,
        EntityProperty,
        TablePermissions,
    )
    from azure.cosmosdb.table.common.retry import no_retry
    from azure.cosmosdb.table.tablebatch import TableBatch
    from azure.cosmosdb.table.tableservice import TableService
except ImportError as e:
    raise ImportError(
        f"azure.cosmosdb.table cannot be imported ({e}); "
        "install the Debian package python3-azure-cosmosdb-table"
    ) from e

import target

UTC = datetime.timezone.utc


def client(connection_string):
    """A client that never retries, so that every answer is seen as sent."""
    svc = TableService(connection_string=connection_string)
    svc.retry = no_retry
    return svc


def service():
    """A client built from a connection string, as for an Azure account."""
    return client(target.CONNECTION_STRING)


def emulator_service():
    """A client in the SDK's emulator mode (UseDevelopmentStorage=true, on
    the target's host and port): it also puts the account name into the
    paths of a transaction's sub-requests."""
    host = target.ENDPOINT.rsplit("/", 1)[0].split("://", 1)[1]
    return client(f"UseDevelopmentStorage=true;TableEndpoint={host}")


DEVIATION_BATCH = (
    "Azurite answers 500 to this SDK's transactions, whose sub-requests "
    "name a path instead of an absolute URL (deviation batch-relative-uri)"
)


class LegacyCase(unittest.TestCase):
    def setUp(self):
        self.svc = service()
        self.name = target.table_name("pyc")
        self.assertTrue(self.svc.create_table(self.name))
        self.addCleanup(self.svc.delete_table, self.name)

    def assertHttpError(self, status, code, fn, *args, exc=AzureHttpError, **kwargs):
        with self.assertRaises(exc) as cm:
            fn(*args, **kwargs)
        self.assertEqual(cm.exception.status_code, status, str(cm.exception))
        self.assertEqual(cm.exception.error_code, code, str(cm.exception))
        return cm.exception


class Tables(unittest.TestCase):
    def test_create_list_delete(self):
        svc = service()
        name = target.table_name("pyc")
        self.assertFalse(svc.exists(name))
        self.assertTrue(svc.create_table(name))
        self.assertTrue(svc.exists(name))
        self.assertIn(name, [t.name for t in svc.list_tables()])
        # Existing: False, or the 409 when asked to fail.
        self.assertFalse(svc.create_table(name))
        with self.assertRaises(AzureConflictHttpError) as cm:
            svc.create_table(name, fail_on_exist=True)
        self.assertEqual(cm.exception.status_code, 409)
        self.assertEqual(cm.exception.error_code, "TableAlreadyExists")

        self.assertTrue(svc.delete_table(name))
        self.assertFalse(svc.exists(name))
        self.assertNotIn(name, [t.name for t in svc.list_tables()])
        self.assertFalse(svc.delete_table(name))
        with self.assertRaises(AzureMissingResourceHttpError) as cm:
            svc.delete_table(name, fail_not_exist=True)
        self.assertEqual(cm.exception.status_code, 404)
        self.assertEqual(cm.exception.error_code, "ResourceNotFound")

    def test_list_tables_in_pages(self):
        svc = service()
        names = [target.table_name("pyl") for _ in range(3)]
        for n in names:
            svc.create_table(n)
            self.addCleanup(svc.delete_table, n)
        listed, marker, pages = [], None, 0
        while True:
            page = svc.list_tables(num_results=1, marker=marker)
            listed += [t.name for t in page]
            pages += 1
            marker = page.next_marker
            if not marker:
                break
        for n in names:
            self.assertEqual(listed.count(n), 1, listed)
        self.assertGreaterEqual(pages, 3)


class Entities(LegacyCase):
    def test_crud(self):
        svc, t = self.svc, self.name
        etag = svc.insert_entity(t, {"PartitionKey": "p", "RowKey": "r", "s": "one", "n": 1})
        self.assertTrue(etag.startswith('W/"'), etag)
        e = svc.get_entity(t, "p", "r")
        self.assertEqual((e.s, e.n), ("one", 1))
        self.assertHttpError(409, "EntityAlreadyExists", svc.insert_entity, t,
                             {"PartitionKey": "p", "RowKey": "r"})

        svc.update_entity(t, {"PartitionKey": "p", "RowKey": "r", "s": "two"})
        e = svc.get_entity(t, "p", "r")
        self.assertEqual(e.s, "two")
        self.assertNotIn("n", e)
        svc.merge_entity(t, {"PartitionKey": "p", "RowKey": "r", "n": 3})
        e = svc.get_entity(t, "p", "r")
        self.assertEqual((e.s, e.n), ("two", 3))
        svc.insert_or_merge_entity(t, {"PartitionKey": "p", "RowKey": "r", "m": True})
        e = svc.get_entity(t, "p", "r")
        self.assertEqual((e.s, e.n, e.m), ("two", 3, True))
        svc.insert_or_replace_entity(t, {"PartitionKey": "p", "RowKey": "r", "x": "only"})
        e = svc.get_entity(t, "p", "r")
        self.assertEqual(e.x, "only")
        self.assertNotIn("s", e)
        svc.insert_or_merge_entity(t, {"PartitionKey": "p", "RowKey": "new1", "v": 1})
        svc.insert_or_replace_entity(t, {"PartitionKey": "p", "RowKey": "new2", "v": 2})
        self.assertEqual(svc.get_entity(t, "p", "new1").v, 1)
        self.assertEqual(svc.get_entity(t, "p", "new2").v, 2)

        self.assertHttpError(404, "ResourceNotFound", svc.merge_entity, t,
                             {"PartitionKey": "p", "RowKey": "absent"})
        svc.delete_entity(t, "p", "r")
        self.assertHttpError(404, "ResourceNotFound", svc.get_entity, t, "p", "r",
                             exc=AzureMissingResourceHttpError)
        self.assertHttpError(404, "ResourceNotFound", svc.delete_entity, t, "p", "r")
        self.assertEqual([e.RowKey for e in svc.query_entities(t)], ["new1", "new2"])

    def test_conditional_writes_with_received_etag(self):
        svc, t = self.svc, self.name
        created = svc.insert_entity(t, {"PartitionKey": "p", "RowKey": "r", "v": 1})
        replaced = svc.update_entity(t, {"PartitionKey": "p", "RowKey": "r", "v": 2}, if_match=created)
        self.assertNotEqual(replaced, created)
        for fn, args in (
            (svc.update_entity, ({"PartitionKey": "p", "RowKey": "r", "v": 9},)),
            (svc.merge_entity, ({"PartitionKey": "p", "RowKey": "r", "v": 9},)),
            (svc.delete_entity, ("p", "r")),
        ):
            self.assertHttpError(412, "UpdateConditionNotSatisfied", fn, t, *args, if_match=created)
        merged = svc.merge_entity(t, {"PartitionKey": "p", "RowKey": "r", "w": "m"}, if_match=replaced)
        self.assertEqual(svc.get_entity(t, "p", "r").w, "m")
        self.assertHttpError(412, "UpdateConditionNotSatisfied", svc.delete_entity, t, "p", "r",
                             if_match=replaced)
        svc.delete_entity(t, "p", "r", if_match=merged)
        self.assertEqual(list(svc.query_entities(t)), [])
        self.assertHttpError(404, "ResourceNotFound", svc.update_entity, t,
                             {"PartitionKey": "p", "RowKey": "r"}, if_match=merged)

    def test_etag_rebuilt_from_timestamp(self):
        svc, t = self.svc, self.name
        received = {}
        for i in range(6):
            received[f"r{i}"] = svc.insert_entity(t, {"PartitionKey": "p", "RowKey": f"r{i}", "v": i})

        # Every entity read carries the ETag the write answered, rebuilt from
        # its Timestamp: point reads, queries, all metadata levels.
        for rk, etag in received.items():
            e = svc.get_entity(t, "p", rk)
            self.assertEqual(e.etag, etag, rk)
            ts = e.Timestamp
            self.assertIsInstance(ts, datetime.datetime)
        for accept in ("application/json;odata=minimalmetadata", "application/json;odata=fullmetadata"):
            got = {e.RowKey: e.etag for e in svc.query_entities(t, accept=accept)}
            self.assertEqual(got, received, accept)

        # Conditional replace, merge and delete with those ETags.
        e = svc.get_entity(t, "p", "r0")
        e.v = 100
        new = svc.update_entity(t, e, if_match=e.etag)
        self.assertNotEqual(new, e.etag)
        self.assertHttpError(412, "UpdateConditionNotSatisfied", svc.update_entity, t, e, if_match=e.etag)
        e2 = svc.get_entity(t, "p", "r0")
        self.assertEqual((e2.etag, e2.v), (new, 100))

        (e,) = list(svc.query_entities(t, filter="RowKey eq 'r1'"))
        svc.merge_entity(t, {"PartitionKey": "p", "RowKey": "r1", "w": 1}, if_match=e.etag)
        self.assertHttpError(412, "UpdateConditionNotSatisfied", svc.merge_entity, t,
                             {"PartitionKey": "p", "RowKey": "r1", "w": 2}, if_match=e.etag)
        self.assertEqual(svc.get_entity(t, "p", "r1").w, 1)

        e = svc.get_entity(t, "p", "r2")
        svc.update_entity(t, {"PartitionKey": "p", "RowKey": "r3", "v": 33})
        stale = svc.get_entity(t, "p", "r3").etag
        svc.merge_entity(t, {"PartitionKey": "p", "RowKey": "r3", "v": 34})
        self.assertHttpError(412, "UpdateConditionNotSatisfied", svc.delete_entity, t, "p", "r3",
                             if_match=stale)
        svc.delete_entity(t, "p", "r2", if_match=e.etag)
        self.assertEqual([e.RowKey for e in svc.query_entities(t)], ["r0", "r1", "r3", "r4", "r5"])

        # In a transaction too.
        if target.deviates("batch-relative-uri"):
            return
        e4, e5 = svc.get_entity(t, "p", "r4"), svc.get_entity(t, "p", "r5")
        b = TableBatch()
        b.update_entity({"PartitionKey": "p", "RowKey": "r4", "v": 44}, if_match=e4.etag)
        b.delete_entity("p", "r5", if_match=e5.etag)
        results = svc.commit_batch(t, b)
        self.assertEqual(svc.get_entity(t, "p", "r4").etag, results[0])
        self.assertEqual([e.RowKey for e in svc.query_entities(t)], ["r0", "r1", "r3", "r4"])
        b = TableBatch()
        b.merge_entity({"PartitionKey": "p", "RowKey": "r4", "v": 45}, if_match=e4.etag)
        with self.assertRaises(AzureBatchOperationError) as cm:
            svc.commit_batch(t, b)
        self.assertEqual((cm.exception.status_code, cm.exception.code), (412, "UpdateConditionNotSatisfied"))


class Transactions(LegacyCase):
    def clients(self):
        """The clients whose transactions a case sends: one built from a
        connection string (sub-requests addressed as /table) and one in
        emulator mode (/account/table)."""
        if target.deviates("batch-relative-uri"):
            self.skipTest(DEVIATION_BATCH)
        return [("connection string", self.svc), ("emulator mode", emulator_service())]

    def test_success(self):
        for label, svc in self.clients():
            with self.subTest(label):
                pk = label.replace(" ", "")
                etag = svc.insert_entity(self.name, {"PartitionKey": pk, "RowKey": "upd", "v": 1})
                svc.insert_entity(self.name, {"PartitionKey": pk, "RowKey": "mrg", "v": 1})
                svc.insert_entity(self.name, {"PartitionKey": pk, "RowKey": "del", "v": 1})
                with svc.batch(self.name) as b:
                    b.insert_entity({"PartitionKey": pk, "RowKey": "new", "v": 0})
                    b.update_entity({"PartitionKey": pk, "RowKey": "upd", "v": 2}, if_match=etag)
                    b.merge_entity({"PartitionKey": pk, "RowKey": "mrg", "w": 2})
                    b.insert_or_replace_entity({"PartitionKey": pk, "RowKey": "ior", "v": 3})
                    b.insert_or_merge_entity({"PartitionKey": pk, "RowKey": "iom", "v": 4})
                    b.delete_entity(pk, "del")
                rows = {e.RowKey: e for e in svc.query_entities(self.name, filter=f"PartitionKey eq '{pk}'")}
                self.assertEqual(sorted(rows), ["iom", "ior", "mrg", "new", "upd"])
                self.assertEqual((rows["upd"].v, rows["mrg"].v, rows["mrg"].w), (2, 1, 2))
                self.assertEqual((rows["ior"].v, rows["iom"].v), (3, 4))

    def test_failing_operation_index(self):
        for label, svc in self.clients():
            pk = label.replace(" ", "")
            etag = svc.insert_entity(self.name, {"PartitionKey": pk, "RowKey": "a", "v": 1})
            svc.merge_entity(self.name, {"PartitionKey": pk, "RowKey": "a", "v": 2})
            svc.insert_entity(self.name, {"PartitionKey": pk, "RowKey": "b", "v": 1})
            flt = f"PartitionKey eq '{pk}'"
            before = [(e.RowKey, e.etag, e.v) for e in svc.query_entities(self.name, filter=flt)]

            def batch(*ops):
                b = TableBatch()
                for op, args, kwargs in ops:
                    getattr(b, op)(*args, **kwargs)
                return b

            cases = [
                (batch(("insert_entity", ({"PartitionKey": pk, "RowKey": "x1"},), {}),
                       ("insert_or_merge_entity", ({"PartitionKey": pk, "RowKey": "x2"},), {}),
                       ("insert_entity", ({"PartitionKey": pk, "RowKey": "b"},), {})),
                 2, 409, "EntityAlreadyExists"),
                (batch(("insert_entity", ({"PartitionKey": pk, "RowKey": "x1"},), {}),
                       ("merge_entity", ({"PartitionKey": pk, "RowKey": "a", "v": 3},), {"if_match": etag})),
                 1, 412, "UpdateConditionNotSatisfied"),
                (batch(("delete_entity", (pk, "a"), {"if_match": etag}),
                       ("insert_entity", ({"PartitionKey": pk, "RowKey": "x1"},), {})),
                 0, 412, "UpdateConditionNotSatisfied"),
                (batch(("insert_or_replace_entity", ({"PartitionKey": pk, "RowKey": "x1"},), {}),
                       ("update_entity", ({"PartitionKey": pk, "RowKey": "missing"},), {})),
                 1, 404, "ResourceNotFound"),
            ]
            for b, index, status, code in cases:
                with self.subTest(label, index=index, code=code):
                    with self.assertRaises(AzureBatchOperationError) as cm:
                        svc.commit_batch(self.name, b)
                    err = cm.exception
                    self.assertEqual(err.status_code, status, str(err))
                    self.assertEqual(err.code, code, str(err))
                    # The failing index is the message's "N:" prefix.
                    self.assertEqual(str(err).split(":", 1)[0], str(index), str(err))
                    after = [(e.RowKey, e.etag, e.v) for e in svc.query_entities(self.name, filter=flt)]
                    self.assertEqual(after, before)


def seed_rows(svc, t, partitions, per_partition):
    """Rows i = 0..per_partition-1 (Int64, as this SDK writes every int) in
    partitions p0, p1, ...: one transaction each, or single inserts where
    the transactions would fail for Azurite's own reasons."""
    for p in range(partitions):
        rows = [{"PartitionKey": f"p{p}", "RowKey": f"r{i:03d}", "i": i, "odd": i % 2 == 1}
                for i in range(per_partition)]
        if target.deviates("batch-relative-uri"):
            for row in rows:
                svc.insert_entity(t, row)
            continue
        b = TableBatch()
        for row in rows:
            b.insert_entity(row)
        svc.commit_batch(t, b)


class Queries(LegacyCase):
    def test_filters(self):
        svc, t = self.svc, self.name
        seed_rows(svc, t, 2, 10)
        self.assertEqual(len(list(svc.query_entities(t, filter="PartitionKey eq 'p1' and i ge 7L"))), 3)
        got = [(e.PartitionKey, e.RowKey) for e in svc.query_entities(t, filter="odd eq true and i lt 4L")]
        self.assertEqual(got, [("p0", "r001"), ("p0", "r003"), ("p1", "r001"), ("p1", "r003")])
        self.assertEqual(list(svc.query_entities(t, filter="missing eq 1")), [])
        # Azure compares an Int32 literal with an Int64 property as Int64
        # (Azurite, and a proxy that passes the filter on to it, only for
        # the order comparisons).
        got = [e.RowKey for e in svc.query_entities(t, filter="PartitionKey eq 'p0' and i ge 8")]
        self.assertEqual(got, ["r008", "r009"])
        if not target.deviates("filter-type-coercion"):
            got = [e.RowKey for e in svc.query_entities(t, filter="PartitionKey eq 'p0' and i eq 8")]
            self.assertEqual(got, ["r008"])
        sel = list(svc.query_entities(t, filter="RowKey eq 'r005'", select="i"))
        self.assertEqual([{k: v for k, v in e.items() if k != "etag"} for e in sel], [{"i": 5}] * 2)
        with self.assertRaises(AzureHttpError) as cm:
            list(svc.query_entities(t, filter="i eq eq 1"))
        self.assertEqual(cm.exception.status_code, 400)

    def test_continuation(self):
        svc, t = self.svc, self.name
        seed_rows(svc, t, 3, 9)
        # The continuation loop: pages of 5 through next_marker.
        keys, marker, sizes = [], None, []
        while True:
            page = svc.query_entities(t, num_results=5, marker=marker)
            rows = [(e.PartitionKey, e.RowKey) for e in page]
            sizes.append(len(rows))
            keys += rows
            marker = page.next_marker
            if not marker:
                break
        self.assertEqual(sizes, [5, 5, 5, 5, 5, 2])
        self.assertEqual(keys, sorted(set(keys)))
        self.assertEqual(len(keys), 27)
        # A filtered scan resumed from a saved marker.
        first = svc.query_entities(t, filter="odd eq false", num_results=4)
        self.assertEqual([e.RowKey for e in first], ["r000", "r002", "r004", "r006"])
        self.assertTrue(first.next_marker)
        rest = [(e.PartitionKey, e.RowKey)
                for e in svc.query_entities(t, filter="odd eq false", marker=first.next_marker)]
        self.assertEqual(len(rest), 11)
        self.assertEqual((rest[0], rest[-1]), (("p0", "r008"), ("p2", "r008")))


class Types(LegacyCase):
    def test_typed_properties(self):
        svc, t = self.svc, self.name
        # The SDK writes DateTime values to the second.
        dt = datetime.datetime(2021, 2, 3, 4, 5, 6, tzinfo=UTC)
        g = uuid.UUID("3f2504e0-4f89-41d3-9a0c-0305e82c3301")
        blob = bytes(range(256))
        svc.insert_entity(t, {
            "PartitionKey": "p", "RowKey": "r",
            "i64": EntityProperty(EdmType.INT64, 2**53 + 1),
            "i64min": EntityProperty(EdmType.INT64, -(2**63)),
            "i32": EntityProperty(EdmType.INT32, 2**31 - 1),
            "dbl": 1.5,
            "dblwhole": 2.0,
            "dt": dt,
            "guid": EntityProperty(EdmType.GUID, g),
            "bin": EntityProperty(EdmType.BINARY, blob),
            "empty": EntityProperty(EdmType.BINARY, b""),
            "nan": float("nan"),
            "inf": float("inf"),
            "ninf": float("-inf"),
            "yes": True,
            "no": False,
            "s": "ünïcødé",
            "estr": "",
        })
        e = svc.get_entity(t, "p", "r")
        self.assertEqual((type(e.i64), e.i64), (int, 2**53 + 1))
        self.assertEqual(e.i64min, -(2**63))
        self.assertEqual((e.i32.type, e.i32.value), (EdmType.INT32, 2**31 - 1))
        self.assertEqual((type(e.dbl), e.dbl), (float, 1.5))
        # This SDK sends every float without a type annotation, 2.0 too.
        if target.deviates("untyped-whole-double"):
            self.assertEqual(getattr(e.dblwhole, "value", e.dblwhole), 2)
        else:
            self.assertEqual((type(e.dblwhole), e.dblwhole), (float, 2.0))
        self.assertEqual(e.dt, dt)
        self.assertEqual((e.guid.type, str(e.guid.value)), (EdmType.GUID, str(g)))
        self.assertEqual((e.bin.type, e.bin.value), (EdmType.BINARY, blob))
        self.assertIs(e.yes, True)
        self.assertIs(e.no, False)
        self.assertEqual(e.s, "ünïcødé")
        self.assertEqual((e.empty.type, e.empty.value), (EdmType.BINARY, b""))
        self.assertTrue(math.isnan(e.nan))
        self.assertEqual((e.inf, e.ninf, e.estr), (math.inf, -math.inf, ""))
        # Full metadata names every non-default type; each filter matches
        # the row only on the stored type.
        for hit, miss in (
            (f"i64 eq {2**53 + 1}L", f"i64 eq {2**53}L"),
            ("i64min lt -9223372036854775807L", "i64min gt -9223372036854775807L"),
            ("i32 eq 2147483647", "i32 lt 2147483647"),
            ("dbl eq 1.5", "dbl ne 1.5"),
            ("dt eq datetime'2021-02-03T04:05:06Z'", "dt gt datetime'2021-02-03T04:05:06Z'"),
            (f"guid eq guid'{g}'", f"guid eq guid'{uuid.UUID(int=0)}'"),
            ("bin eq X'" + blob.hex() + "'", "bin eq X'" + blob[:-1].hex() + "'"),
            ("yes eq true and no eq false", "yes ne true"),
        ):
            self.assertEqual(len(list(svc.query_entities(t, filter=hit))), 1, hit)
            self.assertEqual(list(svc.query_entities(t, filter=miss)), [], miss)


class Sas(LegacyCase):
    def sas_service(self, permission, table=None):
        token = self.svc.generate_table_shared_access_signature(
            table or self.name, permission=permission,
            expiry=datetime.datetime.now(UTC) + datetime.timedelta(hours=1),
        )
        return client(f"TableEndpoint={target.ENDPOINT};SharedAccessSignature={token}")

    def test_read_only_sas(self):
        self.svc.insert_entity(self.name, {"PartitionKey": "p", "RowKey": "r", "v": 1})
        ro = self.sas_service(TablePermissions.QUERY)
        e = ro.get_entity(self.name, "p", "r")
        self.assertEqual(e.v, 1)
        self.assertEqual([x.RowKey for x in ro.query_entities(self.name, filter="v eq 1L")], ["r"])
        self.assertHttpError(403, "AuthorizationPermissionMismatch", ro.insert_entity, self.name,
                             {"PartitionKey": "p", "RowKey": "s"})
        self.assertHttpError(403, "AuthorizationPermissionMismatch", ro.update_entity, self.name,
                             {"PartitionKey": "p", "RowKey": "r"}, if_match=e.etag)
        self.assertHttpError(403, "AuthorizationPermissionMismatch", ro.delete_entity, self.name, "p", "r")

    def test_full_sas(self):
        rw = self.sas_service(TablePermissions(query=True, add=True, update=True, delete=True))
        rw.insert_entity(self.name, {"PartitionKey": "p", "RowKey": "r", "v": 1})
        e = rw.get_entity(self.name, "p", "r")
        rw.merge_entity(self.name, {"PartitionKey": "p", "RowKey": "r", "v": 2}, if_match=e.etag)
        rw.insert_or_replace_entity(self.name, {"PartitionKey": "p", "RowKey": "s"})
        rw.delete_entity(self.name, "p", "s")
        self.assertEqual([(x.RowKey, x.v) for x in self.svc.query_entities(self.name)], [("r", 2)])
        if not (target.deviates("batch-relative-uri") or target.deviates("sas-transaction")):
            b = TableBatch()
            b.insert_entity({"PartitionKey": "p", "RowKey": "t1"})
            b.merge_entity({"PartitionKey": "p", "RowKey": "r", "v": 3}, if_match=e.etag)
            with self.assertRaises(AzureBatchOperationError) as cm:
                rw.commit_batch(self.name, b)
            self.assertEqual((cm.exception.status_code, str(cm.exception)[:2]), (412, "1:"))
            b = TableBatch()
            b.insert_entity({"PartitionKey": "p", "RowKey": "t1"})
            b.merge_entity({"PartitionKey": "p", "RowKey": "r", "v": 3})
            rw.commit_batch(self.name, b)
            self.assertEqual([(x.RowKey, x.get("v")) for x in self.svc.query_entities(self.name)],
                             [("r", 3), ("t1", None)])
        other = target.table_name("pyo")
        self.svc.create_table(other)
        self.addCleanup(self.svc.delete_table, other)
        with self.assertRaises(AzureHttpError) as cm:
            list(rw.query_entities(other))
        self.assertEqual(cm.exception.status_code, 403)

    def test_wrong_key(self):
        bad = client(target.CONNECTION_STRING.replace(
            f"AccountKey={target.KEY}", f"AccountKey=AAAA{target.KEY[4:]}"))
        with self.assertRaises(AzureHttpError) as cm:
            bad.get_entity(self.name, "p", "r")
        self.assertEqual(cm.exception.status_code, 403)
        self.assertIn(cm.exception.error_code, target.auth_codes())


class CarryOver(unittest.TestCase):
    """Rows written by the runs against earlier phases of the same proxy
    (and, from phase 3 on, copied to the new table by the migrator) read
    back with their types, and take conditional writes with the ETag this
    SDK rebuilds from their Timestamp."""

    def conditional(self, write, e, reread):
        """write(e.etag). In prefer_new, a row read from the old table is
        copied to the new one by the first write to it, under a new ETag,
        and that write fails with 412 (test/e2e/README.md, "Observations
        that are not failures"): then the row must read back unchanged
        under another ETag, and the write succeed with that one."""
        try:
            return write(e.etag)
        except AzureHttpError as err:
            if err.status_code != 412 or target.TARGET != "proxy-2":
                raise
        fresh = reread()
        self.assertNotEqual(fresh.etag, e.etag)
        self.assertEqual({k: v for k, v in fresh.items() if k not in ("etag", "Timestamp", "g")},
                         {k: v for k, v in e.items() if k not in ("etag", "Timestamp", "g")})
        return write(fresh.etag)

    def test_rows_of_earlier_phases(self):
        if not target.CARRY:
            self.skipTest("no carry-over table (MTABLE_E2E_PY_CARRY)")
        svc, t = service(), target.CARRY + "c"
        svc.create_table(t)
        rows = {e.RowKey: e for e in svc.query_entities(t)}
        expect = list(target.CARRY_FROM)
        if expect:
            expect.append("del-" + expect[-1])
        self.assertEqual(sorted(rows), sorted(expect))
        for i, who in enumerate(target.CARRY_FROM):
            e = rows[who]
            # Merged once by every later run.
            self.assertEqual(e.n, len(target.CARRY_FROM) - 1 - i, who)
            self.assertEqual((e.big, e.when, str(e.g.value)), (2**40 + i, CARRY_WHEN, str(CARRY_GUID)), who)
            self.assertEqual(svc.get_entity(t, "carry", who).etag, e.etag, who)
            new = self.conditional(
                lambda etag: svc.merge_entity(t, {"PartitionKey": "carry", "RowKey": who, "n": e.n + 1},
                                              if_match=etag),
                e, lambda: svc.get_entity(t, "carry", who))
            with self.assertRaises(AzureHttpError) as cm:
                svc.update_entity(t, {"PartitionKey": "carry", "RowKey": who}, if_match=e.etag)
            self.assertEqual(cm.exception.status_code, 412)
            self.assertEqual(svc.get_entity(t, "carry", who).etag, new, who)
        if target.CARRY_FROM:
            gone = "del-" + target.CARRY_FROM[-1]
            self.conditional(lambda etag: svc.delete_entity(t, "carry", gone, if_match=etag),
                             rows[gone], lambda: svc.get_entity(t, "carry", gone))
        svc.insert_entity(t, {
            "PartitionKey": "carry", "RowKey": target.TARGET, "n": 0,
            "big": EntityProperty(EdmType.INT64, 2**40 + len(target.CARRY_FROM)),
            "when": CARRY_WHEN, "g": EntityProperty(EdmType.GUID, CARRY_GUID),
        })
        svc.insert_entity(t, {"PartitionKey": "carry", "RowKey": "del-" + target.TARGET})
        self.assertEqual(sorted(e.RowKey for e in svc.query_entities(t)),
                         sorted(target.CARRY_FROM + [target.TARGET, "del-" + target.TARGET]))


CARRY_WHEN = datetime.datetime(2020, 5, 6, 7, 8, 9, tzinfo=UTC)
CARRY_GUID = uuid.UUID("0f0e0d0c-0b0a-0908-0706-050403020100")


if __name__ == "__main__":
    unittest.main()
