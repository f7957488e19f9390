/**
 * A real ClickHouse server for tests: Debian's `clickhouse-server` (18.16 in
 * Debian 12) started with its own configuration, data folder and HTTP port
 * on 127.0.0.1, and stopped (by its PID) with its folder removed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";

/** The server binary, or undefined when it is not installed. */
export function clickHouseServerPath(): string | undefined {
  const folders = [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/usr/bin"];
  for (const folder of folders) {
    const path = join(folder, "clickhouse-server");
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A free TCP port on 127.0.0.1 (bound, then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface ClickHouseTestServer {
  url: string;
  port: number;
  folder: string;
  child: ChildProcess;
  /** Stops the server (SIGTERM, then SIGKILL after 10 s) and removes its folder. */
  stop(): Promise<void>;
}

/** Starts a server on `port` (a free one by default) and waits until it answers /ping (at most `timeoutMilliseconds`). */
export async function startClickHouse(options: { port?: number; timeoutMilliseconds?: number } = {}): Promise<ClickHouseTestServer> {
  const binary = clickHouseServerPath();
  if (binary === undefined) throw new Error("clickhouse-server is not installed");
  const port = options.port ?? (await freePort());
  const folder = mkdtempSync(join(tmpdir(), "netbpf-clickhouse-"));
  writeFileSync(join(folder, "config.xml"), `<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>${folder}/server.log</log><errorlog>${folder}/error.log</errorlog><console>0</console></logger>
  <http_port>${port}</http_port>
  <listen_host>127.0.0.1</listen_host>
  <path>${folder}/data/</path>
  <tmp_path>${folder}/tmp/</tmp_path>
  <user_files_path>${folder}/user_files/</user_files_path>
  <format_schema_path>${folder}/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>5368709</mark_cache_size>
  <uncompressed_cache_size>8589934</uncompressed_cache_size>
</yandex>
`);
  writeFileSync(join(folder, "users.xml"), `<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
`);
  const child = spawn(binary, [`--config-file=${join(folder, "config.xml")}`], { cwd: folder, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (!stopped) {
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
    }
    rmSync(folder, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.timeoutMilliseconds ?? 60_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`clickhouse-server exited at start: ${stderr.trim().split("\n").slice(-3).join(" | ")}`);
    }
    try {
      const response = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(2000) });
      if (response.ok && (await response.text()).startsWith("Ok")) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error("clickhouse-server did not answer /ping in time");
    }
    await delay(100);
  }
  return { url, port, folder, child, stop };
}
