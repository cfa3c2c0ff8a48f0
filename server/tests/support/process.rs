//! `callpush serve` as its own process, as an operator runs it: for what only a real process
//! shows (crashes, signals, file limits, a full disk) and for whole-process benchmarks, which
//! include this file too.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// How to start a server.
#[derive(Debug, Default, Clone, Copy)]
pub struct Launch<'a> {
    /// `CALLPUSH_LOG`; `warn` when not given.
    pub log: Option<&'a str>,
    /// A file for its stderr; discarded when not given, unless `show_stderr`.
    pub stderr: Option<&'a Path>,
    /// Without `stderr`: pass the server's stderr through (benchmarks show its warnings).
    pub show_stderr: bool,
    /// Another `callpush` binary than this build's (to compare two builds).
    pub binary: Option<&'a str>,
    /// Shell commands run before the server takes the shell's place (`ulimit -n 256`,
    /// `trap '' XFSZ`).
    pub prelude: Option<&'a str>,
    /// `serve --dev`: generated development credentials for what the configuration leaves out
    /// (without it, a configuration lacking API keys or device-token auth is refused).
    pub dev: bool,
}

/// A `callpush serve --config … [--dev]` process, killed when dropped.
pub struct ServeProcess {
    /// The process (through its `prelude` shell, which it replaced).
    pub child: Child,
}

impl ServeProcess {
    /// Starts `callpush serve --config config` (with `--dev` if asked) as `launch` says.
    pub fn start(config: &Path, launch: Launch) -> ServeProcess {
        let binary = launch.binary.unwrap_or(env!("CARGO_BIN_EXE_callpush"));
        let mut command = match launch.prelude {
            Some(prelude) => {
                let mut shell = Command::new("sh");
                shell.args(["-c", &format!("{prelude} && exec \"$0\" \"$@\""), binary]);
                shell
            }
            None => Command::new(binary),
        };
        let stderr = match launch.stderr {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("create the server's log file")),
            None if launch.show_stderr => Stdio::inherit(),
            None => Stdio::null(),
        };
        command.args(["serve", "--config", config.to_str().unwrap()]);
        if launch.dev {
            command.arg("--dev");
        }
        let child = command
            .env("CALLPUSH_LOG", launch.log.unwrap_or("warn"))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start callpush serve");
        ServeProcess { child }
    }

    /// Its resident memory now (`VmRSS`), MiB.
    pub fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let kib: f64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        kib / 1024.0
    }

    /// Sends `SIGKILL` and waits for the process to end: no shutdown code runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `{base}/healthz` answers 200; after 20 s, panics with the server's log if given.
pub async fn wait_healthy(base: &str, log: Option<&Path>) {
    let http = reqwest::Client::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if http.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = log.map(|path| std::fs::read_to_string(path).unwrap_or_default()).unwrap_or_default();
    panic!("the server at {base} did not come up\n{log}");
}
