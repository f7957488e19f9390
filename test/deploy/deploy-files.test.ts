/**
 * The deploy/ files cannot be run here (no Docker, no Kubernetes on the test
 * machines): they are checked statically. The DaemonSet is parsed as YAML
 * (python3-yaml) and held to what the README promises; the Prometheus
 * configuration goes through `promtool check config` (Debian's promtool has
 * no Kubernetes discovery, so its static job is checked on its own and the
 * full file must fail only on that); the Dockerfile's paths and Node version
 * must match the repository.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { skipUnlessTool } from "../support/kernel.js";

const root = new URL("../../../", import.meta.url);
const repositoryFile = (path: string) => new URL(path, root);

/** YAML documents as JSON, through python3-yaml's safe loader. */
function parseYaml(path: string): unknown[] {
  const result = spawnSync("python3", ["-c", "import sys, json, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))", path], { encoding: "utf8" });
  assert.equal(result.status, 0, `YAML parse of ${path}: ${result.stderr}`);
  return JSON.parse(result.stdout) as unknown[];
}

const pythonYaml = spawnSync("python3", ["-c", "import yaml"]).status === 0;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

test("deploy/kubernetes/daemonset.yaml: valid YAML; no privileged container; the capabilities, mounts and scrape annotations the README names", (t) => {
  if (skipUnlessTool(t, pythonYaml, "python3-yaml is not installed (apt-get install python3-yaml)")) return;
  const documents = parseYaml(new URL("deploy/kubernetes/daemonset.yaml", root).pathname) as Json[];
  const daemonSet = documents.find((document) => document?.kind === "DaemonSet");
  assert.ok(daemonSet, "a DaemonSet document");
  assert.equal(daemonSet.apiVersion, "apps/v1");
  assert.deepEqual(daemonSet.spec.selector.matchLabels, daemonSet.spec.template.metadata.labels, "the selector matches the pod labels");
  const pod = daemonSet.spec.template.spec;
  const [container] = pod.containers;
  assert.equal(pod.containers.length, 1);
  assert.notEqual(container.securityContext.privileged, true, "no privileged: true");
  assert.deepEqual(container.securityContext.capabilities.drop, ["ALL"]);
  for (const capability of ["BPF", "PERFMON", "NET_ADMIN"]) assert.ok(container.securityContext.capabilities.add.includes(capability), capability);
  // Every mount names a volume, and the kernel interfaces netbpf uses are mounted from the host.
  const volumes = new Map<string, Json>(pod.volumes.map((volume: Json) => [volume.name, volume]));
  const mounts = new Map<string, string>();
  for (const mount of container.volumeMounts) {
    assert.ok(volumes.has(mount.name), `volume ${mount.name} exists`);
    mounts.set(mount.mountPath, volumes.get(mount.name).hostPath?.path);
  }
  for (const path of ["/sys/fs/bpf", "/sys/kernel/tracing", "/sys/fs/cgroup"]) assert.equal(mounts.get(path), path, `${path} from the host`);
  // Prometheus scrapes the port serve listens on, where /healthz answers.
  const annotations = daemonSet.spec.template.metadata.annotations;
  assert.equal(annotations["prometheus.io/scrape"], "true");
  const listen = container.args[container.args.indexOf("--listen") + 1] as string;
  assert.equal(container.args[0], "serve");
  assert.equal(listen.split(":").pop(), annotations["prometheus.io/port"]);
  assert.equal(String(container.ports[0].containerPort), annotations["prometheus.io/port"]);
  assert.equal(container.readinessProbe.httpGet.path, "/healthz");
  // The options given are ones `netbpf serve` has.
  const help = spawnSync(process.execPath, [new URL("dist/src/cli/netbpf.cjs", root).pathname, "serve", "--help"], { encoding: "utf8" });
  for (const option of container.args.filter((argument: string) => argument.startsWith("--"))) assert.match(help.stdout, new RegExp(`${option}\\b`), `serve has ${option}`);
});

