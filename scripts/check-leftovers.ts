/**
 * Run after the whole suite (npm test): fails, naming them, if tests left
 * anything of ours behind — pins, namespaces, veths, qdiscs, XDP or tcx
 * programs on lo, cgroups. Silent when all is clean.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { bpffsPath, cgroup2Path } from "../src/sys/mounts.js";
import { listLinks } from "../src/core/loaded-objects.js";

const left: string[] = [];
const run = (command: string, args: string[]) => {
  try {
    return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return "";
  }
};

const pins = readdirSync(bpffsPath()).filter((name) => name.startsWith("netbpf-test-") || name.startsWith("nb-"));
if (pins.length) left.push(`pins in ${bpffsPath()}: ${pins.join(" ")}`);

const namespaces = run("ip", ["netns", "list"]).split("\n").map((l) => l.split(" ")[0]!).filter((n) => n.startsWith("nb-"));
if (namespaces.length) left.push(`network namespaces: ${namespaces.join(" ")}`);

const links = run("ip", ["-o", "link", "show"]).split("\n").map((l) => l.split(": ")[1]?.split("@")[0] ?? "").filter((n) => n.startsWith("nb"));
if (links.length) left.push(`interfaces: ${links.join(" ")}`);

if (/clsact/.test(run("tc", ["qdisc", "show", "dev", "lo"]))) left.push("a clsact qdisc on lo");
if (/prog\/xdp|xdpgeneric/.test(run("ip", ["-d", "link", "show", "dev", "lo"]))) left.push("an XDP program on lo");
const tcxOnLo = listLinks().filter((l) => (l.type === 11 || l.type === 6) && l.ifindex === 1);
if (tcxOnLo.length) left.push(`tcx/XDP links on lo: ${tcxOnLo.map((l) => l.id).join(" ")}`);

const cgroupRoot = cgroup2Path();
if (existsSync(cgroupRoot)) {
  const cgroups = readdirSync(cgroupRoot).filter((n) => n.startsWith("nb-"));
  if (cgroups.length) left.push(`cgroups in ${cgroupRoot}: ${cgroups.join(" ")}`);
}

if (left.length) {
  process.stderr.write(`the test suite left things behind:\n${left.map((l) => `  - ${l}`).join("\n")}\n`);
  process.exit(1);
}
