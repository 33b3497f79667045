"""The object model of the Kubernetes API test server: kinds, metav1.Status errors, selectors,
patches, and the store (objects, history, one global resourceVersion, compaction).

Owns: the semantics fake_apiserver.py serves over HTTP, without any I/O. Thread-safety: every
Store field is guarded by Store.cond (a Condition on an RLock); callers hold it around every
call. Sources of each behaviour: Kubernetes API concepts ("Resource versions", "Efficient
detection of changes", "Retrieving large results sets in chunks"), RFC 7386 (merge patch),
RFC 6902 (JSON patch), the Pod, Service and Namespace strategies of kube-apiserver, and its
service-account token issuance and review (TokenRequest, TokenReview: "Managing Service
Accounts", "Bound service account tokens", authentication.k8s.io/v1).
"""

import base64, bisect, collections, copy, datetime, hashlib, hmac, json, random, re, secrets
import threading, time, uuid

MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's request body limit (413 beyond it)
# (group, version, resource, kind, namespaced, short names, has a status subresource)
RESOURCES = [
    ("", "v1", "namespaces", "Namespace", False, ["ns"], True),
    ("", "v1", "pods", "Pod", True, ["po"], True),
    ("", "v1", "services", "Service", True, ["svc"], True),
    ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ["netpol"], False),
    ("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True, [], False),
]
BY_NAME = {(r[0], r[1], r[2]): r for r in RESOURCES}
BY_KIND = {r[3]: r for r in RESOURCES}
FIELDS = {"pods": {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "status.phase",
                   "spec.serviceAccountName", "status.podIP", "status.nominatedNodeName"},
          "namespaces": {"status.phase"}}
# An OpenAPI v2 document with no definitions, in the protobuf kubectl asks for (gnostic
# openapi_v2.Document: swagger = 1, info = 2 {title = 1, version = 2}); kubectl's validation
# skips kinds the document does not describe.
OPENAPI_V2_PB = b"\x0a\x032.0\x12\x18\x0a\x0bpicket-test\x12\x09v1.28.0-p"
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


def api_version(res):
    return res[1] if not res[0] else res[0] + "/" + res[1]


def qualified(res):  # "pods", "networkpolicies.networking.k8s.io": as in the real messages
    return res[2] if not res[0] else res[2] + "." + res[0]


