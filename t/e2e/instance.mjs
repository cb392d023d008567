// A private Avatar Adam for the end-to-end test, started the way `make run`
// starts one (tools/run.sh) but on free ports and in a temporary directory:
// PostgreSQL through tools/pg.sh, the migrations and the super admin through
// avatarctl, nginx.conf from the templates in conf/ through tools/conf.sh,
// and Debian's nginx in the foreground.  Only the web app's root is
// changed, when the test serves a build other than html/dist.

import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const NGINX = '/usr/sbin/nginx';

/**
 * With AVC_SAN (make test-asan) the module is built with AddressSanitizer
 * and UBSan: the stock nginx loads it only with their runtimes preloaded.
 * Reports go to files under dir (see logProblems).
 */
function sanitizerEnv(dir) {
  if (!process.env.AVC_SAN) return {};
  const lib = (name) => execFileSync('gcc', [`-print-file-name=${name}`], { encoding: 'utf8' }).trim();
  return {
    LD_PRELOAD: `${lib('libasan.so')}:${lib('libubsan.so')}`,
    ASAN_OPTIONS: `detect_leaks=0:abort_on_error=0:log_path=${dir}/asan`,
    UBSAN_OPTIONS: `print_stacktrace=1:log_path=${dir}/asan`,
  };
}

/** A TCP port nothing listens on right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function run(cmd, args, opts = {}) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  } catch (err) {
    const out = `${err.stdout ?? ''}${err.stderr ?? ''}`.trim();
    throw new Error(`${cmd} ${args.join(' ')} failed: ${out || err.message}`);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One nginx token "key=value", quoted as tools/run.sh quotes it. */
const kv = (k, v) => `"${k}=${String(v).replace(/[\\"]/g, '\\$&')}"`;

