#!/usr/bin/python3
"""The injected YAML held to the real clients, offline (issue 17, "Speak the ecosystem exactly").

For every injection golden input (test/inject/testdata/<case>.in.yaml), in its golden form
(native for the cases golden_test injects natively, classic otherwise) and in the other form
(`--kubernetes-version=v1.29.3`, resp. `--native-sidecar=false`), the real `picket-inject` binary
injects it, and its output must be what these clients make of it, object for object:

  - kubectl annotate --local (Debian's kubectl 1.20, no server, an empty kubeconfig): kubectl's
    own YAML decoding; the objects it prints (a List flattened into its items) equal ours plus
    the annotation, exactly;
  - kubectl set serviceaccount --local: kubectl decodes every object with a pod template into
    its Go types (a field those types do not know is dropped) and prints it back; equal to ours
    plus spec.serviceAccountName, apart from keys Go adds with zero values (`creationTimestamp:
    null`, `resources: {}`, `status: {replicas: 0}`);
  - python3-kubernetes: ApiClient().deserialize into the kind's typed model (V1Pod, V1Deployment,
    V1Job, V1CronJob, ...) and sanitize_for_serialization back: equal to ours (an unknown field is
    dropped).

Fields newer than a client (Debian 12's kubectl is 1.20, its python3-kubernetes models API 1.22)
may be dropped only where ALLOWLIST names them, with the reason; every entry must be used, and
what was allowlisted is printed. A negative control runs first: a misspelt field
(`securityContex`) and a misplaced one (`readinessProbe` on the pod spec) must fail both typed
checks. The golden form must also equal testdata/<case>.out.yaml (goldens come from the binary's
library; regenerate them as golden_test.cc says)."""

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml
from kubernetes import client

sys.dont_write_bytecode = True

KUBECTL = os.environ.get("KUBECTL", "/opt/kubectl-1.20/usr/bin/kubectl")
INJECT = "inject/picket-inject"
TESTDATA = "test/inject/testdata"
# The cases golden_test.cc injects with InjectOptions::native_sidecar (Case{name, true}).
NATIVE_GOLDENS = {"native_sidecar", "job_native"}
CHECK_ANNOTATION = ("picket.dev/checked", "1")
SERVICE_ACCOUNT = "picket-checked"

PY_CLIENT = "python3-kubernetes " + getattr(__import__("kubernetes"), "__version__", "?")
NEWER = ("the native sidecar (an init container with restartPolicy: Always, KEP-753) is "
         "Kubernetes 1.28+: ")

# (client, what, reason). `what` is a field path suffix that client may drop (list elements by
# name: initContainers[picket-proxy]), or "object APIVERSION/KIND" that client cannot type at all.
ALLOWLIST = [
    ("python", "initContainers[picket-proxy].restartPolicy",
     NEWER + "newer than " + PY_CLIENT + " (API 1.22), whose V1Container has no restart_policy"),
    ("kubectl", "initContainers[picket-proxy].restartPolicy",
     NEWER + "newer than kubectl 1.20's core/v1 Container"),
    ("kubectl", "object batch/v1/CronJob",
     "batch/v1 CronJob is Kubernetes 1.21; kubectl 1.20 registers batch/v1beta1, whose CronJob "
     "has the same fields (schedule, jobTemplate.spec.template): typed as batch/v1beta1"),
    ("kubectl", "object v1/Namespace",
     "kubectl set types only objects with a pod template; passed through unchanged "
     "(multidoc), typed by python"),
    ("kubectl", "object v1/ConfigMap", "as for Namespace"),
    ("kubectl", "object v1/Service", "as for Namespace"),
    ("kubectl", "object example.com/v1/Deployment",
     "list.in.yaml's same kind name of another API group, passed through unchanged: no client "
     "has a type for it"),
    ("python", "object example.com/v1/Deployment", "as for kubectl"),
]
# The typed models of the groups the injector reads (anything else needs an ALLOWLIST entry).
PY_GROUPS = {"v1": "V1", "apps/v1": "V1", "batch/v1": "V1", "batch/v1beta1": "V1beta1"}
KUBECTL_TYPED = {("v1", "Pod"), ("v1", "ReplicationController"), ("apps/v1", "Deployment"),
                 ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"), ("apps/v1", "ReplicaSet"),
                 ("batch/v1", "Job"), ("batch/v1beta1", "CronJob")}


