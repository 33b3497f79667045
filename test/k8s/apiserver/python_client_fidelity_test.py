#!/usr/bin/python3
"""Fidelity with the official Python client (Debian's python3-kubernetes): the test server must
serve it as kube-apiserver does — kubeconfig with a token, a token file or a client certificate;
typed objects; list with limit/continue; watch.Watch().stream from a resourceVersion with
bookmarks; compaction surfaced as ApiException(410) (list continue and watch); 429 with its
Retry-After header. What the client accepts here, a client written against the real server
accepts too (and the other way round for what it rejects)."""

import sys, threading, time, unittest

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
from apiserver_harness import FakeApiServer, wait_for


class PythonClientFidelityTest(unittest.TestCase):
    def setUp(self):
        self.api = FakeApiServer("--bookmark-interval", "600")
        self.addCleanup(self.api.stop)
        self.v1 = self.core(self.api.path("kubeconfig"))
        net_client = config.new_client_from_config(config_file=self.api.path("kubeconfig"))
        self.addCleanup(net_client.close)
        self.net = client.NetworkingV1Api(net_client)

    def core(self, kubeconfig):
        api_client = config.new_client_from_config(config_file=kubeconfig)
        self.addCleanup(api_client.close)
        return client.CoreV1Api(api_client)

    def pod(self, name, labels=None):
        return client.V1Pod(metadata=client.V1ObjectMeta(name=name, labels=labels or {}),
                            spec=client.V1PodSpec(containers=[
                                client.V1Container(name="c", image="busybox")]))

    def test_every_kubeconfig_form_authenticates(self):
        for name in ("kubeconfig", "kubeconfig-tokenfile", "kubeconfig-clientcert"):
            names = [n.metadata.name for n in self.core(self.api.path(name)).list_namespace().items]
            self.assertIn("default", names, name)
        self.api.control("rotate-token")
        with self.assertRaises(ApiException) as e:
            self.v1.list_namespace()  # the token it loaded is the old one
        self.assertEqual(e.exception.status, 401)
        self.core(self.api.path("kubeconfig")).list_namespace()

    def test_typed_crud(self):
        self.v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="shop")))
        created = self.v1.create_namespaced_pod("shop", self.pod("web", {"app": "web"}))
        self.assertTrue(created.metadata.uid)
        self.v1.patch_namespaced_pod("web", "shop", {"metadata": {"labels": {"tier": "a"}}})
        self.v1.patch_namespaced_pod_status("web", "shop", {"status": {"podIPs": [
            {"ip": "10.1.0.5"}, {"ip": "fd00::5"}], "hostIPs": [{"ip": "192.0.2.1"}]}})
        got = self.v1.read_namespaced_pod("web", "shop")
        self.assertEqual(got.metadata.labels, {"app": "web", "tier": "a"})
        self.assertEqual([p.ip for p in got.status.pod_i_ps], ["10.1.0.5", "fd00::5"])
        policy = self.net.create_namespaced_network_policy("shop", {
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "deny"}, "spec": {"podSelector": {}}})
        self.assertEqual(policy.spec.pod_selector.match_labels, None)
        with self.assertRaises(ApiException) as e:
            self.v1.create_namespaced_pod("shop", self.pod("web"))
        self.assertEqual((e.exception.status, e.exception.reason), (409, "Conflict"))
        self.v1.delete_namespaced_pod("web", "shop")
        with self.assertRaises(ApiException) as e:
            self.v1.read_namespaced_pod("web", "shop")
        self.assertEqual(e.exception.status, 404)

    def test_list_with_limit_and_continue(self):
        for i in range(5):
            self.v1.create_namespaced_pod("default", self.pod(f"p{i}"))
        names, token = [], None
        while True:
            page = self.v1.list_pod_for_all_namespaces(limit=2, _continue=token)
            names += [p.metadata.name for p in page.items]
            token = page.metadata._continue
            if not token:
                break
        self.assertEqual(names, [f"p{i}" for i in range(5)])
        first = self.v1.list_pod_for_all_namespaces(limit=2)
        self.assertEqual(first.metadata.remaining_item_count, 3)
        self.api.control("compact")
        with self.assertRaises(ApiException) as e:
            self.v1.list_pod_for_all_namespaces(limit=2, _continue=first.metadata._continue)
        self.assertEqual(e.exception.status, 410)

    def test_watch_stream_from_resource_version(self):
        rv = self.v1.list_namespaced_pod("default").metadata.resource_version
        self.v1.create_namespaced_pod("default", self.pod("a"))
        self.v1.patch_namespaced_pod("a", "default", {"metadata": {"labels": {"x": "1"}}})
        w = watch.Watch()
        seen = []
        live = threading.Thread(target=self.mutate_when_watched)
        live.start()
        for event in w.stream(self.v1.list_namespaced_pod, "default", resource_version=rv,
                              allow_watch_bookmarks=True, timeout_seconds=30):
            if event["type"] == "BOOKMARK":
                seen.append(("BOOKMARK", event["raw_object"]["metadata"]["resourceVersion"]))
                continue
            seen.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                w.stop()
        live.join()
        self.assertEqual([s for s in seen if s[0] != "BOOKMARK"],
                         [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")])
        bookmarks = [int(s[1]) for s in seen if s[0] == "BOOKMARK"]
        self.assertEqual(len(bookmarks), 1)
        self.assertGreaterEqual(bookmarks[0], int(rv) + 2)

    def mutate_when_watched(self):
        wait_for(lambda: self.api.control("stats")["open_watches"] == 1, "the watch")
        self.api.control("bookmark")
        self.v1.delete_namespaced_pod("a", "default")

    def test_watch_after_compaction_raises_410(self):
        rv = self.v1.list_namespaced_pod("default").metadata.resource_version
        self.v1.create_namespaced_pod("default", self.pod("a"))
        self.api.control("compact")
        with self.assertRaises(ApiException) as e:
            for _ in watch.Watch().stream(self.v1.list_namespaced_pod, "default",
                                          resource_version=rv):
                self.fail("an event from a compacted version")
        self.assertEqual(e.exception.status, 410)
        self.assertIn("Expired", e.exception.reason)
        # The client's documented recovery: list again, watch from the list's version.
        rv = self.v1.list_namespaced_pod("default").metadata.resource_version
        w = watch.Watch()
        threading.Thread(target=lambda: (
            wait_for(lambda: self.api.control("stats")["open_watches"] == 1, "the watch"),
            self.v1.create_namespaced_pod("default", self.pod("b")))).start()
        for event in w.stream(self.v1.list_namespaced_pod, "default", resource_version=rv,
                              timeout_seconds=30):
            self.assertEqual((event["type"], event["object"].metadata.name), ("ADDED", "b"))
            w.stop()

    def test_429_retry_after_is_honoured_by_the_client(self):
        # urllib3 under the client retries a 429 itself, after the Retry-After it was given.
        self.api.control("fail", code=429, count=1, retry_after=1, path="/api/v1/namespaces")
        start = time.monotonic()
        self.v1.list_namespace()
        self.assertGreaterEqual(time.monotonic() - start, 1.0)
        stats = self.api.control("stats")
        self.assertEqual((stats["too_many_requests"], stats["requests"]["list"]["namespaces"]),
                         (1, 2))
    def test_token_request_and_token_review(self):
        """What kubelet and picket-control do: a pod-bound token, then its review."""
        uid = self.v1.create_namespaced_pod("default", self.pod("web")).metadata.uid
        request = self.v1.create_namespaced_service_account_token(
            "default", "default", client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(
                    audiences=["picket"], expiration_seconds=3600,
                    bound_object_ref=client.V1BoundObjectReference(
                        kind="Pod", api_version="v1", name="web", uid=uid))))
        token = request.status.token
        self.assertTrue(request.status.expiration_timestamp)  # parsed as a datetime
        auth_client = config.new_client_from_config(config_file=self.api.path("kubeconfig"))
        self.addCleanup(auth_client.close)
        auth = client.AuthenticationV1Api(auth_client)

        def review(audiences):
            return auth.create_token_review(client.V1TokenReview(
                spec=client.V1TokenReviewSpec(token=token, audiences=audiences))).status
        got = review(["picket"])
        self.assertTrue(got.authenticated)
        self.assertEqual(got.user.username, "system:serviceaccount:default:default")
        self.assertEqual(got.user.extra, {"authentication.kubernetes.io/pod-name": ["web"],
                                          "authentication.kubernetes.io/pod-uid": [uid]})
        self.assertEqual(got.audiences, ["picket"])
        other = review(["elsewhere"])
        self.assertFalse(other.authenticated)
        self.assertTrue(other.error)
        self.v1.delete_namespaced_pod("web", "default")
        self.assertFalse(review(["picket"]).authenticated)
        with self.assertRaises(ApiException) as e:  # no pod to bind to
            self.v1.create_namespaced_service_account_token("default", "default", {
                "spec": {"audiences": ["picket"], "boundObjectRef": {
                    "kind": "Pod", "apiVersion": "v1", "name": "web"}}})
        self.assertEqual(e.exception.status, 404)


if __name__ == "__main__":
    unittest.main(warnings="ignore")  # the client's connection pools warn at exit
