#!/usr/bin/python3
"""A Kubernetes API test server that speaks kube-apiserver's wire behaviour (stdlib only).

Owns: one process serving HTTPS on one port, for the kinds Picket reads (v1 namespaces, pods,
services; networking.k8s.io/v1 networkpolicies; discovery.k8s.io/v1 endpointslices), with the
behaviour real clients depend on (Kubernetes API concepts, "Efficient detection of changes",
"Retrieving large results sets in chunks", "Resource versions"):
  - bearer-token authentication, 401 metav1.Status otherwise (as a server run with
    --anonymous-auth=false); a client certificate signed by DIR/ca.crt is also accepted;
  - discovery (/version, /api, /apis, /api/v1, /apis/GROUP[/VERSION]);
  - CRUD: POST (generateName), GET, PUT, PATCH (merge, strategic merge, JSON patch), DELETE
    (returns the deleted object), /status subresources, metav1.Status errors;
  - one global resourceVersion (as etcd's revision), uid, creationTimestamp;
  - LIST with labelSelector, fieldSelector, limit/continue (a consistent snapshot per list;
    items carry no kind/apiVersion, as kube-apiserver's);
  - WATCH (?watch=1|true) from a resourceVersion ("0" or none: ADDED for every object first):
    one chunk per newline-delimited JSON event ADDED/MODIFIED/DELETED/BOOKMARK/ERROR,
    timeoutSeconds (default 1800), allowWatchBookmarks (a BOOKMARK every --bookmark-interval,
    default 5 s, and 2 s before the deadline, as the watch cache); a watch from a compacted
    version gets HTTP 200 and one ERROR event with a 410 Expired Status, from a version not yet
    reached one ERROR 504 Timeout after 3 s; an object leaving a watch's selector is DELETED;
  - service-account tokens: TokenRequest (POST /api/v1/namespaces/NS/serviceaccounts/SA/token,
    what kubelet asks for a projected serviceAccountToken volume: spec.audiences (default
    https://kubernetes.default.svc.cluster.local), spec.expirationSeconds (600 .. 2^32, default
    3600), spec.boundObjectRef {kind: Pod, name[, uid]}: the pod must exist, with that uid and
    spec.serviceAccountName SA) returns a JWT; TokenReview (POST
    /apis/authentication.k8s.io/v1/tokenreviews, spec.token, spec.audiences) authenticates it
    as kube-apiserver: status.authenticated, user.username system:serviceaccount:NS:SA, groups,
    user.extra authentication.kubernetes.io/pod-name and /pod-uid for a pod-bound token,
    status.audiences (the intersection); otherwise status.error and no authenticated, for a
    token of another audience, expired, not issued here, or whose pod was deleted (or deleted
    and re-created: its uid differs). Service accounts are implicit (every name exists in every
    namespace; a stable uid per name) and tokens are signed HS256 with a per-process key (the
    real one: RS256; a token is opaque to its clients). These tokens do not authenticate API
    requests here (only the server's own token and client certificates do);
  - kubectl's server-side printing: GET/LIST/WATCH with `Accept: ...;as=Table;...` get a
    meta.k8s.io Table (Name, Age; pods as kube-apiserver's printer; namespaces' Status).
Deliberate simplifications (documented for test writers):
  - Validation is of names only (metadata.name, generateName, the namespace existing); the
    rest of an object is stored as given, so tests can serve objects a client must reject.
  - Pods are deleted at once (kube-apiserver does that for pods no kubelet runs); a namespace's
    DELETE removes its objects first (DELETED events), then the namespace.
  - POST of a Pod resets its status to {"phase": "Pending"} as the real Pod strategy does; set
    status.podIPs/hostIPs with PUT or PATCH on .../pods/NAME/status, or give them in --seed
    (seed objects are stored as written, like an etcd restore; missing namespaces are created).
  - Services get spec.clusterIP(s) from 10.96.0.0/16 unless given (or "None").
  - Strategic merge patch = JSON merge patch, plus lists of objects merged by "name" and the
    $patch/$setElementOrder/$retainKeys directives accepted (replace/delete honoured).
  - /_test/compact advances the resourceVersion by one (an empty revision) and forgets every
    earlier one, so every continue token and watch position handed out before it is expired
    (the 410 for a continue token carries a token for the rest at the current state, as the
    etcd3 store's; items of a paged list never include remainingItemCount with selectors).
    Open watches keep streaming (their events are already theirs).
Test controls (same port and token): POST /_test/compact; /_test/drop-watches (every open watch
connection is shut down, no last chunk); /_test/fail?code=C&count=N[&retry_after=S][&path=PREFIX]
(the next N requests, TokenReviews included, whose path starts with PREFIX get C: 429 with Retry-After: S and
details.retryAfterSeconds, others a Status); /_test/rotate-token (DIR/token and the kubeconfigs
rewritten atomically; the old token gets 401); /_test/split?bytes=K (watch events in chunks of K
bytes, each write of framing and data at most K bytes; 0: off); /_test/bookmark (a BOOKMARK now
on every watch that allows them); /_test/advance-token-clock?seconds=S (the clock that
service-account tokens expire by moves S seconds on: an expired token without waiting);
GET /_test/stats: {"requests": {VERB: {RESOURCE: n}}, "open_watches", "watches" (ever opened),
"unauthorized" (401s), "too_many_requests" (429s), "failures_injected", "dropped_watches",
"resource_version", "compacted" (the oldest version still served), "split_bytes"};
GET /_test/requests[?since=SEQ]: [{"seq", "method", "path" (with its query), "code"}], the last
10000 API requests (not /_test/), to assert what a client asked for (e.g. a resumed watch's
resourceVersion).
The object model (kinds, selectors, patches, the store) is apiserver_store.py beside this file.
Start: fake_apiserver.py --dir DIR [--listen 127.0.0.1] [--port 0] [--seed FILE]
[--bookmark-interval SECONDS]; writes DIR/{ca.crt,server.crt,server.key,client.crt,client.key,
token,kubeconfig,kubeconfig-tokenfile,kubeconfig-clientcert} and, when serving, DIR/ready (the
port and a newline, written atomically). Exits 0 on SIGTERM/SIGINT.
"""

