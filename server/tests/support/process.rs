//! `callpush serve` as its own process, as an operator runs it: for what only a real process
//! shows (crashes, signals, file limits, a full disk).

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
    /// A file for its stderr; discarded when not given.
    pub stderr: Option<&'a Path>,
    /// Shell commands run before the server takes the shell's place (`ulimit -n 256`,
    /// `trap '' XFSZ`).
    pub prelude: Option<&'a str>,
}

/// A `callpush serve --config …` process, killed when dropped.
pub struct ServeProcess {
    /// The process (through its `prelude` shell, which it replaced).
    pub child: Child,
}

impl ServeProcess {
    /// Starts `callpush serve --config config` as `launch` says.
    pub fn start(config: &Path, launch: Launch) -> ServeProcess {
        let binary = env!("CARGO_BIN_EXE_callpush");
        let mut command = match launch.prelude {
            Some(prelude) => {
                let mut shell = Command::new("sh");
                shell.args(["-c", &format!("{prelude} && exec \"$0\" \"$@\""), binary]);
                shell
            }
            None => Command::new(binary),
        };
        let stderr = launch.stderr.map_or_else(Stdio::null, |path| {
            Stdio::from(std::fs::File::create(path).expect("create the server's log file"))
        });
        let child = command
            .args(["serve", "--config", config.to_str().unwrap()])
            .env("CALLPUSH_LOG", launch.log.unwrap_or("warn"))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start callpush serve");
        ServeProcess { child }
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
