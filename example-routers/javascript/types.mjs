// node types.mjs OUT_DIR: writes the TypeScript declarations of the world
// `routing` (wit/router.wit) for a router, the guest side, into OUT_DIR:
// routing.d.ts and interfaces/dbroute-router-{host,router,types}.d.ts,
// which declare the modules 'dbroute:router/host@1.0.0' (log),
// 'dbroute:router/router@1.0.0' (what `router` implements) and
// 'dbroute:router/types@1.0.0' (Operation, Decision, Hint...).
//
// It runs what `jco guest-types` runs. jco 1.35's command cannot read the
// WIT: its type generator is itself a component, run on a WASI shim
// (preview2-shim 0.26) that preopens no folder, so every path it opens is
// missing ("No such file or directory (os error 44)"). Here the shim the
// generator uses is given the WIT's folder first.
import { mkdir, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const out = process.argv[2];
if (!out) {
  console.error("usage: node types.mjs OUT_DIR");
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const witDir = resolve(here, "../../wit");

const transpile = createRequire(join(here, "package.json")).resolve("@bytecodealliance/jco-transpile");
// The shim module the generator imports (the same file, so the same instance).
const shim = createRequire(transpile).resolve("@bytecodealliance/preview2-shim/filesystem");
const { _setPreopens } = await import(pathToFileURL(shim).href);
const { generateGuestTypes } = await import(pathToFileURL(transpile).href);

_setPreopens({ [witDir]: witDir });
const files = await generateGuestTypes(join(witDir, "router.wit"), { worldName: "routing", outDir: "" });
for (const [name, bytes] of Object.entries(files)) {
  const path = join(out, name);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, bytes);
}
console.log(`${resolve(out)}/routing.d.ts`);
