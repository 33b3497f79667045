#!/usr/bin/env bash
# Fidelity with the real kubectl (Debian's kubernetes-client 1.20, unpacked by
# tools/install-deps.sh into /opt/kubectl-1.20; override with KUBECTL=...): against the test API
# server it must create, get (JSON and its server-side table), label, apply, delete and get -w,
# and print the errors it prints for kube-apiserver (AlreadyExists, NotFound, Unauthorized).
# kubectl exercises discovery, OpenAPI validation, merge and strategic-merge patches, the
# delete-and-wait list, Table output and chunked watches as a user would.
set -euo pipefail

KUBECTL=${KUBECTL:-/opt/kubectl-1.20/usr/bin/kubectl}
if [[ ! -x $KUBECTL ]]; then
  echo "FAIL: no kubectl at $KUBECTL (tools/install-deps.sh unpacks Debian's kubernetes-client" \
    "there; or set KUBECTL)" >&2
  exit 1
fi
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d "${TEST_TMPDIR:-/tmp}/kubectl_fidelity.XXXXXX")
DIR=$TMP/api
export HOME=$TMP/home # kubectl writes ~/.kube; never the user's
mkdir -p "$HOME"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
# Polls "$@" until it succeeds, for at most 30 s.
wait_for() {
  local end=$((SECONDS + 30))
  until "$@"; do
    ((SECONDS < end)) || fail "timed out waiting for: $*"
    sleep 0.05
  done
}
k() {
  "$KUBECTL" --kubeconfig "$DIR/kubeconfig" --cache-dir "$TMP/cache" --request-timeout 30s "$@"
}
expect() { # expect "WANTED OUTPUT" command...: the combined output must contain it
  local want=$1 out
  shift
  out=$("$@" 2>&1) || true
  [[ $out == *"$want"* ]] || fail "$* printed '$out', not '$want'"
}

/usr/bin/python3 "$HERE/fake_apiserver.py" --dir "$DIR" --bookmark-interval 600 &
SERVER=$!
WATCH=
cleanup() {
  [[ -z $WATCH ]] || kill "$WATCH" 2>/dev/null || true
  kill -TERM "$SERVER" 2>/dev/null || true
  wait "$SERVER" || echo "fake_apiserver exited with $?" >&2
}
trap cleanup EXIT
wait_for test -f "$DIR/ready"

# Discovery and version.
k version -o json | /usr/bin/python3 -c '
import json, sys
v = json.load(sys.stdin)
assert v["serverVersion"]["major"] == "1", v'
expect "networkpolicies" k api-resources

# create -f (multi-document; validation fetches /openapi/v2 first) and an AlreadyExists.
cat >"$TMP/shop.yaml" <<'EOF'
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  containers:
  - name: nginx
    image: nginx
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  ports:
  - port: 80
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: shop
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
endpoints:
- addresses: [10.1.0.5]
  conditions: {ready: true}
ports:
- port: 80
  protocol: TCP
EOF
out=$(k create -f "$TMP/shop.yaml")
for want in "namespace/shop created" "pod/web created" "service/web created" \
  "endpointslice.discovery.k8s.io/web-1 created"; do
  [[ $out == *"$want"* ]] || fail "create -f printed '$out', not '$want'"
done
expect 'Error from server (AlreadyExists): error when creating' k create -f "$TMP/shop.yaml"

# get: JSON, jsonpath and the default (server-side Table) output.
k get pod web -n shop -o json | /usr/bin/python3 -c '
import json, sys
p = json.load(sys.stdin)
assert p["kind"] == "Pod" and p["metadata"]["namespace"] == "shop", p
assert p["metadata"]["labels"] == {"app": "web"} and p["metadata"]["uid"], p
assert p["status"]["phase"] == "Pending", p'
k get pods -n shop -o json | /usr/bin/python3 -c '
import json, sys
l = json.load(sys.stdin)
assert [p["metadata"]["name"] for p in l["items"]] == ["web"], l'
expect "10.96." k get service web -n shop -o 'jsonpath={.spec.clusterIP}'
expect "10.1.0.5" k get endpointslices -n shop -l kubernetes.io/service-name=web \
  -o 'jsonpath={.items[0].endpoints[0].addresses[0]}'
