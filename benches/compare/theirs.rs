//! postfix-mta-sts-resolver, the Python daemon compared against, from the private virtualenv
//! that `benches/compare/run.sh` installs (`target/bench-compare/venv`).

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The version `run.sh` installs.
pub const VERSION: &str = "1.5.1";

/// An installed postfix-mta-sts-resolver.
pub struct Theirs {
    venv: PathBuf,
    /// `postfix-mta-sts-resolver 1.5.1 (aiohttp 3.x, aiodns 4.x, uvloop 0.x, Python 3.x)`.
    pub versions: String,
    /// Whether uvloop is installed (the daemon then uses it).
    pub uvloop: bool,
}

impl Theirs {
    /// The virtualenv at `venv`, if it holds the pinned version.
    ///
    /// # Errors
    ///
    /// Why their side cannot run, for the report.
    pub fn find(venv: &Path) -> Result<Theirs, String> {
        let daemon = venv.join("bin/mta-sts-daemon");
        if !daemon.exists() {
            return Err(format!(
                "postfix-mta-sts-resolver is not installed in {} (benches/compare/run.sh installs it from PyPI)",
                venv.display()
            ));
        }
        let script = "import importlib.metadata as m, platform\n\
                      def v(n):\n    try: return m.version(n)\n    except Exception: return '-'\n\
                      print(v('postfix-mta-sts-resolver'), v('aiohttp'), v('aiodns'), v('pycares'), v('uvloop'), v('aiosqlite'), platform.python_version())";
        let out = Command::new(venv.join("bin/python"))
            .args(["-c", script])
            .output()
            .map_err(|e| format!("cannot run the virtualenv's python: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Vec<&str> = text.split_whitespace().collect();
        if v.len() != 7 {
            return Err(format!("cannot read package versions: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        if v[0] != VERSION {
            return Err(format!("postfix-mta-sts-resolver {} installed, {VERSION} expected", v[0]));
        }
        Ok(Theirs {
            venv: venv.to_path_buf(),
            versions: format!(
                "postfix-mta-sts-resolver {} (aiohttp {}, aiodns {}, pycares {}, uvloop {}, aiosqlite {}, Python {})",
                v[0], v[1], v[2], v[3], v[4], v[5], v[6]
            ),
            uvloop: v[4] != "-",
        })
    }

    /// `mta-sts-query DOMAIN` as a command.
    pub fn query(&self, domain: &str) -> Command {
        let mut cmd = Command::new(self.venv.join("bin/mta-sts-query"));
        cmd.arg(domain);
        cmd
    }

    /// Starts `mta-sts-daemon` on `addr` with `cache` as its `cache:` section (YAML, indented two
    /// spaces), logging to `dir/<name>.log`, and waits until it accepts connections.
    ///
    /// # Errors
    ///
    /// The daemon exited or did not listen within 30 s; the message holds its log.
    pub fn start(
        &self,
        dir: &Path,
        name: &str,
        addr: SocketAddr,
        cache: &str,
        env: &[(&str, &str)],
    ) -> Result<PyDaemon, String> {
        let config = dir.join(format!("{name}.yml"));
        // cache_grace as long as the run: every measured lookup is answered from the cache,
        // as ours with recheck_interval = 1h. The zone timeout (DNS, and separately the whole
        // HTTPS exchange) is raised from 4 s so that the cold burst measures how long the work
        // takes rather than how many lookups time out.
        let yaml = format!(
            "host: {}\nport: {}\nreuse_port: true\nshutdown_timeout: 1\ncache_grace: 3600\n\
             cache:\n{cache}\ndefault_zone:\n  strict_testing: false\n  timeout: 20\n",
            addr.ip(),
            addr.port()
        );
        std::fs::write(&config, yaml).map_err(|e| e.to_string())?;
        let log = dir.join(format!("{name}.log"));
        let mut cmd = Command::new(self.venv.join("bin/mta-sts-daemon"));
        cmd.arg("-c").arg(&config).args(["-v", "warn"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("cannot start mta-sts-daemon: {e}"))?;
        let mut daemon = PyDaemon { child, addr, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect(addr).is_ok() {
                return Ok(daemon);
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                return Err(format!("mta-sts-daemon exited with {status}: {}", daemon.log_tail()));
            }
            if Instant::now() > deadline {
                return Err(format!("mta-sts-daemon not listening after 30 s: {}", daemon.log_tail()));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A running `mta-sts-daemon`, killed on drop.
pub struct PyDaemon {
    child: Child,
    /// Its socketmap address.
    pub addr: SocketAddr,
    log: PathBuf,
}

impl PyDaemon {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of its log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }
}

impl Drop for PyDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