def parse_bool(text):  # Go's strconv.ParseBool, as the apiserver's query parameters
    return text in ("1", "t", "T", "true", "TRUE", "True")


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    """A metav1.Status failure; raised anywhere in a request, written by the handler."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code, self.reason, self.details, self.headers = code, reason, details, headers or {}
        self.list_meta = {}

    def status(self):
        s = {"kind": "Status", "apiVersion": "v1", "metadata": self.list_meta, "status": "Failure",
             "message": str(self), "reason": self.reason, "code": self.code}
        if self.details is not None:
            s["details"] = self.details
        return s


def not_found(res, name):
    return ApiError(404, "NotFound", f'{qualified(res)} "{name}" not found',
                    {"name": name, "group": res[0], "kind": res[2]})


def invalid(res, name, field, value, detail):
    message = f'Invalid value: "{value}": {detail}'
    return ApiError(422, "Invalid", f'{res[3]} "{name}" is invalid: {field}: {message}',
                    {"name": name, "group": res[0], "kind": res[3],
                     "causes": [{"reason": "FieldValueInvalid", "message": message,
                                 "field": field}]})


def expired(message):
    return ApiError(410, "Expired", message)


# --- selectors (labels: =, ==, !=, in, notin, exists, !exists; fields: =, ==, !=) -------------
def split_outside_parens(text):
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "(" and 1 or ch == ")" and -1 or 0
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [p for p in parts + [cur] if p.strip()]


LABEL_REQ = re.compile(r"\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(==|=|!=)\s*([A-Za-z0-9_.-]*)|"
                       r"\s+(in|notin)\s*\(([^)]*)\))?\s*")


def parse_label_selector(text):
    reqs = []
    for part in split_outside_parens(text or ""):
        m = LABEL_REQ.fullmatch(part)
        if not m or (m.group(1) and (m.group(3) or m.group(5))):
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {part.strip()!r}")
        bang, key, op, value, setop, values = m.groups()
        if setop:
            reqs.append((key, setop, {v.strip() for v in values.split(",") if v.strip()}))
        elif op:
            reqs.append((key, "!=" if op == "!=" else "=", value))
        else:
            reqs.append((key, "!" if bang else "exists", None))
    return reqs


def labels_match(reqs, labels):
    for key, op, value in reqs:
        have = labels.get(key)
        ok = {"=": have == value, "!=": have != value, "exists": have is not None,
              "!": have is None, "in": have in value, "notin": have not in value}[op]
        if not ok:
            return False
    return True


def parse_field_selector(text, res):
    reqs = []
    for part in split_outside_parens(text or ""):
        m = re.fullmatch(r"\s*([A-Za-z.]+)\s*(==|=|!=)\s*(.*?)\s*", part)
        if not m:
            raise ApiError(400, "BadRequest", f"invalid selector: {part.strip()!r}")
        field = m.group(1)
        if field not in {"metadata.name", "metadata.namespace"} | FIELDS.get(res[2], set()):
            raise ApiError(400, "BadRequest", f'field label not supported: {field}')
        reqs.append((field.split("."), m.group(2) != "!=", m.group(3)))
    return reqs


def fields_match(reqs, obj):
    for path, equal, value in reqs:
        cur = obj
        for p in path:
            cur = cur.get(p) if isinstance(cur, dict) else None
        if ((cur if cur is not None else "") == value) != equal:
            return False
    return True


# --- patches -------------------------------------------------------------------------------
def merge_patch(target, patch, strategic=False):
    """RFC 7386; with strategic=True also lists of objects merged by "name" and directives."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if strategic and patch.get("$patch") == "replace":
        return {k: v for k, v in patch.items() if k != "$patch"}
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if strategic and key.startswith("$"):
            continue  # $setElementOrder/..., $retainKeys, $deleteFromPrimitiveList/...: ordering
        if value is None or (strategic and isinstance(value, dict) and
                             value.get("$patch") == "delete"):
            out.pop(key, None)
        elif strategic and isinstance(value, list) and isinstance(out.get(key), list) and all(
                isinstance(v, dict) and "name" in v for v in value + out[key]):
            merged = {v["name"]: v for v in out[key]}
            for v in value:
                if v.get("$patch") == "delete":
                    merged.pop(v["name"], None)
                else:
                    merged[v["name"]] = merge_patch(merged.get(v["name"]), v, True)
            out[key] = list(merged.values())
        else:
            out[key] = merge_patch(out.get(key), value, strategic)
    return out


def json_patch(doc, ops):
    """RFC 6902: add, remove, replace, test."""
    doc = copy.deepcopy(doc)
    for op in ops if isinstance(ops, list) else []:
        path = [p.replace("~1", "/").replace("~0", "~") for p in op.get("path", "").split("/")[1:]]
        parent = doc
        try:
            for p in path[:-1]:
                parent = parent[int(p)] if isinstance(parent, list) else parent[p]
            last = path[-1]
            if isinstance(parent, list):
                last = len(parent) if last == "-" else int(last)
            kind = op.get("op")
            if kind == "test":
                if parent[last] != op.get("value"):
                    raise ApiError(422, "Invalid", f"testing value /{'/'.join(path)} failed")
            elif kind == "remove" or kind == "replace":
                parent[last]  # must exist
                if kind == "remove":
                    del parent[last]
                else:
                    parent[last] = op["value"]
            elif kind == "add":
                parent.insert(last, op["value"]) if isinstance(parent, list) else \
                    parent.__setitem__(last, op["value"])
            else:
                raise ApiError(422, "Invalid", f"unexpected kind of operation: {kind}")
        except (KeyError, IndexError, ValueError, TypeError):
            raise ApiError(422, "Invalid", f"the JSON patch path /{'/'.join(path)} is invalid")
    return doc


