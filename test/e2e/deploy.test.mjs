// deploy.test.mjs -- the deployment files of docker/ hold together.
//
// No Docker engine or cluster is needed: the files are parsed and checked
// against the things they must agree with, each taken from its source rather
// than written down twice here:
//   - docker/Dockerfile builds with docker/install-deps.sh and the same
//     `meson setup` and `ninja` commands as scripts/test.sh's plain run
//     (the one .ci/run starts with), read out of that script; it copies the
//     binaries proxy/meson.build declares, runs as a non-root user and has a
//     HEALTHCHECK on /healthz;
//   - every MTABLE_* variable the Dockerfile, docker/compose.yaml and
//     docker/k8s/*.yaml set is one that `mtable-proxy --help` documents, and
//     docker/README.md describes every variable --help documents;
//   - compose has its five services, wired as the README says;
//   - the Dockerfile takes its base image as BASE_IMAGE (debian:12-slim by
//     default) and its build stage runs install-deps.sh's lean build mode;
//     scripts/test.sh runs docker/smoke.sh, which builds and runs it;
//   - the Kubernetes manifests' startup, readiness and liveness probes hit
//     /healthz and /readyz on the admin port, the pods carry Prometheus
//     scrape annotations, a PodDisruptionBudget guards the authority, every
//     Secret key they reference exists, and so on.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, test } from "node:test";
import YAML from "yaml";
import { proxyAvailable, proxyBin, repoRoot } from "./lib/harness.mjs";

const read = (rel) => readFileSync(join(repoRoot, rel), "utf8");
const dockerDir = join(repoRoot, "docker");
const k8sFiles = readdirSync(join(dockerDir, "k8s"))
  .filter((f) => /\.ya?ml$/.test(f))
  .sort()
  .map((f) => `docker/k8s/${f}`);
const ADMIN_DEFAULT = "127.0.0.1:10090";

// ---------------------------------------------------------------------------
// Shell and Dockerfile reading.

// Words of one simple shell command: whitespace-separated, with single and
// double quotes removed (no expansion).
function shellWords(s) {
  const words = [];
  const re = /(?:[^\s'"]+|'[^']*'|"(?:[^"\\]|\\.)*")+/g;
  for (const m of s.matchAll(re)) {
    words.push(m[0].replace(/'([^']*)'|"((?:[^"\\]|\\.)*)"/g, (_, a, b) => a ?? b));
  }
  return words;
}

// The simple commands of a shell line: split at && || ; and |, each cut
// before its first redirection.
function shellCommands(line) {
  return line
    .split(/&&|\|\||;|\|/)
    .map((c) => shellWords(c.replace(/\s\d?[<>].*$/s, "")))
    .filter((w) => w.length > 0);
}

// Dockerfile instructions, continuation lines joined and comments dropped,
// grouped by stage: [{from, name, instructions: [{op, args}]}]; a FROM's
// ${ARG} takes the default a global ARG gives it.
function dockerStages(text) {
  const instructions = [];
  let cur = "";
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\r$/, "");
    if (/^\s*#/.test(line)) continue;
    if (/\\\s*$/.test(line)) {
      cur += line.replace(/\\\s*$/, " ");
      continue;
    }
    cur += line;
    const m = cur.trim().match(/^(\S+)\s*([\s\S]*)$/);
    if (m) instructions.push({ op: m[1].toUpperCase(), args: m[2].trim() });
    cur = "";
  }
  const stages = [];
  const args = {}; // ARGs before the first FROM, with their defaults
  for (const ins of instructions) {
    if (ins.op === "ARG" && stages.length === 0) {
      const [name, ...rest] = ins.args.split("=");
      args[name.trim()] = rest.join("=").trim();
    } else if (ins.op === "FROM") {
      const expanded = ins.args.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (m, v) => args[v] ?? m);
      const w = shellWords(expanded).filter((x) => !x.startsWith("--"));
      stages.push({ from: w[0], name: /^as$/i.test(w[1] ?? "") ? w[2] : null, instructions: [] });
    } else {
      assert.ok(stages.length > 0, `Dockerfile: ${ins.op} before any FROM`);
      stages.at(-1).instructions.push(ins);
    }
  }
  return stages;
}

