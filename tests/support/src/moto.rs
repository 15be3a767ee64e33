//! A moto server (PyPI `moto[server]`, pinned in tests/requirements.txt, installed into `.venv` by
//! `scripts/bootstrap.sh`) started on a free 127.0.0.1 port for one test binary, killed on drop.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;

pub struct Moto {
    child: Option<Child>,
    pub endpoint: String,
}

/// The repository root (this crate lives in `tests/support`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// A free TCP port on 127.0.0.1 (the OS picks; we release it just before the server binds it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// Whether an HTTP server answers on 127.0.0.1:`port` (moto's `GET /moto-api/`).
fn answers_http(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 8];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

impl Moto {
    /// Uses `DISTILLERY_TEST_MOTO_URL` when set (a moto already running), otherwise starts one.
    pub fn start() -> Moto {
        if let Ok(url) = std::env::var("DISTILLERY_TEST_MOTO_URL") {
            return Moto {
                child: None,
                endpoint: url,
            };
        }
        // moto's server through tests/support/moto_server.py, which serialises DynamoDB calls so
        // conditional writes are atomic as in AWS (see that file).
        let root = repo_root();
        let python = root.join(".venv/bin/python");
        assert!(
            root.join(".venv/bin/moto_server").exists(),
            "{} is missing: run `scripts/bootstrap.sh` (or `make test`, which runs it)",
            root.join(".venv/bin/moto_server").display()
        );
        // The port is free when picked but not reserved: another test's `free_port()` (or any
        // process) can hold it for a moment, so moto fails to bind while a bare TCP connect still
        // succeeds. Only an HTTP answer from moto counts as started; a moto that exited is started
        // again on another port.
        let deadline = Instant::now() + Duration::from_secs(30);
        let (child, endpoint) = 'start: loop {
            let port = free_port();
            let mut child = Command::new(&python)
                .arg(root.join("tests/support/moto_server.py"))
                .args(["127.0.0.1", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("failed to start moto's server");
            let endpoint = format!("http://127.0.0.1:{port}");
            loop {
                assert!(
                    Instant::now() < deadline,
                    "moto's server did not start (last tried {endpoint})"
                );
                if matches!(child.try_wait(), Ok(Some(_))) {
                    continue 'start;
                }
                if answers_http(port) {
                    break 'start (child, endpoint);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        };
        Moto {
            child: Some(child),
            endpoint,
        }
    }

    /// One moto server shared by the tests of a test binary that run at the same time (each test
    /// makes its own tables or buckets), stopped (by its PID, in `Drop`) when the last of them
    /// finishes. Starting one per test would cost a second or two each.
    pub fn shared() -> Arc<Moto> {
        static SHARED: Mutex<Weak<Moto>> = Mutex::new(Weak::new());
        let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = slot.upgrade() {
            return m;
        }
        let m = Arc::new(Moto::start());
        *slot = Arc::downgrade(&m);
        m
    }

    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config(&self.endpoint).await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// SDK configuration for local emulators: fixed test credentials, us-east-1, the given endpoint.
/// S3 clients built from it still need `force_path_style(true)`.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(endpoint)
        .load()
        .await
}
