// Builds the playground into ../gql/static/ (committed, so Mandate serves it without Node):
//   playground.js, playground.css          the bundle, minified
//   THIRD-PARTY-LICENSES.txt               the licences of the npm packages bundled into it
//   SOURCE.sha256                          what it was built from (a test compares it with the source)
// Run `make playground` (or `npm ci && npm run build` here) after changing src/ or package.json.
// Fails when the output names an absolute http(s) address in CSS, which a browser would fetch.
import { createHash } from "node:crypto";
import { build } from "esbuild";
import { readFileSync, readdirSync, writeFileSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "gql", "static");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const result = await build({
  absWorkingDir: here,
  entryPoints: { playground: "src/index.jsx" },
  outdir: out,
  bundle: true,
  minify: true,
  format: "iife",
  target: ["chrome111", "firefox111", "safari16.4"],
  jsx: "automatic",
  define: { "process.env.NODE_ENV": '"production"' },
  legalComments: "none", // the licences go to THIRD-PARTY-LICENSES.txt, whole
  charset: "utf8",
  metafile: true,
  logLevel: "warning",
});

// One licence section per npm package whose code is in the bundle.
const packages = new Map();
for (const input of Object.keys(result.metafile.inputs)) {
  const match = input.match(/^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//);
  if (match) packages.set(match[1], null);
}
const sections = [...packages.keys()].sort().map((folder) => {
  const meta = JSON.parse(readFileSync(join(here, folder, "package.json"), "utf8"));
  const file = readdirSync(join(here, folder)).find((name) => /^(licen[cs]e|copying)/i.test(name));
  const text = file ? readFileSync(join(here, folder, file), "utf8").trim() : `License: ${meta.license}`;
  return `${meta.name}@${meta.version} (${meta.license})\n\n${text}\n`;
});
const divider = `\n${"-".repeat(78)}\n\n`;
writeFileSync(
  join(out, "THIRD-PARTY-LICENSES.txt"),
  "Packages bundled into playground.js and playground.css (built by playground/build.mjs).\n" +
    divider + sections.join(divider),
);

// CSS fetches what url() and @import name: esbuild inlines every local @import, so one left is
// an outside address, and a url() may only be a data: URL.
const css = readFileSync(join(out, "playground.css"), "utf8");
const outside = css.match(/@import[^;]*|url\(\s*["']?(?!data:)[^)]*/gi) ?? [];
if (outside.length) {
  console.error("playground.css loads from outside Mandate:", outside);
  process.exit(1);
}
// The sources, hashed as tests/test_browser.py hashes them: a stale build fails the suite.
const sources = ["build.mjs", "package.json", "package-lock.json",
  ...readdirSync(join(here, "src")).sort().map((name) => `src/${name}`)];
const hash = createHash("sha256");
for (const name of sources) hash.update(`${name}\0`).update(readFileSync(join(here, name))).update("\0");
writeFileSync(join(out, "SOURCE.sha256"), `${hash.digest("hex")}\n`);

for (const name of ["playground.js", "playground.css"]) {
  if (!existsSync(join(out, name))) throw new Error(`${name} was not built`);
}
console.log(`built ${[...packages.keys()].length} packages into ${out}`);