import argparse, base64, bisect, copy, http.server, json, os, re, secrets, select
import signal, socket, ssl, subprocess, sys, threading, time, traceback, urllib.parse, uuid

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # beside it in runfiles, too
from apiserver_store import (BY_KIND, BY_NAME, MAX_BODY, RESOURCES, VERBS, OPENAPI_V2_PB, ApiError,
                             Store, api_version, expired, labels_match, fields_match, json_patch,
                             merge_patch, parse_bool, parse_field_selector, parse_label_selector,
                             table, token_request, token_review)


# --- HTTP ------------------------------------------------------------------------------------
INCONSISTENT_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this response "
    "to retrieve the remainder of the results. Continuing with the provided token results in an "
    "inconsistent list - objects that were created, modified, or deleted between the time the "
    "first chunk was returned and now may show up in the list.")


def continue_token(rv, start):  # opaque to clients; base64 of JSON as kube-apiserver's
    return base64.urlsafe_b64encode(json.dumps({"rv": rv, "start": list(start)}).encode()).decode()


def unknown_path():
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def method_not_allowed():
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the "
                    "requested resource", {})


def int_param(query, name, default):
    try:
        return int(query.get(name) or default)
    except ValueError:
        raise ApiError(400, "BadRequest", f"{name}: invalid value {query.get(name)!r}")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, addr, store, ssl_ctx, args):
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.store, self.ssl_ctx, self.args = store, ssl_ctx, args
        super().__init__(addr, Handler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs on the connection's own thread, never in the accept loop.
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            request.settimeout(30)
            tls = self.ssl_ctx.wrap_socket(request, server_side=True)
            tls.settimeout(None)
        except (OSError, ssl.SSLError):
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "picket-fake-apiserver"

    def send_response(self, code, message=None):
        if not getattr(self, "path", "/_test/").startswith("/_test/"):
            store = self.server.store
            with store.cond:
                store.seq += 1
                store.log.append({"seq": store.seq, "method": self.command, "path": self.path,
                                  "code": code})
        super().send_response(code, message)

    def log_message(self, fmt, *a):
        if self.server.args.verbose:
            sys.stderr.write("fake_apiserver: " + (fmt % a) + "\n")

    def do_GET(self):
        self.handle_api("GET")

    def do_POST(self):
        self.handle_api("POST")

    def do_PUT(self):
        self.handle_api("PUT")

    def do_PATCH(self):
        self.handle_api("PATCH")

    def do_DELETE(self):
        self.handle_api("DELETE")

    def send_json(self, code, body, headers=None):
        data = json.dumps(body, separators=(",", ":")).encode() + b"\n"
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        too_large = ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is "
                             f"{MAX_BODY}")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raw = b""
            while True:
                size = int(self.rfile.readline(100).split(b";")[0], 16)
                if len(raw) + size > MAX_BODY:
                    self.close_connection = True
                    raise too_large
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                raw += self.rfile.read(size)
                self.rfile.readline(3)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.close_connection = True
                raise too_large
            raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else {}
        except ValueError as e:
            raise ApiError(400, "BadRequest", f"the body of the request was in an unknown "
                           f"format: {e}")

    def authenticate(self, store):
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and secrets.compare_digest(
                auth[7:].strip().encode(), self.server.args.token.encode()):
            return True
        if not auth and self.connection.getpeercert():
            return True  # a client certificate signed by the CA
        store.stats["unauthorized"] += 1
        return False

    def handle_api(self, method):
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
        store = self.server.store
        try:
            with store.cond:
                if not self.authenticate(store):
                    raise ApiError(401, "Unauthorized", "Unauthorized")
            if parts[:1] == ["_test"]:
                return self.test_control(method, parts[1:], query)
            if self.serve_tokens(method, parts, url.path):
                return
            route = self.route(parts, query)
            if route:
                res, ns, name, sub, watch = route
                verb = {"GET": "watch" if watch else "get" if name else "list", "POST": "create",
                        "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]
            with store.cond:
                if route:
                    by_verb = store.stats["requests"].setdefault(verb, {})
                    by_verb[res[2]] = by_verb.get(res[2], 0) + 1
                self.inject_failure(store, url.path)
            if url.path in ("/healthz", "/readyz", "/livez"):
                return self.send_plain(200, "ok")
            if route is None:
                return self.discovery(method, url.path)
            self.serve_resource(method, verb, res, ns, name, sub, query)
        except ApiError as e:
            self.send_json(e.code, e.status(), e.headers)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:  # a bug here: a 500 Status as kube-apiserver's panic recovery
            traceback.print_exc()
            self.send_json(500, ApiError(500, "InternalError", f"Internal error occurred: {e!r}"
                                         ).status())

    def serve_tokens(self, method, parts, path):
        """TokenRequest and TokenReview; False for every other path."""
        is_review = parts == ["apis", "authentication.k8s.io", "v1", "tokenreviews"]
        is_request = len(parts) == 7 and parts[:3] == ["api", "v1", "namespaces"] and \
            parts[4] == "serviceaccounts" and parts[6] == "token"
        if not (is_review or is_request):
            return False
        store = self.server.store
        resource = "tokenreviews" if is_review else "serviceaccounts/token"
        body = self.read_body()  # first: an injected failure leaves the connection usable
        with store.cond:
            by_verb = store.stats["requests"].setdefault("create", {})
            by_verb[resource] = by_verb.get(resource, 0) + 1
            self.inject_failure(store, path)
        if method != "POST":
            raise method_not_allowed()
        with store.cond:
            now = time.time() + store.token_clock_offset
            if is_review:
                out = token_review(store, body, now)
            else:
                out = token_request(store, parts[3], parts[5], body, now)
        self.send_json(201, out)
        return True

    def send_plain(self, code, text):
        self.send_bytes(code, "text/plain; charset=utf-8", text.encode())

    def send_bytes(self, code, ctype, data):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def inject_failure(self, store, path):
        fail = store.fail
        if not fail or fail["count"] <= 0 or not path.startswith(fail["path"]):
            return
        fail["count"] -= 1
        store.stats["failures_injected"] += 1
        code = fail["code"]
        if code == 429:
            store.stats["too_many_requests"] += 1
            raise ApiError(429, "TooManyRequests", "Too many requests, please try again later.",
                           {"retryAfterSeconds": fail["retry_after"]},
                           {"Retry-After": str(fail["retry_after"])})
        reason = {500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
                  403: "Forbidden", 401: "Unauthorized"}.get(code, "Unknown")
        message = "Internal error occurred: injected by /_test/fail" if code == 500 else \
            f"injected by /_test/fail ({code})"
        raise ApiError(code, reason, message,
                       {"causes": [{"message": "injected by /_test/fail"}]} if code == 500 else
                       None)

    def route(self, parts, query):
        """(resource, namespace, name, subresource, watch) or None for non-resource paths."""
        if parts[:2] == ["api", "v1"]:
            group, rest = "", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, rest = parts[1], parts[3:]
            parts = parts[:3]
        else:
            return None
        version = parts[2] if group else "v1"
        watch = parse_bool(query.get("watch"))
        if rest[:1] == ["watch"]:
            watch, rest = True, rest[1:]
        if not rest:
            return None
        ns = ""
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            ns, rest = rest[1], rest[2:]
        res = BY_NAME.get((group, version, rest[0]))
        if res is None:
            raise unknown_path()
        if res[2] == "namespaces" and ns:
            raise unknown_path()
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if len(rest) > 3 or (sub and not (sub == "status" and res[6])):
            raise unknown_path()
        return res, ns, name, sub, watch

    def discovery(self, method, path):
        if method != "GET":
            raise method_not_allowed()
        groups = {}
        for r in RESOURCES:
            groups.setdefault(r[0], []).append(r)
        gv = lambda g: {"groupVersion": g + "/v1", "version": "v1"}
        group_doc = lambda g: {"name": g, "versions": [gv(g)], "preferredVersion": gv(g)}
        if path == "/version":
            return self.send_json(200, {
                "major": "1", "minor": "28", "gitVersion": "v1.28.0-picket-test",
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.20", "compiler": "gc", "platform": "linux/amd64"})
        if path == "/openapi/v2":  # kubectl's client-side validation; no schemas: skipped
            return self.send_bytes(200, "application/octet-stream", OPENAPI_V2_PB)
        if path == "/api":
            host = "%s:%d" % self.server.server_address[:2]
            return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                        "serverAddressByClientCIDRs": [
                                            {"clientCIDR": "0.0.0.0/0", "serverAddress": host}]})
        if path == "/apis":
            return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                group_doc(g) for g in groups if g]})
        m = re.fullmatch(r"/apis/([^/]+)", path)
        if m and m.group(1) in groups and m.group(1):
            return self.send_json(200, dict(group_doc(m.group(1)), kind="APIGroup",
                                            apiVersion="v1"))
        m = re.fullmatch(r"/api/v1|/apis/([^/]+)/v1", path)
        g = m and (m.group(1) or "")
        if m and g in groups:
            resources = []
            for r in groups[g]:
                resources.append({"name": r[2], "singularName": "", "namespaced": r[4],
                                  "kind": r[3], "verbs": VERBS, "shortNames": r[5]} |
                                 ({"categories": ["all"]} if r[3] in ("Pod", "Service") else {}))
                if r[6]:
                    resources.append({"name": r[2] + "/status", "singularName": "",
                                      "namespaced": r[4], "kind": r[3],
                                      "verbs": ["get", "patch", "update"]})
            return self.send_json(200, {"kind": "APIResourceList", "apiVersion": "v1",
                                        "groupVersion": api_version((g, "v1")),
                                        "resources": resources})
        raise unknown_path()

    def serve_resource(self, method, verb, res, ns, name, sub, query):
        store = self.server.store
        if res[4] and not ns and verb not in ("list", "watch"):
            raise unknown_path()
        if verb == "watch":
            return self.watch(res, ns, name, query)
        if verb == "list":
            return self.send_list(res, ns, query)
        if verb == "create" and (name or sub):
            raise method_not_allowed()
        if verb in ("update", "patch", "delete") and not name:
            raise method_not_allowed()
        body = self.read_body() if method in ("POST", "PUT", "PATCH") else None
        if method == "DELETE":
            self.read_body()  # DeleteOptions: deletion is immediate whatever they say
        with store.cond:
            if verb == "get":
                obj, code = store.get(res, ns, name), 200
            elif verb == "create":
                self.check_body(res, ns, body)
                obj, code = store.create(res, ns, copy.deepcopy(body)), 201
            elif verb == "update":
                self.check_body(res, ns, body)
                obj, code = store.update(res, ns, name, body, sub), 200
            elif verb == "patch":
                obj, code = store.update(res, ns, name, self.patched(store.get(res, ns, name),
                                                                     body), sub), 200
            else:
                obj, code = store.delete(res, ns, name), 200
        if self.wants_table() and verb == "get":
            return self.send_json(200, table(res, [obj], {"resourceVersion": obj["metadata"][
                "resourceVersion"]}))
        self.send_json(code, obj)

    def check_body(self, res, ns, body):
        if not isinstance(body, dict) or body.get("kind", res[3]) != res[3]:
            raise ApiError(400, "BadRequest", f"the kind of the object "
                           f"({(body or {}).get('kind')}) does not match {res[3]}")
        body_ns = (body.get("metadata") or {}).get("namespace")
        if res[4] and body_ns and body_ns != ns:
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not "
                           "match the namespace sent on the request")

    def patched(self, old, patch):
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip()
        if ctype == "application/json-patch+json":
            return json_patch(old, patch)
        if ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            if not isinstance(patch, dict):
                raise ApiError(400, "BadRequest", "the patch is not a JSON object")
            return merge_patch(old, patch, ctype.startswith("application/strategic"))
        raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown "
                       "format - accepted media types include: application/json-patch+json, "
                       "application/merge-patch+json, application/strategic-merge-patch+json")

    def selectors(self, res, query):
        return (parse_label_selector(query.get("labelSelector")),
                parse_field_selector(query.get("fieldSelector"), res))

    def matches(self, sel, res, ns, obj):
        meta = obj["metadata"]
        return (not ns or meta.get("namespace") == ns) and \
            labels_match(sel[0], meta.get("labels") or {}) and fields_match(sel[1], obj)

    def send_list(self, res, ns, query):
        sel, store = self.selectors(res, query), self.server.store
        limit = int_param(query, "limit", 0)
        with store.cond:
            if query.get("continue"):
                try:
                    token = json.loads(base64.urlsafe_b64decode(query["continue"]))
                    rv, start = int(token["rv"]), tuple(token["start"])
                except (ValueError, KeyError, TypeError):
                    raise ApiError(400, "BadRequest", "continue key is not valid")
                if rv == -1:  # the token a 410 offers: the rest, from the current state
                    rv, state = store.rv, dict(store.objects[res[2]])
                elif rv < store.compacted:
                    # As the etcd3 store: 410, with a token to go on inconsistently.
                    e = expired(INCONSISTENT_CONTINUE)
                    e.list_meta = {"continue": continue_token(-1, start)}
                    raise e
                else:
                    state = store.state_at(res[2], rv)
            else:
                rv, start, state = store.rv, None, dict(store.objects[res[2]])
        keys = sorted(k for k in state if start is None or k > start)
        items, more = [], 0
        for i, key in enumerate(keys):
            if self.matches(sel, res, ns, state[key]):
                if limit and len(items) == limit:
                    more = sum(1 for k in keys[i:] if self.matches(sel, res, ns, state[k]))
                    break
                items.append(state[key])
        meta = {"resourceVersion": str(rv)}
        if more:
            last = items[-1]["metadata"]
            meta["continue"] = continue_token(rv, (last.get("namespace", ""), last["name"]))
            if not query.get("labelSelector") and not query.get("fieldSelector"):
                meta["remainingItemCount"] = more  # only without selectors, as the real one
        if self.wants_table():
            return self.send_json(200, table(res, items, meta))
        self.send_json(200, {"kind": res[3] + "List", "apiVersion": api_version(res),
                             "metadata": meta, "items": [
                                 {k: v for k, v in o.items() if k not in ("kind", "apiVersion")}
                                 for o in items]})

    def wants_table(self):
        accept = self.headers.get("Accept", "")
        return "as=Table" in accept.split(",")[0].replace(" ", "")

    # --- watch -------------------------------------------------------------------------------
    def write_chunk(self, data, split):
        pieces = [data[i:i + split] for i in range(0, len(data), split)] if split else [data]
        for piece in pieces:
            framed = b"%x\r\n%s\r\n" % (len(piece), piece)
            for i in range(0, len(framed), split or len(framed)):
                self.wfile.write(framed[i:i + (split or len(framed))])
                self.wfile.flush()

    def watch(self, res, ns, name, query):
        store, args = self.server.store, self.server.args
        sel = self.selectors(res, query)
        if name:
            sel[1].append((["metadata", "name"], True, name))
        timeout = int_param(query, "timeoutSeconds", 1800)
        bookmarks = parse_bool(query.get("allowWatchBookmarks"))
        rv_param = query.get("resourceVersion", "")
        try:
            since = int(rv_param) if rv_param else 0
        except ValueError:
            raise ApiError(400, "BadRequest", f'invalid resource version "{rv_param}"')
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        deadline = time.monotonic() + timeout
        # As the watch cache: every interval, and once 2 s before the watch's deadline.
        bookmark_at = lambda now: min(now + args.bookmark_interval, deadline - 2) \
            if now < deadline - 2 else deadline + 1
        next_bookmark = bookmark_at(time.monotonic())
        pending, as_table = [], self.wants_table()
        with store.cond:
            store.stats["open_watches"] += 1
            store.stats["watches"] += 1
            drop_gen, bookmark_gen = store.drop_generation, store.bookmark_generation
            # Too new (e.g. from before a restore): the watch cache waits 3 s, then a 504.
            store.cond.wait_for(lambda: store.rv >= since, timeout=3)
            if since and since < store.compacted:
                pending.append(("ERROR", expired(f"too old resource version: {since} "
                                                 f"({store.compacted - 1})").status()))
                pos = None
            elif since > store.rv:
                pending.append(("ERROR", ApiError(
                    504, "Timeout", f"Too large resource version: {since}, current: {store.rv}",
                    {"causes": [{"reason": "ResourceVersionTooLarge",
                                 "message": "Too large resource version"}],
                     "retryAfterSeconds": 1}).status()))
                pos = None
            elif not since:  # "0" or unset: synthetic ADDED events for the current state
                pos = store.rv
                for key in sorted(store.objects[res[2]]):
                    obj = store.objects[res[2]][key]
                    if self.matches(sel, res, ns, obj):
                        pending.append(("ADDED", obj))
            else:
                pos = store.watch_positions[self] = since
        try:
            while True:
                split = store.split_bytes
                for kind, obj in pending:
                    if as_table and kind in ("ADDED", "MODIFIED", "DELETED"):
                        obj = table(res, [obj], {"resourceVersion": obj["metadata"][
                            "resourceVersion"]})
                    self.write_chunk(json.dumps({"type": kind, "object": obj},
                                                separators=(",", ":")).encode() + b"\n", split)
                pending = []
                if pos is None:
                    break
                with store.cond:
                    while True:
                        if store.drop_generation != drop_gen or store.stopping:
                            store.stats["dropped_watches"] += 1
                            self.close_connection = True
                            self.connection.shutdown(socket.SHUT_RDWR)
                            return
                        start = bisect.bisect_right(store.history, pos, key=lambda e: e[0])
                        for erv, r, key, kind, obj, prev in store.history[start:]:
                            if r != res[2]:
                                continue
                            now_in = kind != "DELETED" and self.matches(sel, res, ns, obj)
                            was_in = prev is not None and self.matches(sel, res, ns, prev)
                            if now_in or was_in:
                                kind = ("MODIFIED" if was_in else "ADDED") if now_in else \
                                    "DELETED"
                                pending.append((kind, obj))
                        pos = store.watch_positions[self] = store.rv
                        now = time.monotonic()
                        if bookmarks and (now >= next_bookmark or
                                          store.bookmark_generation != bookmark_gen):
                            bookmark_gen = store.bookmark_generation
                            next_bookmark = bookmark_at(now)
                            pending.append(("BOOKMARK", {
                                "kind": res[3], "apiVersion": api_version(res),
                                "metadata": {"resourceVersion": str(pos)}}))
                        if pending or now >= deadline:
                            break
                        store.cond.wait(min(deadline, next_bookmark if bookmarks else deadline,
                                            now + 0.5) - now)
                        if self.peer_closed():
                            self.close_connection = True
                            return
                if not pending and time.monotonic() >= deadline:
                    break
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
        finally:
            with store.cond:
                store.stats["open_watches"] -= 1
                store.watch_positions.pop(self, None)

    def peer_closed(self):
        """True when the client closed its side of a watch (it sends nothing while watching)."""
        if not select.select([self.connection], [], [], 0)[0]:
            return False
        try:
            self.connection.setblocking(False)
            return self.connection.recv(1) == b""
        except (ssl.SSLWantReadError, BlockingIOError):
            return False
        except OSError:
            return True
        finally:
            self.connection.setblocking(True)

    # --- /_test/ -----------------------------------------------------------------------------
    def test_control(self, method, parts, query):
        store, action = self.server.store, "/".join(parts)
        if method == "GET" and action == "requests":
            since = int(query.get("since", 0))
            with store.cond:
                log = [entry for entry in store.log if entry["seq"] > since]
            return self.send_json(200, log)
        if method == "GET" and action == "stats":
            with store.cond:
                stats = copy.deepcopy(store.stats)
                stats.update(resource_version=store.rv, compacted=store.compacted,
                             split_bytes=store.split_bytes)
            return self.send_json(200, stats)
        if method != "POST":
            raise ApiError(405, "MethodNotAllowed", "use POST for /_test/ controls")
        self.read_body()
        with store.cond:
            if action == "compact":
                store.compact()
            elif action == "drop-watches":
                store.drop_generation += 1
                store.cond.notify_all()
            elif action == "bookmark":
                store.bookmark_generation += 1
                store.cond.notify_all()
            elif action == "fail":
                try:
                    store.fail = {"code": int(query["code"]), "count": int(query.get("count", 1)),
                                  "retry_after": int(query.get("retry_after", 1)),
                                  "path": query.get("path", "/")}
                except (KeyError, ValueError):
                    raise ApiError(400, "BadRequest", "fail needs code=C [count=N] "
                                   "[retry_after=S] [path=PREFIX]")
            elif action == "advance-token-clock":
                try:
                    store.token_clock_offset += int(query["seconds"])
                except (KeyError, ValueError):
                    raise ApiError(400, "BadRequest", "advance-token-clock needs seconds=S")
            elif action == "split":
                store.split_bytes = max(0, int(query.get("bytes", 0)))
            elif action == "rotate-token":
                self.server.args.token = secrets.token_urlsafe(24)
                write_credentials(self.server.args, self.server.server_address[1])
            else:
                raise ApiError(404, "NotFound", f"no test control {action!r}", {})
            rv = store.rv
        self.send_json(200, {"ok": action, "resourceVersion": str(rv)})