table=$(k get pods -n shop)
[[ $(head -1 <<<"$table") =~ ^NAME\ +READY\ +STATUS\ +RESTARTS\ +AGE ]] || fail "table: $table"
[[ $(tail -1 <<<"$table") =~ ^web\ +0/1\ +Pending\ +0 ]] || fail "table: $table"
expect 'Error from server (NotFound): pods "nope" not found' k get pod nope -n shop

# label (a JSON merge patch), then remove it.
expect "pod/web labeled" k label pod web -n shop tier=front
[[ $(k get pod web -n shop -o 'jsonpath={.metadata.labels.tier}') == front ]] || fail "label"
expect "pod/web" k label pod web -n shop tier- # 1.20: "labeled", later: "unlabeled"
[[ -z $(k get pod web -n shop -o 'jsonpath={.metadata.labels.tier}') ]] || fail "label removal"

# get -w: the list, then the watch's events, as they happen.
k get pods -n shop -w --output-watch-events >"$TMP/watch.out" 2>&1 &
WATCH=$!
wait_for grep -q "^ADDED  *web " "$TMP/watch.out"
k run db -n shop --image=postgres --labels=app=db >/dev/null
k label pod db -n shop role=primary >/dev/null
k delete pod db -n shop >/dev/null
wait_for grep -q "^DELETED  *db " "$TMP/watch.out"
kill "$WATCH"
wait "$WATCH" || true
WATCH=
events=$(awk '{print $1, $2}' "$TMP/watch.out" | tr '\n' ',')
[[ $events == "EVENT NAME,ADDED web,ADDED db,MODIFIED db,DELETED db," ]] ||
  fail "get -w saw: $(cat "$TMP/watch.out")"

# apply: create, then a strategic merge patch from the last-applied configuration.
cat >"$TMP/policy.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny
  namespace: shop
  labels: {rev: "1"}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
EOF
expect "networkpolicy.networking.k8s.io/deny created" k apply -f "$TMP/policy.yaml"
sed -i 's/rev: "1"/rev: "2"/' "$TMP/policy.yaml"
expect "networkpolicy.networking.k8s.io/deny configured" k apply -f "$TMP/policy.yaml"
expect "networkpolicy.networking.k8s.io/deny unchanged" k apply -f "$TMP/policy.yaml"
[[ $(k get netpol deny -n shop -o 'jsonpath={.metadata.labels.rev}') == 2 ]] || fail "apply"

# delete (then kubectl waits with a list by name), and a namespace takes its objects along.
expect 'pod "web" deleted' k delete pod web -n shop
expect 'Error from server (NotFound): pods "web" not found' k get pod web -n shop
expect 'namespace "shop" deleted' k delete namespace shop
expect "No resources found" k get pods --all-namespaces

# A rotated token: the old credentials get 401, as kubectl reports it.
cp "$DIR/kubeconfig" "$TMP/old-kubeconfig"
token=$(cat "$DIR/token")
curl_out=$(/usr/bin/python3 - "$DIR" "$(cat "$DIR/ready")" "$token" <<'EOF'
import http.client, ssl, sys
d, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = http.client.HTTPSConnection("127.0.0.1", port, context=ssl.create_default_context(
    cafile=d + "/ca.crt"))
c.request("POST", "/_test/rotate-token", headers={"Authorization": "Bearer " + token})
print(c.getresponse().status)
EOF
)
[[ $curl_out == 200 ]] || fail "rotate-token: $curl_out"
expect "error: You must be logged in to the server (Unauthorized)" \
  "$KUBECTL" --kubeconfig "$TMP/old-kubeconfig" --cache-dir "$TMP/cache" get pods
expect "No resources found" k get pods
echo "PASS: kubectl $("$KUBECTL" version --client --short 2>/dev/null || true)"