# --- the store -----------------------------------------------------------------------------
class Store:
    """Objects, history and the condition variable every watch waits on. Objects in the store
    are never mutated; every write replaces them. All fields are guarded by `cond`."""

    def __init__(self):
        self.cond = threading.Condition()
        self.objects = {r[2]: {} for r in RESOURCES}  # resource -> {(ns, name): obj}
        self.history = []  # (rv, resource, key, type, obj, prev), ascending rv
        self.rv = 1
        self.compacted = 1  # every rv < compacted is gone
        self.next_cluster_ip = 1
        self.drop_generation = 0
        self.bookmark_generation = 0
        self.split_bytes = 0
        self.fail = None  # {"code", "count", "retry_after", "path"}
        self.stats = {"requests": {}, "open_watches": 0, "watches": 0, "unauthorized": 0,
                      "too_many_requests": 0, "failures_injected": 0, "dropped_watches": 0}
        self.watch_positions = {}  # an open watch -> the version it has sent up to
        self.log = collections.deque(maxlen=10000)  # (seq, method, path, code), not /_test/
        self.seq = 0
        self.stopping = False
        self.token_key = secrets.token_bytes(32)  # signs this server's service-account tokens
        self.token_clock_offset = 0  # seconds added to now for token expiry (/_test/)

    def _write(self, res, key, obj, event):
        """Stores obj (None: delete) under a new resourceVersion and wakes the watches."""
        self.rv += 1
        prev = self.objects[res[2]].get(key)
        if obj is None:
            del self.objects[res[2]][key]
            obj = copy.deepcopy(prev)
            obj["metadata"]["resourceVersion"] = str(self.rv)
        else:
            obj["metadata"]["resourceVersion"] = str(self.rv)
            obj = {"kind": res[3], "apiVersion": api_version(res), "metadata": obj["metadata"],
                   **obj}  # the order kube-apiserver writes
            self.objects[res[2]][key] = obj
        self.history.append((self.rv, res[2], key, event, obj, prev))
        self.cond.notify_all()
        return obj

    def create(self, res, ns, obj, seed=False):
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(
                random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
        name = meta.get("name", "")
        if not name:
            raise ApiError(422, "Invalid", f"{res[3]} \"\" is invalid: metadata.name: Required "
                           "value: name or generateName is required",
                           {"kind": res[3], "group": res[0], "causes": [
                               {"reason": "FieldValueRequired", "field": "metadata.name",
                                "message": "Required value: name or generateName is required"}]})
        pattern = {"namespaces": DNS1123_LABEL, "services": DNS1035_LABEL}.get(
            res[2], DNS1123_SUBDOMAIN)
        if not pattern.fullmatch(name) or len(name) > 253:
            raise invalid(res, name, "metadata.name", name, "a lowercase RFC 1123 name must "
                          "consist of lower case alphanumeric characters, '-' or '.'")
        if res[4]:
            meta["namespace"] = ns
            if ("", ns) not in self.objects["namespaces"]:
                if not seed:
                    raise not_found(BY_KIND["Namespace"], ns)
                self.create(BY_KIND["Namespace"], "", {"metadata": {"name": ns}}, seed=True)
        else:
            meta.pop("namespace", None)
        if (ns, name) in self.objects[res[2]]:
            raise ApiError(409, "AlreadyExists", f'{qualified(res)} "{name}" already exists',
                           {"name": name, "group": res[0], "kind": res[2]})
        obj["kind"], obj["apiVersion"] = res[3], api_version(res)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339())
        for k in ("resourceVersion", "deletionTimestamp", "managedFields"):
            meta.pop(k, None)
        self._default(res, obj, seed)
        return self._write(res, (ns, name), obj, "ADDED")

    def _default(self, res, obj, seed):
        """The defaulting and strategies of kube-apiserver that clients can observe."""
        if res[3] == "Namespace":
            obj["metadata"].setdefault("labels", {})[
                "kubernetes.io/metadata.name"] = obj["metadata"]["name"]
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
        elif res[3] == "Pod" and not seed:
            obj["status"] = {"phase": "Pending"}
        elif res[3] == "Service":
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("sessionAffinity", "None")
            if spec["type"] != "ExternalName" and not spec.get("clusterIP"):
                n, self.next_cluster_ip = self.next_cluster_ip, self.next_cluster_ip + 1
                spec["clusterIP"] = f"10.96.{n // 254}.{n % 254 + 1}"
            if spec.get("clusterIP") and spec["clusterIP"] != "None":
                spec.setdefault("clusterIPs", [spec["clusterIP"]])
                spec.setdefault("ipFamilies", ["IPv6" if ":" in spec["clusterIP"] else "IPv4"])
            for port in spec.get("ports", []):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
            obj.setdefault("status", {"loadBalancer": {}})

    def get(self, res, ns, name):
        obj = self.objects[res[2]].get((ns, name))
        if obj is None:
            raise not_found(res, name)
        return obj

    def update(self, res, ns, name, obj, subresource):
        old = self.get(res, ns, name)
        meta = copy.deepcopy(obj.get("metadata") or {})
        if meta.get("name", name) != name:
            raise ApiError(400, "BadRequest", f"the name of the object ({meta.get('name')}) "
                           f"does not match the name on the URL ({name})")
        if meta.get("resourceVersion") and meta["resourceVersion"] != old["metadata"][
                "resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {qualified(res)} '
                           f'"{name}": the object has been modified; please apply your changes '
                           "to the latest version and try again",
                           {"name": name, "group": res[0], "kind": res[2]})
        if subresource == "status":
            new = dict(old, status=copy.deepcopy(obj.get("status")))
        else:
            new = copy.deepcopy(obj)
            if res[6]:
                new["status"] = old.get("status")  # the status is only written via /status
        if new.get("status") is None:
            new.pop("status", None)
        if subresource != "status":
            new["metadata"] = dict(meta, name=name, uid=old["metadata"]["uid"],
                                   creationTimestamp=old["metadata"]["creationTimestamp"])
            if res[4]:
                new["metadata"]["namespace"] = ns
            if res[3] == "Namespace":
                new["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        new["kind"], new["apiVersion"] = res[3], api_version(res)
        new["metadata"] = dict(new["metadata"])
        strip = lambda o: dict(o, metadata={k: v for k, v in o["metadata"].items()
                                            if k != "resourceVersion"})
        if strip(new) == strip(old):
            return old  # a no-op update writes nothing, as kube-apiserver's
        return self._write(res, (ns, name), new, "MODIFIED")

    def delete(self, res, ns, name):
        obj = self.get(res, ns, name)
        if res[3] == "Namespace":  # the namespace controller's work, at once
            for r in RESOURCES:
                for key in [k for k in self.objects[r[2]] if r[4] and k[0] == name]:
                    self._write(r, key, None, "DELETED")
        deleted = self._write(res, (ns, name), None, "DELETED")
        return obj if res[3] != "Namespace" else dict(deleted, status={"phase": "Terminating"})

    def state_at(self, resource, rv):
        """{key: obj} of one resource as it was at rv (rv >= compacted)."""
        state = dict(self.objects[resource])
        start = bisect.bisect_right(self.history, rv, key=lambda e: e[0])
        for _, r, key, _, _, prev in reversed(self.history[start:]):
            if r == resource:
                if prev is None:
                    state.pop(key, None)
                else:
                    state[key] = prev
        return state

    def compact(self):
        self.rv += 1  # an empty revision: every version handed out before now is expired
        self.compacted = self.rv
        # History no open watch still reads is gone; open watches keep what they need.
        floor = min([self.rv] + list(self.watch_positions.values()))
        del self.history[:bisect.bisect_right(self.history, floor, key=lambda e: e[0])]
        self.cond.notify_all()


# --- service-account tokens (TokenRequest, TokenReview) ---------------------------------------
# The audience of tokens requested without one, as kube-apiserver's --api-audiences default.
API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"
ISSUER = "https://kubernetes.default.svc.cluster.local"
MIN_TOKEN_SECONDS, DEFAULT_TOKEN_SECONDS = 600, 3600  # as the TokenRequest validation
MAX_TOKEN_SECONDS = 2 ** 32  # the API's own bound (a uint32 in the token's claims)
AUTH_GROUP = ("authentication.k8s.io", "v1")


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sa_uid(ns, sa):  # service accounts are implicit here: a stable uid per (namespace, name)
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"serviceaccount:{ns}/{sa}"))


