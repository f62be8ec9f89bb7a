#!/usr/bin/env node
// What generated Node does: fs, child_process (exec, fork), worker_threads,
// a loopback http server, os.networkInterfaces(), files in the working dir.
"use strict";
const assert = require("assert");
const cp = require("child_process");
const fs = require("fs");
const http = require("http");
const os = require("os");
const { Worker, isMainThread, parentPort } = require("worker_threads");

if (process.argv[2] === "child") {
  process.on("message", (m) => { process.send(m * 2); process.exit(0); });
} else if (!isMainThread) {
  parentPort.postMessage(21 * 2);
} else {
  (async () => {
    fs.writeFileSync("results.json", JSON.stringify({ ok: true }));
    assert.strictEqual(JSON.parse(fs.readFileSync("results.json")).ok, true);
    fs.mkdirSync("/tmp/d/e", { recursive: true });
    assert.strictEqual(cp.execSync("echo hi").toString().trim(), "hi");
    assert.strictEqual(cp.spawnSync("sh", ["-c", "exit 3"]).status, 3);
    const forked = await new Promise((res, rej) => {
      const c = cp.fork(__filename, ["child"]);
      c.on("message", res);
      c.on("error", rej);
      c.send(5);
    });
    assert.strictEqual(forked, 10);
    const fromWorker = await new Promise((res, rej) => {
      const w = new Worker(__filename);
      w.on("message", res);
      w.on("error", rej);
    });
    assert.strictEqual(fromWorker, 42);
    assert.ok("lo" in os.networkInterfaces());
    os.hostname(); os.userInfo();
    const server = http.createServer((req, res) => res.end("pong"));
    await new Promise((res) => server.listen(0, "127.0.0.1", res));
    const body = await new Promise((res, rej) => {
      http.get({ host: "127.0.0.1", port: server.address().port }, (r) => {
        let d = ""; r.on("data", (c) => (d += c)); r.on("end", () => res(d));
      }).on("error", rej);
    });
    assert.strictEqual(body, "pong");
    server.close();
    await fs.promises.writeFile("/tmp/async.txt", "x");
    console.log("ok");
  })().catch((e) => { console.error(e); process.exit(1); });
}
