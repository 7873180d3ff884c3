#!/usr/bin/env node
/**
 * `pnpm package`: builds dist/kiosk-fleet-hub_<version>+node<N>_<arch>.deb and
 * dist/kiosk-fleet-agent_<version>+node<N>_<arch>.deb from a clone (after scripts/setup.sh), with dpkg-deb, and checks
 * them with lintian when it is installed. N is the Node major the packages are for: this machine's by default;
 * `--node 22` (or 24, ...) fetches that line's official build (npm's `node-linux-<arch>` package, into a cache
 * outside the workspace: $KF_NODE_CACHE, else ~/.cache/kiosk-fleet/node-lines) and compiles better-sqlite3 against
 * its headers in a scratch copy; `--node-dir <dir>` does the same with a Node already at hand (a dir with
 * include/node, as an official tarball or /usr has; its bin/node, if there, checks the build loads). The Node line
 * is in the version (`0.1.0+node22`), so packages of different lines neither collide as files nor compare equal,
 * and apt sees a newer line as an upgrade of the same release.
 *
 * Nothing is compiled or bundled on the machine that installs them: each package carries its program as prebuilt
 * JavaScript (esbuild), better-sqlite3's native module as built here (so the package is for this machine's Node
 * major and architecture: `Depends: nodejs (>= N), nodejs (<< N+1)`), and for the hub the dashboard's build and the
 * drizzle migrations. Files under packaging/deb/ (maintainer scripts, env templates, unit of the hub) and
 * agent/packaging/kiosk-fleet-agent.service are copied as they are.
 *
 * Layout of /usr/lib/kiosk-fleet-hub (mirrors the repository, because the hub finds its migrations and the dashboard
 * relative to its own file: hub/src/store/db.ts MIGRATIONS_DIR, hub/src/config.ts KF_DASHBOARD_DIR's default):
 *   hub/dist/kiosk-fleet.mjs   the hub, one file      drizzle/             migrations
 *   dashboard/dist/            the dashboard build    node_modules/better-sqlite3 (+ bindings, file-uri-to-path)
 * /usr/lib/kiosk-fleet-agent: bin/kiosk-fleet-agent.mjs, dist/ (the agent's own bundle, agent/scripts/build.mjs: its
 * rarely used parts are chunks loaded on use, which is what keeps an idle agent small), boot-guard.mjs, node_modules/.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import zlib from 'node:zlib';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.resolve(process.env.KF_PACKAGE_OUT ?? path.join(ROOT, 'dist'));
const STAGE = path.join(OUT, 'stage');
const DEB = path.join(ROOT, 'packaging', 'deb');
const ARCH = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
const MAINTAINER = process.env.KF_DEB_MAINTAINER ?? 'Kiosk Fleet maintainers <kiosk-fleet@example.org>';
const say = (msg) => process.stderr.write(`package: ${msg}\n`);

const requireFromAgent = createRequire(path.join(ROOT, 'agent', 'package.json'));
const esbuild = await import(pathToFileURL(requireFromAgent.resolve('esbuild')).href);
const BETTER_SQLITE_DIR = path.dirname(requireFromAgent.resolve('better-sqlite3/package.json'));

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}`);
}

function option(name) {
  const i = process.argv.indexOf(name);
  if (i < 0) return undefined;
  const v = process.argv[i + 1];
  if (!v || v.startsWith('--')) throw new Error(`${name} needs a value`);
  return v;
}

/** The Node line the packages are for: its major and, for another line than this process's, its headers' dir. */
function targetNode() {
  const line = option('--node');
  const dir = option('--node-dir');
  if (line !== undefined && !/^\d+$/.test(line)) throw new Error(`--node takes a major version (20, 22, 24), not ${line}`);
  if (dir !== undefined) return { ...nodeAt(path.resolve(dir)), dir: path.resolve(dir) };
  if (line === undefined || Number(line) === Number(process.versions.node.split('.')[0])) {
    return { major: Number(process.versions.node.split('.')[0]), version: process.versions.node, dir: null };
  }
  return fetchNode(line);
}

/** The version a Node dir's headers declare (include/node/node_version.h). */
function nodeAt(dir) {
  const header = path.join(dir, 'include', 'node', 'node_version.h');
  if (!fs.existsSync(header)) throw new Error(`${dir} has no include/node/node_version.h: not a Node install or tarball`);
  const h = fs.readFileSync(header, 'utf8');
  const num = (k) => new RegExp(`#define ${k} (\\d+)`).exec(h)?.[1];
  const version = `${num('NODE_MAJOR_VERSION')}.${num('NODE_MINOR_VERSION')}.${num('NODE_PATCH_VERSION')}`;
  return { major: Number(num('NODE_MAJOR_VERSION')), version };
}