# --- certificates, credentials, seed, main ----------------------------------------------------
def openssl(*argv):
    subprocess.run(["openssl", *argv], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def make_certs(d, listen):
    p = lambda n: os.path.join(d, n)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", p("ca.key"), "-out", p("ca.crt"), "-days", "3650",
            "-subj", "/CN=picket-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    sans = ["IP:127.0.0.1", "IP:::1", "DNS:localhost"]
    if listen not in ("127.0.0.1", "::1", "0.0.0.0", "::"):
        sans.append(("IP:" if re.fullmatch(r"[0-9.:a-fA-F]+", listen) else "DNS:") + listen)
    for name, cn, ext in (("server", "kube-apiserver", "subjectAltName=" + ",".join(sans) +
                           "\nextendedKeyUsage=serverAuth\n"),
                          ("client", "picket-test-client", "extendedKeyUsage=clientAuth\n")):
        with open(p(name + ".ext"), "w") as f:
            f.write("basicConstraints=CA:FALSE\n" + ext)
        openssl("req", *ec, "-keyout", p(name + ".key"), "-out", p(name + ".csr"), "-subj",
                "/CN=" + cn)
        openssl("x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.crt"), "-CAkey",
                p("ca.key"), "-set_serial", str(secrets.randbits(63)), "-days", "3650",
                "-out", p(name + ".crt"), "-extfile", p(name + ".ext"))
        for extra in (".csr", ".ext"):
            os.unlink(p(name + extra))


