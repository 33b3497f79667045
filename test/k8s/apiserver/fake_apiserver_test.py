#!/usr/bin/python3
"""The test server's own protocol behaviours, the ones Picket's Kubernetes API client relies on:
errors as metav1.Status, resourceVersion order, consistent pages, watch framing and event order,
and every /_test/ fault (compaction, expired continue, 429 Retry-After, 500, dropped watches,
events split at odd byte boundaries, token rotation). Checked with raw HTTP, so a wrong byte on
the wire fails here before it misleads a client test."""

import http.client, json, os, sys, threading, unittest

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
from apiserver_harness import FakeApiServer, RawWatch, wait_for

MERGE = {"Content-Type": "application/merge-patch+json"}


class FakeApiServerTest(unittest.TestCase):
    def setUp(self):
        self.api = FakeApiServer("--bookmark-interval", "600")
        self.addCleanup(self.api.stop)

    def watch(self, path):
        watch = RawWatch(self.api, path)
        self.addCleanup(watch.close)
        return watch

    def assertStatus(self, response, code, reason):
        status, _, body = response
        self.assertEqual(status, code, body)
        self.assertEqual((body["kind"], body["status"], body["reason"], body["code"]),
                         ("Status", "Failure", reason, code), body)
        return body

    def test_token_auth_and_rotation(self):
        self.assertStatus(self.api.request("GET", "/api/v1/pods", token=""), 401, "Unauthorized")
        self.assertStatus(self.api.request("GET", "/api", token="wrong"), 401, "Unauthorized")
        old = self.api.token()
        self.assertEqual(self.api.request("GET", "/api/v1/pods", token=old)[0], 200)
        self.api.control("rotate-token")
        self.assertStatus(self.api.request("GET", "/api/v1/pods", token=old), 401, "Unauthorized")
        new = self.api.token()
        self.assertNotEqual(new, old)
        self.assertEqual(self.api.request("GET", "/api/v1/pods", token=new)[0], 200)
        with open(self.api.path("kubeconfig")) as f:
            self.assertIn("token: " + new, f.read())
        self.assertEqual(self.api.control("stats")["unauthorized"], 3)

    def test_discovery(self):
        self.assertEqual(self.api.ok("GET", "/api")["versions"], ["v1"])
        groups = {g["name"] for g in self.api.ok("GET", "/apis")["groups"]}
        self.assertEqual(groups, {"networking.k8s.io", "discovery.k8s.io"})
        core = {r["name"]: r for r in self.api.ok("GET", "/api/v1")["resources"]}
        self.assertTrue(core["pods"]["namespaced"])
        self.assertFalse(core["namespaces"]["namespaced"])
        self.assertIn("pods/status", core)
        net = self.api.ok("GET", "/apis/networking.k8s.io/v1")["resources"]
        self.assertEqual(net[0]["kind"], "NetworkPolicy")
        self.assertEqual(self.api.ok("GET", "/version")["major"], "1")
        self.assertStatus(self.api.request("GET", "/apis/apps/v1/deployments"), 404, "NotFound")

    def test_crud_and_status_errors(self):
        ns = self.api.ok("GET", "/api/v1/namespaces/default")
        self.assertEqual(ns["metadata"]["labels"], {"kubernetes.io/metadata.name": "default"})
        pod = self.api.ok("POST", "/api/v1/namespaces/default/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "web-"},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
            "status": {"podIP": "10.0.0.9"}})
        name, rv = pod["metadata"]["name"], int(pod["metadata"]["resourceVersion"])
        self.assertRegex(name, r"^web-[a-z0-9]{5}$")
        self.assertEqual(pod["status"], {"phase": "Pending"})  # as the real Pod strategy
        for field in ("uid", "creationTimestamp"):
            self.assertIn(field, pod["metadata"])
        again = dict(pod, metadata={"name": name})
        body = self.assertStatus(self.api.request("POST", "/api/v1/namespaces/default/pods",
                                                  again), 409, "AlreadyExists")
        self.assertEqual(body["details"]["name"], name)
        self.assertStatus(self.api.request("POST", "/api/v1/namespaces/nope/pods", again),
                          404, "NotFound")
        bad = dict(pod, metadata={"name": "Bad_Name"})
        body = self.assertStatus(self.api.request("POST", "/api/v1/namespaces/default/pods",
                                                  bad), 422, "Invalid")
        self.assertEqual(body["details"]["causes"][0]["field"], "metadata.name")
        self.assertStatus(self.api.request("GET", "/api/v1/namespaces/default/pods/x"), 404,
                          "NotFound")
        path = f"/api/v1/namespaces/default/pods/{name}"
        patched = self.api.ok("PATCH", path, {"metadata": {"labels": {"app": "web"}}}, MERGE)
        self.assertEqual(patched["metadata"]["labels"], {"app": "web"})
        self.assertGreater(int(patched["metadata"]["resourceVersion"]), rv)
        self.assertEqual(patched["metadata"]["uid"], pod["metadata"]["uid"])
        self.assertStatus(self.api.request("PUT", path, pod), 409, "Conflict")  # stale version
        smp = self.api.ok("PATCH", path, {"metadata": {"labels": {"tier": "front"}}},
                          {"Content-Type": "application/strategic-merge-patch+json"})
        self.assertEqual(smp["metadata"]["labels"], {"app": "web", "tier": "front"})
        jp = self.api.ok("PATCH", path, [{"op": "remove", "path": "/metadata/labels/tier"}],
                         {"Content-Type": "application/json-patch+json"})
        self.assertEqual(jp["metadata"]["labels"], {"app": "web"})
        status = dict(jp, status={"podIPs": [{"ip": "10.0.0.9"}, {"ip": "fd00::9"}]})
        updated = self.api.ok("PUT", path + "/status", status)
        self.assertEqual(updated["status"]["podIPs"][1]["ip"], "fd00::9")
        put = self.api.ok("PUT", path, dict(updated, status={}))  # the main resource keeps it
        self.assertEqual(put["status"], updated["status"])
        deleted = self.api.ok("DELETE", path)
        self.assertEqual(deleted["metadata"]["name"], name)
        self.assertStatus(self.api.request("GET", path), 404, "NotFound")

    def test_service_gets_a_cluster_ip(self):
        svc = self.api.ok("POST", "/api/v1/namespaces/default/services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
            "spec": {"selector": {"app": "db"}, "ports": [{"port": 5432}]}})
        self.assertRegex(svc["spec"]["clusterIP"], r"^10\.96\.\d+\.\d+$")
        self.assertEqual(svc["spec"]["ports"][0], {"port": 5432, "protocol": "TCP",
                                                   "targetPort": 5432})

    def test_list_selectors_and_consistent_pages(self):
        for i in range(7):
            self.api.create_pod("default", f"p{i}", {"app": "a" if i % 2 else "b", "i": str(i)})
        sel = "/api/v1/pods?labelSelector=" + "app%20in%20(a),i!=3"
        self.assertEqual([p["metadata"]["name"] for p in self.api.ok("GET", sel)["items"]],
                         ["p1", "p5"])
        only = self.api.ok("GET", "/api/v1/namespaces/default/pods?fieldSelector="
                           "metadata.name%3Dp4")["items"]
        self.assertEqual([p["metadata"]["name"] for p in only], ["p4"])
        self.assertNotIn("kind", only[0])  # items of a list carry no kind, as kube-apiserver's
        self.assertStatus(self.api.request("GET", "/api/v1/pods?fieldSelector=spec.foo%3D1"),
                          400, "BadRequest")
        first = self.api.ok("GET", "/api/v1/pods?limit=3")
        self.assertEqual(first["metadata"]["remainingItemCount"], 4)
        self.api.create_pod("default", "p0a")  # after the snapshot: not in the next pages
        self.api.ok("DELETE", "/api/v1/namespaces/default/pods/p6")  # still in the snapshot
        names, page = [p["metadata"]["name"] for p in first["items"]], first
        while page["metadata"].get("continue"):
            page = self.api.ok("GET", "/api/v1/pods?limit=3&continue=" +
                               page["metadata"]["continue"])
            self.assertEqual(page["metadata"]["resourceVersion"],
                             first["metadata"]["resourceVersion"])
            names += [p["metadata"]["name"] for p in page["items"]]
        self.assertEqual(names, [f"p{i}" for i in range(7)])

    def test_expired_continue_is_410(self):
        for i in range(3):
            self.api.create_pod("default", f"p{i}")
        page = self.api.ok("GET", "/api/v1/pods?limit=1")
        self.api.control("compact")
        body = self.assertStatus(self.api.request(
            "GET", "/api/v1/pods?limit=1&continue=" + page["metadata"]["continue"]), 410,
            "Expired")
        self.assertIn("continue parameter is too old", body["message"])
        # As kube-apiserver: the Status offers a token for the rest, from the current state.
        self.api.create_pod("default", "p3")
        rest = self.api.ok("GET", "/api/v1/pods?continue=" + body["metadata"]["continue"])
        self.assertEqual([p["metadata"]["name"] for p in rest["items"]], ["p1", "p2", "p3"])

    def test_watch_events_in_order_with_selector_transitions(self):
        rv = self.api.ok("GET", "/api/v1/pods")["metadata"]["resourceVersion"]
        self.api.create_pod("default", "a", {"app": "web"})
        self.api.create_pod("default", "b", {"app": "db"})
        path = "/api/v1/namespaces/default/pods/"
        self.api.ok("PATCH", path + "b", {"metadata": {"labels": {"app": "web"}}}, MERGE)
        self.api.ok("PATCH", path + "a", {"metadata": {"labels": {"app": "old"}}}, MERGE)
        self.api.ok("DELETE", path + "b")
        watch = self.watch(f"/api/v1/pods?watch=1&resourceVersion={rv}&"
                                   "labelSelector=app%3Dweb")
        self.assertEqual((watch.status, watch.headers["transfer-encoding"]), (200, "chunked"))
        events = [watch.next_event() for _ in range(4)]
        self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in events],
                         [("ADDED", "a"), ("ADDED", "b"), ("DELETED", "a"), ("DELETED", "b")])
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
        self.assertEqual(rvs, sorted(rvs))
        self.assertEqual(events[0]["object"]["kind"], "Pod")
        self.assertEqual(len(watch.chunk_sizes), 4)  # one event per chunk, as kube-apiserver
        self.api.create_pod("default", "c", {"app": "web"})  # and live events after history
        self.assertEqual(watch.next_event()["object"]["metadata"]["name"], "c")
        watch.close()

    def test_watch_from_compacted_version_is_an_in_stream_410(self):
        rv = self.api.ok("GET", "/api/v1/pods")["metadata"]["resourceVersion"]
        self.api.create_pod("default", "a")
        self.api.control("compact")
        watch = self.watch(f"/api/v1/pods?watch=true&resourceVersion={rv}")
        self.assertEqual(watch.status, 200)
        event = watch.next_event()
        self.assertEqual((event["type"], event["object"]["code"], event["object"]["reason"]),
                         ("ERROR", 410, "Expired"))
        self.assertIsNone(watch.next_event())  # and the stream ends
        # A list after compaction gives a version a watch can start from.
        rv = self.api.ok("GET", "/api/v1/pods")["metadata"]["resourceVersion"]
        watch = self.watch(f"/api/v1/pods?watch=true&resourceVersion={rv}")
        self.api.create_pod("default", "b")
        self.assertEqual(watch.next_event()["type"], "ADDED")
        watch.close()

    def test_watch_from_a_future_version_is_an_in_stream_504(self):
        rv = int(self.api.ok("GET", "/api/v1/pods")["metadata"]["resourceVersion"])
        watch = self.watch(f"/api/v1/pods?watch=true&resourceVersion={rv + 100}")
        event = watch.next_event()
        self.assertEqual((event["type"], event["object"]["code"], event["object"]["reason"]),
                         ("ERROR", 504, "Timeout"))
        self.assertIsNone(watch.next_event())

    def test_open_watches_keep_their_history_through_compaction(self):
        rv = self.api.ok("GET", "/api/v1/pods")["metadata"]["resourceVersion"]
        watch = self.watch(f"/api/v1/pods?watch=true&resourceVersion={rv}")
        self.api.create_pod("default", "a")
        self.assertEqual(watch.next_event()["object"]["metadata"]["name"], "a")
        self.api.create_pod("default", "b")
        self.api.control("compact")
        self.api.create_pod("default", "c")
        names = [watch.next_event()["object"]["metadata"]["name"] for _ in range(2)]
        self.assertEqual(names, ["b", "c"])

    def test_concurrent_writers_and_watches_agree_on_one_order(self):
        rv = self.api.ok("GET", "/api/v1/pods")["metadata"]["resourceVersion"]
        watches = [self.watch(f"/api/v1/pods?watch=1&resourceVersion={rv}") for _ in range(8)]
        wait_for(lambda: self.api.control("stats")["open_watches"] == 8, "the watches")

        def writer(w):
            api = self.api.client()
            for i in range(25):
                api.create_pod("default", f"w{w}-{i}")
            api.close()
        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seen = [[(e["object"]["metadata"]["name"], int(e["object"]["metadata"][
            "resourceVersion"])) for e in (w.next_event() for _ in range(100))] for w in watches]
        self.assertTrue(all(s == seen[0] for s in seen))  # every watch: the same events, order
        rvs = [rv for _, rv in seen[0]]
        self.assertEqual(rvs, sorted(set(rvs)))
        self.assertEqual(len({name for name, _ in seen[0]}), 100)

    def test_bookmarks_and_timeout(self):
        rv = self.api.ok("GET", "/api/v1/pods")["metadata"]["resourceVersion"]
        watch = self.watch(f"/api/v1/pods?watch=1&resourceVersion={rv}&"
                                   "allowWatchBookmarks=true&timeoutSeconds=3")
        self.api.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "other"}})
        wait_for(lambda: self.api.control("stats")["open_watches"] == 1, "the watch")
        self.api.control("bookmark")
        event = watch.next_event()
        self.assertEqual(event["type"], "BOOKMARK")
        self.assertGreater(int(event["object"]["metadata"]["resourceVersion"]), int(rv))
        while event is not None:  # another bookmark 2 s before the deadline, then the end
            event = watch.next_event()
        self.assertTrue(watch.ended)

    def test_drop_watches_cuts_streams_without_the_last_chunk(self):
        watch = self.watch("/api/v1/pods?watch=1")
        wait_for(lambda: self.api.control("stats")["open_watches"] == 1, "the watch")
        self.api.control("drop-watches")
        with self.assertRaises((EOFError, ConnectionResetError)):
            watch.next_event()
        wait_for(lambda: self.api.control("stats")["open_watches"] == 0, "the drop")

    def test_split_events_at_odd_boundaries(self):
        self.api.control("split", bytes=7)
        rv = self.api.ok("GET", "/api/v1/pods")["metadata"]["resourceVersion"]
        self.api.create_pod("default", "a", {"app": "web"})
        self.api.create_pod("default", "b")
        watch = self.watch(f"/api/v1/pods?watch=1&resourceVersion={rv}")
        names = [watch.next_event()["object"]["metadata"]["name"] for _ in range(2)]
        self.assertEqual(names, ["a", "b"])
        self.assertGreater(len(watch.chunk_sizes), 20)
        self.assertLessEqual(max(watch.chunk_sizes), 7)
        watch.close()

    def test_fail_429_with_retry_after_then_500(self):
        self.api.control("fail", code=429, count=2, retry_after=3, path="/api/v1/pods")
        self.assertEqual(self.api.request("GET", "/api/v1/namespaces")[0], 200)  # other path
        for _ in range(2):
            status, headers, body = self.api.request("GET", "/api/v1/pods")
            self.assertStatus((status, headers, body), 429, "TooManyRequests")
            self.assertEqual(headers["Retry-After"], "3")
            self.assertEqual(body["details"]["retryAfterSeconds"], 3)
        self.assertEqual(self.api.request("GET", "/api/v1/pods")[0], 200)
        self.api.control("fail", code=500, count=1)
        self.assertStatus(self.api.request("GET", "/api/v1/pods?watch=1"), 500, "InternalError")
        stats = self.api.control("stats")
        self.assertEqual((stats["too_many_requests"], stats["requests"]["list"]["pods"]), (2, 3))
        log = [(e["method"], e["path"], e["code"]) for e in self.api.control("requests")]
        pods = ("GET", "/api/v1/pods")
        self.assertEqual(log[-5:], [("GET", "/api/v1/namespaces", 200), pods + (429,),
                                    pods + (429,), pods + (200,),
                                    ("GET", "/api/v1/pods?watch=1", 500)])
        since = self.api.control("requests")[-1]["seq"]
        self.assertEqual(self.api.control("requests", since=since), [])

    def test_table_for_kubectl(self):
        self.api.create_pod("default", "a")
        table = self.api.ok("GET", "/api/v1/namespaces/default/pods", headers={
            "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"})
        self.assertEqual(table["kind"], "Table")
        self.assertEqual(table["rows"][0]["cells"][:3], ["a", "0/1", "Pending"])


    def test_chunked_request_body(self):
        body = json.dumps({"metadata": {"name": "chunky"}}).encode()
        conn = http.client.HTTPSConnection("127.0.0.1", self.api.port, context=self.api.ssl)
        self.addCleanup(conn.close)
        conn.request("POST", "/api/v1/namespaces", body=iter([body[:5], body[5:]]),
                     headers={"Authorization": "Bearer " + self.api.token()},
                     encode_chunked=True)
        created = conn.getresponse()
        self.assertEqual((created.status, json.loads(created.read())["kind"]), (201, "Namespace"))
        conn.request("GET", "/api/v1/namespaces/chunky",  # the same connection still parses
                     headers={"Authorization": "Bearer " + self.api.token()})
        self.assertEqual(json.loads(conn.getresponse().read())["metadata"]["name"], "chunky")

    def token_for(self, ns, pod, audiences=("picket",), seconds=3600, uid=None, sa="default"):
        ref = {"kind": "Pod", "apiVersion": "v1", "name": pod}
        if uid:
            ref["uid"] = uid
        return self.api.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token", {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"audiences": list(audiences), "expirationSeconds": seconds,
                     "boundObjectRef": ref}})

    def review(self, token, audiences=("picket",)):
        status, _, body = self.api.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                                           {"apiVersion": "authentication.k8s.io/v1",
                                            "kind": "TokenReview",
                                            "spec": {"token": token,
                                                     "audiences": list(audiences)}})
        self.assertEqual(status, 201, body)
        self.assertEqual(body["kind"], "TokenReview")
        return body["status"]

    def test_bound_token_request_and_review(self):
        uid = self.api.create_pod("default", "web")["metadata"]["uid"]
        self.assertTrue(uid)
        status, _, req = self.token_for("default", "web", uid=uid)
        self.assertEqual(status, 201, req)
        self.assertEqual(req["kind"], "TokenRequest")
        self.assertRegex(req["status"]["expirationTimestamp"], r"^\d{4}-\d\d-\d\dT.*Z$")
        token = req["status"]["token"]
        self.assertEqual(len(token.split(".")), 3)  # a JWT
        got = self.review(token)
        self.assertIs(got["authenticated"], True)
        self.assertEqual(got["user"]["username"], "system:serviceaccount:default:default")
        self.assertEqual(got["user"]["extra"], {
            "authentication.kubernetes.io/pod-name": ["web"],
            "authentication.kubernetes.io/pod-uid": [uid]})
        self.assertIn("system:serviceaccounts:default", got["user"]["groups"])
        self.assertEqual(got["audiences"], ["picket"])
        # Another audience, a forged signature, garbage: unauthenticated, each with an error.
        for bad, audiences in ((token, ["other"]), (token[:-2] + "xx", ["picket"]),
                               ("not-a-jwt", ["picket"])):
            refused = self.review(bad, audiences)
            self.assertNotIn("authenticated", refused)
            self.assertEqual(refused["user"], {})
            self.assertRegex(refused["error"], r"^\[invalid bearer token, .+\]$")
        # Expired: after expirationSeconds on the token clock, not before.
        self.api.control("advance-token-clock", seconds=3599)
        self.assertIs(self.review(token)["authenticated"], True)
        self.api.control("advance-token-clock", seconds=1)
        self.assertIn("has expired", self.review(token)["error"])

    def test_token_of_a_deleted_or_recreated_pod_is_refused(self):
        self.api.create_pod("default", "web")
        token = self.token_for("default", "web")[2]["status"]["token"]
        self.assertIs(self.review(token)["authenticated"], True)
        self.api.ok("DELETE", "/api/v1/namespaces/default/pods/web")
        self.assertIn("invalidated", self.review(token)["error"])
        self.api.create_pod("default", "web")  # same name, another uid
        self.assertIn("invalidated", self.review(token)["error"])
        self.assertIs(self.review(self.token_for("default", "web")[2]["status"]["token"])[
            "authenticated"], True)

    def test_token_request_errors(self):
        uid = self.api.create_pod("default", "web")["metadata"]["uid"]
        self.assertStatus(self.token_for("default", "gone"), 404, "NotFound")
        self.assertStatus(self.token_for("nope", "web"), 404, "NotFound")
        other = ("1" if uid[0] == "0" else "0") + uid[1:]  # another uid, whatever uid's first digit
        self.assertStatus(self.token_for("default", "web", uid=other), 409, "Conflict")
        body = self.assertStatus(self.token_for("default", "web", seconds=599), 422, "Invalid")
        self.assertIn("spec.expirationSeconds", body["message"])
        body = self.assertStatus(self.token_for("default", "web", sa="builder"), 400,
                                 "BadRequest")
        self.assertIn("different serviceaccount", body["message"])
        # An unbound token: no pod extras.
        status, _, req = self.api.request(
            "POST", "/api/v1/namespaces/default/serviceaccounts/default/token",
            {"kind": "TokenRequest", "spec": {}})
        self.assertEqual(status, 201, req)
        got = self.review(req["status"]["token"], ["https://kubernetes.default.svc.cluster.local"])
        self.assertIs(got["authenticated"], True)
        self.assertNotIn("extra", got["user"])
        self.assertEqual(self.control_stats_create(), {"tokenreviews": 1,
                                                       "serviceaccounts/token": 6})
        self.api.control("fail", code=503, count=1, path="/apis/authentication.k8s.io/")
        self.assertStatus(self.api.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                                           {"spec": {"token": "x"}}), 503, "ServiceUnavailable")

    def control_stats_create(self):
        create = self.api.control("stats")["requests"]["create"]
        return {k: v for k, v in create.items() if k in ("tokenreviews", "serviceaccounts/token")}


