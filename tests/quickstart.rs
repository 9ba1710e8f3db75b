//! The README's quickstart, end to end: `scripts/quickstart.sh` (with the
//! binary of this test run: `--no-build`) prepares the encoder, the BBC News
//! data, the finance graph and the K-BERT classifier (reused when there),
//! then serves; real business news must come back as `business` with facts
//! from the finance graph in the answer. Its store is a fresh folder
//! (`--data-dir`), so a quickstart server running on `data/quickstart` does
//! not stop the test.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn the_quickstart_serves_bbc_news_with_finance_facts() {
    let root = env!("CARGO_MANIFEST_DIR");
    // Dropped after the server (declared before it).
    let store = tempfile::tempdir().unwrap();
    let store_dir = store.path().join("quickstart");
    // The store is GRAFT_DATA_DIR when --data-dir is not given, both taken
    // from the caller's directory, and --data-dir wins. A binary that
    // opens no store (/bin/false) stops the script at step 4, naming the
    // store it was given.
    for (args, want) in [
        (&[][..], store.path().join("from-env")),
        (
            &["--data-dir", "from-flag"][..],
            store.path().join("from-flag"),
        ),
    ] {
        let out = Command::new(format!("{root}/scripts/quickstart.sh"))
            .arg("--no-build")
            .args(args)
            .env("GRAFT", "/bin/false")
            .env("GRAFT_DATA_DIR", "from-env")
            .current_dir(store.path())
            .output()
            .expect("run scripts/quickstart.sh");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot open the store {}", want.display())),
            "{args:?}: {stderr}"
        );
    }
    let mut child = Command::new(format!("{root}/scripts/quickstart.sh"))
        .arg("--no-build")
        .arg("--data-dir")
        .arg(&store_dir)
        // This test run's binary, wherever cargo put it.
        .env("GRAFT", graft_bin())
        .env("GRAFT_BIND", "127.0.0.1:0")
        .current_dir(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run scripts/quickstart.sh");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let child = Kill(child);
    let printed = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
            .join("\n")
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("listening on http://") {
                let _ = tx.send(line[i + "listening on ".len()..].trim().to_owned());
            }
            if std::env::var_os("GRAFT_TEST_LOGS").is_some() {
                eprintln!("[quickstart] {line}");
            }
        }
    });
    // A first run fetches the data, builds the graph and trains (minutes).
    let base = rx
        .recv_timeout(Duration::from_secs(1200))
        .expect("the quickstart did not start a server");
    let health = || -> Value {
        agent()
            .get(&format!("{base}/health"))
            .call()
            .unwrap()
            .into_json()
            .unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while health()["label_index"] != "ready" {
        assert!(
            std::time::Instant::now() < deadline,
            "label index not ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = "Deutsche Bank shares rose after the lender said profits had doubled and it would cut more jobs in Frankfurt.";
    let a: Value = agent()
        .post(&format!("{base}/v1/classify"))
        .set("Content-Type", "application/json")
        .send_string(&json!({"text": text}).to_string())
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(a["label"], "business", "{a}");
    assert!(a["score"].as_f64().unwrap() > 0.5, "{a}");
    assert_eq!(a["model"]["name"], "bbc");
    let bank = a["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["mention"] == "Deutsche Bank")
        .unwrap_or_else(|| panic!("Deutsche Bank linked: {a}"));
    assert!(bank["iri"]
        .as_str()
        .unwrap()
        .starts_with("https://w3id.org/graft/company/"));
    assert!(
        a["facts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["subject"] == "Deutsche Bank" && f["predicate"] == "industry"),
        "the bank's industry is injected: {a}"
    );
    // The console is served, and the quickstart printed how to reach it.
    let console = agent().get(&format!("{base}/")).call().unwrap();
    assert!(console
        .header("Content-Type")
        .unwrap()
        .starts_with("text/html"));
    drop(child);
    let printed = printed.join().unwrap();
    assert!(
        printed.contains("curl -s") && printed.contains("/v1/classify"),
        "{printed}"
    );
    assert!(printed.contains("Web console:"), "{printed}");
    // The graph went into the store it was given, and the quickstart says so.
    assert!(
        printed.contains(&format!("store {}", store_dir.display())),
        "{printed}"
    );
    assert!(store_dir.is_dir());
}

#[test]
fn the_quickstart_refuses_bad_arguments_before_doing_anything() {
    let root = env!("CARGO_MANIFEST_DIR");
    for (args, message) in [
        (&["--data-dir"][..], "--data-dir needs a folder"),
        (&["--data-dir="][..], "--data-dir needs a folder"),
        (
            &["--data-dir", "--no-serve"][..],
            "--data-dir needs a folder",
        ),
        (
            &["--no-build", "--data-dir", ""][..],
            "--data-dir needs a folder",
        ),
        (
            &["--serve-forever"][..],
            "unknown argument '--serve-forever'",
        ),
    ] {
        let out = Command::new(format!("{root}/scripts/quickstart.sh"))
            .args(args)
            .env("GRAFT", "/nonexistent/graft")
            .current_dir(root)
            .output()
            .expect("run scripts/quickstart.sh");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        // Refused before the first step.
        assert!(out.stdout.is_empty(), "{args:?}: {:?}", out.stdout);
    }
}
