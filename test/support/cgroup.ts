import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { cgroup2Mount } from "../../src/sys/cgroup.js";

/** A child cgroup with a unique name; processes run in it with run(); destroy() empties and removes it. */
export class TestCgroup {
  readonly path: string;
  readonly #root: string;

  private constructor(root: string, name: string) {
    this.#root = root;
    this.path = join(root, name);
  }

  static create(prefix = "link"): TestCgroup {
    const root = cgroup2Mount();
    const cgroup = new TestCgroup(root, `nb-${prefix}-${process.pid}-${randomBytes(3).toString("hex")}`);
    mkdirSync(cgroup.path);
    return cgroup;
  }

  /** Runs a Node ES module script in a process that joins this cgroup before it starts; resolves to its stdout. */
  run(script: string): Promise<string> {
    const shell = `echo $$ > '${join(this.path, "cgroup.procs")}' && exec '${process.execPath}' --input-type=module -e "$0"`;
    return new Promise((resolve, reject) => {
      execFile("/bin/sh", ["-c", shell, script], { timeout: 20_000 }, (error, stdout, stderr) => {
        if (error) reject(new Error(`child in ${this.path} failed: ${error.message}\n${stderr}`));
        else resolve(stdout);
      });
    });
  }

  async destroy(): Promise<void> {
    if (!existsSync(this.path)) return;
    for (let attempt = 0; attempt < 50; attempt++) {
      for (const pid of readFileSync(join(this.path, "cgroup.procs"), "utf8").split("\n").filter(Boolean)) {
        try {
          writeFileSync(join(this.#root, "cgroup.procs"), pid);
        } catch {
          // It exited meanwhile.
        }
      }
      try {
        rmdirSync(this.path);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EBUSY") throw error;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    throw new Error(`could not remove cgroup ${this.path}`);
  }
}