def gvk(obj):
    return "%s/%s" % (obj.get("apiVersion"), obj.get("kind"))


def name_of(obj):
    meta = obj.get("metadata") or {}
    return "%s %s" % (gvk(obj), "/".join(x for x in (meta.get("namespace"), meta.get("name")) if x))


def pod_spec(obj):
    if obj["kind"] == "Pod":
        return obj["spec"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def short(value):
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def diff(want, got, path="", out=None):
    """(what, path) for each difference: 'dropped' (in want only), 'added' (in got only, with its
    value), 'changed'. List elements are named by their `name` when they have one."""
    out = [] if out is None else out
    if isinstance(want, dict) and isinstance(got, dict):
        for k in want:
            p = path + "." + k if path else k
            if k not in got:
                out.append(("dropped", p, short(want[k])))
            else:
                diff(want[k], got[k], p, out)
        for k in got:
            if k not in want:
                out.append(("added", path + "." + k if path else k, got[k]))
    elif isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            out.append(("changed", path, "%d items, not %d" % (len(got), len(want))))
            return out
        for i, (w, g) in enumerate(zip(want, got)):
            label = w.get("name") if isinstance(w, dict) and isinstance(w.get("name"), str) else i
            diff(w, g, "%s[%s]" % (path, label), out)
    elif type(want) is not type(got) or want != got:
        out.append(("changed", path, "%s, not %s" % (short(got), short(want))))
    return out


def go_zero(value):
    """Whether `value` is what Go prints for a zero struct field without omitempty."""
    if isinstance(value, dict):
        return all(go_zero(v) for v in value.values())
    return value in (None, 0, "", False, [])


def describe(kind, path, detail):
    return "%s %s %s" % (kind, path, short(detail) if kind == "added" else detail)


def allowed(client_name, what):
    """The ALLOWLIST entry covering `what` for this client, or None."""
    for entry in ALLOWLIST:
        c, w, _ = entry
        if c != client_name:
            continue
        if w.startswith("object ") and what == w:
            return entry
        if not w.startswith("object ") and (what == w or what.endswith("." + w)):
            return entry
    return None


def json_stream(text):
    """The JSON objects kubectl printed one after another."""
    decoder, objs, i = json.JSONDecoder(), [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            return objs
        obj, i = decoder.raw_decode(text, i)
        objs.append(obj)


class _Response:  # what ApiClient.deserialize reads
    def __init__(self, obj):
        self.data = json.dumps(obj)


class Checker:
    """The three checks; each returns a list of problems and records allowlist use."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.used = {}  # ALLOWLIST entry -> [where]
        self.api = client.ApiClient()
        kubeconfig = os.path.join(tmp, "kubeconfig")
        open(kubeconfig, "w").close()  # empty: no cluster, no server, nothing to read
        self.env = dict(os.environ, KUBECONFIG=kubeconfig, HOME=tmp)

    def use(self, entry, where):
        self.used.setdefault(entry, []).append(where)

    def kubectl(self, args, text):
        path = os.path.join(self.tmp, "in.yaml")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([KUBECTL, "--cache-dir", os.path.join(self.tmp, "cache")] + args +
                           ["--local", "-f", path, "-o", "json"],
                           env=self.env, capture_output=True, text=True, timeout=60)
        if r.returncode != 0 or r.stderr.strip():
            return None, "kubectl %s: exit %d: %s" % (args[0], r.returncode, r.stderr.strip())
        return json_stream(r.stdout), None

    def kubectl_annotate(self, label, text, objs):
        """kubectl's own YAML decoding of the whole output, every object."""
        got, error = self.kubectl(["annotate", "%s=%s" % CHECK_ANNOTATION], text)
        if error:
            return [label + ": " + error]
        want = []
        for obj in objs:
            for item in (obj["items"] if obj.get("kind") == "List" else [obj]):
                item = copy.deepcopy(item)
                item.setdefault("metadata", {}).setdefault("annotations", {})
                item["metadata"]["annotations"][CHECK_ANNOTATION[0]] = CHECK_ANNOTATION[1]
                want.append(item)
        if len(got) != len(want):
            return ["%s: kubectl annotate printed %d objects, not %d" % (label, len(got), len(want))]
        return ["%s: kubectl annotate: %s: %s" % (label, name_of(w), describe(*d))
                for w, g in zip(want, got) for d in diff(w, g)]

    def kubectl_typed(self, label, objs):
        """kubectl 1.20's Go types, through `set serviceaccount --local`."""
        problems, typed = [], []
        for obj in objs:
            for item in (obj["items"] if obj.get("kind") == "List" else [obj]):
                item = copy.deepcopy(item)
                what = "object " + gvk(item)
                entry = allowed("kubectl", what)
                if (item.get("apiVersion"), item.get("kind")) in KUBECTL_TYPED:
                    typed.append(item)
                elif entry and gvk(item) == "batch/v1/CronJob":
                    self.use(entry, label)
                    item["apiVersion"] = "batch/v1beta1"
                    typed.append(item)
                elif entry:
                    self.use(entry, "%s: %s" % (label, name_of(item)))
                else:
                    problems.append("%s: kubectl has no type for %s and ALLOWLIST does not say "
                                    "why" % (label, name_of(item)))
        if not typed:
            return problems
        got, error = self.kubectl(["set", "serviceaccount", SERVICE_ACCOUNT],
                                  "".join("---\n" + json.dumps(o) + "\n" for o in typed))
        if error:
            return problems + [label + ": " + error]
        if len(got) != len(typed):
            return problems + ["%s: kubectl set printed %d objects, not %d" %
                               (label, len(got), len(typed))]
        for w, g in zip(typed, got):
            w = copy.deepcopy(w)
            pod_spec(w)["serviceAccountName"] = SERVICE_ACCOUNT
            for kind, path, detail in diff(w, g):
                if kind == "added" and go_zero(detail):
                    continue  # creationTimestamp: null, status: {replicas: 0}, resources: {}
                entry = allowed("kubectl", path) if kind == "dropped" else None
                if entry:
                    self.use(entry, "%s: %s: %s" % (label, name_of(w), path))
                    continue
                problems.append("%s: kubectl (typed): %s: %s" %
                                (label, name_of(w), describe(kind, path, detail)))
        return problems

    def python_typed(self, label, objs):
        """ApiClient().deserialize into the kind's model and sanitize_for_serialization back."""
        problems = []
        for obj in objs:
            items = [obj]
            if obj.get("kind") == "List":
                extra = set(obj) - {"apiVersion", "kind", "metadata", "items"}
                if obj.get("apiVersion") != "v1" or extra:
                    problems.append("%s: List: apiVersion %r, fields %s" %
                                    (label, obj.get("apiVersion"), sorted(extra)))
                items = obj["items"]
            for item in items:
                model = PY_GROUPS.get(item.get("apiVersion"), "") + str(item.get("kind"))
                if item.get("apiVersion") not in PY_GROUPS or not hasattr(client, model):
                    entry = allowed("python", "object " + gvk(item))
                    if entry:
                        self.use(entry, "%s: %s" % (label, name_of(item)))
                    else:
                        problems.append("%s: %s has no model %s in %s and ALLOWLIST does not "
                                        "say why" % (label, name_of(item), model, PY_CLIENT))
                    continue
                try:
                    typed = self.api.deserialize(_Response(item), model)
                except (ValueError, TypeError) as e:
                    problems.append("%s: %s: %s refused it: %s" % (label, name_of(item), model, e))
                    continue
                back = self.api.sanitize_for_serialization(typed)
                for kind, path, detail in diff(item, back):
                    entry = allowed("python", path) if kind == "dropped" else None
                    if entry:
                        self.use(entry, "%s: %s: %s" % (label, name_of(item), path))
                        continue
                    problems.append("%s: %s (%s): %s" %
                                    (label, name_of(item), model, describe(kind, path, detail)))
        return problems


def inject(in_path, flags):
    r = subprocess.run([INJECT, "-f", in_path] + flags, capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise AssertionError("picket-inject -f %s %s: exit %d: %s" %
                             (in_path, " ".join(flags), r.returncode, r.stderr))
    return r.stdout


def load(text):
    return [d for d in yaml.safe_load_all(text) if d is not None]


class InjectedYamlClientsTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        if not os.access(KUBECTL, os.X_OK):
            raise AssertionError("no kubectl at %s (tools/install-deps.sh unpacks Debian's "
                                 "kubernetes-client 1.20 there; or set KUBECTL)" % KUBECTL)
        version = subprocess.run([KUBECTL, "version", "--client", "-o", "json"],
                                 capture_output=True, text=True, timeout=60)
        cls.kubectl_version = json.loads(version.stdout)["clientVersion"]["gitVersion"]
        print("kubectl %s (%s), %s" % (cls.kubectl_version, KUBECTL, PY_CLIENT))

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="injected_yaml.", dir=os.environ.get("TEST_TMPDIR"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.checker = Checker(self.tmp)

    def test_checks_catch_misspelt_and_misplaced_fields(self):
        """The negative control: both typed checks see a misspelt and a misplaced field."""
        objs = load(inject(os.path.join(TESTDATA, "pod.in.yaml"), []))
        spec = objs[0]["spec"]
        proxy = next(c for c in spec["containers"] if c["name"] == "picket-proxy")
        proxy["securityContex"] = proxy.pop("securityContext")
        spec["readinessProbe"] = proxy.pop("readinessProbe")
        for name, problems in (("kubectl", self.checker.kubectl_typed("control", objs)),
                               ("python", self.checker.python_typed("control", objs))):
            text = "\n".join(problems)
            print("negative control, %s:\n  %s" % (name, "\n  ".join(problems)))
            self.assertIn("dropped spec.containers[picket-proxy].securityContex ", text, name)
            self.assertIn("dropped spec.readinessProbe ", text, name)
            self.assertEqual(len(problems), 2, text)

    def test_every_golden_case_in_both_forms(self):
        cases = sorted(f[:-len(".in.yaml")] for f in os.listdir(TESTDATA)
                       if f.endswith(".in.yaml"))
        self.assertGreaterEqual(len(cases), 18, cases)  # golden_test.cc's InjectGolden cases
        self.assertTrue(NATIVE_GOLDENS <= set(cases), cases)
        problems, counted = [], 0
        for case in cases:
            in_path = os.path.join(TESTDATA, case + ".in.yaml")
            native = case in NATIVE_GOLDENS
            forms = [("native" if native else "classic", ["--native-sidecar"] if native else []),
                     ("classic", ["--native-sidecar=false"]) if native else
                     ("native", ["--kubernetes-version=v1.29.3"])]
            for i, (form, flags) in enumerate(forms):
                label = "%s (%s%s)" % (case, form, ", golden" if i == 0 else "")
                text = inject(in_path, flags)
                if i == 0:
                    with open(os.path.join(TESTDATA, case + ".out.yaml")) as f:
                        if f.read() != text:
                            problems.append("%s: picket-inject's output differs from "
                                            "testdata/%s.out.yaml (see golden_test.cc)" %
                                            (label, case))
                objs = load(text)
                found = (self.checker.kubectl_annotate(label, text, objs) +
                         self.checker.kubectl_typed(label, objs) +
                         self.checker.python_typed(label, objs))
                counted += sum(len(o["items"]) if o.get("kind") == "List" else 1 for o in objs)
                print("%-40s %s" % (label, "ok" if not found else "%d problems" % len(found)))
                problems += found
        print("%d cases, %d injections, %d objects, each through kubectl annotate, kubectl set "
              "(typed) and %s" % (len(cases), 2 * len(cases), counted, PY_CLIENT))
        print("allowlisted:")
        for entry in ALLOWLIST:
            uses = self.checker.used.get(entry, [])
            print("  %-7s %s: %d times (%s)\n          why: %s" %
                  (entry[0], entry[1], len(uses), "; ".join(sorted(set(uses))[:3]) +
                   ("; ..." if len(set(uses)) > 3 else ""), entry[2]))
            if not uses:
                problems.append("ALLOWLIST entry never used (remove it): %s %s" % entry[:2])
        self.assertEqual(problems, [], "\n" + "\n".join(problems))


if __name__ == "__main__":
    unittest.main(verbosity=2)