export class Instance {
  /**
   * top: the checkout; build: where avatarctl and the module are;
   * dist: the built web app; llm: extra parameters of avatar_llm offline
   * (null: no avatar_llm line, as `make run` without keys).
   */
  constructor({ top, build, dist, llm = null, log = () => {} }) {
    this.top = top;
    this.build = build;
    this.dist = dist;
    this.llm = llm;
    this.log = log;
    this.adminEmail = 'admin@e2e.example.com';
    // who receives the reports (REPORT_RECIPIENT_EMAIL of make run)
    this.reportsTo = 'training@e2e.example.com';
    // a strong password: upper, lower, digit, special
    this.adminPassword = `Adm1n!${randomBytes(9).toString('base64url')}`;
    this.nginx = null;
    this.pgStarted = false;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    for (const f of [join(this.build, 'avatarctl'), join(this.build, 'ngx_http_avatar_module.so')]) {
      if (!existsSync(f)) throw new Error(`${f} is missing: build first (make, or make B=... core ctl module)`);
    }
    if (!existsSync(join(this.dist, 'index.html'))) {
      throw new Error(`${this.dist}/index.html is missing: build the web app first (make web)`);
    }
    this.dir = mkdtempSync(join(tmpdir(), 'avatar-e2e-'));
    // PostgreSQL runs as the postgres user when we are root: it must reach
    // its directory inside this one
    chmodSync(this.dir, 0o755);
    this.port = await freePort();
    this.pgPort = await freePort();
    const ngx = join(this.dir, 'nginx');
    const outbox = join(this.dir, 'outbox');
    mkdirSync(outbox, { recursive: true });
    mkdirSync(join(ngx, 'logs'), { recursive: true });

    const t0 = Date.now();
    const pgOut = run('sh', [join(this.top, 'tools/pg.sh'), 'start', join(this.dir, 'pg'), String(this.pgPort), 'avatar']);
    this.pgStarted = true;
    this.conninfo = pgOut.trim().split('\n').pop();
    this.log(`PostgreSQL on 127.0.0.1:${this.pgPort} (${Date.now() - t0} ms)`);

    const ctl = join(this.build, 'avatarctl');
    run(ctl, ['-q', 'migrate', '--database', this.conninfo, '--dir', join(this.top, 'sql')]);
    run(ctl, ['-q', 'bootstrap-admin', '--database', this.conninfo, '--email', this.adminEmail], {
      env: { ...process.env, AVATAR_ADMIN_PASSWORD: this.adminPassword },
    });

    const secret = join(this.dir, 'secret');
    writeFileSync(secret, `${randomBytes(48).toString('base64url')}\n`, { mode: 0o600 });

    // The providers: the embedded defaults, mail into the outbox.
    const prov = join(ngx, 'avatar-providers.conf');
    const lines = [`avatar_mail outbox ${kv('dir', outbox)} ${kv('recipients', this.reportsTo)};`];
    if (this.llm) lines.push(`avatar_llm offline ${this.llm};`);
    writeFileSync(prov, `${lines.join('\n')}\n`);

    run('sh', [join(this.top, 'tools/conf.sh'), ngx, this.conninfo, secret, String(this.port), '2'], {
      env: { ...process.env, AVC_BUILD: this.build, AVATAR_SIGNUP: 'invite' },
    });
    appendFileSync(join(ngx, 'avatar-http.conf'), `include ${prov};\n`);
    const confFile = join(ngx, 'nginx.conf');
    const conf = readFileSync(confFile, 'utf8');
    const rootLine = `root ${join(this.top, 'html/dist')};`;
    if (!conf.includes(rootLine)) throw new Error(`tools/conf.sh wrote no "${rootLine}" line`);
    writeFileSync(confFile, conf.split(rootLine).join(`root ${this.dist};`));

    const env = { ...process.env, ...sanitizerEnv(this.dir) };
    run(NGINX, ['-p', ngx, '-c', confFile, '-e', 'stderr', '-t', '-q'], { env });

    this.errorLog = join(ngx, 'logs', 'error.log');
    const fd = openSync(this.errorLog, 'a');
    this.nginx = spawn(NGINX, ['-p', ngx, '-c', confFile, '-e', 'stderr', '-g', 'daemon off; master_process on;'], {
      stdio: ['ignore', fd, fd],
      env,
    });
    closeSync(fd);
    this.nginxExit = new Promise((resolve) => this.nginx.once('exit', (code, sig) => resolve({ code, sig })));
    this.nginx.once('exit', () => {
      this.nginx = null;
    });

    const deadline = Date.now() + 10000;
    for (;;) {
      if (!this.nginx) throw new Error(`nginx exited at start:\n${this.errorLogText()}`);
      try {
        const r = await fetch(`${this.url}/health`);
        if (r.ok) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`nginx did not answer /health in 10 s:\n${this.errorLogText()}`);
      await sleep(50);
    }
    this.log(`nginx on ${this.url} (${Date.now() - t0} ms from the start of PostgreSQL)`);
  }

  errorLogText() {
    try {
      return readFileSync(this.errorLog, 'utf8');
    } catch {
      return '';
    }
  }

  /** [alert], [crit] and [emerg] lines of nginx's error log, sanitizer reports. */
  logProblems() {
    const bad = this.errorLogText()
      .split('\n')
      .filter((l) => /\[(alert|crit|emerg)\]|AddressSanitizer|LeakSanitizer|runtime error:/.test(l));
    for (const f of readdirSync(this.dir).filter((n) => n.startsWith('asan'))) {
      bad.push(`sanitizer: ${readFileSync(join(this.dir, f), 'utf8')}`);
    }
    return bad;
  }

  /** Files of the mail outbox. */
  outboxDir() {
    return join(this.dir, 'outbox');
  }

  /** Stops nginx and PostgreSQL (once, however often called). */
  stop() {
    this.stopping ??= this.stopNow();
    return this.stopping;
  }

  async stopNow() {
    if (this.nginx) {
      const exited = this.nginxExit;
      this.nginx.kill('SIGQUIT');
      let timer;
      const done = await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 10000, null)))]);
      clearTimeout(timer);
      if (!done && this.nginx) {
        this.nginx.kill('SIGKILL');
        await exited;
      }
    }
    if (this.pgStarted) {
      try {
        run('sh', [join(this.top, 'tools/pg.sh'), 'stop', join(this.dir, 'pg')]);
      } catch (err) {
        this.log(`stopping PostgreSQL: ${err.message}`);
      }
      this.pgStarted = false;
    }
  }

  /** Removes the instance's directory, once stopped. */
  remove() {
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
  }
}