class SeedTest(unittest.TestCase):
    def test_seed_objects_keep_their_status_and_get_namespaces(self):
        seed = os.path.join(os.environ.get("TEST_TMPDIR", "/tmp"), "seed.yaml")
        with open(seed, "w") as f:
            f.write("apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: shop}\n"
                    "spec: {containers: [{name: c, image: x}]}\n"
                    "status: {phase: Running, podIPs: [{ip: 10.0.0.1}]}\n---\n"
                    "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                    "metadata: {name: deny, namespace: shop}\nspec: {podSelector: {}}\n")
        api = FakeApiServer("--seed", seed, "--listen", "::1")
        self.addCleanup(api.stop)
        with open(api.path("kubeconfig")) as f:
            self.assertIn(f"server: https://[::1]:{api.port}", f.read())
        pod = api.ok("GET", "/api/v1/namespaces/shop/pods/a")
        self.assertEqual(pod["status"]["podIPs"], [{"ip": "10.0.0.1"}])
        self.assertEqual(api.ok("GET", "/api/v1/namespaces/shop")["status"]["phase"], "Active")
        self.assertEqual(len(api.ok("GET", "/apis/networking.k8s.io/v1/networkpolicies")[
            "items"]), 1)


if __name__ == "__main__":
    unittest.main()