function runCommands(stage) {
  return stage.instructions.filter((i) => i.op === "RUN").flatMap((i) => shellCommands(i.args));
}

const startsWith = (words, prefix) => prefix.every((p, i) => words[i] === p);

// ---------------------------------------------------------------------------
// What CI runs, read from scripts/test.sh and .ci/run.

function ciBuild() {
  const ci = read(".ci/run");
  const script = read("scripts/test.sh");
  assert.match(ci, /scripts\/test\.sh/, ".ci/run must run scripts/test.sh");
  assert.match(ci, /for args in ""/, ".ci/run must start with scripts/test.sh's plain run");
  assert.match(script, /\bbash docker\/install-deps\.sh\b/, "scripts/test.sh runs docker/install-deps.sh");

  // The plain run's build directory and setup options (the non-sanitizer
  // branch: no setup options).
  const plain = script.match(
    /^\s*build=\$\{MTABLE_BUILD_DIR:-([^}]+)\}\s*\n\s*setup_opts=\(\)\s*$/m,
  );
  assert.ok(plain, "scripts/test.sh: no plain-run build=${MTABLE_BUILD_DIR:-DIR} with setup_opts=()");
  const vars = { build: [plain[1]], setup_opts: [] };
  const expand = (words) =>
    words.flatMap((w) => {
      const v = w.match(/^\$\{?([A-Za-z_]+)(?:\[@\])?\}?$/);
      if (!v) {
        assert.doesNotMatch(w, /\$/, `scripts/test.sh: cannot resolve '${w}'`);
        return [w];
      }
      assert.ok(v[1] in vars, `scripts/test.sh: unknown variable in '${w}'`);
      return vars[v[1]];
    });

  // The first configuration: "meson setup" with no --reconfigure or --wipe.
  const setupLine = script
    .split("\n")
    .find((l) => /^\s*meson setup\s/.test(l) && !/--reconfigure|--wipe/.test(l));
  assert.ok(setupLine, "scripts/test.sh: no 'meson setup' line");
  const setup = shellCommands(setupLine).find((c) => startsWith(c, ["meson", "setup"]));

  // The compile: the ninja command on the build directory.
  const ninjaLine = script.split("\n").find((l) => /\bninja\s+-C\s/.test(l));
  assert.ok(ninjaLine, "scripts/test.sh: no 'ninja -C' line");
  const ninja = shellCommands(ninjaLine)
    .map((c) => c.slice(c.indexOf("ninja")))
    .find((c) => c[0] === "ninja");
  return { buildDir: plain[1], setup: expand(setup), ninja: expand(ninja) };
}

// ---------------------------------------------------------------------------
// mtable-proxy --help: the variables it documents.

function helpVariables() {
  const r = spawnSync(proxyBin, ["--help"], { encoding: "utf8", timeout: 10000 });
  assert.equal(r.status, 0, `${proxyBin} --help exited ${r.status}: ${r.stderr}`);
  const vars = new Set(r.stdout.match(/\bMTABLE_[A-Z0-9_]+\b/g) ?? []);
  assert.ok(vars.has("MTABLE_LISTEN"), "--help documents no MTABLE_LISTEN");
  return vars;
}

const mentioned = (text) => new Set(text.match(/\bMTABLE_[A-Z0-9_]+\b/g) ?? []);

const noProxy = proxyAvailable() ? false : `proxy binary ${proxyBin} not built`;

// ---------------------------------------------------------------------------
// Environment helpers for compose (map or list) and Kubernetes (list).

function composeEnv(svc) {
  const e = svc.environment ?? {};
  if (!Array.isArray(e)) return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, String(v ?? "")]));
  return Object.fromEntries(e.map((x) => [x.split("=")[0], x.split("=").slice(1).join("=")]));
}

function isLoopback(hostPort) {
  const host = hostPort.slice(0, hostPort.lastIndexOf(":"));
  return host === "localhost" || host.startsWith("127.");
}

const portOf = (hostPort) => Number(hostPort.slice(hostPort.lastIndexOf(":") + 1));