def token_request(store, ns, sa, body, now):
    """POST .../serviceaccounts/SA/token: a JWT bound to a pod (as kubelet asks for projected
    volumes), or to nothing. Returns the TokenRequest with its status."""
    what = f'TokenRequest.authentication.k8s.io "{sa}" is invalid'
    if not isinstance(body, dict) or body.get("kind", "TokenRequest") != "TokenRequest":
        raise ApiError(400, "BadRequest", "the body must be a TokenRequest")
    spec = body.get("spec")
    if not isinstance(spec, dict):
        spec = {}
    if ("", ns) not in store.objects["namespaces"]:
        raise not_found(BY_KIND["Namespace"], ns)
    audiences = spec.get("audiences") or [API_AUDIENCE]
    seconds = spec.get("expirationSeconds", DEFAULT_TOKEN_SECONDS)
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise ApiError(422, "Invalid", f"{what}: spec.audiences: must be a list of strings")
    if not isinstance(seconds, int) or seconds < MIN_TOKEN_SECONDS:
        raise ApiError(422, "Invalid", f"{what}: spec.expirationSeconds: Invalid value: "
                       f"{seconds!r}: may not specify a duration less than 10 minutes")
    if seconds > MAX_TOKEN_SECONDS:
        raise ApiError(422, "Invalid", f"{what}: spec.expirationSeconds: Invalid value: "
                       f"{seconds}: may not specify a duration larger than 2^32 seconds")
    claims_k8s = {"namespace": ns, "serviceaccount": {"name": sa, "uid": sa_uid(ns, sa)}}
    ref = spec.get("boundObjectRef")
    if ref:
        if not isinstance(ref, dict) or ref.get("kind") != "Pod" or ref.get(
                "apiVersion", "v1") != "v1" or not ref.get("name"):
            raise ApiError(422, "Invalid", f"{what}: spec.boundObjectRef: Unsupported value: "
                           f"{ref!r}: this test server binds tokens to v1 Pods by name")
        pod = store.get(BY_KIND["Pod"], ns, ref["name"])
        uid = pod["metadata"]["uid"]
        if ref.get("uid") and ref["uid"] != uid:
            raise ApiError(409, "Conflict", f"the UID in the bound object reference "
                           f"({ref['uid']}) does not match the UID in record. The object might "
                           "have been deleted and then recreated")
        pod_sa = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        if pod_sa != sa:
            raise ApiError(400, "BadRequest", f'cannot bind token for serviceaccount "{sa}" to '
                           f'pod running with different serviceaccount name.')
        claims_k8s["pod"] = {"name": ref["name"], "uid": uid}
    issued = int(now)
    claims = {"aud": audiences, "exp": issued + seconds, "iat": issued, "nbf": issued,
              "iss": ISSUER, "sub": f"system:serviceaccount:{ns}:{sa}",
              "kubernetes.io": claims_k8s}
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = _b64(hmac.new(store.token_key, f"{head}.{payload}".encode(), hashlib.sha256).digest())
    expires = datetime.datetime.fromtimestamp(issued + seconds, datetime.timezone.utc)
    return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": sa, "namespace": ns, "creationTimestamp": None},
            "spec": {"audiences": audiences, "expirationSeconds": seconds,
                     "boundObjectRef": ref or None},
            "status": {"token": f"{head}.{payload}.{sig}",
                       "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}}


def token_review(store, body, now):
    """POST /apis/authentication.k8s.io/v1/tokenreviews: the review of a token this server
    issued, as kube-apiserver's service-account authenticator: audiences intersected, expiry,
    and the bound pod still existing with the same uid. Returns the TokenReview (201)."""
    if not isinstance(body, dict) or body.get("kind", "TokenReview") != "TokenReview":
        raise ApiError(400, "BadRequest", "the body must be a TokenReview")
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    token = spec.get("token")
    if not isinstance(token, str) or not token:
        raise ApiError(422, "Invalid", 'TokenReview.authentication.k8s.io "" is invalid: '
                       "spec.token: Required value")
    wanted = spec.get("audiences") or [API_AUDIENCE]
    review = {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
              "metadata": {"creationTimestamp": None}, "spec": spec}

    def refused(reason):
        review["status"] = {"user": {}, "error": f"[invalid bearer token, {reason}]"}
        return review
    parts = token.split(".")
    if len(parts) != 3:
        return refused("token lookup failed")
    expect = _b64(hmac.new(store.token_key, f"{parts[0]}.{parts[1]}".encode(),
                           hashlib.sha256).digest())
    if not hmac.compare_digest(expect, parts[2]):
        return refused("square/go-jose: error in cryptographic primitive")
    claims = json.loads(_unb64(parts[1]))
    audiences = [a for a in wanted if a in claims["aud"]]
    if not audiences:
        return refused("token audiences " + json.dumps(claims["aud"]) + " is invalid for the "
                       "target audiences " + json.dumps(wanted))
    if now >= claims["exp"]:
        return refused("service account token has expired")
    k8s = claims["kubernetes.io"]
    ns, sa = k8s["namespace"], k8s["serviceaccount"]["name"]
    extra = {}
    if "pod" in k8s:
        pod = store.objects["pods"].get((ns, k8s["pod"]["name"]))
        if pod is None or pod["metadata"]["uid"] != k8s["pod"]["uid"]:
            return refused("Token has been invalidated")
        extra = {"authentication.kubernetes.io/pod-name": [k8s["pod"]["name"]],
                 "authentication.kubernetes.io/pod-uid": [k8s["pod"]["uid"]]}
    user = {"username": f"system:serviceaccount:{ns}:{sa}", "uid": sa_uid(ns, sa),
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}",
                       "system:authenticated"]}
    if extra:
        user["extra"] = extra
    review["status"] = {"authenticated": True, "user": user, "audiences": audiences}
    return review