test("deploy/prometheus/prometheus.yml: promtool accepts the static job; the Kubernetes job fails only for want of Kubernetes discovery in Debian's build", (t) => {
  const promtool = spawnSync("promtool", ["--version"]).status === 0;
  if (skipUnlessTool(t, promtool, "promtool is not installed (apt-get install prometheus)")) return;
  if (skipUnlessTool(t, pythonYaml, "python3-yaml is not installed (apt-get install python3-yaml)")) return;
  const path = new URL("deploy/prometheus/prometheus.yml", root).pathname;
  const [config] = parseYaml(path) as Json[];
  const jobs = config.scrape_configs as Json[];
  assert.deepEqual(jobs.map((job) => job.job_name).sort(), ["netbpf", "netbpf-static"]);
  const kubernetes = jobs.find((job) => job.job_name === "netbpf");
  // The relabelling reads the annotations the DaemonSet sets.
  const labels = kubernetes.relabel_configs.flatMap((rule: Json) => rule.source_labels ?? []);
  for (const annotation of ["scrape", "port", "path"]) assert.ok(labels.includes(`__meta_kubernetes_pod_annotation_prometheus_io_${annotation}`), annotation);
  const directory = mkdtempSync(join(tmpdir(), "netbpf-deploy-"));
  try {
    const staticOnly = join(directory, "static.yml");
    // JSON is YAML: the static job alone, as promtool reads it.
    writeFileSync(staticOnly, JSON.stringify({ ...config, scrape_configs: jobs.filter((job) => job.job_name !== "netbpf") }));
    const checked = spawnSync("promtool", ["check", "config", staticOnly], { encoding: "utf8" });
    assert.equal(checked.status, 0, `promtool check config (static job): ${checked.stdout}${checked.stderr}`);
    const full = spawnSync("promtool", ["check", "config", path], { encoding: "utf8" });
    if (full.status !== 0) {
      const errors = `${full.stdout}${full.stderr}`.split("\n").filter((line) => /field .* not found/.test(line));
      assert.ok(errors.length > 0 && errors.every((line) => /kubernetes_sd_configs/.test(line)), `promtool check config: ${full.stdout}${full.stderr}`);
      t.diagnostic("this promtool has no Kubernetes service discovery: the Kubernetes job was checked by structure only");
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("deploy/Dockerfile: the files it copies exist, its entry point is the CLI the build produces, its Node is the one package.json asks for", () => {
  const dockerfile = readFileSync(repositoryFile("deploy/Dockerfile"), "utf8");
  const instructions = dockerfile.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("#"));
  const froms = instructions.filter((line) => line.startsWith("FROM "));
  assert.equal(froms.length, 2, "a build stage and a run stage");
  const engines = (JSON.parse(readFileSync(repositoryFile("package.json"), "utf8")) as { engines?: { node?: string } }).engines?.node ?? ">=20";
  const major = Number(/(\d+)/.exec(engines)![1]);
  for (const from of froms) assert.ok(Number(/node:(\d+)/.exec(from)?.[1]) >= major, `${from} satisfies node ${engines}`);
  for (const line of instructions.filter((line) => line.startsWith("COPY ") && !line.includes("--from="))) {
    const sources = line.replace(/^COPY\s+/, "").split(/\s+/).slice(0, -1);
    for (const source of sources) assert.ok(existsSync(repositoryFile(source)), `${line}: ${source} exists`);
  }
  const entry = /ENTRYPOINT\s+(\[.*\])/.exec(dockerfile);
  assert.ok(entry, "an ENTRYPOINT in exec form");
  const [command, script] = JSON.parse(entry[1]!) as string[];
  assert.equal(command, "node");
  assert.match(script!, /^\/netbpf\/dist\/src\/cli\/netbpf\.cjs$/);
  assert.ok(existsSync(repositoryFile("dist/src/cli/netbpf.cjs")), "npm run build produces the entry point");
  assert.match(dockerfile, /COPY --from=build \/netbpf\/dist\/src \.\/dist\/src/);
  assert.match(dockerfile, /npm prune --omit=dev/);
});