function loadK8s() {
  const docs = [];
  for (const f of k8sFiles) {
    for (const d of YAML.parseAllDocuments(read(f))) {
      assert.deepEqual(d.errors, [], `${f}: ${d.errors.join("; ")}`);
      const js = d.toJS();
      if (js) docs.push({ file: f, ...js });
    }
  }
  return docs;
}

function podSpec(doc) {
  if (doc.kind === "Pod") return doc.spec;
  if (["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"].includes(doc.kind)) {
    return doc.spec?.template?.spec;
  }
  return null;
}

const k8sContainers = (spec) => [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
const k8sEnv = (c) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e]));
const isProxy = (c) => (c.env ?? []).some((e) => e.name.startsWith("MTABLE_"));

// ---------------------------------------------------------------------------

describe("deploy", () => {
  const stages = dockerStages(read("docker/Dockerfile"));
  const runtime = stages.at(-1);
  const runtimeOps = (op) => runtime.instructions.filter((i) => i.op === op);

  test("Dockerfile: a build stage and a slim runtime stage on Debian 12", () => {
    assert.ok(stages.length >= 2, "a multi-stage build");
    assert.match(stages[0].from, /^debian:12\b/);
    assert.match(runtime.from, /^debian:12-slim\b/);
  });

  test("Dockerfile: the base image is the build argument BASE_IMAGE, debian:12-slim by default", () => {
    const text = read("docker/Dockerfile");
    assert.match(text, /^ARG BASE_IMAGE=debian:12-slim$/m);
    const froms = text.split("\n").filter((l) => /^FROM\s/i.test(l));
    assert.ok(froms.length >= 2);
    for (const f of froms) assert.match(f, /^FROM \$\{BASE_IMAGE\}(\s|$)/, f);
  });

  test("Dockerfile: the build stage installs only the build's packages (install-deps.sh build)", () => {
    const script = read("docker/install-deps.sh");
    const list = (name) => {
      const m = script.match(new RegExp(`^${name}=\\(([^)]*)\\)`, "m"));
      assert.ok(m, `install-deps.sh has no ${name}=(...)`);
      return m[1].split("\n").map((l) => l.replace(/#.*/, "").trim()).filter(Boolean);
    };
    const buildPkgs = list("BUILD_PACKAGES");
    const testPkgs = list("TEST_PACKAGES");
    assert.match(script, /^build\) PACKAGES=\("\$\{BUILD_PACKAGES\[@\]\}"\) ;;$/m, "a 'build' mode");
    for (const p of ["nodejs", "npm", "valgrind", "clang", "prometheus", "podman"]) {
      assert.ok(!buildPkgs.includes(p), `the build mode installs ${p}`);
      assert.ok(testPkgs.includes(p), `the test packages include ${p}`);
    }
    // Every library proxy/meson.build asks pkg-config for has its -dev.
    for (const p of ["libmicrohttpd-dev", "libcurl4-openssl-dev", "libcjson-dev", "libxml2-dev", "libssl-dev"]) {
      assert.ok(buildPkgs.includes(p), `the build mode lacks ${p}`);
    }
    const build = stages.find((st) => runCommands(st).some((c) => c[0] === "meson"));
    const deps = runCommands(build).find((c) => c.some((w) => /(^|\/)docker\/install-deps\.sh$/.test(w)));
    assert.equal(deps[deps.findIndex((w) => /install-deps\.sh$/.test(w)) + 1], "build");
  });

  test("the image smoke test (docker/smoke.sh) is a marked section of scripts/test.sh", () => {
    const script = read("scripts/test.sh");
    assert.match(script, /\bbash docker\/smoke\.sh\b/);
    assert.match(script, /MTABLE_SKIP_IMAGE/);
    const smoke = read("docker/smoke.sh");
    for (const want of ["--format docker", "BASE_IMAGE=", "debootstrap", "podman healthcheck run", "podman stop"]) {
      assert.ok(smoke.includes(want), `docker/smoke.sh: ${want}`);
    }
  });

  test("Dockerfile builds with install-deps.sh and CI's meson setup and ninja commands", () => {
    const ci = ciBuild();
    const build = stages.find((s) => runCommands(s).some((c) => c.includes("setup") && c[0] === "meson"));
    assert.ok(build, "no stage runs meson setup");
    const cmds = runCommands(build);
    const deps = cmds.findIndex((c) => c.some((w) => /(^|\/)docker\/install-deps\.sh$/.test(w)));
    assert.ok(deps >= 0, "the build stage runs docker/install-deps.sh");

    const setupAt = cmds.findIndex((c) => startsWith(c, ["meson", "setup"]));
    assert.ok(setupAt > deps, "meson setup runs after install-deps.sh");
    // The one departure allowed: the tests switched off, through the
    // option meson_options.txt declares for it.
    const setup = cmds[setupAt].filter((w) => w !== "-Dtests=false");
    if (setup.length !== cmds[setupAt].length) {
      assert.match(read("meson_options.txt"), /option\('tests',\s*type\s*:\s*'boolean'/);
    }
    assert.deepEqual(setup, ci.setup, "the same meson setup as scripts/test.sh");

    const ninjaAt = cmds.findIndex((c) => c[0] === "ninja");
    assert.ok(ninjaAt > setupAt, "ninja runs after meson setup");
    assert.deepEqual(cmds[ninjaAt], ci.ninja, "the same ninja command as scripts/test.sh");

    // The runtime stage takes the binaries from that build directory.
    const copies = runtimeOps("COPY").map((i) => i.args).join("\n");
    assert.match(copies, new RegExp(`--from=${build.name ?? "0"}\\b`));
    assert.match(copies, new RegExp(`\\b${ci.buildDir}/proxy/mtable-proxy\\b`));
  });

  test("Dockerfile copies mtable-proxy and mtablectl, each from the directory whose meson.build builds it", () => {
    const copies = runtimeOps("COPY").flatMap((i) => shellWords(i.args));
    const copied = copies
      .map((w) => w.match(/\/build\/(.+)\/([^/\s]+)$/))
      .filter(Boolean)
      .map((m) => ({ dir: m[1], bin: m[2] }));
    for (const bin of ["mtable-proxy", "mtablectl"])
      assert.ok(copied.some((c) => c.bin === bin), `copies ${bin}`);
    for (const { dir, bin } of copied) {
      const declared = [...read(`${dir}/meson.build`).matchAll(/executable\(\s*'([^']+)'/g)].map((m) => m[1]);
      assert.ok(declared.includes(bin), `${dir}/meson.build builds no '${bin}'`);
    }
    const entry = runtimeOps("ENTRYPOINT").concat(runtimeOps("CMD")).map((i) => i.args).join(" ");
    assert.match(entry, /mtable-proxy/, "the image runs mtable-proxy");
  });

  test("Dockerfile runs as a non-root user with a HEALTHCHECK on /healthz", () => {
    const user = runtimeOps("USER").at(-1);
    assert.ok(user, "a USER instruction in the runtime stage");
    const name = user.args.split(":")[0];
    assert.notEqual(name, "root");
    assert.notEqual(name, "0");
    assert.match(name, /^\d+$/, "a numeric user, which runAsNonRoot can check");

    const hc = runtimeOps("HEALTHCHECK").at(-1);
    assert.ok(hc, "a HEALTHCHECK");
    assert.doesNotMatch(hc.args, /^NONE\b/i);
    // https when the admin endpoint has TLS (MTABLE_ADMIN_TLS_CERT).
    assert.match(hc.args, /\bCMD\b.*http(\$\{MTABLE_ADMIN_TLS_CERT:\+s\})?:\/\/127\.0\.0\.1:[^/\s]+\/healthz\b/);

    const expose = runtimeOps("EXPOSE").flatMap((i) => shellWords(i.args));
    assert.ok(expose.includes("10002") && expose.includes("10090"), `EXPOSE ${expose}`);
  });

  test("a .dockerignore keeps build trees and node_modules out of the context", () => {
    const ignore = read(".dockerignore").split("\n").map((l) => l.trim());
    for (const want of ["build", "**/node_modules", ".git"]) assert.ok(ignore.includes(want), want);
  });

  test("every MTABLE_* variable used in docker/ is one mtable-proxy --help documents", { skip: noProxy }, () => {
    const documented = helpVariables();
    for (const f of ["docker/Dockerfile", "docker/compose.yaml", ...k8sFiles]) {
      for (const v of mentioned(read(f))) {
        assert.ok(documented.has(v), `${f} uses ${v}, which mtable-proxy --help does not document`);
      }
    }
  });

  test("docker/README.md describes every variable mtable-proxy --help documents", { skip: noProxy }, () => {
    const readme = read("docker/README.md");
    const missing = [...helpVariables()].filter((v) => !new RegExp(`\\b${v}\\b`).test(readme));
    assert.deepEqual(missing, [], "variables --help documents but docker/README.md does not");
  });

  describe("compose", () => {
    const doc = YAML.parseDocument(read("docker/compose.yaml"), { merge: true });
    const compose = doc.toJS({ maxAliasCount: 1000 });
    const services = compose?.services ?? {};
    const env = (name) => composeEnv(services[name] ?? {});

    test("parses, with the five services", () => {
      assert.deepEqual(doc.errors, []);
      assert.deepEqual(
        Object.keys(services).sort(),
        ["app", "authority", "new-azurite", "old-azurite", "sidecar"],
      );
    });

    test("the Azurites serve the table service in memory, without telemetry", () => {
      for (const name of ["old-azurite", "new-azurite"]) {
        const s = services[name];
        assert.match(s.image, /^mcr\.microsoft\.com\/azure-storage\/azurite(:|$)/);
        const cmd = Array.isArray(s.command) ? s.command : shellWords(s.command);
        assert.equal(cmd[0], "azurite-table");
        for (const flag of ["--disableTelemetry", "--inMemoryPersistence"]) assert.ok(cmd.includes(flag), flag);
        assert.equal(cmd[cmd.indexOf("--tableHost") + 1], "0.0.0.0");
      }
    });

    test("the proxies are built from docker/Dockerfile and reach both Azurites", () => {
      for (const name of ["authority", "sidecar"]) {
        const s = services[name];
        assert.ok(s.build, `${name} has a build`);
        assert.equal(resolve(dockerDir, s.build.context), repoRoot, `${name}: the context is the repository`);
        assert.equal(s.build.dockerfile, "docker/Dockerfile");
        const e = env(name);
        assert.match(e.MTABLE_OLD, /TableEndpoint=http:\/\/old-azurite:10002\/devstoreaccount1;?/);
        assert.match(e.MTABLE_NEW, /TableEndpoint=http:\/\/new-azurite:10002\/devstoreaccount1;?/);
        // The proxy refuses a non-loopback admin listener without a token.
        if (!isLoopback(e.MTABLE_ADMIN_LISTEN ?? ADMIN_DEFAULT)) {
          assert.ok(e.MTABLE_ADMIN_TOKEN, `${name}: admin beyond loopback needs MTABLE_ADMIN_TOKEN`);
        }
      }
    });

    test("the authority keeps its state in a file on a named volume", () => {
      const e = env("authority");
      const m = e.MTABLE_STATE_STORE.match(/^file:(\/.+)\/[^/]+$/);
      assert.ok(m, `MTABLE_STATE_STORE=${e.MTABLE_STATE_STORE}`);
      const mount = (services.authority.volumes ?? [])
        .map((v) => (typeof v === "string" ? { source: v.split(":")[0], target: v.split(":")[1] } : v))
        .find((v) => v.target === m[1]);
      assert.ok(mount, `a volume mounted at ${m[1]}`);
      assert.ok(mount.source in (compose.volumes ?? {}), `${mount.source} is a named volume`);
    });

    test("the sidecar follows the authority with the shared token", () => {
      const e = env("sidecar");
      const admin = env("authority").MTABLE_ADMIN_LISTEN ?? ADMIN_DEFAULT;
      assert.equal(e.MTABLE_CONFIG_ENDPOINT, `http://authority:${portOf(admin)}`);
      assert.equal(e.MTABLE_ADMIN_TOKEN, env("authority").MTABLE_ADMIN_TOKEN);
      assert.match(e.MTABLE_ADMIN_TOKEN, /^\$\{MTABLE_ADMIN_TOKEN(:?[?-].*)?\}$/, "from the environment or .env");
      assert.ok(isLoopback(e.MTABLE_LISTEN), "the table endpoint only for the app beside it");
    });

    test("the app shares the sidecar's network and talks to it on loopback", () => {
      const app = services.app;
      assert.equal(app.network_mode, "service:sidecar");
      assert.equal(resolve(dockerDir, app.build.context ?? app.build), join(dockerDir, "example-app"));
      const e = env("app");
      const listen = env("sidecar").MTABLE_LISTEN;
      assert.match(e.TABLE_CONNECTION_STRING, new RegExp(`TableEndpoint=http://${listen.replace(/\./g, "\\.")}/devstoreaccount1`));
    });

    test("healthchecks, and each service waits for the ones it needs to be healthy", () => {
      for (const [name, s] of Object.entries(services)) {
        if (name === "app") continue; // checks itself: it exits on mismatches
        assert.ok(s.healthcheck?.test, `${name} has a healthcheck`);
      }
      const needs = {
        authority: ["old-azurite", "new-azurite"],
        sidecar: ["authority"],
        app: ["sidecar"],
      };
      for (const [name, deps] of Object.entries(needs)) {
        for (const d of deps) {
          assert.equal(services[name].depends_on?.[d]?.condition, "service_healthy", `${name} -> ${d}`);
        }
      }
      const probe = (name) => JSON.stringify(services[name].healthcheck.test);
      assert.match(probe("authority"), /127\.0\.0\.1:10090\/healthz/);
      assert.match(probe("sidecar"), /127\.0\.0\.1:10090\/(healthz|readyz)/);
    });
  });

  describe("example app", () => {
    test("pins @azure/data-tables 13.3.2, locked, on node:20-slim", () => {
      const pkg = JSON.parse(read("docker/example-app/package.json"));
      assert.equal(pkg.dependencies["@azure/data-tables"], "13.3.2");
      const lock = JSON.parse(read("docker/example-app/package-lock.json"));
      assert.equal(lock.packages["node_modules/@azure/data-tables"].version, "13.3.2");
      const stages = dockerStages(read("docker/example-app/Dockerfile"));
      assert.match(stages.at(-1).from, /^node:20-slim\b/);
      assert.ok(stages.at(-1).instructions.some((i) => i.op === "USER" && !/^(root|0)\b/.test(i.args)));
    });
  });

  describe("kubernetes", () => {
    const docs = loadK8s();
    const of = (kind) => docs.filter((d) => d.kind === kind);
    const workloads = docs.filter((d) => podSpec(d));

    test("every manifest parses, with a Secret, the app's Deployment, the authority's StatefulSet and Services", () => {
      assert.ok(k8sFiles.length > 0);
      for (const kind of ["Secret", "Deployment", "StatefulSet", "Service"]) {
        assert.ok(of(kind).length > 0, `a ${kind}`);
      }
    });

    test("every Secret key the workloads reference exists; the values are placeholders", () => {
      const secrets = new Map(
        of("Secret").map((s) => [s.metadata.name, { ...(s.data ?? {}), ...(s.stringData ?? {}) }]),
      );
      for (const s of secrets.values()) {
        for (const [k, v] of Object.entries(s)) assert.match(String(v), /REPLACE-ME/, `${k} is a placeholder`);
      }
      let refs = 0;
      for (const w of workloads) {
        for (const c of k8sContainers(podSpec(w))) {
          for (const e of c.env ?? []) {
            const ref = e.valueFrom?.secretKeyRef;
            if (!ref) continue;
            refs++;
            assert.ok(secrets.has(ref.name), `${w.file} ${c.name}: no Secret '${ref.name}'`);
            assert.ok(ref.key in secrets.get(ref.name), `${w.file} ${c.name}: Secret '${ref.name}' has no key '${ref.key}'`);
          }
          for (const f of c.envFrom ?? []) {
            if (f.secretRef) assert.ok(secrets.has(f.secretRef.name), `${w.file}: no Secret '${f.secretRef.name}'`);
          }
        }
      }
      assert.ok(refs > 0, "the workloads take their secrets from a Secret");
    });

    test("every proxy container: probes on the admin port, token beyond loopback", () => {
      let proxies = 0;
      for (const w of workloads) {
        for (const c of k8sContainers(podSpec(w))) {
          if (!isProxy(c)) continue;
          proxies++;
          const env = k8sEnv(c);
          const admin = env.MTABLE_ADMIN_LISTEN?.value ?? ADMIN_DEFAULT;
          if (!isLoopback(admin)) assert.ok(env.MTABLE_ADMIN_TOKEN, `${c.name}: needs MTABLE_ADMIN_TOKEN`);
          const port = (p) => (typeof p === "number" ? p : (c.ports ?? []).find((x) => x.name === p)?.containerPort);
          for (const [probe, path] of [["startupProbe", "/healthz"], ["readinessProbe", "/readyz"], ["livenessProbe", "/healthz"]]) {
            const get = c[probe]?.httpGet;
            assert.ok(get, `${w.file} ${c.name}: ${probe} httpGet`);
            assert.equal(get.path, path, `${c.name} ${probe}`);
            assert.equal(port(get.port), portOf(admin), `${c.name} ${probe} on the admin port`);
          }
          assert.ok(!isLoopback(admin), `${c.name}: the kubelet's probes need the admin port beyond loopback`);
        }
      }
      assert.ok(proxies >= 2, "the authority and a sidecar");
    });

    test("every proxy's pod carries Prometheus scrape annotations for /metrics on the admin port", () => {
      let n = 0;
      for (const w of workloads) {
        const proxy = k8sContainers(podSpec(w)).find(isProxy);
        if (!proxy) continue;
        n++;
        const a = w.spec?.template?.metadata?.annotations ?? {};
        const admin = k8sEnv(proxy).MTABLE_ADMIN_LISTEN?.value ?? ADMIN_DEFAULT;
        assert.equal(a["prometheus.io/scrape"], "true", `${w.file}: prometheus.io/scrape`);
        assert.equal(Number(a["prometheus.io/port"]), portOf(admin), `${w.file}: prometheus.io/port`);
        assert.equal(a["prometheus.io/path"], "/metrics", `${w.file}: prometheus.io/path`);
      }
      assert.ok(n >= 2, "the authority and the app with its sidecar");
    });

    test("a PodDisruptionBudget keeps the authority from being evicted", () => {
      const authority = workloads.find((w) => {
        const p = k8sContainers(podSpec(w)).find(isProxy);
        return p && !k8sEnv(p).MTABLE_CONFIG_ENDPOINT && !k8sContainers(podSpec(w)).some((c) => !isProxy(c));
      });
      assert.ok(authority, "an authority workload");
      const labels = authority.spec.template.metadata.labels;
      const pdb = of("PodDisruptionBudget").find((b) =>
        Object.entries(b.spec?.selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v));
      assert.ok(pdb, "a PodDisruptionBudget selecting the authority's pods");
      assert.equal(pdb.apiVersion, "policy/v1");
      // One replica must always stay; a single one may not be evicted at all.
      const replicas = authority.spec.replicas ?? 1;
      const keeps = pdb.spec.minAvailable !== undefined
        ? pdb.spec.minAvailable >= 1 && pdb.spec.minAvailable <= replicas
        : pdb.spec.maxUnavailable < replicas;
      assert.ok(keeps, `with ${replicas} replica(s) one must stay: ${JSON.stringify(pdb.spec)}`);
      if (replicas === 1) assert.ok(pdb.spec.minAvailable === 1 || pdb.spec.maxUnavailable === 0);
    });

    test("every container: resources, and runs as non-root", () => {
      for (const w of workloads) {
        const spec = podSpec(w);
        for (const c of k8sContainers(spec)) {
          assert.ok(c.resources?.requests && c.resources?.limits, `${c.name}: requests and limits`);
          const nonRoot = c.securityContext?.runAsNonRoot ?? spec.securityContext?.runAsNonRoot;
          assert.equal(nonRoot, true, `${w.file} ${c.name}: runAsNonRoot`);
          const uid = c.securityContext?.runAsUser ?? spec.securityContext?.runAsUser;
          if (uid !== undefined) assert.notEqual(uid, 0);
        }
      }
    });

    test("an app with a sidecar that follows the authority's replicas", () => {
      const withSidecar = workloads.filter((w) => {
        const cs = k8sContainers(podSpec(w));
        return cs.some((c) => k8sEnv(c).MTABLE_CONFIG_ENDPOINT) && cs.some((c) => !isProxy(c));
      });
      assert.ok(withSidecar.length > 0, "a workload with an app container and an mtable sidecar");
      for (const w of withSidecar) {
        const spec = podSpec(w);
        const sidecar = k8sContainers(spec).find((c) => k8sEnv(c).MTABLE_CONFIG_ENDPOINT);
        const endpoints = k8sEnv(sidecar).MTABLE_CONFIG_ENDPOINT.value.split(",");
        for (const endpoint of endpoints) {
          // A Service (http://svc:port) or a StatefulSet pod behind its
          // headless Service (http://pod-N.svc:port).
          const m = endpoint.match(/^http:\/\/(?:([a-z0-9-]+)-(\d+)\.)?([a-z0-9-]+)(?:\.[a-z0-9.-]+)?:(\d+)$/);
          assert.ok(m, `MTABLE_CONFIG_ENDPOINT entry ${endpoint}`);
          const svc = of("Service").find((x) => x.metadata.name === m[3]);
          assert.ok(svc, `a Service named ${m[3]}`);
          assert.ok(svc.spec.ports.some((p) => p.port === Number(m[4])), `${m[3]} serves port ${m[4]}`);
          // The Service selects the authority: a proxy without a config endpoint.
          const authority = workloads.find((a) => {
            const labels = a.spec?.template?.metadata?.labels ?? a.metadata?.labels ?? {};
            return Object.entries(svc.spec.selector).every(([k, v]) => labels[k] === v);
          });
          assert.ok(authority, `${m[3]} selects a workload`);
          const ac = k8sContainers(podSpec(authority)).find(isProxy);
          assert.equal(k8sEnv(ac).MTABLE_CONFIG_ENDPOINT, undefined, "the authority follows nobody");
          if (m[1]) {
            assert.equal(authority.kind, "StatefulSet", `${endpoint} names a StatefulSet's pod`);
            assert.equal(authority.metadata.name, m[1]);
            assert.equal(authority.spec.serviceName, m[3], "through its headless Service");
            assert.ok(Number(m[2]) < (authority.spec.replicas ?? 1), `${endpoint}: a replica that exists`);
            assert.equal(svc.spec.clusterIP, "None");
          }
        }
        // The sidecar serves the app on the pod's loopback.
        assert.ok(isLoopback(k8sEnv(sidecar).MTABLE_LISTEN?.value ?? "127.0.0.1:10002"));
      }
    });

    test("the authority replicas share a durable store and advertise their own addresses", () => {
      const claims = new Set(of("PersistentVolumeClaim").map((p) => p.metadata.name));
      let found = 0;
      for (const w of workloads) {
        const spec = podSpec(w);
        for (const c of k8sContainers(spec)) {
          const env = k8sEnv(c);
          if (!isProxy(c) || env.MTABLE_CONFIG_ENDPOINT) continue;
          found++;
          const store = env.MTABLE_STATE_STORE?.value;
          assert.notEqual(store, "memory", "a durable state store");
          const replicas = w.spec.replicas ?? 1;
          if (store?.startsWith("file:")) {
            // A file is shared by nobody: one writer, on a claim.
            assert.equal(replicas, 1, "one writer of the state file");
            const dir = store.slice(5).replace(/\/[^/]+$/, "");
            const mount = (c.volumeMounts ?? []).find((v) => v.mountPath === dir);
            const vol = (spec.volumes ?? []).find((v) => v.name === mount?.name);
            assert.ok(claims.has(vol?.persistentVolumeClaim?.claimName), "the file is on a declared claim");
          }
          if (replicas > 1) {
            assert.match(env.MTABLE_REPLICA_ID?.value ?? "", /\$\(POD_NAME\)/, "each replica names itself");
            assert.match(env.MTABLE_ADVERTISE_URL?.value ?? "", /^http:\/\/\$\(POD_NAME\)\.[a-z0-9-]+:\d+$/,
              "each replica advertises its own pod address");
          }
        }
      }
      assert.ok(found > 0, "an authority workload");
    });
  });
});