# --- kubectl's server-side printing ----------------------------------------------------------
def age(obj):
    try:
        created = datetime.datetime.strptime(obj["metadata"].get("creationTimestamp", ""),
                                             "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return "<unknown>"
    seconds = int(time.time() - created.replace(tzinfo=datetime.timezone.utc).timestamp())
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m"


def status_of(obj):
    return obj.get("status") or {}


NAME, AGE = ("Name", "string", 0, lambda o: o["metadata"]["name"]), ("Age", "string", 0, age)
TABLE_COLUMNS = {  # (name, type, priority, cell)
    "": [NAME, AGE],
    "Namespace": [NAME, ("Status", "string", 0, lambda o: status_of(o).get("phase", "")), AGE],
    "Pod": [NAME,
            ("Ready", "string", 0, lambda o: "%d/%d" % (
                sum(1 for c in status_of(o).get("containerStatuses") or [] if c.get("ready")),
                len((o.get("spec") or {}).get("containers") or []))),
            ("Status", "string", 0, lambda o: status_of(o).get("phase", "")),
            ("Restarts", "integer", 0, lambda o: sum(
                c.get("restartCount", 0) for c in status_of(o).get("containerStatuses") or [])),
            AGE,
            ("IP", "string", 1, lambda o: status_of(o).get("podIP", "<none>")),
            ("Node", "string", 1, lambda o: (o.get("spec") or {}).get("nodeName", "<none>"))],
}


def table(res, objs, meta):
    """A meta.k8s.io/v1 Table, as kube-apiserver's printers (priority 1: -o wide only)."""
    cols = TABLE_COLUMNS.get(res[3], TABLE_COLUMNS[""])
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
            "columnDefinitions": [{"name": n, "type": t, "format": "name" if n == "Name" else "",
                                   "description": n, "priority": p} for n, t, p, _ in cols],
            "rows": [{"cells": [cell(o) for _, _, _, cell in cols], "object": {
                "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": o["metadata"]}} for o in objs]}