const CACHE = path.resolve(process.env.KF_NODE_CACHE ?? path.join(os.homedir(), '.cache', 'kiosk-fleet', 'node-lines'));

/**
 * The newest official Node of a line, from the npm registry's `node-linux-<arch>` package (the release tarball's
 * bin/node and include/node), unpacked once into the cache. A registry that does not answer is an error: a package
 * for a line must never quietly become one for this machine's Node.
 */
function fetchNode(line) {
  const npmArch = { amd64: 'x64', arm64: 'arm64', ppc64el: 'ppc64le', s390x: 's390x' }[ARCH];
  if (!npmArch) throw new Error(`no official Node build for ${ARCH}: use --node-dir`);
  const spec = `node-linux-${npmArch}@${line}`;
  const view = spawnSync('npm', ['view', spec, 'version', '--json'], { encoding: 'utf8' });
  if (view.status !== 0) throw new Error(`npm view ${spec} failed (is the npm registry reachable?):\n${view.stderr}`);
  const key = (v) => v.split('.').map(Number);
  const newer = (x, y) => key(x).reduce((c, n, i) => c || n - key(y)[i], 0);
  const version = [JSON.parse(view.stdout)].flat().sort(newer).at(-1);
  fs.mkdirSync(CACHE, { recursive: true });
  const dir = path.join(CACHE, `node-v${version}-linux-${npmArch}`);
  if (!fs.existsSync(path.join(dir, 'bin', 'node'))) {
    say(`fetching ${spec} (${version}) into ${CACHE}`);
    const tmp = fs.mkdtempSync(path.join(CACHE, '.fetch-'));
    try {
      run('npm', ['pack', `node-linux-${npmArch}@${version}`, '--pack-destination', tmp, '--silent'], { stdio: ['ignore', 'ignore', 'inherit'] });
      const tgz = fs.readdirSync(tmp).find((f) => f.endsWith('.tgz'));
      run('tar', ['xzf', path.join(tmp, tgz), '-C', tmp]);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.renameSync(path.join(tmp, 'package'), dir);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  return { ...nodeAt(dir), dir };
}

/**
 * better_sqlite3.node for the target Node: the workspace's own build for this process's Node (the tests load that
 * one); for another line a build in a scratch copy under the cache, against that Node's headers (node-gyp via
 * `npm run build-release`, npm_config_nodedir), kept there for the next run: about 90 s on an idle 2-core machine,
 * 4 min on a loaded one (sqlite3.c is one large file).
 */
function nativeModule(node) {
  if (!node.dir) return path.join(BETTER_SQLITE_DIR, 'build', 'Release', 'better_sqlite3.node');
  const bsVersion = JSON.parse(fs.readFileSync(path.join(BETTER_SQLITE_DIR, 'package.json'), 'utf8')).version;
  const scratch = path.join(CACHE, `better-sqlite3-${bsVersion}-node-v${node.version}-${ARCH}`);
  const built = path.join(scratch, 'build', 'Release', 'better_sqlite3.node');
  if (!fs.existsSync(built)) {
    say(`compiling better-sqlite3 ${bsVersion} for Node ${node.version} in ${scratch}`);
    fs.rmSync(scratch, { recursive: true, force: true });
    for (const f of ['package.json', 'binding.gyp', 'src', 'deps', 'lib', 'LICENSE']) copy(path.join(BETTER_SQLITE_DIR, f), path.join(scratch, f));
    const started = Date.now();
    // the compiler's warnings (node.h's casts, sqlite3.c) only matter when the build fails
    const r = spawnSync('npm', ['run', 'build-release', '--silent'], {
      cwd: scratch,
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
      env: { ...process.env, npm_config_nodedir: node.dir },
    });
    if (r.status !== 0) {
      fs.rmSync(path.join(scratch, 'build'), { recursive: true, force: true });
      const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').filter((l) => /error|Error|ERR!/.test(l));
      throw new Error(`better-sqlite3 ${bsVersion} does not compile for Node ${node.version} (exit ${r.status ?? r.signal ?? r.error?.message}):\n${out.slice(0, 40).join('\n')}`);
    }
    say(`compiled in ${Math.round((Date.now() - started) / 1000)} s`);
  }
  // the build must load in the Node it is for (a wrong ABI fails here, not on a kiosk)
  const nodeBin = path.join(node.dir, 'bin', 'node');
  if (fs.existsSync(nodeBin)) {
    const check = `const D = require(${JSON.stringify(path.join(BETTER_SQLITE_DIR, 'lib', 'index.js'))}); new D(':memory:', { nativeBinding: ${JSON.stringify(built)} }).prepare('select 1').get();`;
    const r = spawnSync(nodeBin, ['-e', check], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`the module built for Node ${node.version} does not load in ${nodeBin}:\n${r.stderr}`);
  }
  return built;
}

const NODE = targetNode();
const NODE_MAJOR = NODE.major;
const VERSION = `${JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version}+node${NODE_MAJOR}`;
const NATIVE = nativeModule(NODE);

function copy(from, to, mode) {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.cpSync(from, to, { recursive: true, dereference: true });
  if (mode !== undefined) fs.chmodSync(to, mode);
}

function write(file, text, mode = 0o644) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  fs.chmodSync(file, mode);
}

/** better-sqlite3 in its package layout (it loads its .node through `bindings`), stripped of build leftovers. */
function copyBetterSqlite(destNodeModules) {
  const pkgDir = BETTER_SQLITE_DIR;
  const req = createRequire(path.join(pkgDir, 'package.json'));
  const bindingsDir = path.dirname(req.resolve('bindings/package.json'));
  const furiDir = path.dirname(createRequire(path.join(bindingsDir, 'package.json')).resolve('file-uri-to-path/package.json'));
  const dest = path.join(destNodeModules, 'better-sqlite3');
  for (const f of ['package.json', 'LICENSE', 'lib']) copy(path.join(pkgDir, f), path.join(dest, f));
  copy(NATIVE, path.join(dest, 'build', 'Release', 'better_sqlite3.node'), 0o644);
  run('strip', ['--strip-unneeded', '--remove-section=.comment', path.join(dest, 'build', 'Release', 'better_sqlite3.node')]);
  for (const [dir, name] of [[bindingsDir, 'bindings'], [furiDir, 'file-uri-to-path']]) {
    for (const f of fs.readdirSync(dir)) if (/\.(js|json)$|^LICENSE/.test(f)) copy(path.join(dir, f), path.join(destNodeModules, name, f));
  }
}

async function bundleHub(dest) {
  await esbuild.build({
    absWorkingDir: path.join(ROOT, 'hub'),
    // what bin/kiosk-fleet.mjs does, without tsx (the V8 flag it sets goes on the node command line instead)
    stdin: {
      contents: "import { main } from './src/cli.ts';\nconst code = await main(process.argv.slice(2));\nif (code >= 0) process.exit(code);\n",
      resolveDir: path.join(ROOT, 'hub'),
      sourcefile: 'package-entry.ts',
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: `node${NODE_MAJOR}`,
    outfile: dest,
    // the native module stays a package (copyBetterSqlite); ws' optional native speed-ups are not installed
    external: ['better-sqlite3', 'bufferutil', 'utf-8-validate'],
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    // the CommonJS dependencies (aedes, pino, prom-client, ...) call require() for node builtins
    banner: { js: "import { createRequire as __kfCreateRequire } from 'node:module'; const require = __kfCreateRequire(import.meta.url);" },
    plugins: [bundleLocalRequires],
    logLevel: 'error',
  });
}

/**
 * A module that makes its own `require` (createRequire(import.meta.url), hub/src/broker/persistence.ts) would look
 * for the packages it names beside the bundle at run time, where there are none: without that line its require()
 * calls are ordinary ones, which esbuild bundles.
 */
const bundleLocalRequires = {
  name: 'bundle-local-requires',
  setup(build) {
    build.onLoad({ filter: /[\\/]hub[\\/]src[\\/].*\.ts$/ }, (args) => {
      const text = fs.readFileSync(args.path, 'utf8');
      const local = /^const require = createRequire\(import\.meta\.url\);$/m;
      return local.test(text) ? { contents: text.replace(local, ''), loader: 'ts' } : undefined;
    });
  },
};

/** Debian's changelog and copyright, the minimum lintian asks of a binary package. */
function docs(root, pkg) {
  const doc = path.join(root, 'usr', 'share', 'doc', pkg);
  const date = execFileSync('date', ['-R', '-u', '-d', '@0'], { encoding: 'utf8' }).trim();
  const changelog = `${pkg} (${VERSION}) unstable; urgency=medium\n\n  * Built from the kiosk-fleet repository (pnpm package).\n\n -- ${MAINTAINER}  ${date}\n`;
  fs.mkdirSync(doc, { recursive: true });
  // a native package (no Debian revision): changelog.gz, not changelog.Debian.gz
  fs.writeFileSync(path.join(doc, 'changelog.gz'), zlib.gzipSync(changelog, { level: 9 }));
  fs.writeFileSync(path.join(doc, 'copyright'), fs.readFileSync(path.join(DEB, 'copyright')));
}

function control(root, pkg, fields) {
  const dir = path.join(root, 'DEBIAN');
  fs.mkdirSync(dir, { recursive: true });
  let kb = 0;
  for (const e of fs.readdirSync(root, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && !e.parentPath.startsWith(dir)) kb += Math.ceil(fs.statSync(path.join(e.parentPath, e.name)).size / 1024);
  }
  const text = [
    `Package: ${pkg}`,
    `Version: ${VERSION}`,
    `Architecture: ${ARCH}`,
    `Maintainer: ${MAINTAINER}`,
    `Installed-Size: ${kb}`,
    // better_sqlite3.node is built against this Node's ABI: another major cannot load it
    `Depends: nodejs (>= ${NODE_MAJOR}), nodejs (<< ${NODE_MAJOR + 1}), adduser, libc6`,
    'Section: admin',
    'Priority: optional',
    'Homepage: https://github.com/kiosk-fleet/kiosk-fleet',
    ...fields,
  ].join('\n');
  write(path.join(dir, 'control'), `${text}\n`);
  const conffiles = [];
  for (const e of fs.readdirSync(path.join(root, 'etc'), { withFileTypes: true, recursive: true })) {
    if (e.isFile()) conffiles.push(`/${path.relative(root, path.join(e.parentPath, e.name))}`);
  }
  write(path.join(dir, 'conffiles'), `${conffiles.sort().join('\n')}\n`);
  for (const s of ['postinst', 'prerm', 'postrm']) copy(path.join(DEB, pkg, s), path.join(dir, s), 0o755);
  const sums = execFileSync('sh', ['-c', "find . -type f ! -path './DEBIAN/*' -printf '%P\\0' | sort -z | xargs -0 md5sum"], { cwd: root, encoding: 'utf8' });
  write(path.join(dir, 'md5sums'), sums);
}

function buildDeb(root, pkg) {
  // files root:root (dpkg-deb --root-owner-group), directories 0755, files 0644 unless set otherwise above
  run('find', [root, '-type', 'd', '-exec', 'chmod', '0755', '{}', '+']);
  const file = path.join(OUT, `${pkg}_${VERSION}_${ARCH}.deb`);
  run('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', root, file], { stdio: ['ignore', 'ignore', 'inherit'] });
  return file;
}

async function hubPackage() {
  const pkg = 'kiosk-fleet-hub';
  const root = path.join(STAGE, pkg);
  const lib = path.join(root, 'usr', 'lib', pkg);
  say('building the dashboard');
  run('pnpm', ['--filter', '@kiosk-fleet/dashboard', 'run', 'build'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  say('bundling the hub');
  await bundleHub(path.join(lib, 'hub', 'dist', 'kiosk-fleet.mjs'));
  copy(path.join(ROOT, 'dashboard', 'dist'), path.join(lib, 'dashboard', 'dist'));
  for (const f of fs.readdirSync(path.join(ROOT, 'hub', 'drizzle'))) if (f.endsWith('.sql')) copy(path.join(ROOT, 'hub', 'drizzle', f), path.join(lib, 'drizzle', f));
  copy(path.join(ROOT, 'hub', 'drizzle', 'meta', '_journal.json'), path.join(lib, 'drizzle', 'meta', '_journal.json'));
  copyBetterSqlite(path.join(lib, 'node_modules'));
  write(path.join(root, 'usr', 'bin', 'kiosk-fleet'), fs.readFileSync(path.join(DEB, pkg, 'kiosk-fleet.sh')), 0o755);
  copy(path.join(ROOT, 'hub', 'packaging', 'kiosk-fleet-hub.service'), path.join(root, 'lib', 'systemd', 'system', 'kiosk-fleet-hub.service'));
  copy(path.join(DEB, pkg, 'hub.env'), path.join(root, 'etc', 'kiosk-fleet', 'hub.env'), 0o600);
  copy(path.join(ROOT, 'hub', 'README.md'), path.join(root, 'usr', 'share', 'doc', pkg, 'README.md'));
  copy(path.join(DEB, pkg, 'lintian-overrides'), path.join(root, 'usr', 'share', 'lintian', 'overrides', pkg));
  docs(root, pkg);
  control(root, pkg, [
    'Description: Kiosk Fleet hub: MQTT broker, API and dashboard for self-service terminals',
    ' One process that a bureau runs on one server: an embedded MQTT broker for the',
    ' terminal agents, ingest into SQLite, presence, config and release rollouts,',
    ' an HTTP API and the web dashboard. Service: kiosk-fleet-hub; settings in',
    ' /etc/kiosk-fleet/hub.env; data in /var/lib/kiosk-fleet.',
  ]);
  return buildDeb(root, pkg);
}

async function agentPackage() {
  const pkg = 'kiosk-fleet-agent';
  const root = path.join(STAGE, pkg);
  const lib = path.join(root, 'usr', 'lib', pkg);
  say('bundling the agent');
  run(process.execPath, [path.join(ROOT, 'agent', 'scripts', 'build.mjs'), '--quiet'], { cwd: ROOT });
  const dist = path.join(ROOT, 'agent', 'dist');
  // only the current build's files (build.json lists the inputs; the entry imports its chunks): older chunks kept
  // for running agents are left out, and so are source maps
  const wanted = new Set(['cli.mjs']);
  const queue = ['cli.mjs'];
  while (queue.length) {
    const rel = queue.pop();
    const text = fs.readFileSync(path.join(dist, rel), 'utf8');
    for (const m of text.matchAll(/["'](\.\.?\/[^"']+\.mjs)["']/g)) {
      const dep = path.relative(dist, path.resolve(path.dirname(path.join(dist, rel)), m[1]));
      if (!wanted.has(dep)) wanted.add(dep), queue.push(dep);
    }
  }
  for (const rel of [...wanted, 'build.json']) copy(path.join(dist, rel), path.join(lib, 'dist', rel));
  copy(path.join(ROOT, 'agent', 'bin', 'kiosk-fleet-agent.mjs'), path.join(lib, 'bin', 'kiosk-fleet-agent.mjs'), 0o755);
  copy(path.join(ROOT, 'agent', 'src', 'updater', 'boot-guard.mjs'), path.join(lib, 'boot-guard.mjs'), 0o755);
  copyBetterSqlite(path.join(lib, 'node_modules'));
  write(path.join(root, 'usr', 'bin', 'kiosk-fleet-agent'), fs.readFileSync(path.join(DEB, pkg, 'kiosk-fleet-agent.sh')), 0o755);
  copy(path.join(ROOT, 'agent', 'packaging', 'kiosk-fleet-agent.service'), path.join(root, 'lib', 'systemd', 'system', 'kiosk-fleet-agent.service'));
  copy(path.join(DEB, pkg, 'agent.env'), path.join(root, 'etc', 'kiosk-fleet', 'agent.env'), 0o600);
  copy(path.join(ROOT, 'agent', 'README.md'), path.join(root, 'usr', 'share', 'doc', pkg, 'README.md'));
  copy(path.join(DEB, pkg, 'lintian-overrides'), path.join(root, 'usr', 'share', 'lintian', 'overrides', pkg));
  docs(root, pkg);
  control(root, pkg, [
    'Description: Kiosk Fleet terminal agent',
    ' Runs on each self-service terminal: reports host health and peripherals to',
    ' the Kiosk Fleet hub over MQTT, applies its config and updates, and serves',
    ' the kiosk application a local API. Service: kiosk-fleet-agent; settings in',
    ' /etc/kiosk-fleet/agent.env; secret in /etc/kiosk-fleet/secret.',
  ]);
  return buildDeb(root, pkg);
}

fs.rmSync(STAGE, { recursive: true, force: true });
fs.mkdirSync(OUT, { recursive: true });
const debs = [await hubPackage(), await agentPackage()];
fs.rmSync(STAGE, { recursive: true, force: true });
say(`for Node ${NODE_MAJOR} (${NODE.dir ? `${NODE.version}, headers from ${NODE.dir}` : `this machine's ${NODE.version}`})`);
for (const d of debs) say(`built ${path.relative(process.cwd(), d)} (${Math.round(fs.statSync(d).size / 1024)} KB)`);

if (process.argv.includes('--no-lintian')) process.exit(0);
const lintian = spawnSync('lintian', ['--fail-on', 'error', '--info', ...debs], { stdio: 'inherit' });
if (lintian.error) say('lintian is not installed (apt-get install lintian): packages not checked');
else if (lintian.status !== 0) {
  say('lintian found errors');
  process.exit(1);
}