def write_atomically(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def write_credentials(args, port):
    d = args.dir
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(args.listen, args.listen)
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    with open(os.path.join(d, "ca.crt"), "rb") as f:
        ca = base64.b64encode(f.read()).decode()
    write_atomically(os.path.join(d, "token"), args.token)

    def kubeconfig(user):
        return (f"apiVersion: v1\nkind: Config\nclusters:\n- name: picket-test\n  cluster:\n"
                f"    server: {server}\n    certificate-authority-data: {ca}\n"
                f"users:\n- name: picket-test\n  user:\n{user}contexts:\n- name: picket-test\n"
                f"  context:\n    cluster: picket-test\n    user: picket-test\n"
                f"    namespace: default\ncurrent-context: picket-test\n")
    write_atomically(os.path.join(d, "kubeconfig"), kubeconfig(f"    token: {args.token}\n"))
    write_atomically(os.path.join(d, "kubeconfig-tokenfile"),
                     kubeconfig(f"    tokenFile: {os.path.join(d, 'token')}\n"))
    write_atomically(os.path.join(d, "kubeconfig-clientcert"), kubeconfig(
        f"    client-certificate: {os.path.join(d, 'client.crt')}\n"
        f"    client-key: {os.path.join(d, 'client.key')}\n"))


def load_seed(path):
    with open(path) as f:
        text = f.read()
    try:
        docs = [json.loads(text)]
    except ValueError:
        import yaml  # Debian's python3-yaml; the seed may be plain JSON without it
        docs = [d for d in yaml.safe_load_all(text) if d]
    objs = []
    for d in docs:
        objs.extend(d.get("items") or [] if d.get("kind", "").endswith("List") else [d])
    return objs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--seed")
    ap.add_argument("--bookmark-interval", type=float, default=5.0)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    make_certs(args.dir, args.listen)
    args.token = secrets.token_urlsafe(24)
    store = Store()
    with store.cond:
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            store.create(BY_KIND["Namespace"], "", {"metadata": {"name": ns}}, seed=True)
        for obj in load_seed(args.seed) if args.seed else []:
            res = BY_KIND.get(obj.get("kind"))
            if res is None:
                sys.exit(f"fake_apiserver: --seed: unsupported kind {obj.get('kind')!r}")
            ns = (obj.get("metadata") or {}).get("namespace") or "default" if res[4] else ""
            try:
                store.create(res, ns, obj, seed=True)
            except ApiError as e:
                sys.exit(f"fake_apiserver: --seed: {e}")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(args.dir, "server.crt"), os.path.join(args.dir, "server.key"))
    ctx.load_verify_locations(os.path.join(args.dir, "ca.crt"))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    server = Server((args.listen, args.port), store, ssl_ctx=ctx, args=args)
    port = server.server_address[1]
    write_credentials(args, port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    write_atomically(os.path.join(args.dir, "ready"), f"{port}\n")
    while not stop.wait(3600):
        pass
    # A watch writer may hold the store's lock while blocked on a client that stopped reading:
    # never wait for it long. Handler threads are daemons; the process ends with the main one.
    store.stopping = True
    if store.cond.acquire(timeout=1.0):
        store.cond.notify_all()
        store.cond.release()
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
