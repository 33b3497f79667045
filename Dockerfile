# picket/picket: one image with the four binaries (picket-control, picket-proxy, picket-init,
# picket-inject), as examples/kubernetes expects. The binaries are the ones Bazel built on a
# Debian 12 host (they link Debian 12's shared libraries), not built in here:
#
#   bazel build //:picket-control //:picket-proxy //:picket-init //:picket-inject
#   tar -ch Dockerfile bazel-bin/control/picket-control bazel-bin/proxy/picket-proxy \
#     bazel-bin/inject/picket-init bazel-bin/inject/picket-inject \
#     | docker build -t picket/picket:latest -
#
# (bazel-bin is a symlink out of the source tree, which `docker build .` does not follow; `tar -h`
# packs the files it points to as the build context.)
FROM debian:12-slim

# The runtime libraries of tools/install-deps.sh's -dev packages, and iptables for picket-init.
# android-libboringssl puts libssl/libcrypto in /usr/lib/x86_64-linux-gnu/android, where the
# binaries' rpath (bazel/system/boringssl.BUILD) looks for them.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libuv1 libc-ares2 libyaml-cpp0.7 libspdlog1.10 libfmt9 libsimdjson14 android-libboringssl \
      libnetfilter-queue1 libnetfilter-conntrack3 libnftnl11 libmnl0 libstdc++6 iptables ca-certificates \
 && rm -rf /var/lib/apt/lists/*

COPY bazel-bin/control/picket-control /usr/local/bin/picket-control
COPY bazel-bin/proxy/picket-proxy /usr/local/bin/picket-proxy
COPY bazel-bin/inject/picket-init /usr/local/bin/picket-init
COPY bazel-bin/inject/picket-inject /usr/local/bin/picket-inject

# Non-root by default (the Deployments in examples/kubernetes also say so); the injected
# picket-init and sidecar containers set their own users (inject/README.md).
USER 65532:65532
# No entrypoint: every container names its binary (`command:` in the manifests and injected pods).
CMD ["picket-control", "--help"]
