//! Shared helpers of the integration tests: a real `graft serve` on a
//! loopback port over a fresh data directory, and the `graft` CLI.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const TOKEN: &str = "test-token-5e1f";
pub const EX: &str = "http://example.org/";

/// A temporary folder for a fixture that every test of a test binary
/// shares (kept in a `static`, which Rust never drops, so a `TempDir` there
/// would stay behind in /tmp after every run): removed when the test process
/// exits.
pub fn shared_tempdir() -> PathBuf {
    static DIRS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    static AT_EXIT: std::sync::Once = std::sync::Once::new();
    extern "C" fn remove_all() {
        if let Ok(dirs) = DIRS.lock() {
            for dir in dirs.iter() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
    // SAFETY: `remove_all` is a plain function that neither unwinds nor
    // depends on anything torn down before atexit handlers run.
    AT_EXIT.call_once(|| unsafe {
        libc::atexit(remove_all);
    });
    let dir = tempfile::tempdir().unwrap().keep();
    DIRS.lock().unwrap().push(dir.clone());
    dir
}

/// The `graft` binary built for this test run.
pub fn graft_bin() -> &'static str {
    env!("CARGO_BIN_EXE_graft")
}

/// Runs `graft --data-dir DIR ARGS...` to completion.
pub fn graft(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(graft_bin())
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("run graft")
}

/// Runs `graft` and asserts success; returns stdout.
pub fn graft_ok(data_dir: &Path, args: &[&str]) -> String {
    let out = graft(data_dir, args);
    assert!(
        out.status.success(),
        "graft {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Runs `graft ARGS` and kills it (SIGKILL) once it prints a line on
/// stderr that starts with `line`.
pub fn kill_after_line(data_dir: &Path, args: &[&str], line: &str) {
    let mut child = std::process::Command::new(graft_bin())
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    for printed in BufReader::new(stderr).lines() {
        if printed.unwrap().starts_with(line) {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A running `graft serve`, killed on drop.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server with a token over a fresh data directory.
    pub fn start(extra: &[&str]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let mut server = Self::start_in(&dir, extra, Some(TOKEN));
        server._tmp = Some(tmp);
        server
    }

    /// Starts a server over `data_dir`; `token` goes in GRAFT_AUTH_TOKEN.
    pub fn start_in(data_dir: &Path, extra: &[&str], token: Option<&str>) -> Self {
        let mut cmd = Command::new(graft_bin());
        cmd.arg("--data-dir")
            .arg(data_dir)
            .args(["serve", "--bind", "127.0.0.1:0", "--workers", "2"])
            .args(extra)
            .env_remove("GRAFT_AUTH_TOKEN")
            .env("GRAFT_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(t) = token {
            cmd.env("GRAFT_AUTH_TOKEN", t);
        }
        let mut child = cmd.spawn().expect("spawn graft serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(i) = line.find("listening on http://") {
                        let addr = line[i + "listening on ".len()..].trim().to_owned();
                        let _ = tx.send(addr);
                        sent = true;
                    }
                }
                if std::env::var_os("GRAFT_TEST_LOGS").is_some() {
                    eprintln!("[server] {line}");
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("graft serve did not report its address");
        let server = Self {
            child,
            base,
            data_dir: data_dir.to_owned(),
            _tmp: None,
        };
        server.wait_for_label_index();
        server
    }

    /// Waits until /health says the label index is built (it is built in the background).
    pub fn wait_for_label_index(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let health = self.health();
            match health["label_index"].as_str() {
                Some("ready") => return,
                Some("building") if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => panic!("label index: {other:?}"),
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }

    /// Count of quads in the whole store, through SPARQL.
    pub fn count(&self) -> u64 {
        let body = query_json(
            self,
            "SELECT (COUNT(*) AS ?n) WHERE { { ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } } }",
        );
        body["results"]["bindings"][0]["n"]["value"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// The /health answer.
    pub fn health(&self) -> serde_json::Value {
        agent()
            .get(&self.url("/health"))
            .call()
            .unwrap()
            .into_json()
            .unwrap()
    }

    /// The generation counter, from /health.
    pub fn generation(&self) -> u64 {
        self.health()["generation"].as_u64().unwrap()
    }

    /// (count, generation): what must not move when a request is refused.
    pub fn state(&self) -> (u64, u64) {
        (self.count(), self.generation())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build()
}

/// The status and body of a response, whatever the status.
pub fn outcome(result: Result<ureq::Response, ureq::Error>) -> (u16, String, Option<String>) {
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = response.status();
    let content_type = response.header("Content-Type").map(str::to_owned);
    (status, response.into_string().unwrap(), content_type)
}

/// Asserts a JSON error body of `kind` and returns it.
pub fn assert_error(status: u16, expected: u16, body: &str, kind: &str) -> serde_json::Value {
    assert_eq!(status, expected, "body: {body}");
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    assert_eq!(v["kind"], kind, "body: {body}");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()));
    v
}

/// Runs a SELECT/ASK by GET and parses the SPARQL JSON results.
pub fn query_json(server: &Server, query: &str) -> serde_json::Value {
    agent()
        .get(&server.url("/sparql"))
        .query("query", query)
        .set("Accept", "application/sparql-results+json")
        .call()
        .unwrap()
        .into_json()
        .unwrap()
}

/// Runs a SPARQL update with the token; returns the status.
pub fn update(server: &Server, update: &str) -> (u16, String) {
    let (s, b, _) = outcome(
        agent()
            .post(&server.url("/sparql"))
            .set("Content-Type", "application/sparql-update")
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .send_string(update),
    );
    (s, b)
}

/// PUTs a Turtle document into `graph` with the token.
pub fn put_turtle(server: &Server, graph: &str, turtle: &str) -> u16 {
    outcome(
        agent()
            .put(&server.url("/store"))
            .query("graph", graph)
            .set("Content-Type", "text/turtle")
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .send_string(turtle),
    )
    .0
}

/// The test data folder.
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Where the real graphs are: `GRAFT_GRAPHS_DIR`, else `data/graphs/` of
/// the repository (`scripts/build-graphs.sh` and `scripts/test.sh` build them).
pub fn graphs_dir() -> PathBuf {
    std::env::var_os("GRAFT_GRAPHS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/graphs"))
}

/// A linker with the default settings over a fresh store holding each
/// `(file, name)` in the named graph `https://w3id.org/graft/graph/NAME`.
/// Panics, naming the file and the script that builds it, when one is missing.
pub fn linker_over(graphs: &[(PathBuf, &str)]) -> graft::link::Linker {
    use graft::graph::{parse_iri, GraphStore, LoadOptions};
    let store = std::sync::Arc::new(GraphStore::open(&shared_tempdir()).unwrap());
    for (file, name) in graphs {
        assert!(
            file.exists(),
            "{} is missing: run scripts/build-graphs.sh (or scripts/test.sh) first",
            file.display()
        );
        let options = LoadOptions {
            graph: Some(parse_iri(&format!("https://w3id.org/graft/graph/{name}")).unwrap()),
            ..LoadOptions::default()
        };
        store.load_file(file, &options, &|_| {}).unwrap();
    }
    graft::link::Linker::new(store, graft::link::LinkConfig::default(), &|_| {}).unwrap()
}

/// Runs a training call (`run`, given the progress callback to pass on)
/// and stops it as a crash would, by panicking right after its state is
/// saved inside an epoch at (epoch, step), when `stop_at` says so. Returns
/// the progress events seen and whether the run ended.
pub fn run_stopping_at(
    stop_at: Option<(usize, usize)>,
    run: impl FnOnce(&dyn Fn(graft::classifier::train::Progress)),
) -> (Vec<graft::classifier::train::Progress>, bool) {
    use graft::classifier::train::Progress;
    let events = std::sync::Mutex::new(Vec::new());
    let on = |p: Progress| {
        if let Progress::Saved { epoch, step, .. } = p {
            if Some((epoch, step)) == stop_at {
                panic!("stopped at epoch {epoch} step {step}");
            }
        }
        events.lock().unwrap().push(p);
    };
    let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&on))).is_ok();
    (events.into_inner().unwrap(), ended)
}

/// Asserts that `events` are those of a run resumed from a state saved
/// after `step` of `epoch`: it says so, and its first step is the next one
/// (no step is done twice).
pub fn assert_resumed_at(events: &[graft::classifier::train::Progress], epoch: usize, step: usize) {
    use graft::classifier::train::Progress;
    assert!(
        matches!(events.iter().find(|e| matches!(e, Progress::Resumed { .. })),
            Some(Progress::Resumed { epochs_done, steps_done, .. })
                if *epochs_done == epoch - 1 && *steps_done == step),
        "{events:?}"
    );
    let first = events.iter().find_map(|e| match e {
        Progress::Step { epoch, step, .. } => Some((*epoch, *step)),
        _ => None,
    });
    assert_eq!(first, Some((epoch, step + 1)), "no step is done twice");
}

/// Asserts that two files hold the same bytes (without printing megabytes
/// when they do not).
pub fn assert_same_file(a: &Path, b: &Path, what: &str) {
    assert!(
        std::fs::read(a).unwrap() == std::fs::read(b).unwrap(),
        "{what}: {} and {} differ",
        a.display(),
        b.display()
    );
}
